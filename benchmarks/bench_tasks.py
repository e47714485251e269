"""Trials/s of the vectorized TrialSampler vs. neurogym's own Dataset over the same Mod-Cog tasks.

    python benchmarks/bench_tasks.py [--suite modcog126] [--batch 512] [--ng-batch 64]

neurogym side: ``ScheduleEnvs`` over one ``ModCogEnv`` (a neurogym TrialEnv) per task with the
one-hot rule input, wrapped in ``neurogym.Dataset(batch_size=ng_batch, seq_len=350)``, the
reference README's recipe; its trials are counted inside the envs (trials cut at the end of a
sequence count too). Also timed: the plain per-trial ``new_trial()`` loop of that env.
Single thread; the three generators are measured in interleaved rounds so machine load hits
them alike; medians and the median per-round ratio are printed.
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
from tqdm import tqdm  # noqa: E402

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


def ours_runner(tasks: tuple[str, ...], batch: int):
    """A function that times our sampler for ``seconds``: (trials/s, steps/s, s/batch)."""
    sampler = TrialSampler(tasks, seed=0)
    sampler.sample(batch)  # warm-up

    def measure(seconds: float) -> tuple[float, float, float]:
        steps = []

        def one() -> int:
            b = sampler.sample(batch)
            steps.append(int(b.lengths.sum()))
            return batch

        calls, elapsed, trials = _timed(one, seconds)
        return trials / elapsed, sum(steps) / elapsed, elapsed / calls

    return measure


def _count(ds: neurogym.Dataset) -> int:
    return sum(sub.unwrapped.n_trials_made for env in ds.envs for sub in env.envs)


def dataset_runner(tasks: tuple[str, ...], batch: int, seq_len: int):
    """Build neurogym's Dataset (timed) and return (build seconds, measure function)."""
    env = make_schedule_env(tasks, seed=0)
    t0 = time.perf_counter()
    ds = neurogym.Dataset(env, batch_size=batch, seq_len=seq_len)
    build = time.perf_counter() - t0

    def measure(seconds: float) -> tuple[float, float, float]:
        before = _count(ds)

        def one() -> int:
            ds()
            return 0

        calls, elapsed, _ = _timed(one, seconds)
        return (_count(ds) - before) / elapsed, calls * batch * seq_len / elapsed, elapsed / calls

    return build, measure


def loop_runner(tasks: tuple[str, ...]):
    """Times the plain per-trial ``new_trial()`` loop of the neurogym ScheduleEnvs."""
    env = make_schedule_env(tasks, seed=0)

    def measure(seconds: float) -> tuple[float, float, float]:
        def one() -> int:
            env.new_trial()
            return 1

        calls, elapsed, _ = _timed(one, seconds)
        return calls / elapsed, float("nan"), elapsed / calls

    return measure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="modcog126")
    p.add_argument("--batch", type=int, default=512, help="our batch size (trials)")
    p.add_argument("--ng-batch", type=int, default=64, help="neurogym Dataset batch size")
    p.add_argument("--seq-len", type=int, default=350, help="neurogym Dataset seq_len")
    p.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    args = p.parse_args()
    warnings.filterwarnings("ignore")  # gymnasium's wrapper-attribute deprecation warnings
    tasks = load_suite(args.suite).tasks
    print(f"suite {args.suite}: {len(tasks)} tasks; numpy {np.__version__}, neurogym "
          f"{neurogym.__version__}, python {platform.python_version()}, 1 thread; "
          f"{args.rounds} interleaved rounds of {args.seconds} s each, medians")
    ours = ours_runner(tasks, args.batch)
    build, ng = dataset_runner(tasks, args.ng_batch, args.seq_len)
    loop = loop_runner(tasks)
    rows: dict[str, list[tuple[float, float, float]]] = {"ours": [], "ng": [], "loop": []}
    for _ in tqdm(range(args.rounds), desc="rounds", leave=False):
        for key, fn in (("ours", ours), ("ng", ng), ("loop", loop)):
            rows[key].append(fn(args.seconds))
    med = {k: np.median(np.array(v), axis=0) for k, v in rows.items()}
    ratio_ds = np.median([o[0] / n[0] for o, n in zip(rows["ours"], rows["ng"], strict=True)])
    ratio_loop = np.median([o[0] / n[0] for o, n in zip(rows["ours"], rows["loop"],
                                                           strict=True)])
    print(f"{'generator':<44}{'trials/s':>12}{'steps/s':>14}{'s/batch':>10}")
    names = {"ours": f"neurosheet TrialSampler (batch {args.batch})",
             "ng": f"neurogym Dataset (batch {args.ng_batch}, seq {args.seq_len})",
             "loop": "neurogym ScheduleEnvs new_trial() loop"}
    for key, label in names.items():
        tps, sps, spb = med[key]
        sps_text = "-" if np.isnan(sps) else f"{sps:,.0f}"
        print(f"{label:<44}{tps:>12,.0f}{sps_text:>14}{spb:>10.4f}")
    print(f"neurogym Dataset construction (batch {args.ng_batch}): {build:.1f} s")
    print(f"ratio trials/s (median of per-round ratios): ours / neurogym Dataset = "
          f"{ratio_ds:.1f}x   ours / new_trial loop = {ratio_loop:.1f}x")


if __name__ == "__main__":
    main()
