"""Distances on the sheet, written once: displacement with the minimum image and its norms.

Every distance the package measures (wiring kernels, BIMT wire costs, the analysis's wiring
lengths and cluster compactness) goes through :func:`displacement` and :func:`norm`, so a
flat sheet and a torus are measured the same way everywhere. Points are ``[..., 2]`` arrays
that broadcast: paired points give ``[E]`` distances, ``a[:, None]`` against ``b[None]`` gives
the ``[len(a), len(b)]`` matrix (:func:`pairwise_distances`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurosheet.core.errors import NeurosheetError

METRICS: tuple[str, ...] = ("euclidean", "manhattan")

Period = np.ndarray | Sequence[float] | None


def check_metric(metric: str) -> str:
    """``metric`` if it is one of :data:`METRICS`, else a NeurosheetError naming it."""
    if metric not in METRICS:
        raise NeurosheetError(f"unknown distance metric {metric!r}; use euclidean or manhattan")
    return metric


def displacement(a: np.ndarray, b: np.ndarray, period: Period = None) -> np.ndarray:
    """Vectors ``a - b`` (broadcast, last axis x/y); on a torus of size ``period`` = (width,
    height) each component is wrapped to its minimum image, in ``[-period/2, period/2]``."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if period is not None:
        box = np.asarray(period, dtype=np.float64)
        d = d - box * np.round(d / box)
    return d


def norm(d: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Length of displacement vectors ``d`` ``[..., 2]``: ``euclidean`` (L2) or ``manhattan`` (L1)."""
    check_metric(metric)
    if metric == "euclidean":
        return np.hypot(d[..., 0], d[..., 1])
    return np.abs(d).sum(-1)


def distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean",
             period: Period = None) -> np.ndarray:
    """Distance between points ``a`` and ``b`` (broadcast; minimum image when ``period`` is set)."""
    check_metric(metric)
    return norm(displacement(a, b, period), metric)


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean",
                       period: Period = None) -> np.ndarray:
    """Dense ``[len(a), len(b)]`` distances between the point sets ``a`` ``[M, 2]`` and ``b`` ``[K, 2]``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return distance(a[:, None, :], b[None, :, :], metric, period)
