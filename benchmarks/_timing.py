"""Timing rules every benchmark here shares, so a ratio is measured the same way on both sides.

- the machine is named from ``/proc/cpuinfo`` (model name, flags that matter) and the load
  average is printed before and after;
- torch's thread count is set once and printed; every variant runs with it;
- every variant is warmed up, then the variants run round-robin (interleaved) so a change in
  the machine's load hits all of them alike; each is repeated and reported as the median with
  its spread (min-max) of the thread's CPU time (``time.thread_time``: what a busy shared
  machine steals is not counted) and of wall time;
- the FP32 peak is measured in the same run with a large single-precision GEMM, and a variant's
  arithmetic rate is printed as a fraction of it.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def machine() -> str:
    """The CPU as /proc/cpuinfo names it (with family/model), its vector units and CPU count."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    vec = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    virt = ", virtualized" if "hypervisor" in flags else ""
    name = info.get("model name", platform.processor() or "unknown CPU")
    fam = f" family {info['cpu family']} model {info['model']}" if "cpu family" in info else ""
    return f"{name}{fam} ({vec}, {os.cpu_count()} logical CPUs{virt})"


def load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def header(threads: int) -> None:
    """Set torch's threads and print the machine, threads and load."""
    torch.set_num_threads(threads)
    print(f"machine: {machine()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {load()}")


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Measured FP32 GEMM rate (median of ``repeats``, thread CPU time) at the current threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    rates = []
    for _ in range(repeats):
        t0 = time.thread_time() if torch.get_num_threads() == 1 else time.perf_counter()
        a @ b
        dt = (time.thread_time() if torch.get_num_threads() == 1 else time.perf_counter()) - t0
        rates.append(2 * n**3 / dt / 1e9)
    return statistics.median(rates)


@dataclass
class Timing:
    """Repeated measurements of one variant, in seconds."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    process: list[float] = field(default_factory=list)  # every thread's CPU (only by_threads)

    @property
    def median(self) -> float:
        return statistics.median(self.cpu)

    def spread(self) -> str:
        return f"{min(self.cpu) * 1e3:.1f}-{max(self.cpu) * 1e3:.1f}"

    def wall_median(self) -> float:
        return statistics.median(self.wall)

    def wall_spread(self) -> str:
        return f"{min(self.wall) * 1e3:.1f}-{max(self.wall) * 1e3:.1f}"

    def process_median(self) -> float:
        return statistics.median(self.process)


def interleaved(variants: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 1) -> dict[str, Timing]:
    """Warm every variant up, then time them round-robin ``repeats`` times.

    CPU time is the calling thread's, which is right for 1-thread runs; with more threads the
    process CPU time would over-count, so then wall time is recorded in ``cpu`` as well.
    """
    one = torch.get_num_threads() == 1
    clock = time.thread_time if one else time.perf_counter
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    out = {k: Timing() for k in variants}
    for _ in range(repeats):
        for k, fn in variants.items():
            w0, c0 = time.perf_counter(), clock()
            fn()
            out[k].cpu.append(clock() - c0)
            out[k].wall.append(time.perf_counter() - w0)
    return out


def by_threads(variants: dict[str, tuple[int, Callable[[], object]]], repeats: int,
               warmup: int = 1) -> dict[str, Timing]:
    """Like :func:`interleaved`, each variant at its own torch thread count ``(threads, fn)``.

    Records, per repeat, the calling thread's CPU time (``cpu``), the whole process's CPU time
    (``process``: every worker thread, spin-waits included) and wall time; with more threads
    than free cores (a loaded machine) wall time is what the extra threads cannot buy.
    """
    saved = torch.get_num_threads()
    try:
        for nt, fn in variants.values():
            torch.set_num_threads(nt)
            for _ in range(warmup):
                fn()
        out = {k: Timing() for k in variants}
        for _ in range(repeats):
            for k, (nt, fn) in variants.items():
                torch.set_num_threads(nt)
                w0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
                fn()
                out[k].cpu.append(time.thread_time() - c0)
                out[k].process.append(time.process_time() - p0)
                out[k].wall.append(time.perf_counter() - w0)
    finally:
        torch.set_num_threads(saved)
    return out
