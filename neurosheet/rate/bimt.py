"""BIMT (brain-inspired modular training) for the rate RNN on the sheet.

Liu, Gan & Tegmark's BIMT, applied to RNNs as in Liu, Khona, Fiete & Tegmark 2023 ("Growing
Brains"): every weight pays for the wire it needs on the sheet,

    cost = R(|W_rec| * (l0 + A d_rec)) + R(|W_in| * (l0 + A d_in)) + R(|W_out| * (l0 + A d_out))

(R = mean or sum over each matrix's weights; d = sheet distance, L1 by default; input and
readout units sit at the fixed border positions of their :class:`~neurosheet.graph.sheetgraph.Projection`),
the loss adds ``lambda(step) * cost``, and every ``swap_every`` steps the most connected
neurons move to the sheet slot that lowers the wiring cost most. A swap permutes rows and
columns of W_rec, rows of W_in, columns of W_out, b_rec and the optimizer's moment buffers,
so the network computes exactly the same function; only its layout changes.

``locality = 0`` turns the cost into plain L1 (coefficient ``lambda * l0``), the reference's
own ablation; ``lam = 0`` is no regularization. Pruning (:func:`prune_circuit`) turns a trained
circuit into a sparse graph that the spiking and budget stages load like any run directory.

The training loop needs two calls (see :class:`BimtRegularizer`)::

    reg = BimtRegularizer(model, config, total_steps)
    loss = task_loss + reg.penalty(step)
    loss.backward(); optimizer.step()
    reg.after_step(step, optimizer)     # swaps every config.swap_every steps
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.graph.circuit import Circuit, load_run_circuit, save_run_circuit
from neurosheet.graph.sheet import Sheet
from neurosheet.graph.sheetgraph import Projection, SheetGraph, canonical_csr

# Multipliers of the base lambda at fractions of training (reference notebooks, bimt-reference §1.2).
SCHEDULES: dict[str, tuple[tuple[float, float], ...]] = {
    "constant": (),
    "bump": ((0.25, 10.0), (0.75, 1.0)),   # fit, compress, recover (symbolic, modular addition)
    "ramp": ((0.25, 10.0), (0.5, 100.0)),  # keep compressing (MNIST)
}


# ----------------------------------------------------------------------------- config
class BimtConfig(BaseModel):
    """Connection-cost regularizer and swap schedule (the ``[bimt]`` table of a model preset).

    Defaults follow the MNIST BIMT notebook; ``swap_every = 0`` turns swaps off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lam: float = Field(0.01, ge=0, description="base lambda (0 = no regularization)")
    schedule: Literal["constant", "bump", "ramp"] = "bump"
    milestones: list[tuple[float, float]] | None = Field(
        None, description="(fraction of training, multiplier of lam) pairs; overrides schedule")
    locality: float = Field(2.0, ge=0, description="A: cost per unit of wire length (0 = plain L1)")
    l0: float = Field(0.5, ge=0, description="cost of a connection of length 0")
    metric: Literal["manhattan", "euclidean"] = "manhattan"
    reduction: Literal["mean", "sum"] = "mean"
    unit_square: bool = Field(True, description="measure distances with the sheet scaled to [0,1]")
    penalize_bias: bool = Field(False, description="add R(l0 |b_rec|) as the reference's bias term")
    swap_every: int = Field(500, ge=0, description="swap pass every this many optimizer steps")
    swap_top_k: int = Field(30, ge=1, description="neurons (highest total |weight|) moved per pass")
    permute_optimizer: bool = Field(True, description="permute Adam moments with the weights")
    prune: float | None = Field(None, ge=0, description="after training, prune |w| <= prune")
    prune_relative: bool = Field(True, description="prune is a fraction of each matrix's max|W|")

    @model_validator(mode="after")
    def _check_milestones(self) -> BimtConfig:
        ms = self.milestones or []
        fracs = [f for f, _ in ms]
        if any(not 0.0 <= f <= 1.0 for f in fracs) or fracs != sorted(fracs):
            raise ValueError("milestones need increasing fractions in [0, 1]")
        if any(m < 0 for _, m in ms):
            raise ValueError("milestone multipliers must be >= 0")
        return self

    @property
    def mode(self) -> str:
        """``none``, ``l1``, ``l1+local``, ``l1+swap`` or ``bimt`` (the reference's ablation ladder)."""
        swaps = self.swap_every > 0
        if self.lam == 0:
            return "swap-only" if swaps else "none"
        if self.locality == 0:
            return "l1+swap" if swaps else "l1"
        return "bimt" if swaps else "l1+local"

    def lam_at(self, step: int, total_steps: int) -> float:
        """lambda at optimizer step ``step`` of ``total_steps`` (piecewise constant)."""
        mult = 1.0
        frac = step / max(total_steps, 1)
        for f, m in self.milestones if self.milestones is not None else SCHEDULES[self.schedule]:
            if frac >= f:
                mult = m
        return self.lam * mult


