"""The leaky rate RNN whose weights live only on the sheet graph's edges.

Parameters are *edge values* (one per synapse, CSR order), never a dense matrix with a mask:
a masked entry does not exist, so it is exactly zero throughout training and in every file.

Dynamics per Euler sub-step (``substeps`` per task step, see :class:`RateParams`)::

    x <- (1 - a) x + a (W_rec f(x) + W_in u_t + b + noise)
    y_t = W_out f(x) + b_out
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosheet.circuit import Circuit, RateParams
from neurosheet.errors import NeurosheetError
from neurosheet.graph import SheetGraph

_ACT = {
    "relu": torch.relu,
    "softplus": nn.functional.softplus,
    "tanh": torch.tanh,
    "retanh": lambda x: torch.tanh(torch.relu(x)),
}


@dataclass
class RateOutput:
    """Readout logits ``[T, B, n_out]`` and unit rates ``[T, B, N]`` at the end of each task step."""

    logits: torch.Tensor
    rates: torch.Tensor


class SparseLinear(nn.Module):
    """``y = W x`` with W given by a fixed CSR structure and trainable edge values."""

    def __init__(self, post: np.ndarray, pre: np.ndarray, shape: tuple[int, int],
                 values: torch.Tensor) -> None:
        super().__init__()
        self.shape = shape
        self.register_buffer("post", torch.as_tensor(post, dtype=torch.long), persistent=False)
        self.register_buffer("pre", torch.as_tensor(pre, dtype=torch.long), persistent=False)
        self.values = nn.Parameter(values.clone().float())

    def dense(self) -> torch.Tensor:
        """The full matrix (zeros off the edges); gradients reach only the edge values."""
        w = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        return w.index_put((self.post, self.pre), self.values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [..., shape[1]]
        return x @ self.dense().T


class RateRNN(nn.Module):
    """Leaky rate RNN on a :class:`SheetGraph` with input and readout projections."""

    def __init__(self, graph: SheetGraph, params: RateParams | None = None, *,
                 gain: float = 1.0, rec_noise: float = 0.0, seed: int = 0,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        super().__init__()
        if graph.inputs is None or graph.readout is None:
            raise NeurosheetError("the rate model needs a graph with input and readout projections")
        self.graph = graph
        self.params = params or RateParams()
        self.rec_noise = rec_noise
        self.act = _ACT[self.params.activation]
        gen = torch.Generator().manual_seed(seed)
        w = weights or self._init_weights(graph, gain, gen)
        post, pre = graph.edges()
        self.rec = SparseLinear(post, pre, (graph.n, graph.n), torch.as_tensor(w["w_rec"]))
        ip, iq = graph.inputs.edges()
        self.inp = SparseLinear(ip, iq, graph.inputs.shape, torch.as_tensor(w["w_in"]))
        op, oq = graph.readout.edges()
        self.out = SparseLinear(op, oq, graph.readout.shape, torch.as_tensor(w["w_out"]))
        self.b_rec = nn.Parameter(torch.as_tensor(w["b_rec"]).float().clone())
        self.b_out = nn.Parameter(torch.as_tensor(w["b_out"]).float().clone())

    @staticmethod
    def _init_weights(graph: SheetGraph, gain: float, gen: torch.Generator) -> dict[str, np.ndarray]:
        """Gaussian weights scaled by each neuron's *actual* fan-in (so sparse ~ dense dynamics)."""
        def scaled(mask: Any, g: float) -> np.ndarray:
            fan_in = np.maximum(np.diff(mask.indptr), 1)
            post = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
            z = torch.randn(mask.nnz, generator=gen).numpy()
            return (g * z / np.sqrt(fan_in[post])).astype(np.float32)

        return {
            "w_rec": scaled(graph.adjacency, gain),
            "w_in": scaled(graph.inputs.mask, 1.0),  # type: ignore[union-attr]
            "b_rec": np.zeros(graph.n, np.float32),
            "w_out": scaled(graph.readout.mask, 1.0),  # type: ignore[union-attr]
            "b_out": np.zeros(graph.readout.shape[0], np.float32),  # type: ignore[union-attr]
        }

    @classmethod
    def from_circuit(cls, circuit: Circuit, substeps: int | None = None) -> RateRNN:
        """Rebuild the rate network of a saved circuit (optionally at another sub-step count)."""
        params = circuit.params
        if substeps is not None:
            params = RateParams(params.activation, params.tau_ms, params.dt_ms, substeps)
        weights = {k: getattr(circuit, k) for k in ("w_rec", "w_in", "b_rec", "w_out", "b_out")}
        return cls(circuit.graph, params, weights=weights)

    def to_circuit(self, tasks: tuple[str, ...] = (), meta: dict | None = None) -> Circuit:
        """The trained weights as a :class:`Circuit` on the same graph."""
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        return Circuit(self.graph, arr(self.rec.values), arr(self.inp.values), arr(self.b_rec),
                       arr(self.out.values), arr(self.b_out), self.params, tasks, meta or {})

    def forward(self, inputs: torch.Tensor, x0: torch.Tensor | None = None) -> RateOutput:
        """Run ``inputs [T, B, n_in]``; returns logits and rates at each task step's end."""
        steps, batch, _ = inputs.shape
        k = self.params.substeps
        a = self.params.substep_alpha()
        x = x0 if x0 is not None else inputs.new_zeros(batch, self.graph.n)
        w_rec = self.rec.dense()
        drive = self.inp(inputs) + self.b_rec  # [T, B, N]
        noise_scale = math.sqrt(2.0 / a) * self.rec_noise if self.training else 0.0
        rates = []
        for t in range(steps):
            for _ in range(k):
                total = self.act(x) @ w_rec.T + drive[t]
                if noise_scale:
                    total = total + noise_scale * torch.randn_like(x)
                x = (1 - a) * x + a * total
            rates.append(self.act(x))
        r = torch.stack(rates)
        return RateOutput(self.out(r) + self.b_out, r)
