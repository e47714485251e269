"""Per-seed statistics of an experiment: sample spread, t and bootstrap intervals, verdicts.

Every comparison is paired by seed (the same seed gives both conditions the same trials and
the same sheet), so the unit of analysis is the per-seed difference. The spread is the sample
standard deviation (ddof = 1): with 3 seeds the population formula understates it by
sqrt(3/2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

VERDICTS = ("supported", "not supported", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """Mean of per-seed values with its sample spread and two 95% (or other) intervals."""

    n: int
    mean: float | None
    sd: float | None
    t_low: float | None
    t_high: float | None
    boot_low: float | None
    boot_high: float | None
    confidence: float

    def bounds(self, kind: str) -> tuple[float | None, float | None]:
        """(low, high) of the ``t`` or ``bootstrap`` interval."""
        return (self.t_low, self.t_high) if kind == "t" else (self.boot_low, self.boot_high)

    def as_dict(self) -> dict[str, Any]:
        """The interval as a plain dict (for JSON reports)."""
        return asdict(self)


def sample_sd(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof = 1); None with fewer than two values."""
    x = np.asarray(values, float)
    return float(x.std(ddof=1)) if x.size > 1 else None


def interval(values: Sequence[float], confidence: float = 0.95, n_boot: int = 10000,
             seed: int = 0) -> Interval:
    """t interval (mean ± t_{n-1} sd / sqrt n) and percentile bootstrap interval of the mean."""
    from scipy.stats import t as student_t

    x = np.asarray([v for v in values if v is not None], float)
    n = int(x.size)
    if n == 0:
        return Interval(0, None, None, None, None, None, None, confidence)
    mean = float(x.mean())
    if n < 2:
        return Interval(n, mean, None, None, None, None, None, confidence)
    sd = float(x.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n)
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, n, size=(n_boot, n))].mean(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return Interval(n, mean, sd, mean - half, mean + half, float(lo), float(hi), confidence)


def verdict(iv: Interval, margin: float = 0.0, kind: str = "t") -> str:
    """supported: the interval lies above ``margin``; not supported: at or below it; else
    inconclusive (also with fewer than two seeds)."""
    lo, hi = iv.bounds(kind)
    if lo is None or hi is None:
        return "inconclusive"
    if lo > margin:
        return "supported"
    if hi <= margin:
        return "not supported"
    return "inconclusive"
