"""A :class:`~neurosheet.spiking.model.SpikingCircuit` as a torch module of snntorch neurons.

(This module never imports :mod:`neurosheet.spiking.model`: the circuit is passed in, and
``SpikingCircuit.to_snntorch()`` builds the module, so the dependency points one way.)

:class:`SpikingSheet` is one module for three uses: the snntorch backend (no gradients),
spike-aware fine-tuning (surrogate gradients through ``snn.Synaptic``'s spike function) and
``SpikingCircuit.to_snntorch()`` for a user's own training loop. Its parameters are *edge
values* only (recurrent, input and readout synapses, CSR order) plus the biases, as in the
rate model: a synapse that is not an edge of the graph does not exist, so it is exactly zero
whatever an optimizer does.

Per simulation step the module computes exactly what ``snn.Synaptic(alpha, beta, threshold,
reset_mechanism, reset_delay=False)`` computes when fed ``(1 - beta) r (W s + (1 - alpha) J)``
(its ``syn`` is ``(1 - beta) r I``, its ``mem`` is v of :mod:`neurosheet.spiking.model`; a test
checks the equality), written out so that the reset can be left out of the gradient (Zenke &
Vogels 2021) and the step costs fewer operations; the spike's surrogate gradient is snntorch's
(``snntorch.surrogate``). :meth:`SpikingSheet.soma` returns the equivalent ``snn.Synaptic``.
(snntorch's reset by subtraction spikes again in the next step only above ``2 threshold``
when v stayed above threshold after a reset; this module and the Brian2 backend follow it.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosheet.core.errors import NeurosheetError
from neurosheet.rate.edge_ops import EdgeOperator, EdgeStructure, _csr
from neurosheet.spiking.events import EventStructure, max_event_edges, use_events
from neurosheet.spiking.inputs import check_inputs

DENSE_UP_TO = 512  # N = 144: dense 0.08 s vs CSR 0.17 s per forward (K 20, batch 32, 1 thread)
KERNELS = ("auto", "events", "csr", "dense")


@dataclass
class SpikeOutput:
    """One simulated batch: readout logits ``[T, B, n_out]`` at each task step's end, spike
    counts and readout-weighted counts per task step ``[T, B, N]`` and, if asked, the full
    raster of the first trials ``[T*K, record, N]`` (bool)."""

    logits: torch.Tensor
    counts: torch.Tensor
    weighted: torch.Tensor
    raster: torch.Tensor | None = None


class SpikingSheet(nn.Module):
    """The spiking circuit as an ``nn.Module``: ``forward(inputs [T, B, n_in]) -> SpikeOutput``.

    Args:
        circuit: the spiking circuit (graph, weights, neuron model, K).
        surrogate: snntorch surrogate spike function for the backward pass (default
            ``snntorch.surrogate.fast_sigmoid(slope=25)``); the forward pass is a step.
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        trainable: register the weights as parameters (else buffers).
        kernel: recurrent propagation. ``auto``: without gradients, the out-edges of the
            neurons that spiked when the measured rule of :mod:`neurosheet.spiking.events`
            says that is cheaper, else the product (dense up to 512 neurons, CSR above);
            ``events``: always event-driven without gradients; ``csr``/``dense``: always that
            product (:mod:`neurosheet.rate.edge_ops`). With gradients it is always the product.
        reset_grad: let the gradient flow through the reset (snntorch's default); off by
            default: the reset is applied with the spike detached.
        surrogate_dt_ms: scale the surrogate derivative by ``min(1, dt / surrogate_dt_ms)``, so
            that a finer step (more steps near threshold per spike) does not multiply the
            gradient; None: no scaling.
    """

    def __init__(self, circuit: Any, *, surrogate: Any = None, dtype: Any = None,
                 trainable: bool = True, kernel: str = "auto",
                 reset_grad: bool = False, surrogate_dt_ms: float | None = None) -> None:
        super().__init__()
        from snntorch import surrogate as sg

        self.circuit = circuit
        self.dtype = dtype or torch.float32
        if self.dtype not in (torch.float32, torch.float64):
            raise NeurosheetError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.spike_grad = surrogate or sg.fast_sigmoid(slope=25)
        self.reset_grad = reset_grad
        self.surrogate_dt_ms = surrogate_dt_ms
        graph = circuit.graph
        if kernel not in KERNELS:
            raise NeurosheetError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}",
                                  "kernel")
        self.events = {"auto": "auto", "events": "always"}.get(kernel, "never")
        if kernel in ("auto", "events"):
            kernel = "dense" if graph.n <= DENSE_UP_TO else "csr"  # dense is faster when small
        self.structure = EdgeStructure.from_csr(graph.adjacency, kernel)
        self._event_structure: EventStructure | None = None
        self._propagator: tuple[Any, Any] | None = None
        self.last_propagation: dict[str, int] = {}  # steps by scatter / product (no gradients)
        for name, proj in (("in", graph.inputs), ("out", graph.readout)):
            post, pre = proj.edges()  # type: ignore[union-attr]
            self.register_buffer(f"{name}_post", torch.as_tensor(post, dtype=torch.long),
                                 persistent=False)
            self.register_buffer(f"{name}_pre", torch.as_tensor(pre, dtype=torch.long),
                                 persistent=False)
        self.in_shape = graph.inputs.shape  # type: ignore[union-attr]
        self.out_shape = graph.readout.shape  # type: ignore[union-attr]
        values = {"w_rec": circuit.w_rec, "w_in": circuit.w_in, "b": circuit.b,
                  "w_out": circuit.w_out, "b_out": circuit.b_out}
        for name, arr in values.items():
            t = torch.tensor(np.array(arr, dtype=np.float64), dtype=self.dtype)
            if trainable:
                self.register_parameter(name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)

    # ------------------------------------------------------------------ helpers
    def _apply(self, fn: Any, recurse: bool = True) -> SpikingSheet:
        super()._apply(fn, recurse)
        dev = self.w_rec.device
        if self.structure.post.device != dev:
            self.structure = self.structure.to(dev)
        if self._event_structure is not None:
            self._event_structure.to(dev)
        self._propagator = None
        return self

    def event_structure(self) -> EventStructure:
        """The pre-major copy of the edges for event-driven propagation (built on first use)."""
        if self._event_structure is None:
            self._event_structure = EventStructure(self.circuit.graph.adjacency).to(
                self.w_rec.device)
        return self._event_structure

    def input_matrix(self) -> torch.Tensor:
        """W_in ``[N, n_in]``, zeros off the input synapses (differentiable in the edge values)."""
        w = self.w_in.new_zeros(self.in_shape)
        return w.index_put((self.in_post, self.in_pre), self.w_in)

    def readout_matrix(self) -> torch.Tensor:
        """W_out ``[n_out, N]``, zeros off the readout synapses."""
        w = self.w_out.new_zeros(self.out_shape)
        return w.index_put((self.out_post, self.out_pre), self.w_out)

    def soma(self, substeps: int | None = None) -> Any:
        """An ``snn.Synaptic`` with this circuit's constants at K = ``substeps``."""
        import snntorch as snn

        c = self.circuit.constants(substeps)
        nm = self.circuit.neuron
        kw = {"dtype": self.dtype, "device": self.w_rec.device}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return snn.Synaptic(alpha=torch.tensor(c.alpha, **kw), beta=torch.tensor(c.beta, **kw),
                                threshold=nm.threshold, spike_grad=self.spike_grad,
                                reset_mechanism=nm.reset, reset_delay=False).to(self.w_rec.device)

    def to_circuit(self, meta: dict[str, Any] | None = None) -> Any:
        """The current weights as a :class:`SpikingCircuit` (float32 arrays)."""
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        out = self.circuit.with_weights(w_rec=arr(self.w_rec), w_in=arr(self.w_in),
                                        b=arr(self.b), w_out=arr(self.w_out),
                                        b_out=arr(self.b_out))
        if meta is not None:
            out = type(out)(**{**out.__dict__, "meta": meta})
        return out

    # ------------------------------------------------------------------ simulation
    def forward(self, inputs: torch.Tensor | np.ndarray, *, substeps: int | None = None,
                record: int = 0, current: np.ndarray | None = None, noise: float = 0.0,
                generator: torch.Generator | None = None) -> SpikeOutput:
        """Simulate ``inputs [T, B, n_in]`` (held over each task step) with K = ``substeps``.

        ``current``: the input current ``J [T, B, N]`` already computed (e.g. by
        ``SpikingCircuit.drive``, so two backends add bit-identical currents); then the input
        weights get no gradient. ``noise``: a training-only perturbation, an Ornstein-Uhlenbeck
        term of stationary standard deviation ``noise`` (in thresholds, time constant
        tau_mem) added to the membrane, the same in law at every step size.
        """
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.as_tensor(check_inputs(inputs, self.circuit.n_inputs))
        if inputs.dim() != 3 or inputs.shape[2] != self.circuit.n_inputs:
            raise NeurosheetError(f"inputs must have shape [T, B, {self.circuit.n_inputs}], "
                                  f"got {list(inputs.shape)}")
        dev = self.w_rec.device
        u = inputs.to(device=dev, dtype=self.dtype)
        steps, batch, _ = u.shape
        k = substeps or self.circuit.substeps
        c = self.circuit.constants(k)
        rw = torch.as_tensor(self.circuit.readout_weights(k), dtype=self.dtype, device=dev)
        if current is None:
            cur = u @ self.input_matrix().T + self.b
        else:
            cur = torch.as_tensor(current, dtype=self.dtype, device=dev)
        drive = ((c.gain * (1.0 - c.alpha)) * cur).transpose(1, 2)
        sigma = noise * math.sqrt(1.0 - c.beta ** 2)
        grads = torch.is_grad_enabled() and any(
            t.requires_grad for t in (self.w_rec, self.w_in, self.b, drive))
        if not grads:
            wt, cn, raster = self._simulate(drive.contiguous(), k, record, sigma, generator)
            z = self._trace(wt, k)
            logits = z @ self.readout_matrix().T + self.b_out
            return SpikeOutput(logits, cn, wt, raster)
        w_rec = EdgeOperator(self.structure, c.gain * self.w_rec)
        theta = self.circuit.neuron.threshold
        zero = self.circuit.neuron.reset == "zero"
        gscale = 1.0
        if self.surrogate_dt_ms is not None and torch.is_grad_enabled():
            gscale = min(1.0, c.dt_ms / self.surrogate_dt_ms)

        def fire(x: torch.Tensor) -> torch.Tensor:
            s = self.spike_grad(x).to(self.dtype)
            return s if gscale == 1.0 else s.detach() + gscale * (s - s.detach())

        n = self.circuit.n
        syn = u.new_zeros(n, batch)
        mem = u.new_zeros(n, batch)
        spk = u.new_zeros(n, batch)
        counts, weighted = [], []
        raster = None
        if record:
            raster = torch.zeros(steps * k, min(record, batch), n, dtype=torch.bool, device=dev)
        for t in range(steps):
            cnt = u.new_zeros(n, batch)
            wsum = u.new_zeros(n, batch)
            for j in range(k):
                syn = c.alpha * syn + w_rec(spk, add=drive[t])
                if sigma:
                    syn_in = syn + sigma * torch.randn(syn.shape, generator=generator,
                                                       dtype=self.dtype, device=dev)
                else:
                    syn_in = syn
                if zero:
                    mem = c.beta * mem + syn_in
                    spk = fire(mem - theta)
                    hold = spk if self.reset_grad else spk.detach()
                    mem = mem - hold * mem
                else:  # snntorch's subtract: above threshold after a reset -> 2 threshold
                    rst = (mem > theta).to(self.dtype).detach()
                    mem = c.beta * mem + syn_in
                    spk = fire(mem - theta * (1.0 + rst))
                    hold = spk if self.reset_grad else spk.detach()
                    mem = mem - hold * theta
                cnt = cnt + spk
                wsum = wsum + rw[j] * spk
                if raster is not None:
                    raster[t * k + j] = spk[:, : raster.shape[1]].T > 0
            counts.append(cnt)
            weighted.append(wsum)
        wt = torch.stack(weighted).transpose(1, 2)  # [T, B, N]
        cn = torch.stack(counts).transpose(1, 2)
        z = self._trace(wt, k)
        logits = z @ self.readout_matrix().T + self.b_out
        return SpikeOutput(logits, cn, wt, raster)

    def _simulate(self, drive: torch.Tensor, k: int, record: int, sigma: float,
                  generator: torch.Generator | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The same map without gradients: in-place steps, spikes kept as indices, and per step
        either the scatter of the spikes' out-edges or the product (:func:`use_events`).

        ``drive [T, N, B]``; returns weighted counts and counts ``[T, B, N]`` and the raster.
        """
        steps, n, batch = drive.shape
        dev, dtype = drive.device, self.dtype
        c = self.circuit.constants(k)
        theta = self.circuit.neuron.threshold
        zero = self.circuit.neuron.reset == "zero"
        rw = self.circuit.readout_weights(k)
        values = c.gain * self.w_rec.detach()
        kind = self.structure.kernel
        limit, prop, fan = -1.0, None, 0.0
        if self.events != "never":
            es = self.event_structure()
            key = (c.gain, batch, dtype, self.w_rec.data_ptr(), self.w_rec._version)
            if self._propagator is None or self._propagator[0] != key:  # reused across calls
                self._propagator = (key, es.propagator(values, batch))
            prop, fan = self._propagator[1], es.mean_fan_out
            limit = (math.inf if self.events == "always"
                     else max_event_edges(kind, n, es.nnz, batch))
        matrix: torch.Tensor | None = None
        rec = torch.zeros((n + 1) * batch, dtype=dtype, device=dev)  # + the padding row
        rec_nb = rec[: n * batch].view(n, batch)
        syn = torch.zeros(n, batch, dtype=dtype, device=dev)
        mem = torch.zeros_like(syn)
        spk = torch.zeros(n, batch, dtype=torch.bool, device=dev)
        flat = torch.zeros(0, dtype=torch.long, device=dev)
        counts = torch.zeros(steps, n * batch, dtype=dtype, device=dev)
        weighted = torch.zeros_like(counts)
        raster = None
        if record:
            raster = torch.zeros(steps * k, min(record, batch), n, dtype=torch.bool, device=dev)
        used = {"events": 0, "product": 0}
        for t in range(steps):
            d = drive[t]
            fired: list[torch.Tensor] = []
            for j in range(k):
                m = flat.numel()
                if m == 0:
                    syn.mul_(c.alpha).add_(d)
                elif prop is not None and use_events(m, fan, limit):
                    rec.zero_()
                    prop.add(rec, flat)
                    syn.mul_(c.alpha).add_(rec_nb.add_(d))
                    used["events"] += 1
                else:
                    if matrix is None:
                        matrix = self._product_matrix(values)
                    syn.mul_(c.alpha).add_(torch.addmm(d, matrix, spk.to(dtype)))
                    used["product"] += 1
                rst = None if zero else mem > theta  # snntorch's subtract rule (see forward)
                if sigma:
                    mem.mul_(c.beta).add_(syn + sigma * torch.randn(
                        syn.shape, generator=generator, dtype=dtype, device=dev))
                else:
                    mem.mul_(c.beta).add_(syn)
                if rst is None:
                    spk = mem > theta
                    mem.masked_fill_(spk, 0.0)
                else:
                    spk = mem > theta * (1.0 + rst.to(dtype))
                    mem.sub_(spk.to(dtype) * theta)
                flat = spk.view(-1).nonzero().view(-1)
                fired.append(flat)
                if raster is not None:
                    raster[t * k + j] = spk[:, : raster.shape[1]].T
            idx = torch.cat(fired)
            sizes = torch.tensor([f.numel() for f in fired], device=dev)
            counts[t] = torch.bincount(idx, minlength=n * batch).to(dtype)
            wts = torch.repeat_interleave(torch.as_tensor(rw, dtype=dtype, device=dev), sizes)
            weighted[t] = torch.bincount(idx, weights=wts, minlength=n * batch).to(dtype)
        self.last_propagation = used

        def out(x: torch.Tensor) -> torch.Tensor:
            return x.view(steps, n, batch).transpose(1, 2)

        return out(weighted), out(counts), raster

    def _product_matrix(self, values: torch.Tensor) -> torch.Tensor:
        """W (gain included) as the dense or CSR matrix of the no-gradient product."""
        s = self.structure
        if s.kernel == "dense":
            w = torch.zeros(s.shape, dtype=values.dtype, device=values.device)
            return w.index_put_((s.post, s.pre), values)
        return _csr(s.indptr, s.indices, values, s.shape)

    def _trace(self, weighted: torch.Tensor, k: int) -> torch.Tensor:
        """Readout trace at each task step's end from the weighted counts (see ``decode``)."""
        if self.circuit.neuron.readout == "count":
            return weighted
        carry = self.circuit.constants(k).alpha_out ** k
        out, acc = [], torch.zeros_like(weighted[0])
        for t in range(weighted.shape[0]):
            acc = carry * acc + weighted[t]
            out.append(acc)
        return torch.stack(out)
