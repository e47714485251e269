"""Any registered backend -> readout logits -> held-out accuracy, on the same trials for all.

:func:`backend_logits_fn` builds ``inputs [T, B, n_in] -> logits`` for a backend named in
:mod:`neurosheet.spiking.registry`: the rate model directly, a spiking simulator through the
conversion (the run directory's saved one when given, so ``simulate``, ``evaluate``, ``export``
and the pipeline share it). :func:`evaluate_backend` scores it on held-out trials that depend
only on ``(tasks, trials, seed)``, so two backends given the same three are compared trial by trial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.graph.circuit import Circuit
from neurosheet.spiking.conversion import ConversionConfig, SpikingCircuit, convert
from neurosheet.spiking.registry import get_spec


def spiking_circuit(circuit: Circuit, conversion: ConversionConfig | None = None, *,
                    run: str | Path | None = None, calibration_trials: int = 64,
                    seed: int = 0) -> SpikingCircuit:
    """The converted circuit: the run's saved conversion for these knobs, or a fresh one."""
    from neurosheet.spiking import persist

    config = conversion or ConversionConfig()
    if run is not None:
        return persist.spiking_for_run(run, circuit, config, calibration_trials, seed)
    batch = persist.calibration_batch(circuit, calibration_trials, seed)
    return convert(circuit, batch.inputs, config, mask=batch.decision,
                   valid=persist.valid_steps(batch))


def backend_logits_fn(name: str, circuit: Circuit, *, run: str | Path | None = None,
                      conversion: ConversionConfig | None = None, calibration_trials: int = 64,
                      seed: int = 0, progress: bool = False,
                      **options: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``inputs -> logits`` of ``circuit`` run by backend ``name`` (with its own ``options``).

    For a spiking backend the function carries the converted circuit as ``.spiking``.
    """
    spec = get_spec(name)
    backend = spec.create(run, **options)
    if spec.kind == "rate":
        return backend.logits_fn(circuit)
    sc = spiking_circuit(circuit, conversion, run=run, calibration_trials=calibration_trials,
                         seed=seed)

    def run_fn(inputs: np.ndarray) -> np.ndarray:
        return backend.run(sc, inputs, progress=progress).logits.astype(np.float32)

    run_fn.spiking = sc  # type: ignore[attr-defined]
    return run_fn


def evaluate_backend(circuit: Circuit, name: str = "rate", tasks: tuple[str, ...] | None = None,
                     trials: int = 64, trial_seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Held-out accuracy of ``circuit`` run by backend ``name`` (per task and mean).

    ``trial_seed`` is the seed of the held-out trials; ``kwargs`` go to
    :func:`backend_logits_fn` (``run``, ``conversion``, ``calibration_trials``, the run's
    ``seed`` for calibration, ``progress`` and the backend's options).
    """
    from neurosheet.rate.evaluation import evaluate_circuit

    kwargs.setdefault("seed", 0)
    fn = backend_logits_fn(name, circuit, **kwargs)
    return evaluate_circuit(circuit, tasks or circuit.tasks, trials, trial_seed, logits_fn=fn,
                            backend=name)


def compare(spiking: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
    """Per-task spiking vs rate accuracy and the fidelity ratio of mean trial success."""
    rows = {}
    for name, s in spiking["per_task"].items():
        r = rate["per_task"][name]
        rows[name] = {"spiking": s["step_accuracy"], "rate": r["step_accuracy"],
                      "spiking_trial": s["trial_success"], "rate_trial": r["trial_success"]}
    ms, mr = spiking["mean"]["step_accuracy"], rate["mean"]["step_accuracy"]
    ts, tr = spiking["mean"]["trial_success"], rate["mean"]["trial_success"]
    return {"per_task": rows, "mean_spiking": ms, "mean_rate": mr,
            "mean_spiking_trial": ts, "mean_rate_trial": tr,
            "ratio": ts / tr if tr else float("nan"),
            "step_ratio": ms / mr if mr else float("nan")}


def format_comparison(backend: str, cmp: dict[str, Any]) -> str:
    """Table: trial success and step accuracy of the spiking network next to the rate network's."""
    head = f"{'task':<22}{'spk trial':>11}{'rate trial':>11}{backend + ' step':>16}{'rate step':>11}"
    lines = [head, "-" * len(head)]
    for name, r in cmp["per_task"].items():
        lines.append(f"{name:<22}{r['spiking_trial']:>11.3f}{r['rate_trial']:>11.3f}"
                     f"{r['spiking']:>16.3f}{r['rate']:>11.3f}")
    lines.append("-" * len(head))
    lines.append(f"{'mean over tasks':<22}{cmp['mean_spiking_trial']:>11.3f}"
                 f"{cmp['mean_rate_trial']:>11.3f}{cmp['mean_spiking']:>16.3f}{cmp['mean_rate']:>11.3f}")
    lines.append(f"spiking / rate mean trial success: {cmp['ratio']:.3f} "
                 f"(step accuracy: {cmp['step_ratio']:.3f})")
    return "\n".join(lines)