# ----------------------------------------------------------------------------- geometry
def _scaled_positions(sheet: Sheet, points: np.ndarray, unit_square: bool) -> np.ndarray:
    scale = max(sheet.width, sheet.height) if unit_square else 1.0
    return np.asarray(points, dtype=np.float64) / scale


def pair_distances(sheet: Sheet, a: np.ndarray, b: np.ndarray, metric: str = "manhattan",
                   unit_square: bool = True) -> np.ndarray:
    """Dense ``[len(a), len(b)]`` sheet distances between point sets (minimum image on a torus)."""
    if metric not in ("manhattan", "euclidean"):
        raise NeurosheetError(f"unknown distance metric {metric!r}; use manhattan or euclidean")
    pa = _scaled_positions(sheet, a, unit_square)
    pb = _scaled_positions(sheet, b, unit_square)
    d = pa[:, None, :] - pb[None, :, :]
    if sheet.periodic:
        box = _scaled_positions(sheet, np.array([sheet.width, sheet.height]), unit_square)
        d = d - box * np.round(d / box)
    return np.abs(d).sum(-1) if metric == "manhattan" else np.hypot(d[..., 0], d[..., 1])


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


def _edges_of(graph: SheetGraph, which: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
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


# ----------------------------------------------------------------------------- permutation
def _edge_index(post: np.ndarray, pre: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    idx = np.full(shape, -1, dtype=np.int64)
    idx[post, pre] = np.arange(post.size)
    return idx


@dataclass(frozen=True)
class EdgePermuter:
    """Gathers that apply a neuron permutation to edge-valued weights of one graph.

    Only graphs whose structure every permutation keeps can be permuted: a complete recurrent
    graph (autapses all or none) and projections that reach or read every neuron alike.
    """

    rec: tuple[np.ndarray, np.ndarray, np.ndarray]  # post, pre, index map [N, N]
    inp: tuple[np.ndarray, np.ndarray, np.ndarray]
    out: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def from_graph(cls, graph: SheetGraph) -> EdgePermuter:
        adj = graph.adjacency.toarray()
        off = ~np.eye(graph.n, dtype=bool)
        diag = np.diagonal(adj)
        if not (adj[off].all() and (diag.all() or not diag.any())):
            raise NeurosheetError(
                "neuron swaps need a fully connected recurrent graph (wiring rule 'full'); "
                f"this one has {graph.synapses} of {graph.n * graph.n} synapses")
        for name, proj, axis in (("input", graph.inputs, 0), ("readout", graph.readout, 1)):
            mask = proj.mask.toarray()  # type: ignore[union-attr]
            ref = mask[:1] if axis == 0 else mask[:, :1]
            if not (mask == ref).all():
                raise NeurosheetError(
                    f"neuron swaps need the {name} projection to reach every neuron alike "
                    f"(region 'all'), got region {proj.region!r}")  # type: ignore[union-attr]
        parts = {}
        for which in ("rec", "inp", "out"):
            post, pre, shape = _edges_of(graph, which)
            parts[which] = (post, pre, _edge_index(post, pre, shape))
        return cls(**parts)

    def gathers(self, order: np.ndarray) -> dict[str, np.ndarray]:
        """Index arrays so that ``new = old[gather]`` moves the neuron of slot order[a] to slot a."""
        post, pre, idx = self.rec
        g_rec = idx[order[post], order[pre]]
        post, pre, idx = self.inp
        g_in = idx[order[post], pre]
        post, pre, idx = self.out
        g_out = idx[post, order[pre]]
        return {"rec": g_rec, "inp": g_in, "out": g_out, "bias": np.asarray(order)}


def permute_model(model: Any, order: np.ndarray, permuter: EdgePermuter,
                  optimizer: torch.optim.Optimizer | None = None) -> None:
    """Move neuron ``order[a]`` to slot ``a`` in a RateRNN in place (and its optimizer state).

    Every optimizer state tensor shaped like its parameter (Adam's exp_avg, exp_avg_sq, ...) is
    gathered the same way, so the moments stay with their weights.
    """
    gathers = permuter.gathers(np.asarray(order))
    params = {"rec": model.rec.values, "inp": model.inp.values, "out": model.out.values,
              "bias": model.b_rec}
    with torch.no_grad():
        for key, p in params.items():
            g = torch.as_tensor(gathers[key], device=p.device)
            p.copy_(p[g])
            if optimizer is None:
                continue
            for value in optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:
                    value.copy_(value[g.to(value.device)])


# ----------------------------------------------------------------------------- the hook
class BimtRegularizer:
    """The two calls a training loop needs: ``penalty(step)`` and ``after_step(step, optimizer)``.

    ``perm[slot]`` is the original id of the neuron now at ``slot`` (identity at the start);
    analyses of the trained model are in slot coordinates, ``perm`` maps back.
    """

    def __init__(self, model: Any, config: BimtConfig, total_steps: int) -> None:
        self.model = model
        self.config = config
        self.total_steps = int(total_steps)
        graph = model.graph
        self.geometry = WiringGeometry.from_graph(graph, config.metric, config.unit_square)
        self.edges = {w: _edges_of(graph, w) for w in ("rec", "inp", "out")}
        geo = {"rec": self.geometry.rec, "inp": self.geometry.inp, "out": self.geometry.out}
        self._coef: dict[str, torch.Tensor] = {}
        self._norm: dict[str, float] = {}
        for w, (post, pre, _) in self.edges.items():
            self._norm[w] = 1.0 / max(post.size, 1) if config.reduction == "mean" else 1.0
            coef = (config.l0 + config.locality * geo[w][post, pre]) * self._norm[w]
            self._coef[w] = torch.as_tensor(coef, dtype=torch.float32)
        self._bias_norm = 1.0 / graph.n if config.reduction == "mean" else 1.0
        self.swaps_on = config.swap_every > 0
        self.permuter = EdgePermuter.from_graph(graph) if self.swaps_on else None
        self.perm = np.arange(graph.n)
        self.history: list[dict[str, float]] = []

    def lam(self, step: int) -> float:
        """lambda at ``step``."""
        return self.config.lam_at(step, self.total_steps)

    def cost(self) -> torch.Tensor:
        """The connection cost of the model's current weights (differentiable)."""
        m = self.model
        total = None
        for w, p in (("rec", m.rec.values), ("inp", m.inp.values), ("out", m.out.values)):
            coef = self._coef[w]
            if coef.device != p.device:
                coef = self._coef[w] = coef.to(p.device)
            term = (p.abs() * coef).sum()
            total = term if total is None else total + term
        if self.config.penalize_bias:
            total = total + self.config.l0 * self._bias_norm * m.b_rec.abs().sum()
        return total  # type: ignore[return-value]

    def penalty(self, step: int) -> torch.Tensor:
        """``lambda(step) * cost`` to add to the task loss (a zero tensor when lambda is 0)."""
        lam = self.lam(step)
        if lam == 0:
            return self.model.rec.values.new_zeros(())
        return lam * self.cost()

    def dense_abs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """|W_rec|, |W_in|, |W_out| of the model as dense float64 arrays."""
        m = self.model
        vals = {"rec": m.rec.values, "inp": m.inp.values, "out": m.out.values}
        return tuple(dense_abs(vals[w].detach().cpu().numpy(), *self.edges[w])  # type: ignore[return-value]
                     for w in ("rec", "inp", "out"))

    def swap_weights(self) -> tuple[float, float, float]:
        """Per-matrix factor of Σ|W| d in the cost (A times the reduction's 1/size).

        With A = 0 (the ``l1+swap`` rung) swaps use A = 1, as the reference's default: the best
        slot is the same for every A > 0.
        """
        a = self.config.locality or 1.0
        return (a * self._norm["rec"], a * self._norm["inp"], a * self._norm["out"])

    def relocate(self, optimizer: torch.optim.Optimizer | None = None) -> SwapReport:
        """One swap pass now; permutes the model (and optimizer moments) in place."""
        if self.permuter is None:
            raise NeurosheetError("swaps are off (swap_every = 0)")
        report = relocate(*self.dense_abs(), self.geometry, self.config.swap_top_k,
                          self.swap_weights())
        if report.swaps:
            opt = optimizer if self.config.permute_optimizer else None
            permute_model(self.model, report.order, self.permuter, opt)
            self.perm = self.perm[report.order]
        return report

    def after_step(self, step: int, optimizer: torch.optim.Optimizer | None = None
                   ) -> SwapReport | None:
        """Call after ``optimizer.step()``; a swap pass when ``(step + 1) % swap_every == 0``."""
        if not self.swaps_on or (step + 1) % self.config.swap_every:
            return None
        report = self.relocate(optimizer)
        self.history.append({"step": step, "swaps": report.swaps, "delta": report.delta})
        return report

    def state_dict(self) -> dict[str, Any]:
        """``perm`` and swap history, for checkpoints (the weights already carry the swaps)."""
        return {"perm": self.perm.tolist(), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (on resume)."""
        perm = np.asarray(state["perm"], dtype=np.int64)
        if perm.shape != self.perm.shape or not np.array_equal(np.sort(perm), np.arange(perm.size)):
            raise NeurosheetError("saved BIMT permutation does not fit this model")
        self.perm = perm
        self.history = [dict(h) for h in state["history"]]

    def meta(self) -> dict[str, Any]:
        """What to store with the trained circuit: config, mode, perm and swap history."""
        return {"bimt": {"config": self.config.model_dump(), "mode": self.config.mode,
                         "perm": self.perm.tolist(), "swaps": list(self.history)}}


# ----------------------------------------------------------------------------- pruning
def _prune_mask(values: np.ndarray, threshold: float, relative: bool) -> tuple[np.ndarray, float]:
    a = np.abs(values)
    cut = threshold * float(a.max(initial=0.0)) if relative else threshold
    return a > cut, cut


def prune_circuit(circuit: Circuit, threshold: float, relative: bool = False) -> Circuit:
    """Drop every weight with ``|w| <= threshold`` (or ``<= threshold * max|W|`` per matrix).

    Returns a circuit on a new sparse graph holding exactly the surviving recurrent, input and
    readout synapses (biases kept); the graph's meta records the source rule and the cut.
    """
    if not threshold >= 0 or (relative and threshold > 1):
        raise NeurosheetError(f"prune threshold must be >= 0 (<= 1 when relative), got {threshold}")
    g = circuit.graph
    keep_rec, cut_rec = _prune_mask(circuit.w_rec, threshold, relative)
    keep_in, cut_in = _prune_mask(circuit.w_in, threshold, relative)
    keep_out, cut_out = _prune_mask(circuit.w_out, threshold, relative)

    def sub(mask: sp.csr_array, keep: np.ndarray) -> sp.csr_array:
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))[keep]
        cols = mask.indices[keep]
        coo = sp.coo_array((np.ones(rows.size, bool), (rows, cols)), shape=mask.shape)
        return canonical_csr(coo.tocsr(), mask.shape)

    info = {"threshold": threshold, "relative": relative,
            "cut": {"rec": cut_rec, "inp": cut_in, "out": cut_out},
            "before": {"rec": g.synapses, "inp": int(keep_in.size), "out": int(keep_out.size)},
            "after": {"rec": int(keep_rec.sum()), "inp": int(keep_in.sum()),
                      "out": int(keep_out.sum())}}
    inputs = Projection(sub(g.inputs.mask, keep_in), g.inputs.positions,  # type: ignore[union-attr]
                        g.inputs.region)  # type: ignore[union-attr]
    readout = Projection(sub(g.readout.mask, keep_out), g.readout.positions,  # type: ignore[union-attr]
                         g.readout.region)  # type: ignore[union-attr]
    meta = {"rule": "pruned", "source_rule": g.meta.get("rule"),
            "prune_threshold": threshold, "prune_relative": relative}
    graph = SheetGraph(g.sheet, sub(g.adjacency, keep_rec), inputs, readout, meta)
    # CSR order of a subset of canonical edges is the subset in the same order.
    return Circuit(graph, circuit.w_rec[keep_rec], circuit.w_in[keep_in], circuit.b_rec,
                   circuit.w_out[keep_out], circuit.b_out, circuit.params, circuit.tasks,
                   {**circuit.meta, "prune": info})


def prune_run(src: str | Path, dst: str | Path, threshold: float,
              relative: bool = False) -> Circuit:
    """Prune the circuit of run directory ``src`` into run directory ``dst`` (+ ``prune.json``)."""
    pruned = prune_circuit(load_run_circuit(src), threshold, relative)
    save_run_circuit(dst, pruned)
    write_json(Path(dst) / "prune.json", {"source": str(src), **pruned.meta["prune"]})
    return pruned
