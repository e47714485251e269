"""Quantize a circuit's weights to a chip's integer precision (symmetric, one scale per matrix).

For each weight matrix (W_rec, W_in, W_out separately) the scale is
``s = max|w| / qmax`` and every weight becomes ``round(w / s) * s`` with the integer clipped
to ``[-qmax, qmax]``; ``qmax = 2^(bits-1) - 1`` when the sign is one of the bits and
``2^bits - 1`` when the chip stores the sign apart (see :func:`neurosheet.hardware.targets.weight_qmax`).
With one signed bit the weights become ``sign(w) * mean|w|`` (binary). Biases are left in
floating point: chips implement them as bias currents with their own precision. The result
is a new :class:`~neurosheet.graph.circuit.Circuit` on the same graph (same edges), so it can be
evaluated by the same functions as the original.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosheet.graph.circuit import Circuit
from neurosheet.hardware.targets import weight_qmax

MATRICES = ("w_rec", "w_in", "w_out")


def quantize_array(w: np.ndarray, bits: int, sign_extra: bool = False) -> tuple[np.ndarray, dict]:
    """Symmetric per-array quantization of ``w``; returns dequantized weights and the stats."""
    w = np.asarray(w, dtype=np.float64)
    qmax = weight_qmax(bits, sign_extra)
    peak = float(np.abs(w).max(initial=0.0))
    if peak == 0.0:
        return w.astype(np.float32), _stats(w, w, 0.0, qmax)
    if bits == 1 and not sign_extra:
        scale = float(np.abs(w).mean())
        wq = np.sign(w) * scale
    else:
        scale = peak / qmax
        wq = np.clip(np.rint(w / scale), -qmax, qmax) * scale
    return wq.astype(np.float32), _stats(w, wq, scale, qmax)


def quantize_circuit(circuit: Circuit, bits: int, sign_extra: bool = False) -> tuple[Circuit, dict]:
    """The circuit with W_rec, W_in and W_out quantized to ``bits``; plus per-matrix stats."""
    new: dict[str, np.ndarray] = {}
    stats: dict[str, Any] = {}
    for name in MATRICES:
        new[name], stats[name] = quantize_array(getattr(circuit, name), bits, sign_extra)
    return circuit.with_weights(**new), {"bits": bits, "sign_extra": sign_extra,
                                         "qmax": weight_qmax(bits, sign_extra), "matrices": stats}


def _stats(w: np.ndarray, wq: np.ndarray, scale: float, qmax: int) -> dict:
    """Scale, relative RMS error and the share of nonzero weights rounded to zero."""
    norm = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
    err = float(np.sqrt(np.mean((wq - w) ** 2))) if w.size else 0.0
    nonzero = w != 0
    zeroed = float(np.mean(wq[nonzero] == 0)) if nonzero.any() else 0.0
    return {"scale": scale, "qmax": qmax, "rel_rms_error": err / norm if norm else 0.0,
            "zeroed_fraction": zeroed}
