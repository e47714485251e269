"""Held-out evaluation of a trained circuit, per task, with a pluggable simulation backend.

A *backend* turns a :class:`~neurosheet.graph.circuit.Circuit` into a function from task inputs
``[T, B, n_in]`` (numpy) to readout logits ``[T, B, n_out]``. The rate model is built in;
other stages (spiking simulators) register theirs with :func:`register_backend`, and
``neurosheet evaluate --backend NAME`` then offers them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import unknown_name_message
from neurosheet.graph.circuit import Circuit, load_run_circuit
from neurosheet.rate.model import RateRNN

LogitsFn = Callable[[np.ndarray], np.ndarray]
BackendFactory = Callable[..., LogitsFn]
METRICS = ("step_accuracy", "trial_success", "yang_success")
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory(circuit, **options) -> logits_fn`` available as backend ``name``."""
    _BACKENDS[name] = factory


def backends() -> tuple[str, ...]:
    """Names of the registered backends."""
    return tuple(_BACKENDS)


def rate_backend(circuit: Circuit, substeps: int | None = None, device: str = "cpu",
                 **_: Any) -> LogitsFn:
    """Logits of the rate model (deterministic: no noise), optionally at another sub-step count."""
    model = RateRNN.from_circuit(circuit, substeps=substeps).to(device).eval()

    def run(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.as_tensor(inputs, dtype=torch.float32, device=device))
        return out.logits.cpu().numpy()

    return run


register_backend("rate", rate_backend)


def heldout_batches(tasks: tuple[str, ...], trials: int, seed: int,
                    rule_inputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A fixed set of ``trials`` held-out trials per task (same seed -> same trials).

    ``rule_inputs``: the rule channels the network was trained with (default ``tasks``).
    """
    from neurosheet.tasks import TrialSampler

    sampler = TrialSampler(tasks, seed=seed, rule_inputs=rule_inputs)
    return {name: sampler.sample_task(name, trials) for name in sampler.tasks}


def score_batches(logits_fn: LogitsFn, batches: dict[str, Any],
                  tasks: tuple[str, ...]) -> dict[str, Any]:
    """Per-task metrics, their unweighted mean over tasks, and 95% intervals (``ci``).

    Trial success and Yang's rule are proportions of trials: Wilson intervals (per task, and
    for the mean over all trials pooled, which is the mean over tasks when every task has the
    same number of trials). Step accuracy pools decision steps, which are not independent
    within a trial: its interval is a normal interval over per-trial step accuracies.
    """
    from neurosheet.core.stats import mean_interval, wilson
    from neurosheet.tasks import score
    from neurosheet.tasks.metrics import trial_scores

    per_task: dict[str, dict[str, Any]] = {}
    pooled: dict[str, list[np.ndarray]] = {"trial_success": [], "yang_success": [], "step": []}
    for name, batch in batches.items():
        logits = logits_fn(batch.inputs)
        per_task[name] = score(logits, batch, tuple(batches))["per_task"][name]
        ts = trial_scores(logits, batch)
        steps = ts["step_correct"] / np.maximum(ts["step_count"], 1)
        steps = steps[ts["step_count"] > 0]
        n = int(ts["trial_success"].size)
        per_task[name]["ci"] = {
            "trial_success": wilson(int(ts["trial_success"].sum()), n),
            "yang_success": wilson(int(ts["yang_success"].sum()), n),
            "step_accuracy": mean_interval(steps),
        }
        pooled["trial_success"].append(ts["trial_success"])
        pooled["yang_success"].append(ts["yang_success"])
        pooled["step"].append(steps)
    mean = {m: float(np.nanmean([v[m] for v in per_task.values()])) for m in METRICS}
    ci = {}
    for m in ("trial_success", "yang_success"):
        allv = np.concatenate(pooled[m]) if pooled[m] else np.zeros(0, bool)
        ci[m] = wilson(int(allv.sum()), int(allv.size))
    ci["step_accuracy"] = mean_interval(np.concatenate(pooled["step"]) if pooled["step"]
                                        else np.zeros(0))
    return {"per_task": per_task, "mean": mean, "ci": ci}


def evaluate_circuit(circuit: Circuit, tasks: tuple[str, ...], trials: int = 64,
                     seed: int = 0, backend: str = "rate", **options: Any) -> dict[str, Any]:
    """Evaluate ``circuit`` on held-out trials of ``tasks`` with ``backend``."""
    if backend not in _BACKENDS:
        raise NeurosheetError(unknown_name_message("backend", backend, _BACKENDS))
    from neurosheet.tasks import resolve_tasks

    tasks = resolve_tasks(list(tasks))
    missing = [t for t in tasks if t not in circuit.tasks]
    if missing:
        more = ", ..." if len(circuit.tasks) > 8 else ""
        raise NeurosheetError(
            f"the network was not trained on {', '.join(missing[:5])} "
            f"(its tasks: {', '.join(circuit.tasks[:8])}{more})"
        )
    batches = heldout_batches(tasks, trials, seed, rule_inputs=circuit.tasks)
    result = score_batches(_BACKENDS[backend](circuit, **options), batches, tasks)
    result.update(backend=backend, trials=trials, seed=seed)
    return result


def evaluate_run(run_dir: str | Path, tasks: tuple[str, ...] | None = None, trials: int = 64,
                 seed: int = 0, backend: str = "rate", **options: Any) -> dict[str, Any]:
    """Evaluate the circuit of a run directory (on its own tasks unless ``tasks`` is given)."""
    circuit = load_run_circuit(run_dir)
    return evaluate_circuit(circuit, tasks or circuit.tasks, trials, seed, backend, **options)
