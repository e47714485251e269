"""BIMT wiring cost on the sheet and the neuron swaps that lower it (numpy only).

:class:`WiringGeometry` holds the dense distances of the three weight matrices; the cost is
Σ w_m Σ |W| d; :func:`swap_deltas` gives the exact change of the cost for swapping one slot
with every other in closed form, :func:`swap_dense` is its slow reference and :func:`relocate`
is the greedy swap pass of the training hook (:mod:`neurosheet.rate.bimt.regularizer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.geometry import check_metric, pairwise_distances
from neurosheet.graph.sheet import Sheet
from neurosheet.graph.sheetgraph import SheetGraph


# ----------------------------------------------------------------------------- geometry
def pair_distances(sheet: Sheet, a: np.ndarray, b: np.ndarray, metric: str = "manhattan",
                   unit_square: bool = True) -> np.ndarray:
    """Dense ``[len(a), len(b)]`` sheet distances between point sets (minimum image on a torus),
    measured with the sheet scaled to the unit square when ``unit_square`` (BIMT's convention)."""
    check_metric(metric)
    scale = max(sheet.width, sheet.height) if unit_square else 1.0
    period = None if sheet.period is None else sheet.period / scale
    return pairwise_distances(np.asarray(a, dtype=np.float64) / scale,
                              np.asarray(b, dtype=np.float64) / scale, metric, period)


@dataclass(frozen=True)
class WiringGeometry:
    """Dense distances for the three weight matrices: rec ``[N, N]``, inp ``[N, I]``, out ``[O, N]``."""

    rec: np.ndarray
    inp: np.ndarray
    out: np.ndarray

    @classmethod
    def from_graph(cls, graph: SheetGraph, metric: str = "manhattan",
                   unit_square: bool = True) -> WiringGeometry:
        """Distances between sheet slots and the projections' fixed external positions."""
        if graph.inputs is None or graph.readout is None:
            raise NeurosheetError("BIMT needs a graph with input and readout projections")
        pos = graph.sheet.positions
        return cls(
            pair_distances(graph.sheet, pos, pos, metric, unit_square),
            pair_distances(graph.sheet, pos, graph.inputs.positions, metric, unit_square),
            pair_distances(graph.sheet, graph.readout.positions, pos, metric, unit_square),
        )


def edges_of(graph: SheetGraph, which: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(post, pre, shape) of the ``rec``, ``inp`` or ``out`` matrix of ``graph``, in CSR order."""
    if which == "rec":
        post, pre = graph.edges()
        return post, pre, (graph.n, graph.n)
    proj = graph.inputs if which == "inp" else graph.readout
    post, pre = proj.edges()  # type: ignore[union-attr]
    return post, pre, proj.shape  # type: ignore[union-attr]


def dense_abs(values: np.ndarray, post: np.ndarray, pre: np.ndarray,
              shape: tuple[int, int]) -> np.ndarray:
    """|W| as a dense float64 matrix from edge values (zeros off the edges)."""
    w = np.zeros(shape)
    w[post, pre] = np.abs(np.asarray(values, dtype=np.float64))
    return w


# ----------------------------------------------------------------------------- cost (numpy)
def wiring_cost(r_rec: np.ndarray, r_in: np.ndarray, r_out: np.ndarray, geo: WiringGeometry,
                weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
    """Σ w_m Σ |W| d over the three matrices (dense |W| given): the part of the cost swaps change."""
    return float(weights[0] * (r_rec * geo.rec).sum() + weights[1] * (r_in * geo.inp).sum()
                 + weights[2] * (r_out * geo.out).sum())


def swap_deltas(j: int, r_rec: np.ndarray, r_in: np.ndarray, r_out: np.ndarray,
                geo: WiringGeometry, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
                ) -> np.ndarray:
    """Change of :func:`wiring_cost` for swapping slot ``j`` with every slot k, in O(N (N+I+O)).

    Closed form of bimt-reference §3.4 (needs a symmetric ``geo.rec`` with a constant diagonal):
    the rows and the columns of W_rec each give Σ_b (|W_jb|-|W_kb|)(D_kb-D_jb) over b ∉ {j,k},
    the input rows and readout columns the same sum over their external units.
    """
    d = geo.rec
    k = np.arange(r_rec.shape[0])

    def one_side(r: np.ndarray, dist: np.ndarray) -> np.ndarray:
        # Σ_b (r_jb - r_kb)(dist_kb - dist_jb) for every k, all b included.
        rj, dj = r[j], dist[j]
        return dist @ rj - rj @ dj - np.einsum("kb,kb->k", r, dist) + r @ dj

    # W_rec rows (post-synaptic side) and columns (pre-synaptic side); d is symmetric, so the
    # column sum uses d @ R[:, j], (R * d).sum(0) and d[j] @ R. Each pass over R is O(N^2).
    rj, cj, dj = r_rec[j], r_rec[:, j], d[j]
    both = d @ np.stack([rj, cj], axis=1)
    rd = r_rec * d
    rows = both[:, 0] - rj @ dj - rd.sum(1) + r_rec @ dj
    cols = both[:, 1] - cj @ dj - rd.sum(0) + dj @ r_rec
    # remove the b = j and b = k terms, which the sum over b ∉ {j,k} excludes
    rows -= (r_rec[j, j] - r_rec[k, j]) * (d[k, j] - d[j, j])
    rows -= (r_rec[j, k] - r_rec[k, k]) * (d[k, k] - d[j, k])
    cols -= (r_rec[j, j] - r_rec[j, k]) * (d[k, j] - d[j, j])
    cols -= (r_rec[k, j] - r_rec[k, k]) * (d[k, k] - d[j, k])

    delta = weights[0] * (rows + cols)
    delta += weights[1] * one_side(r_in, geo.inp)
    delta += weights[2] * one_side(r_out.T, geo.out.T)
    delta[j] = 0.0
    return delta


@dataclass(frozen=True)
class SwapReport:
    """What one swap pass did: slots exchanged and the change of the wiring cost."""

    swaps: int
    delta: float
    order: np.ndarray  # new slot a holds the neuron that was in slot order[a] before the pass


def swap_dense(r_rec: np.ndarray, r_in: np.ndarray, r_out: np.ndarray, j: int,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of dense ``|W|`` matrices with hidden units j and k swapped: rows and columns of
    W_rec, rows of W_in, columns of W_out. The slow reference that :func:`swap_deltas` matches."""
    r_rec, r_in, r_out = r_rec.copy(), r_in.copy(), r_out.copy()
    idx, sw = np.array([j, k]), np.array([k, j])
    r_rec[idx] = r_rec[sw]
    r_rec[:, idx] = r_rec[:, sw]
    r_in[idx] = r_in[sw]
    r_out[:, idx] = r_out[:, sw]
    return r_rec, r_in, r_out


def relocate(r_rec: np.ndarray, r_in: np.ndarray, r_out: np.ndarray, geo: WiringGeometry,
             top_k: int, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> SwapReport:
    """Greedy BIMT pass: each of the ``top_k`` most connected neurons moves to its best slot.

    Neurons are ranked once (total |in| + |out| weight); unlike the reference (quirk Q2), each
    ranked *neuron* is followed to its current slot. A swap happens only if it lowers the cost.
    Inputs are not modified.
    """
    r_rec, r_in, r_out = r_rec.copy(), r_in.copy(), r_out.copy()
    n = r_rec.shape[0]
    score = r_rec.sum(0) + r_rec.sum(1) + r_in.sum(1) + r_out.sum(0)
    ranked = np.argsort(-score, kind="stable")[:top_k]
    order = np.arange(n)
    where = np.arange(n)
    scale = wiring_cost(r_rec, r_in, r_out, geo, weights)
    total, swaps = 0.0, 0
    for s in ranked:
        j = int(where[s])
        delta = swap_deltas(j, r_rec, r_in, r_out, geo, weights)
        k = int(np.argmin(delta))
        if k == j or not delta[k] < -1e-12 * max(scale, 1e-300):
            continue
        idx = np.array([j, k])
        sw = idx[::-1]
        r_rec[idx] = r_rec[sw]
        r_rec[:, idx] = r_rec[:, sw]
        r_in[idx] = r_in[sw]
        r_out[:, idx] = r_out[:, sw]
        order[idx] = order[sw]
        where[order[idx]] = idx
        total += float(delta[k])
        swaps += 1
    return SwapReport(swaps, total, order)
