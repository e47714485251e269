"""Held-out evaluation of a trained circuit, per task: the rate model and the scoring.

:class:`RateBackend` turns a :class:`~neurosheet.graph.circuit.Circuit` into a function from task
inputs ``[T, B, n_in]`` (numpy) to readout logits ``[T, B, n_out]``; :func:`score_batches` scores
any such function on held-out trials. Spiking backends produce the same kind of function
(:mod:`neurosheet.spiking.evaluate`); the registry of names lives in
:mod:`neurosheet.spiking.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit, load_run_circuit
from neurosheet.rate.model import RateRNN

LogitsFn = Callable[[np.ndarray], np.ndarray]
METRICS = ("step_accuracy", "trial_success", "yang_success")


class RateBackend:
    """The rate model as a backend: deterministic (no noise), optionally at other sub-steps."""

    name = "rate"

    def __init__(self, substeps: int | None = None, device: str | None = None) -> None:
        self.substeps = substeps
        self.device = device or "cpu"

    def logits_fn(self, circuit: Circuit) -> LogitsFn:
        """``inputs -> logits`` of ``circuit``'s rate model."""
        model = RateRNN.from_circuit(circuit, substeps=self.substeps).to(self.device).eval()
        device = self.device

        def run(inputs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = model(torch.as_tensor(inputs, dtype=torch.float32, device=device))
            return out.logits.cpu().numpy()

        return run


def heldout_batches(tasks: tuple[str, ...], trials: int, seed: int,
                    rule_inputs: tuple[str, ...] | None = None,
                    mode: str = "fixed") -> dict[str, Any]:
    """A fixed set of ``trials`` held-out trials per task (same seed -> same trials).

    ``rule_inputs``: the rule channels the network was trained with (default ``tasks``);
    ``mode``: the task generator ('fixed' or 'reference'), as in training.
    """
    from neurosheet.tasks import TrialSampler

    sampler = TrialSampler(tasks, seed=seed, rule_inputs=rule_inputs, mode=mode)
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


def check_tasks(circuit: Circuit, tasks: tuple[str, ...]) -> tuple[str, ...]:
    """``tasks`` resolved to canonical names, all of them tasks the circuit was trained on."""
    from neurosheet.tasks import resolve_tasks

    tasks = tuple(resolve_tasks(list(tasks)))
    missing = [t for t in tasks if t not in circuit.tasks]
    if missing:
        more = ", ..." if len(circuit.tasks) > 8 else ""
        raise NeurosheetError(
            f"the network was not trained on {', '.join(missing[:5])} "
            f"(its tasks: {', '.join(circuit.tasks[:8])}{more})"
        )
    return tasks


def evaluate_circuit(circuit: Circuit, tasks: tuple[str, ...], trials: int = 64,
                     seed: int = 0, logits_fn: LogitsFn | None = None,
                     backend: str = "rate", mode: str = "fixed",
                     **options: Any) -> dict[str, Any]:
    """Score ``logits_fn`` (default: the rate model) on held-out trials of ``tasks``.

    The trials depend only on ``(tasks, trials, seed, mode)``, so every backend given the same
    four is scored on the same trials.
    """
    tasks = check_tasks(circuit, tasks)
    fn = logits_fn if logits_fn is not None else RateBackend(**options).logits_fn(circuit)
    batches = heldout_batches(tasks, trials, seed, rule_inputs=circuit.tasks, mode=mode)
    result = score_batches(fn, batches, tasks)
    result.update(backend=backend, trials=trials, seed=seed, task_mode=mode)
    return result


def evaluate_run(run_dir: str | Path, tasks: tuple[str, ...] | None = None, trials: int = 64,
                 seed: int = 0, **options: Any) -> dict[str, Any]:
    """Evaluate the rate circuit of a run directory (on its own tasks unless ``tasks`` is given)."""
    circuit = load_run_circuit(run_dir)
    return evaluate_circuit(circuit, tasks or circuit.tasks, trials, seed, **options)
