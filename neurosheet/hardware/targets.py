"""Neuromorphic hardware target profiles (``deploy/<name>.toml``), validated with pydantic.

A profile lists the limits that decide whether a sparse recurrent sheet fits a chip: neurons
per core, cores per chip, synapse storage per core, per-neuron fan-in/fan-out, per-core axon
slots, weight precision and (where published) energy per synaptic operation. Every figure is
a :class:`Figure` carrying its value, a source key from the file's ``[sources]`` table and a
status mark (``verified`` / ``secondary`` / ``unverified`` / ``derived`` / ``unknown``), so
a report can always say where a number came from and how sure it is.

Users add a target by adding a TOML file to ``deploy/`` (or by passing a path); a malformed
profile raises one line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import (
    list_presets,
    read_toml,
    resolve_preset,
    unknown_name_message,
    validate,
)
from neurosheet.hardware.signs import SignRule

Status = Literal["verified", "secondary", "unverified", "derived", "unknown"]
UNCERTAIN: frozenset[str] = frozenset({"unverified", "unknown"})
T = TypeVar("T", int, float)
MAX_WEIGHT_BITS = 32  # beyond float32's integer range a "quantized" weight means nothing
MAX_FIGURE = 2**53  # figures stay exact in float64 and within int64 arithmetic


class Figure(BaseModel, Generic[T]):
    """One published number with its source key and how sure we are of it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: T | None = None
    source: str = Field(min_length=1)
    status: Status
    note: str = ""

    @model_validator(mode="after")
    def _value_unless_unknown(self) -> Figure:
        if self.value is None and self.status != "unknown":
            raise ValueError("a figure needs a 'value' unless its status is 'unknown'")
        if self.value is not None and self.value < 0:
            raise ValueError(f"must be >= 0, got {self.value}")
        if self.value is not None and self.value > MAX_FIGURE:
            raise ValueError(f"must be at most {MAX_FIGURE:.0f} (2**53), got {self.value}")
        return self

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def uncertain(self) -> bool:
        return self.status in UNCERTAIN


class SynapseMemory(BaseModel):
    """Synapse storage of one core, in bits, and how a synapse list is encoded in it.

    For each presynaptic axon (a distinct source feeding the core) its synapses into the core
    are stored in blocks of at most ``block_synapses`` entries; a block costs
    ``n * bits_per_synapse + block_header_bits`` rounded up to ``word_bits``. Without an
    explicit ``bits_per_synapse`` a synapse costs ``weight_bits + index_bits`` with
    ``index_bits = max(min_index_bits, ceil(log2(neurons in the core)))`` (sparse indexing).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    bits_per_core: Figure[int]
    bits_per_synapse: Figure[int] | None = None
    block_synapses: Figure[int] | None = None
    block_header_bits: Figure[int] | None = None
    word_bits: Figure[int] | None = None
    min_index_bits: Figure[int] | None = None

    def index_bits(self, neurons_in_core: np.ndarray) -> np.ndarray:
        """Sparse target-index bits per core, from the number of neurons it holds."""
        need = np.ceil(np.log2(np.maximum(neurons_in_core, 1))).astype(np.int64)
        floor = _val(self.min_index_bits, 0)
        return np.maximum(need, floor)

    def axon_bits(self, synapses: np.ndarray, synapse_bits: np.ndarray) -> np.ndarray:
        """Memory bits of axons with ``synapses[k]`` synapses of ``synapse_bits[k]`` bits each."""
        synapses = np.asarray(synapses, dtype=np.int64)
        block = _val(self.block_synapses, 0)
        header = _val(self.block_header_bits, 0)
        word = max(_val(self.word_bits, 1), 1)
        if block <= 0:
            full, rest = np.zeros_like(synapses), synapses
        else:
            full, rest = synapses // block, synapses % block
        per_full = _round_up(block * synapse_bits + header, word) if block > 0 else 0
        per_rest = np.where(rest > 0, _round_up(rest * synapse_bits + header, word), 0)
        return full * per_full + per_rest


class Target(BaseModel):
    """A hardware target profile: the limits a sparse recurrent circuit is checked against."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = ""
    title: str = Field(min_length=1)
    kind: Literal["digital", "analog", "mixed-signal"]
    recurrent: bool
    recurrent_note: str = ""
    neurons_per_core: Figure[int]
    cores_per_chip: Figure[int]
    max_chips: Figure[int] | None = None
    synapses_per_core: Figure[int] | None = None
    synapse_memory: SynapseMemory | None = None
    max_in_axons_per_core: Figure[int] | None = None
    max_out_axons_per_core: Figure[int] | None = None
    max_fan_in: Figure[int] | None = None
    max_fan_out: Figure[int] | None = None
    max_fan_out_cores: Figure[int] | None = None
    max_fan_out_chips: Figure[int] | None = None
    max_inputs: Figure[int] | None = None
    max_outputs: Figure[int] | None = None
    weight_bits: Figure[int]
    weight_sign_extra: bool = False
    energy_per_synop_pj: Figure[float] | None = None
    sign_rule: SignRule | None = Field(
        None, description="where a synapse's sign lives (neurosheet.hardware.signs)")
    notes: list[str] = Field(default_factory=list)
    sources: dict[str, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> Target:
        for path, fig in self.figures().items():
            for key in (k.strip() for k in fig.source.split(",")):
                if key not in self.sources:
                    raise ValueError(f"{path}.source {key!r} is not a key of the [sources] table")
        if self.sign_rule is not None:
            for key in (k.strip() for k in self.sign_rule.source.split(",")):
                if key not in self.sources:
                    raise ValueError(f"sign_rule.source {key!r} is not a key of the [sources] "
                                     "table")
        for path in ("neurons_per_core", "cores_per_chip"):
            fig = getattr(self, path)
            if fig.value is None or fig.value < 1:
                raise ValueError(f"{path}.value must be a positive integer")
        bits = self.weight_bits.value
        if bits is not None and not 1 <= bits <= MAX_WEIGHT_BITS:
            raise ValueError(f"weight_bits.value must be in [1, {MAX_WEIGHT_BITS}], got {bits}")
        return self

    def figures(self) -> dict[str, Figure]:
        """Every figure of the profile by its dotted field name (for source checks and reports)."""
        out: dict[str, Figure] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Figure):
                out[name] = value
            elif isinstance(value, SynapseMemory):
                for sub in SynapseMemory.model_fields:
                    fig = getattr(value, sub)
                    if isinstance(fig, Figure):
                        out[f"{name}.{sub}"] = fig
        return out

    def limit(self, name: str) -> int | float | None:
        """The value of a limit field, or None when the target has none (or it is unknown)."""
        fig = getattr(self, name)
        return None if fig is None else fig.value

    @property
    def neurons_per_chip(self) -> int:
        return int(self.neurons_per_core.value) * int(self.cores_per_chip.value)  # type: ignore[arg-type]

    @property
    def weight_levels(self) -> int | None:
        """Largest integer weight magnitude (symmetric), or None when the precision is unknown."""
        bits = self.weight_bits.value
        if bits is None:
            return None
        return weight_qmax(int(bits), self.weight_sign_extra)

    def citation(self, fig_name: str) -> str:
        """``source text [status]`` for a figure, for reports."""
        fig = self.figures()[fig_name]
        refs = "; ".join(self.sources[k.strip()] for k in fig.source.split(","))
        return f"{refs} [{fig.status}]"


