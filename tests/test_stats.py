"""95% intervals of the accuracy figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosheet.core.stats import mean_interval, wilson


def test_wilson_matches_known_values():
    lo, hi = wilson(64, 64)
    assert lo == pytest.approx(0.9434, abs=1e-4) and hi == 1.0
    assert wilson(0, 64) == (0.0, pytest.approx(0.0566, abs=1e-4))
    lo, hi = wilson(32, 64)
    assert lo == pytest.approx(0.3810, abs=1e-4) and hi == pytest.approx(0.6190, abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_wilson_contains_the_proportion_and_narrows_with_n():
    for k, n in [(1, 10), (7, 10), (300, 320), (5, 5)]:
        lo, hi = wilson(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert np.diff(wilson(60, 64)) > np.diff(wilson(600, 640))


def test_mean_interval_over_trials():
    lo, hi = mean_interval(np.array([1.0, 0.5, 0.75, 1.0]))
    assert lo < 0.8125 < hi <= 1.0
    assert mean_interval(np.ones(5)) == (1.0, 1.0)
