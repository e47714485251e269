"""Timing the same way on both sides of a ratio: warm-up, repeats, median and spread, machine.

Every benchmark that prints a ratio times both sides with :func:`measure` (same repeats, same
warm-up, same threads) and names the machine with :func:`machine` (read from the machine, not
assumed).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median with the fastest and slowest of ``repeats`` calls."""

    median: float
    low: float
    high: float
    repeats: int

    def __str__(self) -> str:
        return f"{self.median * 1e3:.3f} ms [{self.low * 1e3:.3f}-{self.high * 1e3:.3f}]"

    def ratio(self, other: Timing) -> float:
        """How many times faster ``self`` is than ``other`` (median over median)."""
        return other.median / self.median


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Timing:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), max(times), repeats)


def machine() -> str:
    """CPU model, core count, load and (when torch is loaded) its thread count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = ""
    try:
        import sys

        if "torch" in sys.modules:
            threads = f", torch threads {sys.modules['torch'].get_num_threads()}"
    except Exception:
        pass
    return f"{model}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}{threads}"
