"""Held-out evaluation of a trained circuit, per task, with a pluggable simulation backend.

A *backend* turns a :class:`~neurosheet.circuit.Circuit` into a function from task inputs
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

from neurosheet.circuit import Circuit, load_run_circuit
from neurosheet.errors import NeurosheetError
from neurosheet.presets import unknown_name_message
from neurosheet.rate_model import RateRNN

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


def heldout_batches(tasks: tuple[str, ...], trials: int, seed: int) -> dict[str, Any]:
    """A fixed set of ``trials`` held-out trials per task (same seed -> same trials)."""
    from neurosheet.tasks import TrialSampler

    sampler = TrialSampler(tasks, seed=seed)
    return {name: sampler.sample_task(name, trials) for name in tasks}


def score_batches(logits_fn: LogitsFn, batches: dict[str, Any],
                  tasks: tuple[str, ...]) -> dict[str, Any]:
    """Per-task metrics and their unweighted mean over tasks."""
    from neurosheet.tasks import score

    per_task: dict[str, dict[str, float]] = {}
    for name, batch in batches.items():
        logits = logits_fn(batch.inputs)
        per_task[name] = score(logits, batch, tasks)["per_task"][name]
    mean = {m: float(np.mean([v[m] for v in per_task.values()])) for m in METRICS}
    return {"per_task": per_task, "mean": mean}


def evaluate_circuit(circuit: Circuit, tasks: tuple[str, ...], trials: int = 64,
                     seed: int = 0, backend: str = "rate", **options: Any) -> dict[str, Any]:
    """Evaluate ``circuit`` on held-out trials of ``tasks`` with ``backend``."""
    if backend not in _BACKENDS:
        raise NeurosheetError(unknown_name_message("backend", backend, _BACKENDS))
    missing = [t for t in tasks if t not in circuit.tasks]
    if circuit.tasks and missing:
        raise NeurosheetError(
            f"the network was not trained on {', '.join(missing[:5])} "
            f"(its rule inputs are: {', '.join(circuit.tasks[:8])}...)"
        )
    logits_fn = _BACKENDS[backend](circuit, **options)
    result = score_batches(_with_rule_inputs(logits_fn, circuit, tasks),
                           heldout_batches(tasks, trials, seed), tasks)
    result.update(backend=backend, trials=trials, seed=seed)
    return result


def evaluate_run(run_dir: str | Path, tasks: tuple[str, ...] | None = None, trials: int = 64,
                 seed: int = 0, backend: str = "rate", **options: Any) -> dict[str, Any]:
    """Evaluate the circuit of a run directory (on its own tasks unless ``tasks`` is given)."""
    circuit = load_run_circuit(run_dir)
    return evaluate_circuit(circuit, tasks or circuit.tasks, trials, seed, backend, **options)


def _with_rule_inputs(logits_fn: LogitsFn, circuit: Circuit, tasks: tuple[str, ...]) -> LogitsFn:
    """Map inputs built for ``tasks`` onto the rule-input layout the circuit was trained with."""
    if not circuit.tasks or tuple(tasks) == tuple(circuit.tasks):
        return logits_fn
    from neurosheet.tasks import N_OBS

    cols = [circuit.tasks.index(t) for t in tasks]

    def run(inputs: np.ndarray) -> np.ndarray:
        full = np.zeros((*inputs.shape[:2], circuit.n_inputs), dtype=inputs.dtype)
        full[..., :N_OBS] = inputs[..., :N_OBS]
        full[..., [N_OBS + c for c in cols]] = inputs[..., N_OBS:]
        return logits_fn(full)

    return run
