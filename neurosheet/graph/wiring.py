"""Wiring rules: turn a :class:`~neurosheet.graph.sheet.Sheet` into a
:class:`~neurosheet.graph.sheetgraph.SheetGraph`.

Every rule is seeded and memory-light: neighbour searches use the sheet's KD-tree, so a
radius graph costs O(synapses), never O(N^2). Density is always
``synapses / N^2`` (autapses included when present), so a fully connected graph has
density 1 with or without self-connections only when they are allowed.

Rules:
    radius       hard cut-off: connect i, j when their sheet distance is <= r (the LM-RNN mask).
                 Given a target density instead of r, the radius with the closest achievable
                 density is chosen and the achieved density is reported.
    gaussian     connect with probability p0 * exp(-d^2 / (2 sigma^2)), independently per direction.
    exponential  connect with probability p0 * exp(-d / lambda).
    random       uniformly random edges at the target density: the control with density but no
                 locality (optionally with every neuron's fan-in fixed).
    full         all-to-all.
    autapse      self-connections only (the diagonal).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from neurosheet.core.errors import NeurosheetError, NeurosheetWarning
from neurosheet.graph.sheet import Sheet
from neurosheet.graph.sheetgraph import SheetGraph, csr_from_edges

RULES: tuple[str, ...] = ("radius", "gaussian", "exponential", "random", "full", "autapse")
# Distance-dependent kernels are truncated where p falls below ~1e-4 of p0.
_CUTOFF = {"gaussian": math.sqrt(2 * math.log(1e4)), "exponential": math.log(1e4)}


@dataclass(frozen=True)
class RadiusChoice:
    """Outcome of searching the radius for a target density."""

    radius: float
    density: float
    synapses: int


def build_graph(
    sheet: Sheet,
    rule: str,
    *,
    density: float | None = None,
    radius: float | None = None,
    scale: float | None = None,
    p0: float = 1.0,
    self_connections: bool = True,
    fixed_fan_in: bool = False,
    seed: int | None = 0,
) -> SheetGraph:
    """Wire ``sheet`` with ``rule`` (see module docstring); returns the shared graph type.

    Args:
        density: target density in (0, 1] (``radius``, ``gaussian``, ``exponential``, ``random``).
        radius: explicit cut-off radius for ``radius`` (instead of ``density``).
        scale: explicit sigma / lambda for ``gaussian`` / ``exponential`` (instead of ``density``).
        p0: connection probability at distance 0 for the kernels, in (0, 1].
        self_connections: keep autapses (the diagonal).
        fixed_fan_in: ``random`` only: every neuron gets the same number of inputs.
        seed: seed of the random rules; the same seed gives the same edges.
    """
    if rule not in RULES:
        raise NeurosheetError(f"unknown wiring rule {rule!r}; use one of {', '.join(RULES)}")
    if density is not None and not (0.0 < density <= 1.0):
        raise NeurosheetError(f"density must be in (0, 1], got {density}")
    if radius is not None and not radius >= 0:
        raise NeurosheetError(f"radius must be non-negative, got {radius}")
    if scale is not None and not scale > 0:
        raise NeurosheetError(f"kernel scale must be positive, got {scale}")
    if not 0.0 < p0 <= 1.0:
        raise NeurosheetError(f"p0 must be in (0, 1], got {p0}")

    n = sheet.n
    meta: dict[str, Any] = {"rule": rule, "allow_self": self_connections, "seed": seed}
    if density is not None:
        meta["target_density"] = density

    if rule == "radius":
        if (radius is None) == (density is None):
            raise NeurosheetError("the radius rule needs exactly one of radius or density")
        if radius is None:
            choice = radius_for_density(sheet, density, self_connections)  # type: ignore[arg-type]
            radius = choice.radius
        post, pre = _pairs_within(sheet, radius, self_connections)
        meta["radius"] = radius
    elif rule in ("gaussian", "exponential"):
        if (scale is None) == (density is None):
            raise NeurosheetError(f"the {rule} rule needs exactly one of scale or density")
        if scale is None:
            scale = _scale_for_density(sheet, rule, density, p0, self_connections)  # type: ignore[arg-type]
        post, pre = _sample_kernel(sheet, rule, scale, p0, self_connections, seed)
        meta.update(scale=scale, p0=p0)
    elif rule == "random":
        if density is None:
            raise NeurosheetError("the random rule needs a density", "density")
        post, pre = _random_edges(n, density, self_connections, fixed_fan_in, seed)
        meta["fixed_fan_in"] = fixed_fan_in
    elif rule == "full":
        post, pre = _full_edges(n, self_connections)
    else:  # autapse
        post = pre = np.arange(n, dtype=np.int64)

    adjacency = csr_from_edges(post, pre, (n, n))
    meta["density"] = adjacency.nnz / float(n) ** 2
    if density is not None:
        _warn_off_target(rule, density, meta["density"], n)
    return SheetGraph(sheet, adjacency, meta=meta)


class DensityWarning(NeurosheetWarning):
    """The graph's density is far from the one asked for (the sheet is too small or coarse)."""


