"""Validated model and training settings (the ``models/*.toml`` presets) and their resolution.

A preset has three tables: ``[sheet]`` (neurons and wiring), ``[dynamics]`` (rate model) and
``[training]``. Every field has a default, so a preset only states what it changes; the
resolved values are written to each run directory (``config.json``/``config.toml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import load_preset, validate
from neurosheet.rate.bimt.config import BimtConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SheetConfig(_Strict):
    """Where the neurons sit and how they are wired (see :func:`neurosheet.graph.wiring.build_graph`)."""

    n: int = Field(256, gt=0, description="number of neurons")
    layout: Literal["grid", "jittered", "random"] = "grid"
    periodic: bool = False
    rule: Literal["radius", "gaussian", "exponential", "random", "full", "autapse"] = "radius"
    density: float | None = Field(None, gt=0, le=1, description="target density")
    radius: float | None = Field(None, ge=0)
    self_connections: bool = True
    fixed_fan_in: bool = False
    input_region: str = "all"
    readout_region: str = "all"

    @model_validator(mode="after")
    def _one_size(self) -> SheetConfig:
        if self.rule == "radius" and (self.radius is None) == (self.density is None):
            raise ValueError("the radius rule needs exactly one of radius or density")
        if self.rule in ("gaussian", "exponential", "random") and self.density is None:
            raise ValueError(f"the {self.rule} rule needs a density")
        return self


class DynamicsConfig(_Strict):
    """Rate-model dynamics (:class:`neurosheet.graph.circuit.RateParams` plus init and noise)."""

    activation: Literal["relu", "softplus", "tanh", "retanh"] = "relu"
    tau_ms: float = Field(200.0, gt=0)
    dt_ms: float = Field(100.0, gt=0)
    substeps: int = Field(4, ge=1)
    gain: float = Field(1.0, gt=0, description="initial recurrent weights N(0, gain^2/fan_in)")
    rec_noise: float = Field(0.05, ge=0)
    in_noise: float = Field(0.0, ge=0)
    kernel: Literal["auto", "csr", "dense"] = "auto"
    train_substeps: list[int] | None = Field(
        None, description="draw each training batch's sub-steps from this list (evaluation "
        "and the saved circuit use `substeps`): trains a discretization-robust model")

    @model_validator(mode="after")
    def _choices(self) -> DynamicsConfig:
        if self.train_substeps is not None and (not self.train_substeps
                                                or min(self.train_substeps) < 1):
            raise ValueError("train_substeps must be a non-empty list of integers >= 1")
        return self

    @model_validator(mode="after")
    def _dt(self) -> DynamicsConfig:
        if self.dt_ms > self.tau_ms:
            raise ValueError(f"dt_ms ({self.dt_ms}) must not exceed tau_ms ({self.tau_ms})")
        return self


class TrainingConfig(_Strict):
    """Optimizer, batch, schedule of evaluation and checkpoints."""

    steps: int = Field(2000, gt=0)
    batch: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    rate_l2: float = Field(0.0, ge=0, description="penalty on mean squared rates")
    weight_l2: float = Field(0.0, ge=0, description="penalty on mean squared recurrent weights")
    eval_every: int = Field(100, gt=0)
    eval_trials: int = Field(64, gt=0, description="held-out trials per task at each evaluation")
    checkpoint_every: int = Field(100, gt=0)
    checkpoint_seconds: float = Field(300.0, gt=0, allow_inf_nan=False, description="also "
                                      "checkpoint when this much wall time passed since the last")
    log_every: int = Field(10, gt=0)
    criterion: float = Field(0.8, gt=0, le=1, description="accuracy for steps-to-criterion")
    criterion_metric: Literal["step_accuracy", "trial_success", "yang_success"] = "step_accuracy"
    threads: int | None = Field(None, gt=0, description="torch CPU threads (None: torch default)")


class ModelPreset(_Strict):
    """A whole ``models/*.toml`` file."""

    description: str = ""
    sheet: SheetConfig
    dynamics: DynamicsConfig = DynamicsConfig()
    training: TrainingConfig = TrainingConfig()
    bimt: BimtConfig | None = Field(
        None, description="wiring-cost regularizer, neuron swaps and pruning (docs/bimt.md)")


def load_model_preset(name_or_path: str | Path) -> tuple[ModelPreset, Path]:
    """Resolve, read and validate a model preset (name in ``models/`` or a path)."""
    return load_preset("models", name_or_path, ModelPreset)


def with_overrides(preset: ModelPreset, overrides: dict[str, dict[str, Any]],
                   source: str = "overrides") -> ModelPreset:
    """A copy of ``preset`` with ``{"sheet": {...}, "training": {...}}`` fields replaced."""
    data = preset.model_dump()
    for section, values in overrides.items():
        if section not in data or not isinstance(data[section], dict):
            raise NeurosheetError(f"{source}: unknown preset section {section!r}")
        data[section].update(values)
    return validate(ModelPreset, data, source)


def to_toml(data: dict[str, Any]) -> str:
    """Serialize the resolved config (scalars, lists of scalars, one level of tables) to TOML."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if not isinstance(value, dict) and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        for key, value in table.items():
            if isinstance(value, dict):
                raise NeurosheetError(f"cannot write nested table {name}.{key} as TOML")
            if value is not None:  # TOML has no null: an absent key means "default / none"
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise NeurosheetError(f"cannot write {type(value).__name__} as TOML")
