"""A spiking circuit's whole simulation as one compiled call, forward and backward (BPTT by hand).

:meth:`SpikingSheet.forward <neurosheet.spiking.network.SpikingSheet.forward>` runs several small
torch operations (and their autograd records) at each of the T x K sub-steps of a batch, ~800 at
K = 20 and 4,000 at K = 100 on the demo tasks. Here one C function runs the forward pass (the
recurrent input event-driven: only the neurons that spiked send, along a pre-major copy of the
edges) and one the backward pass with the surrogate gradient of the eager path (snntorch's
``fast_sigmoid``, scaled by ``min(1, dt / surrogate_dt_ms)``, the reset's spike detached);
formulas in :mod:`neurosheet.spiking._fused_src`. The input current, the readout trace and the
logits stay in torch, so autograd carries the gradient on to ``w_in``, ``b``, ``w_out`` and
``b_out``. Membrane noise is drawn with the same ``torch.randn`` calls, in the same order, as
the eager path, so both see the same numbers.

Memory: the backward pass keeps ``x = v - threshold`` of every sub-step, ``T K N B`` float32
(demo, T ~ 50, K = 100, N = 144, B = 32: ~90 MB); a pass without gradients keeps nothing.

The kernel is compiled and loaded like the rate engine's
(:func:`neurosheet.rate.fused.compile_library`); without a compiler, or with
``NEUROSHEET_FUSED=0``, :func:`available` is False and :func:`simulate` runs the eager module.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import math
import weakref
from typing import Any

import numpy as np
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.rate import fused as rate_fused
from neurosheet.rate.fused import Blocks, _check, _ptr
from neurosheet.spiking._fused_src import SOURCE
from neurosheet.spiking.inputs import check_inputs

_FLAGS = (*rate_fused._FLAGS, "-ffp-contract=off")  # round each product and sum as torch does
_BLOCKS: weakref.WeakKeyDictionary[Any, Blocks] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """The spiking kernel, compiled and loaded once per process; None when impossible."""
    return rate_fused.compile_library(SOURCE, ("nss_forward", "nss_backward"), "spiking",
                                      _FLAGS)


def available() -> bool:
    """True when the spiking kernel is compiled and loadable here (else the eager path runs)."""
    return _library() is not None


def resolve_engine(name: str = "auto") -> str:
    """``auto`` -> ``fused`` when the spiking kernel is available here, else ``eager``."""
    from neurosheet.rate.model import resolve_engine as resolve

    return resolve(name, available)


def fast_sigmoid_slope(fn: Any) -> float | None:
    """The slope of an ``snntorch.surrogate.fast_sigmoid(slope)`` function, else None."""
    if getattr(fn, "__qualname__", "") != "fast_sigmoid.<locals>.inner":
        return None
    slope = inspect.getclosurevars(fn).nonlocals.get("slope")
    return float(slope) if isinstance(slope, int | float) else None


def unsupported(net: Any) -> str | None:
    """Why ``net`` cannot run on the fused engine (None: it can)."""
    if not available():
        return "the spiking kernel is not available (no C compiler, or NEUROSHEET_FUSED=0)"
    if net.dtype != torch.float32 or net.w_rec.device.type != "cpu":
        return "the fused engine runs float32 on the CPU"
    if net.reset_grad:
        return "the fused engine detaches the reset (reset_grad=False)"
    if fast_sigmoid_slope(net.spike_grad) is None:
        return "the fused engine's surrogate is snntorch's fast_sigmoid"
    return None


def _blocks(net: Any) -> Blocks:
    """The int32 CSR/CSC structure of ``net``'s recurrent edges (built once per module)."""
    blocks = _BLOCKS.get(net)
    if blocks is None:
        blocks = _BLOCKS[net] = Blocks.from_csr([net.circuit.graph.adjacency])
    return blocks


