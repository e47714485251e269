"""Excitatory and inhibitory populations on the sheet (Dale's law): types, placement, wiring.

A neuron's *type* is its sign: ``+1`` excitatory (E), ``-1`` inhibitory (I). Under Dale's law
every outgoing synapse of a neuron (recurrent and readout) carries its type's sign. This module
places the types on a sheet, wires a radius graph with its own radius per pair type
(pre -> post: E->E, E->I, I->E, I->I; inhibitory axons are more local in cortex) and checks that a
set of edge weights obeys the signs. Everything is numpy; the graph layer stores the types in
:class:`~neurosheet.graph.sheetgraph.SheetGraph` (saved in ``graph.npz``, part of the fingerprint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheet import Sheet

EXCITATORY = 1
INHIBITORY = -1
PLACEMENTS: tuple[str, ...] = ("interleaved", "random")
#: pair types, named pre->post, in the order of :attr:`PairScales.as_tuple`
PAIRS: tuple[str, ...] = ("E->E", "E->I", "I->E", "I->I")
# Additive-recurrence constants of the plastic number (Roberts' R2 sequence): the fractional
# parts of i*A1 + j*A2 over a lattice are spread as evenly as a 2D sequence can be.
_PHI2 = 1.324717957244746
_A1, _A2 = 1.0 / _PHI2, 1.0 / _PHI2**2


@dataclass(frozen=True)
class PairScales:
    """Radius multiplier per pair type (pre->post) relative to the base radius of the rule."""

    ee: float = 1.0
    ei: float = 1.0
    ie: float = 1.0
    ii: float = 1.0

    def __post_init__(self) -> None:
        for name, v in zip(("ee_scale", "ei_scale", "ie_scale", "ii_scale"), self.as_tuple(),
                           strict=True):
            if not (math.isfinite(v) and v > 0):
                raise NeurosheetError(f"{name} must be a positive number, got {v}", name)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.ee, self.ei, self.ie, self.ii)

    @property
    def uniform(self) -> bool:
        """True when every pair type uses the base radius (plain radius wiring)."""
        return len(set(self.as_tuple())) == 1 and self.ee == 1.0


def assign_types(sheet: Sheet, inhibitory: float, placement: str = "interleaved",
                 seed: int | None = 0) -> np.ndarray:
    """Type of each neuron (int8, +1 E / -1 I) with ``round(inhibitory * N)`` inhibitory ones.

    ``interleaved`` spreads the inhibitory neurons evenly over the sheet (the lowest values of a
    2D low-discrepancy sequence evaluated at each neuron's position, so no stripes on a lattice;
    deterministic); ``random`` draws them uniformly with ``seed`` (the SeedPlan's model stream).
    """
    if not (isinstance(inhibitory, int | float) and 0.0 <= inhibitory < 1.0):
        raise NeurosheetError(f"inhibitory fraction must be in [0, 1), got {inhibitory}",
                              "inhibitory")
    if placement not in PLACEMENTS:
        raise NeurosheetError(f"unknown placement {placement!r}; use one of "
                              f"{', '.join(PLACEMENTS)}", "placement")
    n = sheet.n
    k = round(inhibitory * n)
    types = np.full(n, EXCITATORY, dtype=np.int8)
    if k == 0:
        return types
    if placement == "random":
        idx = np.random.default_rng(seed).choice(n, size=k, replace=False)
    else:
        # Positions in lattice units: neighbouring neurons get well-separated sequence values.
        spacing = math.sqrt(sheet.area / n)
        cell = np.floor(sheet.positions / spacing)
        value = np.mod(cell[:, 0] * _A1 + cell[:, 1] * _A2 + 0.5, 1.0)
        idx = np.argsort(value, kind="stable")[:k]
    types[idx] = INHIBITORY
    return types


def check_types(types: np.ndarray, n: int) -> np.ndarray:
    """``types`` as a read-only int8 vector of +1/-1 of length ``n`` (or a clear error)."""
    t = np.asarray(types)
    if t.shape != (n,):
        raise NeurosheetError(f"neuron types have shape {t.shape}, expected ({n},)", "types")
    if not np.isin(t, (EXCITATORY, INHIBITORY)).all():
        raise NeurosheetError("neuron types must be +1 (excitatory) or -1 (inhibitory)", "types")
    t = np.ascontiguousarray(t, dtype=np.int8)
    t.setflags(write=False)
    return t


def pair_index(types: np.ndarray, post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Pair type of each edge as an index into :data:`PAIRS` (0 E->E, 1 E->I, 2 I->E, 3 I->I)."""
    t = np.asarray(types)
    return 2 * (t[pre] < 0) + (t[post] < 0)


def pair_counts(types: np.ndarray, post: np.ndarray, pre: np.ndarray) -> dict[str, int]:
    """Synapses per pair type, ``{"E->E": .., "E->I": .., "I->E": .., "I->I": ..}``."""
    counts = np.bincount(pair_index(types, post, pre), minlength=4)
    return {name: int(c) for name, c in zip(PAIRS, counts, strict=True)}


def ei_pairs_within(sheet: Sheet, types: np.ndarray, radius: float, scales: PairScales,
                    self_connections: bool) -> tuple[np.ndarray, np.ndarray]:
    """Directed (post, pre) edges with ``d(pre, post) <= radius * scale[pair type]``."""
    s = np.asarray(scales.as_tuple())
    r_max = radius * float(s.max())
    pairs = sheet.tree.query_pairs(r_max, output_type="ndarray").astype(np.int64)
    post = np.concatenate([pairs[:, 0], pairs[:, 1]])
    pre = np.concatenate([pairs[:, 1], pairs[:, 0]])
    d = sheet.distance(pre, post)
    keep = d <= radius * s[pair_index(types, post, pre)] * (1 + 1e-9) + 1e-12
    post, pre = post[keep], pre[keep]
    if self_connections:
        diag = np.arange(sheet.n, dtype=np.int64)
        post, pre = np.concatenate([post, diag]), np.concatenate([pre, diag])
    return post, pre


def ei_radius_for_density(sheet: Sheet, types: np.ndarray, density: float, scales: PairScales,
                          self_connections: bool) -> float:
    """Base radius whose per-pair-type radius graph has the density closest to ``density``.

    The edge count is a non-decreasing step function of the base radius; its steps sit at
    ``d / scale`` for every candidate pair distance d, so the nearest step is found exactly.
    """
    if not 0.0 < density <= 1.0:
        raise NeurosheetError(f"density must be in (0, 1], got {density}", "density")
    n = sheet.n
    target = density * float(n) ** 2
    base = n if self_connections else 0
    s = np.asarray(scales.as_tuple())
    r_hi = 1.3 * math.sqrt(density * sheet.area / math.pi) / float(s.min()) + 1e-9
    while True:
        r_query = min(sheet.max_distance, r_hi * float(s.max()))
        pairs = sheet.tree.query_pairs(r_query, output_type="ndarray").astype(np.int64)
        post = np.concatenate([pairs[:, 0], pairs[:, 1]])
        pre = np.concatenate([pairs[:, 1], pairs[:, 0]])
        need = np.sort(sheet.distance(pre, post) / s[pair_index(types, post, pre)])
        need = need[need <= r_hi]  # steps beyond r_hi may be missing pairs: not exact there
        if base + need.size >= target or r_query >= sheet.max_distance:
            break
        r_hi *= 1.25
    # Achievable steps: after the last of each group of (numerically) equal radii.
    if need.size:
        gaps = np.diff(need) > 1e-9 * max(1.0, float(need[-1]))
        ends = np.flatnonzero(np.append(gaps, True))
        edges = np.concatenate([[base], base + ends + 1]).astype(np.float64)
        radii = np.concatenate([[0.0], need[ends]])
    else:
        edges, radii = np.array([float(base)]), np.array([0.0])
    k = int(np.argmin(np.abs(edges - target)))
    if edges[k] == 0 and radii.size > 1:
        k = 1
    return float(radii[k])


def sign_violations(types: np.ndarray, pre: np.ndarray, weights: np.ndarray) -> int:
    """Number of weights whose sign differs from their presynaptic neuron's type (zeros allowed)."""
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(types, dtype=np.float64)[np.asarray(pre)]
    return int(np.count_nonzero(w * s < 0))


def check_signs(types: np.ndarray, pre: np.ndarray, weights: np.ndarray, what: str) -> None:
    """Raise when any weight of ``what`` breaks Dale's law (used before anything is written)."""
    bad = sign_violations(types, pre, weights)
    if bad:
        raise NeurosheetError(
            f"{what}: {bad} synapse(s) have the opposite sign of their presynaptic neuron's "
            "type (Dale's law)", "types")
