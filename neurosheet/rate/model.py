"""The leaky rate RNN whose weights live only on the sheet graph's edges.

Parameters are *edge values* (one per synapse, CSR order), never a dense matrix with a mask:
a masked entry does not exist, so it is exactly zero throughout training and in every file.
The recurrent product uses sparse kernels (:mod:`neurosheet.rate.edge_ops`), so a sparse sheet
also trains faster than a dense one.

Dynamics per Euler sub-step (``substeps`` per task step, see :class:`RateParams`)::

    x <- (1 - a) x + a (W_rec f(x) + W_in (u_t + in_noise) + b + sqrt(2/a) rec_noise xi)
    y_t = W_out f(x) + b_out
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit, RateParams
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.rate import fused
from neurosheet.rate.edge_ops import EdgeOperator, EdgeStructure, choose_implementation
from neurosheet.rate.fused import Blocks, fused_rates

ENGINES = ("auto", "fused", "eager")

_ACT = {
    "relu": torch.relu,
    "softplus": nn.functional.softplus,
    "tanh": torch.tanh,
    "retanh": lambda x: torch.tanh(torch.relu(x)),
}



def resolve_engine(name: str = "auto", available: Callable[[], bool] | None = None) -> str:
    """``auto`` -> ``fused`` when the compiled kernel is available here, else ``eager``.

    ``available``: whose kernel (default the rate kernel's :func:`neurosheet.rate.fused.available`;
    the spiking engine passes its own).
    """
    if name not in ENGINES:
        raise NeurosheetError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}", "engine")
    if name == "eager":
        return name
    if not (available or fused.available)():
        if name == "fused":
            raise NeurosheetError("engine 'fused' needs a C compiler (cc/gcc, or $CC); "
                                  "use engine 'eager'", "engine")
        return "eager"
    return "fused"


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``; checks ``cuda[:N]`` and ``cpu``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NeurosheetError(f"device {name}: CUDA is not available in this torch build")
        return name
    if name != "cpu":
        raise NeurosheetError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return name

@dataclass
class RateOutput:
    """Readout logits ``[T, B, n_out]`` and unit rates ``[T, B, N]`` at each task step's end."""

    logits: torch.Tensor
    rates: torch.Tensor


@dataclass
class Prepared:
    """The recurrent loop's inputs: drive ``[T, N, B]`` (input projection plus bias), scaled
    noise ``[T * substeps, N, B]`` or None, initial state ``[N, B]``, and its step counts."""

    drive: torch.Tensor
    noise: torch.Tensor | None
    x0: torch.Tensor
    substeps: int
    alpha: float
    steps: int


