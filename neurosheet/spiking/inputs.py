"""Checking task input arrays (shared by the spiking circuit and its torch module)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError


def check_inputs(inputs: Any, n_in: int) -> np.ndarray:
    """``inputs`` as float64 ``[T, B, n_in]``, finite."""
    u = np.asarray(inputs, dtype=np.float64)
    if u.ndim != 3 or u.shape[2] != n_in:
        raise NeurosheetError(f"inputs must have shape [T, B, {n_in}], got {list(u.shape)}",
                              "inputs")
    if not np.isfinite(u).all():
        raise NeurosheetError("inputs contain NaN or infinite values", "inputs")
    return u