#: relative gap between achieved and target density above which the user is warned
DENSITY_TOLERANCE = 0.25


def _warn_off_target(rule: str, target: float, achieved: float, n: int) -> None:
    """Warn when the wiring could not get near the requested density (not a silent change)."""
    gap = abs(achieved - target) / target
    if gap <= DENSITY_TOLERANCE:
        return
    hint = (f"a {n}-neuron sheet is too small or coarse for it" if rule in ("radius", "full")
            or achieved > target else "the kernel's sampling fell short")
    warnings.warn(f"asked for density {target:.3%}, got {achieved:.3%} with the {rule} rule "
                  f"({gap:.0%} off): {hint}", DensityWarning, stacklevel=3)


# --------------------------------------------------------------------- radius
def _pairs_within(sheet: Sheet, r: float, self_connections: bool) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges between all distinct neurons within ``r`` (+ the diagonal if asked)."""
    pairs = sheet.tree.query_pairs(r, output_type="ndarray").astype(np.int64)
    post = np.concatenate([pairs[:, 0], pairs[:, 1]])
    pre = np.concatenate([pairs[:, 1], pairs[:, 0]])
    if self_connections:
        diag = np.arange(sheet.n, dtype=np.int64)
        post, pre = np.concatenate([post, diag]), np.concatenate([pre, diag])
    return post, pre


def radius_for_density(sheet: Sheet, density: float, self_connections: bool = True) -> RadiusChoice:
    """The radius whose graph density is closest to ``density`` (ties go to the smaller radius).

    The density of a radius graph is a step function of r, jumping at each distinct pairwise
    distance. We collect pair distances up to a little beyond the expected radius, sorted,
    and pick the step nearest the target. Raises if no radius gets close to the target
    because even the sparsest radius graph is far denser than asked.
    """
    if not 0.0 < density <= 1.0:
        raise NeurosheetError(f"density must be in (0, 1], got {density}")
    n = sheet.n
    total = float(n) ** 2
    base = n if self_connections else 0  # edges at r = 0
    target_edges = density * total
    # Expected radius from the area (density ~ pi r^2 / area); search a little beyond it and
    # widen only if the boundary makes the graph sparser than the estimate.
    r_hi = min(sheet.max_distance, 1.15 * math.sqrt(density * sheet.area / math.pi) + 1e-9)
    while True:
        pairs = sheet.tree.query_pairs(r_hi, output_type="ndarray")
        d = np.sort(sheet.distance(pairs[:, 0], pairs[:, 1])) if len(pairs) else np.zeros(0)
        if base + 2 * d.size >= target_edges or r_hi >= sheet.max_distance:
            break
        r_hi = min(sheet.max_distance, r_hi * 1.2)
    # Achievable steps: after the last of each group of (numerically) equal distances.
    if d.size:
        gaps = np.diff(d) > 1e-9 * max(1.0, float(d[-1]))
        ends = np.flatnonzero(np.append(gaps, True))  # index of last element of each tie group
        radii = np.concatenate([[0.0], d[ends]])
        edges = np.concatenate([[base], base + 2 * (ends + 1)]).astype(np.float64)
    else:
        radii, edges = np.array([0.0]), np.array([float(base)])
    # The step above the collected range is never closer than the last collected one when the
    # search stopped at or beyond the target, so the nearest step is among those collected.
    k = int(np.argmin(np.abs(edges - target_edges)))
    if edges[k] == 0:
        k = min(1, len(edges) - 1)
    achieved, r = edges[k] / total, float(radii[k])
    sparsest = edges[edges > 0].min() / total if np.any(edges > 0) else 1.0
    if density < sparsest and abs(achieved - density) > 0.5 * density:
        raise NeurosheetError(
            f"density {density:g} is unreachable with a radius on this sheet of {n} neurons: "
            f"the sparsest radius graph has density {sparsest:.4g}"
        )
    # Nudge the radius up by a relative epsilon so the tie group at exactly r is included.
    return RadiusChoice(radius=r * (1 + 1e-9) + 1e-12, density=achieved, synapses=int(edges[k]))


# --------------------------------------------------------------------- kernels
def _kernel(rule: str, d: np.ndarray, scale: float, p0: float) -> np.ndarray:
    if rule == "gaussian":
        return p0 * np.exp(-(d**2) / (2 * scale**2))
    return p0 * np.exp(-d / scale)


def _expected_density(sheet: Sheet, rule: str, scale: float, p0: float, self_conn: bool,
                      probes: np.ndarray) -> float:
    """Mean expected fan-in of ``probes`` divided by N (probes sample the boundary effects)."""
    cutoff = _CUTOFF[rule] * scale
    neigh = sheet.tree.query_ball_point(sheet.positions[probes], cutoff, return_sorted=False)
    total = 0.0
    for i, nb in zip(probes, neigh, strict=True):
        nb = np.asarray(nb, dtype=np.int64)
        if not self_conn:
            nb = nb[nb != i]
        total += _kernel(rule, sheet.distance(np.full(nb.size, i), nb), scale, p0).sum()
    return total / probes.size / sheet.n


def _scale_for_density(sheet: Sheet, rule: str, density: float, p0: float, self_conn: bool) -> float:
    """Kernel scale whose *expected* density matches ``density`` (root-finding on probes)."""
    rng = np.random.default_rng(12345)  # fixed: the scale must not depend on the wiring seed
    probes = rng.choice(sheet.n, size=min(sheet.n, 400), replace=False)
    lo = 1e-6
    hi = 4.0 * sheet.max_distance
    f_lo = _expected_density(sheet, rule, lo, p0, self_conn, probes) - density
    f_hi = _expected_density(sheet, rule, hi, p0, self_conn, probes) - density
    if f_lo > 0:
        raise NeurosheetError(
            f"density {density:g} is unreachable with the {rule} kernel on this sheet "
            f"(self-connections alone give {f_lo + density:.4g})"
        )
    if f_hi < 0:
        raise NeurosheetError(
            f"density {density:g} is unreachable with the {rule} kernel and p0={p0:g}: "
            f"at most {f_hi + density:.4g} on this sheet"
        )
    return float(
        brentq(
            lambda s: _expected_density(sheet, rule, s, p0, self_conn, probes) - density,
            lo, hi, xtol=1e-6, rtol=1e-6,
        )
    )


def _sample_kernel(sheet: Sheet, rule: str, scale: float, p0: float, self_conn: bool,
                   seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Draw each directed edge within the kernel cut-off independently with probability p(d)."""
    rng = np.random.default_rng(seed)
    cutoff = _CUTOFF[rule] * scale
    pairs = sheet.tree.query_pairs(cutoff, output_type="ndarray").astype(np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]  # query order is not guaranteed
    post = np.concatenate([pairs[:, 0], pairs[:, 1]])
    pre = np.concatenate([pairs[:, 1], pairs[:, 0]])
    if self_conn:
        diag = np.arange(sheet.n, dtype=np.int64)
        post, pre = np.concatenate([post, diag]), np.concatenate([pre, diag])
    p = _kernel(rule, sheet.distance(pre, post), scale, p0)
    keep = rng.random(p.size) < p
    return post[keep], pre[keep]


