"""Training-step cost: the fused engine vs the eager loop vs the dense W*mask product, one run.

Two comparisons, each variant doing the same work (same graph where stated, same batches, same
sub-step draws, same loss, backward, gradient clipping and Adam step), timed by the rules in
``benchmarks/_timing.py`` (warm-up, round-robin repeats, median and min-max of the thread's CPU
time, wall time beside it, threads fixed, FP32 peak measured in the same run):

1. ``--n 1024 --density 0.05`` (the lmrnn preset's sheet; T = 30, 4 sub-steps, batch 64): the
   LM-RNN on the fused engine and on the eager sparse kernel, against the same graph trained
   the paper's way, a dense ``W * mask`` product (eager, dense GEMM). Bar: fused >= 8x dense.
2. The demo network (``models/demo.toml`` on the ``demo`` suite: N = 144 at 14%, real trial
   batches, sub-steps drawn from 4/8/16 as in training): the fused engine against today's
   eager step (main at 6c51170, ``benchmarks/_legacy.py``; sparse kernel, one ``torch.randn``
   per sub-step). Bar: >= 3x.
3. Threads (``--thread-counts 1 2``): the fused engine's training step on both networks at each
   thread count, side by side (``_timing.by_threads``): wall time, the main thread's CPU time
   and the process's CPU time (all threads, spin-waits included), with the load average. The
   kernel splits the batch columns over torch's threads, and torch's own operations (input and
   readout products, Adam) use them too; on a machine whose cores are busy the extra thread
   waits for a core and makes a step slower, so read the load beside the wall times.

Each line prints the executed arithmetic rate (multiply-adds actually computed: nnz per sparse
product, N^2 per dense one, plus the input/readout projections) and its fraction of the peak.

    python benchmarks/bench_training.py [--threads 1] [--repeats 7] [--skip-large]
        [--thread-counts 1 2] [--threads-only]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _legacy import legacy_forward
from _timing import Timing, by_threads, header, interleaved, load, peak_gflops

from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.model import RateRNN
from neurosheet.rate.training import make_graph, masked_loss


def flops(model: RateRNN, dense: bool, steps: int, batch: int, substeps: int) -> float:
    """Floating-point operations of one training step's products (2 per multiply-add)."""
    g = model.graph
    rec = g.n * g.n if dense else g.synapses
    n_in, n_out = g.inputs.shape[1], g.readout.shape[0]  # type: ignore[union-attr]
    per_task_step = 2 * g.n * n_in + 3 * n_out * g.n  # drive fwd + its weight grad; readout x3
    return 2 * batch * (3 * rec * steps * substeps + per_task_step * steps)


