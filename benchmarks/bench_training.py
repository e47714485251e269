"""Milliseconds per training step (forward + backward + Adam) for sparse sheets vs dense.

Run: ``python benchmarks/bench_training.py [--n 1024] [--density 0.05] [--batch 64] [--steps 30]``.
torch uses 2 threads. The variants run interleaved (round-robin) and the median of the
repeats is reported, so a busy machine slows all of them alike; the ratios are from one run.

Variants (same RateRNN code path, only the graph or the product differs):
    lmrnn-csr      radius graph at the density, sparse CSR kernel (the default for sparse graphs)
    lmrnn-masked   the same graph with the dense product (the paper's "W * mask" way)
    random-csr     random graph of the same density, sparse CSR kernel
    dense          fully connected graph (dense product)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.model import RateRNN

N_IN, N_OUT = 53, 17


def make_model(n: int, rule: str, density: float | None, kernel: str, substeps: int) -> RateRNN:
    sheet = make_sheet(n)
    graph = build_graph(sheet, rule, density=density if rule != "full" else None, seed=0)
    graph = attach_projections(graph, N_IN, N_OUT)
    return RateRNN(graph, RateParams("relu", 200.0, 100.0, substeps), seed=0, kernel=kernel)


def step_fn(model: RateRNN, batch: int, steps: int):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(steps, batch, N_IN, generator=gen)
    y = torch.randint(0, N_OUT, (steps, batch), generator=gen)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, N_OUT), y.reshape(-1))
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="task steps per trial (T)")
    ap.add_argument("--substeps", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = {
        "lmrnn-csr": ("radius", args.density, "auto"),
        "lmrnn-masked": ("radius", args.density, "dense"),
        "random-csr": ("random", args.density, "auto"),
        "dense": ("full", None, "auto"),
    }
    models = {k: make_model(args.n, *v, args.substeps) for k, v in variants.items()}
    steps = {k: step_fn(m, args.batch, args.steps) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for f in steps.values():  # warm-up
        f()
    for _ in range(args.repeats):
        for k, f in steps.items():
            t0 = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t0) * 1e3)
    print(f"N={args.n} batch={args.batch} T={args.steps} substeps={args.substeps} "
          f"threads={torch.get_num_threads()} repeats={args.repeats} (median ms per step)")
    dense_ms = statistics.median(times["dense"])
    for k, m in models.items():
        ms = statistics.median(times[k])
        print(f"  {k:<13} density {m.graph.density:7.3%}  kernel {m.rec.kernel:<5}  "
              f"{ms:9.1f} ms  dense/this = {dense_ms / ms:5.2f}x")


if __name__ == "__main__":
    main()
