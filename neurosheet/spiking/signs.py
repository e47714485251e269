"""Dale's law through the spiking conversion: every spiking synapse keeps its rate sign.

The conversion scales each neuron's weights by a positive factor and fine-tuning is kept on
the same side of zero (see :func:`check_dale`), so an E/I circuit's signs survive; this module
*checks* it where a spiking network is made (conversion, fine-tuning, the NIR export), so a
scale, an optimizer step or a quantizer that flips a sign fails loudly instead of silently
breaking an E/I circuit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.populations import sign_violations


def dale_report(spiking: Any, rec_weights: np.ndarray | None = None) -> dict[str, Any] | None:
    """Sign violations of a spiking circuit's recurrent and readout weights (None without E/I).

    ``rec_weights`` defaults to ``spiking.w_rec`` (the per-spike jumps every backend loads).
    """
    graph = spiking.graph
    if graph.types is None:
        return None
    _, pre = graph.edges()
    w = np.asarray(spiking.w_rec if rec_weights is None else rec_weights)
    _, rpre = graph.readout.edges()
    return {
        "excitatory": int(np.count_nonzero(graph.types > 0)),
        "inhibitory": int(np.count_nonzero(graph.types < 0)),
        "recurrent_violations": sign_violations(graph.types, pre, w),
        "readout_violations": sign_violations(graph.types, rpre, np.asarray(spiking.w_out)),
    }


def check_dale(spiking: Any, rec_weights: np.ndarray | None = None, where: str = "spiking") -> None:
    """Raise when a spiking E/I circuit has a synapse whose sign differs from its neuron's type."""
    rep = dale_report(spiking, rec_weights)
    if rep is None:
        return
    bad = rep["recurrent_violations"] + rep["readout_violations"]
    if bad:
        raise NeurosheetError(f"{where}: {bad} synapse(s) have the opposite sign of their "
                              "presynaptic neuron's type (Dale's law)", "types")


def project_dale(graph: Any, w_rec: np.ndarray, w_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights with every wrong-signed entry set to zero (the projection fine-tuning applies
    after each step on an E/I circuit, like the rate model's sign parametrization)."""
    if graph.types is None:
        return w_rec, w_out
    _, pre = graph.edges()
    _, rpre = graph.readout.edges()
    rec = np.where(np.sign(w_rec) * graph.types[pre] < 0, 0.0, w_rec).astype(w_rec.dtype)
    out = np.where(np.sign(w_out) * graph.types[rpre] < 0, 0.0, w_out).astype(w_out.dtype)
    return rec, out
