"""The measured cost model behind ``kernel="auto"`` / ``engine="auto"`` (one Euler sub-step).

For each recurrent implementation (eager sparse CSR, eager dense ``W * mask``, fused compiled
CSR) it times forward + backward of a batch over a grid of sizes N and densities, per sub-step,
fits ``seconds = overhead + N B x elementwise + work / rate`` by non-negative least squares on
the relative error (work =
multiply-adds of the three products of a sub-step: ``W r``, ``W^T g`` and the weight gradient;
``nnz`` of them for a CSR product, ``N^2`` for a dense one) and prints the fit next to the
constants in :mod:`neurosheet.rate.edge_ops`, then each grid point's measured winner beside the model's
choice. Rerun it on a new machine and copy the fitted constants if the choices disagree.

    python benchmarks/bench_kernels.py [--threads 1] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import header, interleaved, load, peak_gflops

from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate import edge_ops
from neurosheet.rate.model import RateRNN

IMPLS = {"eager-csr": ("eager", "csr"), "eager-dense": ("eager", "dense"), "fused": ("fused", "csr")}


def run(model: RateRNN, x: torch.Tensor, k: int):
    def step() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x, substeps=k)
        out.logits.square().mean().backward()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="a smaller grid")
    args = ap.parse_args()
    header(args.threads)
    peak = peak_gflops()
    print(f"measured FP32 peak (2048^3 sgemm): {peak:.1f} GFLOP/s")
    sizes = [144, 256, 1024] if args.quick else [144, 256, 512, 1024]
    densities = [0.05, 0.15, 0.5] if args.quick else [0.02, 0.05, 0.15, 0.3, 0.6, 1.0]
    steps, k, b = 8, 4, args.batch
    x = torch.rand(steps, b, 4, generator=torch.Generator().manual_seed(0))
    rows = []
    for n in sizes:
        for d in densities:
            g = build_graph(make_sheet(n), "random" if d < 1 else "full",
                            density=d if d < 1 else None, seed=0)
            g = attach_projections(g, 4, 2)
            models = {name: RateRNN(g, RateParams("relu", 200.0, 100.0, k), seed=0, engine=e,
                                    kernel=kern) for name, (e, kern) in IMPLS.items()}
            fns = {name: run(m, x, k) for name, m in models.items()}
            t = interleaved(fns, args.repeats)
            per = {name: t[name].median / (steps * k) for name in fns}
            rows.append((n, g.synapses, per))
            best = min(per, key=per.get)
            choice = edge_ops.choose_implementation(n, g.synapses, b, fused_ok=True)
            print(f"N={n:5d} density {g.density:6.3f}  " + "  ".join(
                f"{name} {per[name] * 1e6:8.1f} us" for name in fns)
                + f"   fastest {best:<11} model picks {choice}")
    print("fit: seconds per sub-step = overhead + N*B / elementwise rate + multiply-adds / rate")
    for name in IMPLS:
        work = np.array([3 * b * (n * n if name == "eager-dense" else nnz) for n, nnz, _ in rows],
                        float)
        elem = np.array([n * b for n, _, _ in rows], float)
        secs = np.array([per[name] for _, _, per in rows])
        a = np.vstack([np.ones_like(work), elem, work]).T / secs[:, None]
        (ov, inv_elem, inv_rate), _ = nnls(a, np.ones_like(secs))
        print(f"  {name:<12} overhead {ov * 1e6:7.1f} us   elementwise {inv_elem * 1e9:6.3f} ns per "
              f"N*B   rate {1 / inv_rate / 1e9:6.2f} G mult-add/s ({2 / inv_rate / 1e9 / peak:.0%} "
              "of the FP32 peak)")
    print("constants in neurosheet.rate.edge_ops.COSTS:")
    for name, (ov, elem_ns, rate) in edge_ops.COSTS.items():
        print(f"  {name:<12} overhead {ov * 1e6:7.1f} us   elementwise {elem_ns:6.3f} ns per N*B   "
              f"rate {rate / 1e9:6.2f} G mult-add/s")
    print(load())


if __name__ == "__main__":
    main()
