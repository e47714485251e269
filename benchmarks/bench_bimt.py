"""BIMT swap criterion: exact closed form vs brute force, and the cost of a full swap pass.

Run: ``python benchmarks/bench_bimt.py`` (CPU, 1 torch thread). Both sides of the speed-up
are timed the same way by ``benchmarks/_timing.py`` (warm-up, interleaved repeats, median and
min-max of the thread's CPU time).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.bimt.config import BimtConfig
from neurosheet.rate.bimt.cost import WiringGeometry, swap_deltas, swap_dense, wiring_cost
from neurosheet.rate.bimt.regularizer import BimtRegularizer
from neurosheet.rate.model import RateRNN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import header, interleaved

N_IN, N_OUT = 50, 17  # Mod-Cog-like: 33 observation + rule channels, 17 outputs


def brute(j, mats, geo):
    base = wiring_cost(*mats, geo)
    return np.array([wiring_cost(*swap_dense(*mats, j, k), geo) - base
                     for k in range(mats[0].shape[0])])


def main() -> None:
    header(threads=1)
    rng = np.random.default_rng(0)
    print(f"{'N':>5} {'closed form [ms]':>26} {'brute force [ms]':>26} {'speed-up':>9} "
          f"{'max |diff|':>11}")
    for n in (64, 256, 400):
        graph = attach_projections(build_graph(make_sheet(n), "full"), N_IN, N_OUT)
        geo = WiringGeometry.from_graph(graph)
        mats = (np.abs(rng.normal(size=(n, n))), np.abs(rng.normal(size=(n, N_IN))),
                np.abs(rng.normal(size=(N_OUT, n))))
        t = interleaved({"closed": lambda: swap_deltas(3, *mats, geo),  # noqa: B023
                         "brute": lambda: brute(3, mats, geo)}, repeats=3)  # noqa: B023
        fast, slow = t["closed"], t["brute"]
        diff = np.abs(swap_deltas(3, *mats, geo) - brute(3, mats, geo)).max()
        print(f"{n:>5} {f'{fast.median * 1e3:.3f} [{fast.spread()}]':>26} "
              f"{f'{slow.median * 1e3:.1f} [{slow.spread()}]':>26} "
              f"{slow.median / fast.median:>9.0f} {diff:>11.2e}")
    print()
    print(f"{'N':>5} {'swap pass top_k=30 [ms]':>24} {'swaps':>6} {'penalty fwd+bwd [ms]':>21}")
    for n in (256, 400, 1024):
        graph = attach_projections(build_graph(make_sheet(n), "full"), N_IN, N_OUT)
        model = RateRNN(graph, RateParams("relu", 100.0, 20.0), gain=1.5)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        reg = BimtRegularizer(model, BimtConfig(swap_every=1, swap_top_k=30), 100)
        reg.penalty(50).backward()
        opt.step()
        t0 = time.perf_counter()
        report = reg.relocate(opt)
        t_pass = time.perf_counter() - t0

        def pen(model=model, reg=reg) -> None:
            model.zero_grad()
            reg.penalty(50).backward()

        t_pen = interleaved({"penalty": pen}, repeats=3)["penalty"]
        print(f"{n:>5} {t_pass * 1e3:>24.1f} {report.swaps:>6} {t_pen.median * 1e3:>21.2f}")


if __name__ == "__main__":
    main()
