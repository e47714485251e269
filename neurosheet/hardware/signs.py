"""Sign rules of neuromorphic targets, and whether a circuit's sign structure fits them.

Chips differ in where a synapse's sign lives (each target profile states its rule and source,
``[sign_rule]`` in ``deploy/*.toml``):

- ``per_synapse``: any sign on any synapse (signed weights, or a mixed-sign mode): fits any circuit;
- ``per_synapse_type``: unsigned weights, the sign comes from a synapse/receptor type chosen per
  synapse (excitatory or inhibitory): fits any circuit;
- ``per_presynaptic_neuron``: the sign belongs to the presynaptic neuron or its axon (all its
  outgoing synapses share it, Dale's law): a neuron with mixed-sign outgoing weights must be split
  into an excitatory and an inhibitory copy (one extra neuron, and the copy needs all the
  original's input synapses again);
- ``per_row``: the sign belongs to a synapse row driven by one source (BrainScaleS-2): a
  mixed-sign source needs a second row (no extra neuron; one extra row per mixed source).

A neuron's outgoing synapses are its recurrent and readout synapses; zero weights have no sign.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from neurosheet.graph.circuit import Circuit
from neurosheet.graph.sheetgraph import SheetGraph

SignRuleKind = Literal["per_synapse", "per_synapse_type", "per_presynaptic_neuron", "per_row"]
SIGN_RULES: tuple[str, ...] = ("per_synapse", "per_synapse_type", "per_presynaptic_neuron",
                               "per_row")
_ANY_SIGN = frozenset({"per_synapse", "per_synapse_type"})


class SignRule(BaseModel):
    """Where a target keeps a synapse's sign, with the source of that statement."""

    model_config = ConfigDict(extra="forbid")

    rule: SignRuleKind
    source: str = Field(min_length=1)
    status: Literal["verified", "secondary", "unverified", "derived", "unknown"]
    note: str = ""

    @property
    def any_sign(self) -> bool:
        """True when every synapse may carry either sign (no Dale constraint on the chip)."""
        return self.rule in _ANY_SIGN


def sign_structure(circuit: Circuit | SheetGraph) -> dict[str, Any]:
    """Per-neuron sign structure of the outgoing weights (recurrent + readout).

    A bare graph has no weights: with E/I types its signs are those of the types (mixed: 0),
    without them the structure is unknown (``known: False``).
    """
    graph = circuit.graph if isinstance(circuit, Circuit) else circuit
    n = graph.n
    if not isinstance(circuit, Circuit):
        if graph.types is None:
            return {"known": False, "typed": False, "note": "no weights (bare graph)"}
        exc = int((graph.types > 0).sum())
        return {"known": True, "typed": True, "from": "E/I types (bare graph)",
                "mixed_neurons": 0, "excitatory_neurons": exc, "inhibitory_neurons": n - exc,
                "silent_neurons": 0, "type_violations": 0}
    _, pre = graph.edges()
    _, rpre = graph.readout.edges()  # type: ignore[union-attr]
    src = np.concatenate([pre, rpre])
    w = np.concatenate([circuit.w_rec, circuit.w_out]).astype(np.float64)
    pos = np.bincount(src, w > 0, minlength=n) > 0
    neg = np.bincount(src, w < 0, minlength=n) > 0
    mixed = pos & neg
    out: dict[str, Any] = {
        "known": True, "typed": graph.types is not None, "from": "weights",
        "mixed_neurons": int(mixed.sum()),
        "excitatory_neurons": int((pos & ~neg).sum()),
        "inhibitory_neurons": int((neg & ~pos).sum()),
        "silent_neurons": int((~pos & ~neg).sum()),
    }
    if graph.types is not None:
        out["type_violations"] = int(np.count_nonzero(w * graph.types[src] < 0))
    out["split_cost"] = split_cost(graph, mixed)
    return out


def split_cost(graph: SheetGraph, mixed: np.ndarray) -> dict[str, int]:
    """What splitting each mixed-sign neuron into an E and an I copy adds.

    The outgoing synapses are shared out between the copies (none added); the new copy needs
    every input synapse of the original again: its recurrent fan-in plus its input-projection
    fan-in. A per-row target instead needs one more synapse row per mixed source.
    """
    mixed = np.asarray(mixed, dtype=bool)
    fan_in_in = (np.diff(graph.inputs.mask.indptr) if graph.inputs is not None
                 else np.zeros(graph.n, np.int64))
    extra_rec = int(graph.fan_in[mixed].sum())
    extra_in = int(fan_in_in[mixed].sum())
    return {"extra_neurons": int(mixed.sum()), "extra_recurrent_synapses": extra_rec,
            "extra_input_synapses": extra_in, "extra_synapses": extra_rec + extra_in,
            "extra_rows": int(mixed.sum())}


def sign_check(circuit: Circuit | SheetGraph, rule: SignRule | None) -> dict[str, Any]:
    """Does the circuit's sign structure fit ``rule``; if not, what would splitting cost."""
    structure = sign_structure(circuit)
    if rule is None:
        return {"rule": None, "fits": None, "structure": structure,
                "text": "the target profile states no sign rule"}
    base = {"rule": rule.rule, "source": rule.source, "status": rule.status, "note": rule.note,
            "structure": structure}
    if rule.any_sign:
        return {**base, "fits": True, "text": f"fits ({rule.rule.replace('_', ' ')}: any "
                "synapse may carry either sign)"}
    if not structure["known"]:
        return {**base, "fits": None, "text": "unknown: a bare graph without E/I types has "
                "no signs; give a run directory with weights"}
    mixed = structure["mixed_neurons"]
    if mixed == 0:
        return {**base, "fits": True, "text": "fits: every neuron's outgoing synapses share "
                "one sign"}
    cost = structure["split_cost"]
    if rule.rule == "per_row":
        text = (f"does not fit as is: {mixed} mixed-sign neurons need {cost['extra_rows']} "
                "extra synapse rows (one per mixed source)")
    else:
        text = (f"does not fit as is: {mixed} mixed-sign neurons; splitting them costs "
                f"{cost['extra_neurons']} extra neurons and {cost['extra_synapses']} extra "
                "synapses")
    return {**base, "fits": False, "text": text}