class SparseLinear(nn.Module):
    """``y = W x`` with W given by a fixed CSR structure and trainable edge values."""

    def __init__(self, post: np.ndarray, pre: np.ndarray, shape: tuple[int, int],
                 values: torch.Tensor) -> None:
        super().__init__()
        self.shape = shape
        self.register_buffer("post", torch.as_tensor(post, dtype=torch.long), persistent=False)
        self.register_buffer("pre", torch.as_tensor(pre, dtype=torch.long), persistent=False)
        self.values = nn.Parameter(torch.as_tensor(values).clone().float())

    def dense(self) -> torch.Tensor:
        """The full matrix (zeros off the edges); gradients reach only the edge values."""
        w = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        return w.index_put((self.post, self.pre), self.values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [..., shape[1]]
        return x @ self.dense().T


class RecurrentWeights(nn.Module):
    """The recurrent edge values plus the sparse structure that multiplies with them."""

    def __init__(self, graph: SheetGraph, values: torch.Tensor, kernel: str = "auto") -> None:
        super().__init__()
        self.shape = (graph.n, graph.n)
        self.structure = EdgeStructure.from_csr(graph.adjacency, kernel)
        self._adjacency = graph.adjacency
        self.values = nn.Parameter(torch.as_tensor(values).clone().float())

    @property
    def kernel(self) -> str:
        """The product actually used: ``csr`` (sparse) or ``dense``."""
        return self.structure.kernel

    def _apply(self, fn: Any, recurse: bool = True) -> RecurrentWeights:
        super()._apply(fn, recurse)
        if self.structure.post.device != self.values.device:
            self.structure = self.structure.to(self.values.device)
        return self

    def dense(self) -> torch.Tensor:
        """The full ``[N, N]`` matrix, zeros off the edges (for analysis, not for training)."""
        s = self.structure
        w = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        return w.index_put((s.post, s.pre), self.values)

    @functools.cached_property
    def blocks(self) -> Blocks:
        """The int32 CSR structure the fused kernel reads (one block)."""
        return Blocks.from_csr([self._adjacency])

    def operator(self) -> EdgeOperator:
        """``r [N, B] -> W r`` for one forward pass with the current values."""
        return EdgeOperator(self.structure, self.values)


class RateRNN(nn.Module):
    """Leaky rate RNN on a :class:`SheetGraph` with input and readout projections.

    Args:
        gain: scale of the initial recurrent weights, N(0, gain^2 / fan_in) per neuron.
        rec_noise: recurrent noise sigma (Yang 2019 convention, training mode only).
        in_noise: Gaussian noise sigma added to the inputs (training mode only).
        kernel: recurrent product of the eager engine, ``auto`` (the cheaper by the measured
            cost model of :func:`~neurosheet.rate.edge_ops.choose_kernel`), ``csr`` or ``dense``.
        engine: ``auto`` (the cheapest of the fused loop and the eager products by the cost
            model, :func:`~neurosheet.rate.edge_ops.choose_implementation`; ``fused`` needs the
            compiled kernel, and ``kernel="dense"`` keeps the eager dense product),
            ``fused`` (the whole Euler loop as one compiled call, :mod:`neurosheet.rate.fused`;
            float32 on the CPU, other tensors fall back to eager) or ``eager`` (the reference).
        noise: ``auto`` draws the noise from the compiled counter-based stream where it is
            available (both engines, so they see the same numbers), ``torch`` from
            ``torch.randn`` (the stream of a machine without a compiler).
        ei_balance: graphs with E/I types: balance each row's E and I init (:mod:`.dale`).

    A graph with E/I types makes every outgoing weight sign-constrained (:mod:`.dale`).
    """

    def __init__(self, graph: SheetGraph, params: RateParams | None = None, *,
                 gain: float = 1.0, rec_noise: float = 0.0, in_noise: float = 0.0,
                 seed: int = 0, weights: dict[str, np.ndarray] | None = None,
                 kernel: str = "auto", engine: str = "auto", noise: str = "auto",
                 ei_balance: bool = True) -> None:
        super().__init__()
        if graph.inputs is None or graph.readout is None:
            raise NeurosheetError("the rate model needs a graph with input and readout projections")
        if rec_noise < 0 or in_noise < 0:
            raise NeurosheetError("noise levels must be >= 0")
        self.engine = resolve_engine(engine)
        if engine == "auto" and self.engine == "fused":  # the measured cost model decides
            if kernel == "dense" or (kernel == "auto" and choose_implementation(
                    graph.n, graph.synapses) != "fused"):
                self.engine = "eager"
        if noise not in ("auto", "torch"):
            raise NeurosheetError(f"unknown noise stream {noise!r}; use auto or torch", "noise")
        self.noise_stream = noise
        self.graph = graph
        self.params = params or RateParams()
        self.rec_noise = rec_noise
        self.in_noise = in_noise
        self.act = _ACT[self.params.activation]
        gen = torch.Generator().manual_seed(seed)
        w = weights or init_weights(graph, gain, gen, ei_balance)
        self.rec = RecurrentWeights(graph, _tensor(w["w_rec"]), kernel)
        ip, iq = graph.inputs.edges()
        self.inp = SparseLinear(ip, iq, graph.inputs.shape, _tensor(w["w_in"]))
        op, oq = graph.readout.edges()
        self.out = SparseLinear(op, oq, graph.readout.shape, _tensor(w["w_out"]))
        self.b_rec = nn.Parameter(_tensor(w["b_rec"]))
        self.b_out = nn.Parameter(_tensor(w["b_out"]))
        if graph.types is not None:  # Dale's law: `values` read through a sign parametrization
            from neurosheet.rate.dale import constrain

            constrain(self)

    @property
    def n_inputs(self) -> int:
        return self.graph.inputs.shape[1]  # type: ignore[union-attr]

    @classmethod
    def from_circuit(cls, circuit: Circuit, substeps: int | None = None,
                     kernel: str = "auto", engine: str = "auto") -> RateRNN:
        """Rebuild the rate network of a saved circuit (optionally at another sub-step count)."""
        params = circuit.params
        if substeps is not None:
            params = RateParams(params.activation, params.tau_ms, params.dt_ms, substeps)
        # Circuit arrays are read-only; torch wants writable memory, so copy once here.
        weights = {k: np.array(getattr(circuit, k)) for k in ("w_rec", "w_in", "b_rec", "w_out", "b_out")}
        return cls(circuit.graph, params, weights=weights, kernel=kernel, engine=engine)

    def to_circuit(self, tasks: tuple[str, ...] = (), meta: dict | None = None) -> Circuit:
        """The trained weights as a :class:`Circuit` on the same graph."""
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        return Circuit(self.graph, arr(self.rec.values), arr(self.inp.values), arr(self.b_rec),
                       arr(self.out.values), arr(self.b_out), self.params, tasks, meta or {})

    def forward(self, inputs: torch.Tensor, x0: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                substeps: int | None = None) -> RateOutput:
        """Run ``inputs [T, B, n_in]``; returns logits and rates at each task step's end.

        Noise (training mode only) is drawn from ``generator`` so a run is reproducible; the
        recurrent noise of the whole batch is one draw ``[T * substeps, N, B]`` (the same
        numbers on both engines). ``substeps`` integrates this call with another number of
        Euler sub-steps.
        """
        p = self.prepare(inputs, x0, generator, substeps)
        if self.uses_fused(inputs):
            rates = fused_rates(self.rec.blocks, self.rec.values, p.drive, p.noise, p.x0,
                                (p.substeps,), (p.steps,), (p.alpha,), self.params.activation)
        else:
            rates = self._eager_rates(p.drive, p.noise, p.x0, p.substeps, p.alpha)
        return self.readout(rates)

    def prepare(self, inputs: torch.Tensor, x0: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                substeps: int | None = None) -> Prepared:
        """Everything the recurrent loop reads: the drive, the noise, the initial state."""
        steps, batch, n_in = inputs.shape
        if n_in != self.n_inputs:
            raise NeurosheetError(f"the network has {self.n_inputs} inputs, the data {n_in}")
        k = substeps or self.params.substeps
        a = self.params.substep_alpha(k)
        noisy = self.training and (self.rec_noise > 0 or self.in_noise > 0)
        if noisy and generator is None:
            generator = torch.Generator(device=inputs.device).manual_seed(0)
        if self.training and self.in_noise > 0:
            inputs = inputs + self._normal(inputs.shape, generator, inputs, self.in_noise)
        # State kept as [N, B] so the recurrent product is W @ r (sparse CSR on the left); the
        # drive is computed in that [T, N, B] layout directly (no transposed copies).
        n = self.graph.n
        w_in = self.inp.dense()
        drive = torch.baddbmm(self.b_rec[:, None].expand(steps, n, batch),
                              w_in.expand(steps, *w_in.shape), inputs.transpose(1, 2))
        x = x0.T if x0 is not None else inputs.new_zeros(n, batch)
        noise = None
        if self.training and self.rec_noise > 0:
            scale = math.sqrt(2.0 / a) * self.rec_noise
            noise = self._normal((steps * k, n, batch), generator, inputs, scale)
        return Prepared(drive, noise, x, k, a, steps)

    def readout(self, rates: torch.Tensor) -> RateOutput:
        """Logits from rates ``[T, N, B]``, computed in that layout so the gradient reaches the
        loop contiguous; the output's rates are the ``[T, B, N]`` view."""
        steps = rates.shape[0]
        w_out = self.out.dense()
        logits = torch.bmm(w_out.expand(steps, *w_out.shape), rates).transpose(1, 2) + self.b_out
        return RateOutput(logits, rates.transpose(1, 2))

    def uses_fused(self, like: torch.Tensor | None = None) -> bool:
        """Whether a call (on tensors like ``like``) runs the fused kernel or the eager loop."""
        if self.engine == "eager":
            return False
        if like is not None and (like.device.type != "cpu" or like.dtype != torch.float32):
            return False
        return self.rec.values.device.type == "cpu" and self.rec.values.dtype == torch.float32

    def _normal(self, shape: tuple[int, ...], generator: torch.Generator | None,
                like: torch.Tensor, scale: float) -> torch.Tensor:
        """``scale`` times standard normal noise in one draw: the compiled counter-based stream
        (:func:`neurosheet.rate.fused.normal`) for float32 CPU tensors where it is available,
        the same for both engines; ``torch.randn`` otherwise or with ``noise="torch"``."""
        if (self.noise_stream == "auto" and like.device.type == "cpu"
                and like.dtype == torch.float32 and fused.available()):
            return fused.normal(shape, generator, scale, self.rec.blocks.workspace)
        return scale * torch.randn(shape, generator=generator, dtype=like.dtype,
                                   device=like.device)

    def _eager_rates(self, drive: torch.Tensor, noise: torch.Tensor | None, x: torch.Tensor,
                     k: int, a: float) -> torch.Tensor:
        """The reference loop, one torch call per operation: rates ``[T, N, B]``."""
        w_rec = self.rec.operator()
        # unbind (not drive[t]) so the backward is one stack, not T full-size zero tensors.
        drives = drive.unbind(0)
        noises = noise.unbind(0) if noise is not None else None
        rates = []
        r = self.act(x)
        s = 0
        for d in drives:
            for _ in range(k):
                total = w_rec(r, add=d)
                if noises is not None:
                    total = total + noises[s]
                x = total if a == 1.0 else torch.lerp(x, total, a)
                r = self.act(x)
                s += 1
            rates.append(r)
        return torch.stack(rates)


def init_weights(graph: SheetGraph, gain: float, gen: torch.Generator,
                 ei_balance: bool = True) -> dict[str, np.ndarray]:
    """Gaussian weights scaled by each neuron's *actual* fan-in (so sparse ~ dense dynamics);
    on an E/I graph the recurrent and readout weights follow Dale's law (:mod:`.dale`)."""
    def scaled(mask: Any, g: float) -> np.ndarray:
        fan_in = np.maximum(np.diff(mask.indptr), 1)
        post = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        z = torch.randn(mask.nnz, generator=gen).numpy()
        return (g * z / np.sqrt(fan_in[post])).astype(np.float32)

    if graph.types is not None:
        from neurosheet.rate.dale import balanced_init

        signed = balanced_init(graph, gain, gen, ei_balance)
        return {
            "w_rec": signed["w_rec"],
            "w_in": scaled(graph.inputs.mask, 1.0),  # type: ignore[union-attr]
            "b_rec": np.zeros(graph.n, np.float32),
            "w_out": signed["w_out"],
            "b_out": np.zeros(graph.readout.shape[0], np.float32),  # type: ignore[union-attr]
        }
    return {
        "w_rec": scaled(graph.adjacency, gain),
        "w_in": scaled(graph.inputs.mask, 1.0),  # type: ignore[union-attr]
        "b_rec": np.zeros(graph.n, np.float32),
        "w_out": scaled(graph.readout.mask, 1.0),  # type: ignore[union-attr]
        "b_out": np.zeros(graph.readout.shape[0], np.float32),  # type: ignore[union-attr]
    }


def _tensor(a: Any) -> torch.Tensor:
    """A float32 copy (circuit arrays are read-only; torch must not alias them)."""
    return torch.tensor(np.array(a, dtype=np.float32))
