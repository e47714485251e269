"""The BIMT training hook (:class:`BimtRegularizer`) and function-preserving neuron swaps (torch).

The cost and the choice of swaps are numpy (:mod:`neurosheet.rate.bimt.cost`); this module
turns the cost into a differentiable penalty and applies the chosen permutation to the model's
weights and the optimizer's moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.rate.bimt.config import BimtConfig
from neurosheet.rate.bimt.cost import SwapReport, WiringGeometry, dense_abs, edges_of, relocate


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
            post, pre, shape = edges_of(graph, which)
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
        self.edges = {w: edges_of(graph, w) for w in ("rec", "inp", "out")}
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