class _SpikeRun(torch.autograd.Function):
    """Autograd of the fused simulation: inputs (edge values, drive), outputs (counts, weighted)."""

    @staticmethod
    def forward(ctx, blocks, spec, values, drive, noise):  # type: ignore[override]
        lib = _library()
        steps, n, batch = drive.shape
        k, subtract, alpha, beta, theta, _, _, rw = spec
        keep = any(ctx.needs_input_grad)  # grad mode is off inside forward: ask autograd
        ws = blocks.workspace
        wt = values[blocks.t_perm].contiguous()  # pre-major order
        x = ws.take((steps * k, n, batch)) if keep else None
        cnt = ws.take((steps, n, batch), zero=True)
        wsum = ws.take((steps, n, batch), zero=True)
        state = ws.take((4, n, batch))
        nspk = torch.empty(n)
        lib.nss_forward(  # type: ignore[union-attr]
            ctypes.c_int64(n), ctypes.c_int64(batch), ctypes.c_int64(steps), ctypes.c_int64(k),
            ctypes.c_int(subtract), ctypes.c_float(alpha), ctypes.c_float(beta),
            ctypes.c_float(theta), _ptr(blocks.t_indptr), _ptr(blocks.t_indices), _ptr(wt),
            _ptr(drive), _ptr(noise), _ptr(rw), _ptr(state[0]), _ptr(state[1]), _ptr(state[2]),
            _ptr(state[3]), _ptr(nspk), _ptr(x), _ptr(cnt), _ptr(wsum))
        ctx.blocks, ctx.spec = blocks, spec
        ctx.set_materialize_grads(False)
        if keep:
            ctx.save_for_backward(wt, x)
        return cnt, wsum

    @staticmethod
    def backward(ctx, gcnt, gwsum):  # type: ignore[override]
        wt, x = ctx.saved_tensors
        blocks = ctx.blocks
        k, subtract, alpha, beta, _, gscale, slope, rw = ctx.spec
        s, n, batch = x.shape
        ws = blocks.workspace
        gdrive = ws.take((s // k, n, batch), zero=True)
        gwt = torch.zeros(blocks.nnz)
        scratch = ws.take((3, n, batch))
        sp = torch.empty(batch)
        gwv = ws.take((blocks.nnz, 8), zero=True)
        gc = None if gcnt is None else _check(gcnt, "counts")
        gv = None if gwsum is None else _check(gwsum, "weighted")
        _library().nss_backward(  # type: ignore[union-attr]
            ctypes.c_int64(n), ctypes.c_int64(batch), ctypes.c_int64(s // k), ctypes.c_int64(k),
            ctypes.c_int(subtract), ctypes.c_float(alpha), ctypes.c_float(beta),
            ctypes.c_float(gscale), ctypes.c_float(slope), _ptr(blocks.t_indptr),
            _ptr(blocks.t_indices), _ptr(wt), _ptr(x), _ptr(rw), _ptr(gc), _ptr(gv),
            _ptr(gdrive), _ptr(gwt), _ptr(scratch[0]), _ptr(scratch[1]), _ptr(scratch[2]),
            _ptr(sp), _ptr(gwv))
        gvalues = torch.empty_like(gwt)
        gvalues[blocks.t_perm] = gwt  # back to CSR order
        return None, None, gvalues, gdrive, None


def simulate(net: Any, inputs: torch.Tensor | np.ndarray, *, substeps: int | None = None,
             noise: float = 0.0, generator: torch.Generator | None = None) -> Any:
    """``net(inputs, substeps=, noise=, generator=)`` for a ``SpikingSheet`` on the fused engine.

    The same :class:`~neurosheet.spiking.network.SpikeOutput` (no raster) and, under grad
    mode, the same gradients for every parameter of ``net``, equal to float32 rounding.
    """
    from neurosheet.spiking.network import SpikeOutput

    why = unsupported(net)
    if why is not None:
        raise NeurosheetError(why, "engine")
    circuit = net.circuit
    if not isinstance(inputs, torch.Tensor):
        inputs = torch.as_tensor(check_inputs(inputs, circuit.n_inputs))
    if inputs.dim() != 3 or inputs.shape[2] != circuit.n_inputs:
        raise NeurosheetError(f"inputs must have shape [T, B, {circuit.n_inputs}], "
                              f"got {list(inputs.shape)}")
    u = inputs.to(dtype=torch.float32)
    steps, batch, _ = u.shape
    k = substeps or circuit.substeps
    c = circuit.constants(k)
    cur = u @ net.input_matrix().T + net.b
    drive = ((c.gain * (1.0 - c.alpha)) * cur).transpose(1, 2).contiguous()
    values = c.gain * net.w_rec
    sigma = noise * math.sqrt(1.0 - c.beta ** 2)
    draws = None
    if sigma:  # the eager path's draws, one [N, B] per sub-step, in its order
        draws = torch.empty(steps * k, circuit.n, batch)
        for s in range(steps * k):
            draws[s] = torch.randn((circuit.n, batch), generator=generator, dtype=torch.float32)
        draws.mul_(sigma)
    gscale = 1.0
    if net.surrogate_dt_ms is not None:
        gscale = min(1.0, c.dt_ms / net.surrogate_dt_ms)
    rw = torch.as_tensor(circuit.readout_weights(k), dtype=torch.float32).contiguous()
    spec = (k, int(circuit.neuron.reset == "subtract"), c.alpha, c.beta,
            circuit.neuron.threshold, gscale, fast_sigmoid_slope(net.spike_grad), rw)
    cnt, wsum = _SpikeRun.apply(_blocks(net), spec, _check(values, "w_rec"), drive, draws)
    wt = wsum.transpose(1, 2)  # [T, B, N]
    z = net._trace(wt, k)
    logits = z @ net.readout_matrix().T + net.b_out
    return SpikeOutput(logits, cnt.transpose(1, 2), wt)


def run(net: Any, inputs: torch.Tensor | np.ndarray, *, substeps: int | None = None,
        noise: float = 0.0, generator: torch.Generator | None = None,
        engine: str = "auto") -> Any:
    """Simulate ``inputs`` with ``net`` on ``engine``: ``fused``, ``eager`` or ``auto``.

    ``fused``: :func:`simulate` (an error if ``net`` does not fit it); ``eager``: ``net``
    itself; ``auto``: fused when the kernel is available and ``net`` fits it, else eager.
    """
    name = resolve_engine(engine)
    if name == "fused":
        why = unsupported(net)
        if why is None:
            return simulate(net, inputs, substeps=substeps, noise=noise, generator=generator)
        if engine == "fused":
            raise NeurosheetError(why, "engine")
    return net(inputs, substeps=substeps, noise=noise, generator=generator)