# --------------------------------------------------------------------- controls
def _random_edges(n: int, density: float, self_conn: bool, fixed_fan_in: bool,
                  seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly random edges with ``round(density * N^2)`` synapses (no locality)."""
    rng = np.random.default_rng(seed)
    candidates_per_row = n if self_conn else n - 1
    target = round(density * float(n) ** 2)
    if target > n * candidates_per_row:
        raise NeurosheetError(
            f"density {density:g} needs {target} synapses but only {n * candidates_per_row} "
            "are possible without self-connections"
        )
    if target == 0:
        raise NeurosheetError(f"density {density:g} gives no synapse among {n} neurons")
    if fixed_fan_in:
        k = max(1, round(target / n))
        post = np.repeat(np.arange(n, dtype=np.int64), k)
        pre = np.concatenate([_choose_row(rng, n, k, i, self_conn) for i in range(n)])
        return post, pre
    flat = rng.choice(n * candidates_per_row, size=target, replace=False).astype(np.int64)
    post, col = np.divmod(flat, candidates_per_row)
    if not self_conn:
        col = col + (col >= post)  # skip the diagonal
    return post, col


def _choose_row(rng: np.random.Generator, n: int, k: int, i: int, self_conn: bool) -> np.ndarray:
    if self_conn:
        return rng.choice(n, size=k, replace=False).astype(np.int64)
    c = rng.choice(n - 1, size=k, replace=False).astype(np.int64)
    return c + (c >= i)


def _full_edges(n: int, self_conn: bool) -> tuple[np.ndarray, np.ndarray]:
    dense = np.ones((n, n), dtype=bool)
    if not self_conn:
        np.fill_diagonal(dense, False)
    coo = sp.coo_array(dense)
    return coo.row.astype(np.int64), coo.col.astype(np.int64)
