"""Typed results that stages return and reports render (pydantic: validated, with a JSON schema).

Each model keeps the JSON shape the run directory and the reports have always used, so a
result is written with ``model_dump()`` and read back with ``model_validate()``; extra keys
(e.g. a backend's own figures) are kept, not dropped. ``python -c "from neurosheet.core.results
import Evaluation; print(Evaluation.model_json_schema())"`` prints a schema.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_json(self) -> dict[str, Any]:
        """A plain dict for JSON writers (no NaN surprises: NaN becomes None)."""
        return _finite(self.model_dump())


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class Scores(_Result):
    """Accuracy of one task (or the mean over tasks), each metric named for what it forgives.

    ``trial_success``: fixation held and the right ring unit on every decision step (Yang et
    al.'s performance, the headline); ``step_accuracy``: fraction of decision steps right
    (forgives a wrong step inside a right trial); ``yang_success``: Yang's 36-degree rule at
    the last step (forgives an answer one ring unit off).
    """

    step_accuracy: float | None = None
    trial_success: float | None = None
    yang_success: float | None = None
    n_trials: int | None = None


class Evaluation(_Result):
    """Held-out accuracy of one backend on the same trials as every other backend."""

    backend: str
    trials: int = Field(description="held-out trials per task")
    seed: int = Field(description="seed of the held-out trials (the 'test' stream)")
    task_mode: str = Field("fixed", description="trial generator: fixed or reference")
    per_task: dict[str, Scores]
    mean: Scores

    def headline(self) -> float | None:
        """Mean trial success over tasks: the number a fidelity or a claim reports."""
        return self.mean.trial_success


class Refusal(_Result):
    """A stage that declined to produce a result (e.g. the conversion gate), with why."""

    refused: str
    trials: int | None = None


class TrainSummary(_Result):
    """What a training stage did."""

    run_dir: str
    preset: str
    steps: int
    final: dict[str, Any] = Field(description="mean held-out scores at the last step")
    steps_to_criterion: int | None = None
    resumed_from: int = 0
    init_spectrum: dict[str, Any] | None = Field(
        None, description="recurrent spectrum of the initial weights (radius, outlier)")


class SpikeCountSummary(_Result):
    """Spikes per neuron per trial, saved to the run directory for the synaptic-op budget."""

    file: str
    backend: str
    trials: int
    seed: int
    spikes_per_trial: float
    mean_rate_hz: float


class StageRecord(_Result):
    """One stage of the pipeline: its status, wall time and this process's CPU time (the
    CPU time holds on a loaded machine, where the wall time does not; a subprocess's is not in it)."""

    name: str
    seconds: float = 0.0
    cpu_s: float | None = None
    status: str = "ok"
    detail: str = ""


class PipelineSummary(_Result):
    """Everything the pipeline's index renders (written as ``index.json``)."""

    config: dict[str, Any]
    out: str
    stages: list[StageRecord] = Field(default_factory=list)
    training: TrainSummary | None = None
    graph: dict[str, Any] | None = None
    evaluation: dict[str, Any] = Field(default_factory=dict)
    rasters: dict[str, str] = Field(default_factory=dict)
    spikes: SpikeCountSummary | None = None
    budget: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    total_s: float | None = None
