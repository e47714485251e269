"""How long `neurosheet --help` and `--version` take next to `python -c pass`, in one run.

Each command is started as a fresh process (as a user types it) ``--repeats`` times after one
warm-up; prints the median and spread of each and the extra time over a bare interpreter.
The bar (issue 10): `neurosheet --help` under 1 s on this machine.

    python benchmarks/bench_cli_start.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], repeats: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm-up (file cache)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "neurosheet --version": [py, "-m", "neurosheet", "--version"],
        "neurosheet --help": [py, "-m", "neurosheet", "--help"],
        "neurosheet train --help": [py, "-m", "neurosheet", "train", "--help"],
    }
    load = os.getloadavg()[0]
    print(f"{args.repeats} runs each after a warm-up; load average {load:.2f}; "
          f"{os.cpu_count()} CPUs")
    base = None
    for name, cmd in cases.items():
        t = _time(cmd, args.repeats)
        med = statistics.median(t)
        base = med if base is None else base
        spread = f"{min(t):.3f}-{max(t):.3f}"
        extra = "" if med == base else f"  (+{med - base:.3f} s over python, x{med / base:.1f})"
        print(f"{name:<26} median {med:.3f} s  [{spread}]{extra}")


if __name__ == "__main__":
    main()