def stepper(model: RateRNN, forward, data: list, lr: float, rate_l2: float, clip: float):
    """One optimizer step per call, cycling through ``data`` = [(inputs, targets, mask, k)]."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    model.train()
    it = itertools.cycle(data)

    def step() -> None:
        x, y, m, k = next(it)
        out = forward(model, x, gen, k)
        loss = masked_loss(out.logits, y, m)
        if rate_l2:
            valid = (m > 0).unsqueeze(-1)
            loss = loss + rate_l2 * (out.rates.square() * valid).sum() / (valid.sum() * model.graph.n)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return step


def new_forward(model: RateRNN, x, gen, k):
    return model(x, generator=gen, substeps=k)


def report(title: str, times: dict[str, Timing], work: dict[str, float], peak: float,
           reference: str, target: str) -> float:
    print(title)
    print(f"  {'variant':<44}{'CPU ms median':>14}{'(min-max)':>16}{'wall ms':>9}"
          f"{'GFLOP/s':>9}{'% peak':>8}{'speed-up':>10}")
    ref = times[reference].median
    for k, t in times.items():
        rate = work[k] / t.median / 1e9
        print(f"  {k:<44}{t.median * 1e3:>14.1f}{t.spread():>16}{t.wall_median() * 1e3:>9.1f}"
              f"{rate:>9.1f}{rate / peak:>8.1%}{ref / t.median:>9.2f}x")
    return ref / times[target].median


def large(args: argparse.Namespace, peak: float) -> float:
    n, d, steps, k, b = args.n, args.density, 30, 4, 64
    g = attach_projections(build_graph(make_sheet(n), "radius", density=d, seed=0), 53, 17)
    params = RateParams("relu", 200.0, 100.0, k)
    gen = torch.Generator().manual_seed(1)
    data = [(torch.rand(steps, b, 53, generator=gen), torch.randint(0, 17, (steps, b), generator=gen),
             torch.ones(steps, b), k) for _ in range(3)]
    variants = {
        f"LM-RNN {d:.0%}, fused engine": ("fused", "csr"),
        f"LM-RNN {d:.0%}, eager sparse CSR": ("eager", "csr"),
        "same graph, dense W*mask (eager GEMM)": ("eager", "dense"),
    }
    models = {name: RateRNN(g, params, rec_noise=0.05, seed=0, engine=e, kernel=kern)
              for name, (e, kern) in variants.items()}
    fns = {name: stepper(m, new_forward, data, 1e-3, 0.0, 1.0) for name, m in models.items()}
    t = interleaved(fns, args.repeats)
    work = {name: flops(models[name], variants[name][1] == "dense", steps, b, k) for name in fns}
    names = list(variants)
    ratio = report(f"\n[1] N={n}, density {g.density:.3%} ({g.synapses} synapses), T={steps}, "
                   f"{k} sub-steps, batch {b}, {args.repeats} repeats", t, work, peak,
                   reference=names[2], target=names[0])
    print(f"  -> fused vs dense W*mask: {ratio:.2f}x (bar: >= 8x)")
    return ratio


def demo(args: argparse.Namespace, peak: float) -> float:
    from neurosheet.rate.config import load_model_preset
    from neurosheet.tasks import N_OUT, TrialSampler, load_suite

    preset, _ = load_model_preset("demo")
    suite = load_suite("demo")
    sampler = TrialSampler(suite.tasks, seed=0, weights=suite.weights)
    g = make_graph(preset.sheet, sampler.n_inputs, N_OUT, 0)
    dyn, tc = preset.dynamics, preset.training
    params = RateParams(dyn.activation, dyn.tau_ms, dyn.dt_ms, dyn.substeps)
    t0 = time.thread_time()
    batches = [sampler.sample(tc.batch) for _ in range(6)]
    sample_ms = (time.thread_time() - t0) / 6 * 1e3
    ks = list(dyn.train_substeps or [dyn.substeps])
    data = [(torch.as_tensor(bt.inputs), torch.as_tensor(bt.targets), torch.as_tensor(bt.mask),
             ks[i % len(ks)]) for i, bt in enumerate(batches)]
    variants = {
        "today: main@6c51170 eager, sparse CSR": ("eager", "csr", "torch", legacy_forward),
        "today's code with the dense kernel": ("eager", "dense", "torch", legacy_forward),
        "this branch, eager engine (auto kernel)": ("eager", "auto", "auto", new_forward),
        "this branch, fused engine": ("fused", "auto", "auto", new_forward),
    }
    models = {name: RateRNN(g, params, gain=dyn.gain, rec_noise=dyn.rec_noise, seed=0,
                            engine=e, kernel=kern, noise=noise)
              for name, (e, kern, noise, _) in variants.items()}
    steppers = {name: stepper(models[name], v[3], data, tc.lr, tc.rate_l2, tc.grad_clip or 1.0)
                for name, v in variants.items()}

    def cycle(step):  # one timed sample = every batch once (each sub-step count equally often)
        def run() -> None:
            for _ in data:
                step()
        return run

    reps = args.repeats
    t = interleaved({name: cycle(s) for name, s in steppers.items()}, reps)
    for tm in t.values():  # per training step
        tm.cpu = [c / len(data) for c in tm.cpu]
        tm.wall = [c / len(data) for c in tm.wall]
    mean_t = sum(x[0].shape[0] for x in data) / len(data)
    mean_k = sum(x[3] for x in data) / len(data)
    work = {name: flops(models[name], models[name].rec.kernel == "dense"
                        and models[name].engine == "eager", round(mean_t), tc.batch,
                        round(mean_k)) for name in variants}
    names = list(variants)
    ratio = report(f"\n[2] demo network: N={g.n}, density {g.density:.3%}, batch {tc.batch}, "
                   f"T={mean_t:.1f} on average, sub-steps {ks} in turn (~{mean_t * mean_k:.0f} "
                   f"per step), {reps} repeats of {len(data)} steps, ms per step; trial "
                   f"sampling ({sample_ms:.1f} ms/step, the same for all) not included",
                   t, work, peak, reference=names[0], target=names[3])
    print(f"  -> fused vs today's eager step: {ratio:.2f}x (bar: >= 3x)")
    return ratio


def demo_data() -> tuple[RateRNN, list, tuple]:
    """The demo network, six real trial batches (sub-steps 4/8/16 in turn) and its settings."""
    from neurosheet.rate.config import load_model_preset
    from neurosheet.tasks import N_OUT, TrialSampler, load_suite

    preset, _ = load_model_preset("demo")
    suite = load_suite("demo")
    sampler = TrialSampler(suite.tasks, seed=0, weights=suite.weights)
    g = make_graph(preset.sheet, sampler.n_inputs, N_OUT, 0)
    dyn, tc = preset.dynamics, preset.training
    ks = list(dyn.train_substeps or [dyn.substeps])
    data = [(torch.as_tensor(bt.inputs), torch.as_tensor(bt.targets), torch.as_tensor(bt.mask),
             ks[i % len(ks)]) for i, bt in enumerate(sampler.sample(tc.batch) for _ in range(6))]
    params = RateParams(dyn.activation, dyn.tau_ms, dyn.dt_ms, dyn.substeps)
    return g, data, (params, dyn, tc)


def threads(args: argparse.Namespace) -> None:
    """The fused training step at each thread count, both networks, interleaved."""
    counts = args.thread_counts
    g, data, (params, dyn, tc) = demo_data()
    nets = {"demo": (lambda: RateRNN(g, params, gain=dyn.gain, rec_noise=dyn.rec_noise, seed=0,
                                     engine="fused"), data, (tc.lr, tc.rate_l2, tc.grad_clip or 1.0),
                     f"N={g.n} at {g.density:.1%}, batch {tc.batch}, sub-steps 4/8/16 in turn")}
    if not args.skip_large:
        n, d, steps, k, b = args.n, args.density, 30, 4, 64
        gl = attach_projections(build_graph(make_sheet(n), "radius", density=d, seed=0), 53, 17)
        gen = torch.Generator().manual_seed(1)
        ldata = [(torch.rand(steps, b, 53, generator=gen),
                  torch.randint(0, 17, (steps, b), generator=gen), torch.ones(steps, b), k)
                 for _ in range(3)]
        lparams = RateParams("relu", 200.0, 100.0, k)
        nets["large"] = (lambda: RateRNN(gl, lparams, rec_noise=0.05, seed=0, engine="fused"),
                         ldata, (1e-3, 0.0, 1.0),
                         f"N={n} at {gl.density:.1%}, T={steps}, {k} sub-steps, batch {b}")
    for name, (make, dat, (lr, l2, clip), title) in nets.items():
        def cycle(step, dat=dat):
            def run() -> None:
                for _ in dat:
                    step()
            return run
        variants = {f"fused, {nt} thread(s)": (nt, cycle(stepper(make(), new_forward, dat,
                                                                  lr, l2, clip)))
                    for nt in counts}
        before = load()
        t = by_threads(variants, args.repeats)
        print(f"\n[3] threads, {name} network ({title}), ms per training step, median "
              f"(min-max) of {args.repeats} repeats of {len(dat)} steps; {before} before, "
              f"{load()} after")
        print(f"  {'variant':<30}{'wall ms':>9}{'(min-max)':>14}{'main-thread CPU':>17}"
              f"{'process CPU':>13}{'wall speed-up':>15}")
        ref = statistics.median(t[next(iter(t))].wall)
        for label, tm in t.items():
            per = len(dat)
            print(f"  {label:<30}{tm.wall_median() / per * 1e3:>9.1f}"
                  f"{f'{min(tm.wall) / per * 1e3:.1f}-{max(tm.wall) / per * 1e3:.1f}':>14}"
                  f"{tm.median / per * 1e3:>17.1f}{tm.process_median() / per * 1e3:>13.1f}"
                  f"{ref / tm.wall_median():>14.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-large", action="store_true", help="only the demo comparison")
    ap.add_argument("--thread-counts", type=int, nargs="+", default=[1, 2],
                    help="thread counts compared in [3] (default 1 2)")
    ap.add_argument("--threads-only", action="store_true", help="only the thread comparison [3]")
    args = ap.parse_args()
    header(args.threads)
    if args.threads_only:
        threads(args)
        print(f"\n{load()}")
        return
    peak = peak_gflops()
    print(f"measured FP32 peak (2048^3 sgemm, {args.threads} thread(s)): {peak:.1f} GFLOP/s")
    if not args.skip_large:
        large(args, peak)
    demo(args, peak)
    threads(args)
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
