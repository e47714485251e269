"""Trials/s of the vectorized TrialSampler vs. neurogym's own Dataset over the same Mod-Cog tasks.

    python benchmarks/bench_tasks.py [--suite modcog126] [--batch 512] [--ng-batch 64]

neurogym side: ``ScheduleEnvs`` over one ``ModCogEnv`` (a neurogym TrialEnv) per task with the
one-hot rule input, wrapped in ``neurogym.Dataset(batch_size=ng_batch, seq_len=350)``, the
reference README's recipe; its trials are counted inside the envs (trials cut at the end of a
sequence count too). Also timed: the plain per-trial ``new_trial()`` loop of that env.
Single thread; numbers depend on the machine and its load, so ratios come from one run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import neurogym  # noqa: E402
import numpy as np  # noqa: E402

from neurosheet.tasks import TrialSampler, load_suite  # noqa: E402
from neurosheet.tasks.envs import make_schedule_env  # noqa: E402


def _timed(fn, seconds: float) -> tuple[int, float, int]:
    """Call ``fn`` until ``seconds`` pass; returns (calls, elapsed, sum of fn's results)."""
    calls, total = 0, 0
    start = time.perf_counter()
    while True:
        total += fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls, elapsed, total


def bench_ours(tasks: tuple[str, ...], batch: int, seconds: float) -> dict[str, float]:
    sampler = TrialSampler(tasks, seed=0)
    sampler.sample(batch)  # warm-up
    steps = []

    def one() -> int:
        b = sampler.sample(batch)
        steps.append(int(b.lengths.sum()))
        return batch

    calls, elapsed, trials = _timed(one, seconds)
    return {"trials_per_s": trials / elapsed, "steps_per_s": sum(steps) / elapsed,
            "s_per_batch": elapsed / calls, "batches": calls}


def _count(ds: neurogym.Dataset) -> int:
    return sum(sub.unwrapped.n_trials_made for env in ds.envs for sub in env.envs)


def bench_neurogym(tasks: tuple[str, ...], batch: int, seq_len: int,
                   seconds: float) -> dict[str, float]:
    env = make_schedule_env(tasks, seed=0)
    t0 = time.perf_counter()
    ds = neurogym.Dataset(env, batch_size=batch, seq_len=seq_len)
    build = time.perf_counter() - t0
    before = _count(ds)

    def one() -> int:
        ds()
        return 0

    calls, elapsed, _ = _timed(one, seconds)
    trials = _count(ds) - before
    return {"trials_per_s": trials / elapsed, "steps_per_s": calls * batch * seq_len / elapsed,
            "s_per_batch": elapsed / calls, "batches": calls, "build_s": build}


def bench_loop(tasks: tuple[str, ...], seconds: float) -> dict[str, float]:
    env = make_schedule_env(tasks, seed=0)

    def one() -> int:
        env.new_trial()
        return 1

    calls, elapsed, _ = _timed(one, seconds)
    return {"trials_per_s": calls / elapsed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="modcog126")
    p.add_argument("--batch", type=int, default=512, help="our batch size (trials)")
    p.add_argument("--ng-batch", type=int, default=64, help="neurogym Dataset batch size")
    p.add_argument("--seq-len", type=int, default=350, help="neurogym Dataset seq_len")
    p.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    args = p.parse_args()
    warnings.filterwarnings("ignore")  # gymnasium's wrapper-attribute deprecation warnings
    tasks = load_suite(args.suite).tasks
    print(f"suite {args.suite}: {len(tasks)} tasks; numpy {np.__version__}, neurogym "
          f"{neurogym.__version__}, python {platform.python_version()}, 1 thread")
    ours = bench_ours(tasks, args.batch, args.seconds)
    ng = bench_neurogym(tasks, args.ng_batch, args.seq_len, args.seconds)
    loop = bench_loop(tasks, args.seconds)
    print(f"{'generator':<44}{'trials/s':>12}{'steps/s':>14}{'s/batch':>10}")
    print(f"{f'neurosheet TrialSampler (batch {args.batch})':<44}{ours['trials_per_s']:>12,.0f}"
          f"{ours['steps_per_s']:>14,.0f}{ours['s_per_batch']:>10.4f}")
    print(f"{f'neurogym Dataset (batch {args.ng_batch}, seq {args.seq_len})':<44}"
          f"{ng['trials_per_s']:>12,.0f}{ng['steps_per_s']:>14,.0f}{ng['s_per_batch']:>10.4f}")
    print(f"{'neurogym ScheduleEnvs new_trial() loop':<44}{loop['trials_per_s']:>12,.0f}")
    print(f"neurogym Dataset construction (batch {args.ng_batch}): {ng['build_s']:.1f} s")
    r_ds, r_loop = ours["trials_per_s"] / ng["trials_per_s"], ours["trials_per_s"] / loop[
        "trials_per_s"]
    print(f"ratio trials/s  ours / neurogym Dataset = {r_ds:.1f}x   "
          f"ours / new_trial loop = {r_loop:.1f}x")


if __name__ == "__main__":
    main()