def weight_qmax(bits: int, sign_extra: bool = False) -> int:
    """Largest integer magnitude of a symmetric signed weight with ``bits`` bits.

    ``sign_extra`` means the sign is stored apart from the ``bits`` magnitude bits (e.g. a
    synapse-row sign); otherwise the sign is one of the bits. One signed bit means +-1.
    """
    if not 1 <= bits <= MAX_WEIGHT_BITS:
        raise NeurosheetError(f"weight bits must be in [1, {MAX_WEIGHT_BITS}], got {bits}")
    if sign_extra:
        return 2**bits - 1
    return max(2 ** (bits - 1) - 1, 1)


def load_target(name_or_path: str | Path) -> Target:
    """Load and validate a target profile by name (``deploy/<name>.toml``) or path."""
    text = str(name_or_path)
    if not text.endswith(".toml") and "/" not in text and not Path(text).exists():
        available = list_presets("deploy")
        if text not in available:
            raise NeurosheetError(unknown_name_message("hardware target", text, available))
    path = resolve_preset("deploy", name_or_path)
    data = read_toml(path)
    _check_source_keys(data, path)
    target = validate(Target, data, str(path))
    if not target.name:
        target = target.model_copy(update={"name": path.stem})
    return target


def _check_source_keys(data: dict[str, Any], path: Path) -> None:
    """Every figure's ``source`` must name keys of ``[sources]``: one line naming the field."""
    sources = data.get("sources")
    keys = set(sources) if isinstance(sources, dict) else set()
    tables = [("", data)]
    if isinstance(data.get("synapse_memory"), dict):
        tables.append(("synapse_memory.", data["synapse_memory"]))
    for prefix, table in tables:
        for name, fig in table.items():
            if not (isinstance(fig, dict) and isinstance(fig.get("source"), str)):
                continue
            for key in (k.strip() for k in fig["source"].split(",")):
                if key not in keys:
                    raise NeurosheetError(
                        f"{path}: field '{prefix}{name}.source': {key!r} is not a key of the "
                        "[sources] table")


def list_targets() -> list[str]:
    """Names of all target profiles found in ``deploy/``."""
    return list(list_presets("deploy"))


def _val(fig: Figure | None, default: int) -> int:
    return default if fig is None or fig.value is None else int(fig.value)


def _round_up(bits: np.ndarray | int, word: int) -> np.ndarray | int:
    return -word * (-np.asarray(bits) // word) if word > 1 else bits


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of a / b."""
    return -(-int(a) // int(b))


__all__ = ["Figure", "SynapseMemory", "Target", "ceil_div", "list_targets", "load_target",
           "weight_qmax"]
