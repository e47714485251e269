"""Experiments as data: a design file names conditions, scales, metrics, arms and claims.

A design (``experiments/*.toml``) is written *before* the runs: which networks are trained
(``[[conditions]]``), at which sizes (``[scales.<name>]``: neurons, steps, seeds, evaluation
schedule), which numbers are measured (the metric, the criterion, validation and test trial
counts), which choices are made on validation trials (``[[arms]]``: e.g. dense's learning
rate, BIMT's lambda and pruning cut) and which comparisons decide each claim (``[[claims]]``:
per-seed paired differences with a 95% interval against a stated margin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurosheet.core.presets import load_preset

#: per-run numbers a claim may compare (see :mod:`neurosheet.experiments.metrics`)
RUN_METRICS = ("final_test", "final_val", "auc", "steps_to_criterion", "budget_test", "gain_test",
               "compactness_z", "compactness_gap", "q_z", "within_fraction")
#: validation numbers an arm may choose its condition (or pruning cut) by
SELECTORS = ("auc", "final_val", "budget_val")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Strict):
    """One size of the whole design (small for this machine, paper for a GPU or a cluster)."""

    description: str = ""
    n: int | None = Field(None, gt=0, description="neurons (None: each preset's own)")
    steps: int = Field(gt=0, description="optimizer steps of every run")
    seeds: list[int] = Field(min_length=1, description="seeds; every condition runs each")
    eval_every: int = Field(100, gt=0, description="steps between validation evaluations")
    eval_trials: int = Field(16, gt=0, description="validation trials per task per evaluation")
    test_trials: int = Field(64, gt=0, description="test trials per task (reported numbers)")
    substeps: int | None = Field(None, ge=1, description="Euler sub-steps (None: preset's)")
    batch: int | None = Field(None, gt=0, description="training batch (None: preset's)")
    synapse_budget: float | None = Field(
        None, gt=0, le=1, description="the design's synapse budget at this scale (None: the "
        "design's); fixed before the scale's runs, e.g. after a smaller pilot")
    conditions: list[str] | None = Field(
        None, description="the conditions run at this scale, in run order (None: all)")


class Condition(_Strict):
    """One trained network configuration (run once per seed)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    preset: str = Field(description="model preset name or path (models/)")
    suite: str | None = Field(None, description="task suite (None: the design's)")
    density: float | None = Field(None, gt=0, le=1, description="target recurrent density")
    lr: float | None = Field(None, gt=0, description="learning rate (None: preset's)")
    bimt: dict[str, Any] | None = Field(None, description="fields of the preset's [bimt] table "
                                        "replaced (e.g. lam)")
    prune_cuts: list[float] | None = Field(
        None, description="relative pruning cuts (|w| <= cut * max|W|) scored on validation "
        "and test trials: the accuracy-vs-synapses frontier")
    modularity: bool = Field(False, description="functional clusters and their anatomical "
                             "modularity against permutation nulls")


class Arm(_Strict):
    """A side of a comparison: one or several conditions, one chosen per seed on validation."""

    name: str
    conditions: list[str] = Field(min_length=1)
    select: Literal["auc", "final_val", "budget_val"] = Field(
        "final_val", description="validation number that picks the condition (and, for "
        "budget metrics, the pruning cut) per seed")


class Claim(_Strict):
    """A statement decided by the interval of a per-seed difference ``a - b`` (or ``a``)."""

    name: str
    statement: str
    a: str = Field(description="arm or condition")
    b: str | None = Field(None, description="arm or condition (None: one-sample against 0)")
    metric: Literal["final_test", "final_val", "auc", "steps_to_criterion", "budget_test",
                    "gain_test", "compactness_z", "compactness_gap", "q_z", "within_fraction"]
    margin: float = Field(0.0, description="supported when the interval's lower end is above "
                          "it; not supported when its upper end is at or below it")
    lower_is_better: bool = Field(False, description="compare b - a instead (e.g. steps)")


class Design(_Strict):
    """A whole ``experiments/*.toml`` file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    suite: str
    task_mode: Literal["fixed", "reference"] = "fixed"
    metric: Literal["trial_success", "step_accuracy", "yang_success"] = "trial_success"
    criterion: float = Field(0.5, gt=0, le=1, description="mean validation accuracy that "
                             "counts as learned, for steps to criterion")
    synapse_budget: float = Field(0.1, gt=0, le=1, description="for budget metrics: the most "
                                  "synapses (recurrent + input + readout) a pruned network may "
                                  "keep, as a fraction of the fully connected network's")
    confidence: float = Field(0.95, gt=0, lt=1)
    interval: Literal["t", "bootstrap"] = Field("t", description="the interval that decides")
    bootstrap: int = Field(10000, gt=99, description="bootstrap resamples (reported too)")
    threads: int = Field(1, gt=0, description="torch threads per run")
    scales: dict[str, Scale]
    conditions: list[Condition] = Field(min_length=1)
    arms: list[Arm] = []
    claims: list[Claim] = []

    @model_validator(mode="after")
    def _names(self) -> Design:
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError("condition names must be unique")
        arms = [a.name for a in self.arms]
        if set(arms) & set(names) or len(set(arms)) != len(arms):
            raise ValueError("arm names must be unique and differ from condition names")
        for arm in self.arms:
            missing = [c for c in arm.conditions if c not in names]
            if missing:
                raise ValueError(f"arm {arm.name!r} names unknown conditions {missing}")
        for scale_name, scale in self.scales.items():
            missing = [c for c in scale.conditions or [] if c not in names]
            if missing:
                raise ValueError(f"scale {scale_name!r} names unknown conditions {missing}")
        for claim in self.claims:
            for side in (claim.a, claim.b):
                if side is not None and side not in names and side not in arms:
                    raise ValueError(f"claim {claim.name!r} names unknown arm {side!r}")
        if not self.scales:
            raise ValueError("a design needs at least one scale")
        return self

    def condition(self, name: str) -> Condition:
        """The condition called ``name``."""
        return next(c for c in self.conditions if c.name == name)

    def arm(self, name: str) -> Arm:
        """The arm called ``name`` (a bare condition is an arm of itself)."""
        for a in self.arms:
            if a.name == name:
                return a
        return Arm(name=name, conditions=[name])

    def scale(self, name: str) -> Scale:
        """The scale called ``name``; an unknown one lists the design's."""
        from neurosheet.core.errors import NeurosheetError

        if name not in self.scales:
            raise NeurosheetError(f"design {self.name!r} has no scale {name!r}; it has "
                                  f"{', '.join(self.scales)}", "size")
        return self.scales[name]

    def conditions_at(self, scale: str) -> list[Condition]:
        """The conditions run at ``scale``, in run order."""
        wanted = self.scale(scale).conditions
        return list(self.conditions) if wanted is None else [self.condition(c) for c in wanted]


def load_design(name_or_path: str | Path) -> tuple[Design, Path]:
    """Resolve (a name in ``experiments/`` or a path), read and validate a design file."""
    return load_preset("experiments", name_or_path, Design)
