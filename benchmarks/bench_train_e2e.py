"""End to end: ``neurosheet train`` of the demo network, fused engine (cold kernel cache, so the
compile is paid) vs the eager path (``NEUROSHEET_FUSED=0``: what a machine without a compiler
runs, noise from ``torch.randn``), each a fresh process, alternated.

Counts the CPU time of each process and its children (the C compiler included) and the wall
time; the training includes the preset's evaluations and checkpoints. The question it answers:
does the one-time compile make a short training run slower overall? (It must not.)

    python benchmarks/bench_train_e2e.py [--steps 600] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import load, machine


def run(out: Path, steps: int, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds of the process tree, wall seconds) of one training run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "neurosheet", "train", "--preset", "demo", "--suite",
                    "demo", "--out", str(out), "--steps", str(steps), "--no-progress"],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {machine()}; {load()}")
    print(f"neurosheet train --preset demo --suite demo --steps {args.steps} (preset threads = 1)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_e2e-"))
    res: dict[str, list[tuple[float, float]]] = {"eager (NEUROSHEET_FUSED=0)": [],
                                                  "fused, cold kernel cache": []}
    for i in range(args.rounds):
        for name in res:
            env = {**os.environ, "NEUROSHEET_CACHE": str(tmp / f"cache{i}")}
            if name.startswith("eager"):
                env["NEUROSHEET_FUSED"] = "0"
            res[name].append(run(tmp / f"{i}-{len(res[name])}-{name[:5]}", args.steps, env))
    print(f"  {'variant':<30}{'CPU s (median)':>16}{'runs':>28}{'wall s':>10}")
    for name, r in res.items():
        cpus = [c for c, _ in r]
        print(f"  {name:<30}{statistics.median(cpus):>16.1f}"
              f"{' '.join(f'{c:.1f}' for c in cpus):>28}{statistics.median([w for _, w in r]):>10.1f}")
    names = list(res)
    ratio = statistics.median(c for c, _ in res[names[0]]) / statistics.median(
        c for c, _ in res[names[1]])
    print(f"  -> fused with its compile vs eager: {ratio:.2f}x less CPU time; {load()}")


if __name__ == "__main__":
    main()
