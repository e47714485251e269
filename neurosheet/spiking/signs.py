"""Dale's law through the spiking conversion: every spiking synapse keeps its rate sign.

The conversion divides weights by a positive scale (one ``g``, or one per neuron), so signs
survive by construction; this module *checks* it where a spiking network is built (conversion,
each backend, the NIR export), so a future scale or quantizer that flips a sign fails loudly
instead of silently breaking an E/I circuit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.populations import sign_violations


def dale_report(spiking: Any, rec_weights: np.ndarray | None = None) -> dict[str, Any] | None:
    """Sign violations of a spiking circuit's recurrent (spike) and readout weights.

    ``rec_weights`` defaults to ``spiking.spike_weights()`` (what the backends load). None for
    a circuit without E/I types.
    """
    graph = spiking.graph
    if graph.types is None:
        return None
    _, pre = graph.edges()
    w = spiking.spike_weights() if rec_weights is None else rec_weights
    _, rpre = graph.readout.edges()
    scale = np.asarray(spiking.g, dtype=np.float64)
    return {
        "excitatory": int(np.count_nonzero(graph.types > 0)),
        "inhibitory": int(np.count_nonzero(graph.types < 0)),
        "recurrent_violations": sign_violations(graph.types, pre, w),
        "readout_violations": sign_violations(graph.types, rpre, spiking.circuit.w_out),
        "scale_positive": bool(np.all(scale > 0)),
    }


def check_dale(spiking: Any, rec_weights: np.ndarray | None = None, where: str = "spiking") -> None:
    """Raise when a spiking E/I circuit has a synapse whose sign differs from its neuron's type."""
    rep = dale_report(spiking, rec_weights)
    if rep is None:
        return
    if not rep["scale_positive"]:
        raise NeurosheetError(f"{where}: a non-positive conversion scale would flip Dale's signs",
                              "g")
    bad = rep["recurrent_violations"] + rep["readout_violations"]
    if bad:
        raise NeurosheetError(f"{where}: {bad} synapse(s) have the opposite sign of their "
                              "presynaptic neuron's type (Dale's law)", "types")
