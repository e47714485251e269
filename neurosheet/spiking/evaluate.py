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
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.model import SpikingCircuit
from neurosheet.spiking.registry import get_spec


def spiking_circuit(circuit: Circuit, conversion: ConversionConfig | None = None, *,
                    run: str | Path | None = None, calibration_trials: int = 64,
                    seed: int = 0, tuned: bool | None = None) -> SpikingCircuit:
    """The run's spiking circuit: its fine-tuned one (``tuned``, default the conversion's
    ``finetuned``, when it was tuned from these weights), else its saved conversion for these
    knobs, else a fresh conversion."""
    from neurosheet.spiking import persist

    config = conversion or ConversionConfig()
    if run is not None:
        return persist.spiking_for_run(run, circuit, config, calibration_trials, seed,
                                       tuned=tuned)
    batch = persist.calibration_batch(circuit, calibration_trials, seed)
    return convert(circuit, batch.inputs, config, mask=batch.decision,
                   valid=persist.valid_steps(batch))


def backend_logits_fn(name: str, circuit: Circuit, *, run: str | Path | None = None,
                      conversion: ConversionConfig | None = None, calibration_trials: int = 64,
                      seed: int = 0, progress: bool = False, tuned: bool | None = None,
                      **options: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``inputs -> logits`` of ``circuit`` run by backend ``name`` (with its own ``options``).

    For a spiking backend the function carries the spiking circuit as ``.spiking`` (the run's
    fine-tuned circuit when ``tuned`` and one exists, else the conversion).
    """
    spec = get_spec(name)
    if conversion is not None and "dtype" not in options and any(
            o.name == "dtype" for o in spec.options):
        options["dtype"] = conversion.dtype  # the conversion's precision, unless asked otherwise
    backend = spec.create(run, **options)
    if spec.kind == "rate":
        return backend.logits_fn(circuit)
    sc = spiking_circuit(circuit, conversion, run=run, calibration_trials=calibration_trials,
                         seed=seed, tuned=tuned)

    def run_fn(inputs: np.ndarray) -> np.ndarray:
        return backend.run(sc, inputs, progress=progress).logits.astype(np.float32)

    run_fn.spiking = sc  # type: ignore[attr-defined]
    return run_fn


def evaluate_backend(circuit: Circuit, name: str = "rate", tasks: tuple[str, ...] | None = None,
                     trials: int = 64, trial_seed: int = 0, task_mode: str = "fixed",
                     **kwargs: Any) -> dict[str, Any]:
    """Held-out accuracy of ``circuit`` run by backend ``name`` (per task and mean).

    ``trial_seed`` is the seed of the held-out trials; ``kwargs`` go to
    :func:`backend_logits_fn` (``run``, ``conversion``, ``calibration_trials``, the run's
    ``seed`` for calibration, ``progress`` and the backend's options); ``task_mode`` is the
    task generator of the held-out trials ('fixed' or 'reference', as the run was trained).
    """
    from neurosheet.rate.evaluation import evaluate_circuit

    kwargs.setdefault("seed", 0)
    fn = backend_logits_fn(name, circuit, **kwargs)
    return evaluate_circuit(circuit, tasks or circuit.tasks, trials, trial_seed, logits_fn=fn,
                            backend=name, mode=task_mode)


def compare(spiking: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
    """Per-task spiking vs rate metrics on the same trials; the headline ratio is trial success
    (issue 11 bar: mean >= 0.95 x rate, no task below 0.85 x its rate value)."""
    rows = {}
    for name, s in spiking["per_task"].items():
        r = rate["per_task"][name]
        rows[name] = {"spiking": s, "rate": r,
                      "ratio": s["trial_success"] / r["trial_success"]
                      if r["trial_success"] else None}
    ms, mr = spiking["mean"]["trial_success"], rate["mean"]["trial_success"]
    ratios = [r["ratio"] for r in rows.values() if r["ratio"] is not None]
    return {"per_task": rows, "mean_spiking": spiking["mean"], "mean_rate": rate["mean"],
            "ci_spiking": spiking.get("ci"), "ci_rate": rate.get("ci"),
            "ratio": ms / mr if mr else None,
            "step_ratio": (spiking["mean"]["step_accuracy"] / rate["mean"]["step_accuracy"]
                           if rate["mean"]["step_accuracy"] else None),
            "worst_task_ratio": min(ratios) if ratios else None}


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _num(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}"


def format_comparison(backend: str, cmp: dict[str, Any], trials: int | None = None) -> str:
    """Table: trial success (headline, 95% Wilson interval) of the spiking network next to the
    rate network's on the same trials, with step accuracy and Yang's 36-degree rule."""
    head = (f"{'task':<14}{backend + ' trial':>26}{'rate trial':>26}{'spk/rate':>9}"
            f"{'step spk/rate':>15}{'Yang spk/rate':>15}")
    lines = [head, "-" * len(head)]
    for name, r in cmp["per_task"].items():
        s, q = r["spiking"], r["rate"]
        lines.append(
            f"{name:<14}{s['trial_success']:>8.3f} {_ci(s.get('ci', {}).get('trial_success')):>17}"
            f"{q['trial_success']:>8.3f} {_ci(q.get('ci', {}).get('trial_success')):>17}"
            f"{_num(r['ratio']):>9}{s['step_accuracy']:>8.3f}/{q['step_accuracy']:.3f}"
            f"{s['yang_success']:>8.3f}/{q['yang_success']:.3f}")
    lines.append("-" * len(head))
    s, q = cmp["mean_spiking"], cmp["mean_rate"]
    cs = (cmp.get("ci_spiking") or {}).get("trial_success")
    cr = (cmp.get("ci_rate") or {}).get("trial_success")
    lines.append(f"{'mean':<14}{s['trial_success']:>8.3f} {_ci(cs):>17}"
                 f"{q['trial_success']:>8.3f} {_ci(cr):>17}{_num(cmp['ratio']):>9}"
                 f"{s['step_accuracy']:>8.3f}/{q['step_accuracy']:.3f}"
                 f"{s['yang_success']:>8.3f}/{q['yang_success']:.3f}")
    per = f" ({trials} trials per task, the same for both)" if trials else ""
    ratio = "undefined (rate accuracy 0)" if cmp["ratio"] is None else _num(cmp["ratio"])
    lines.append(f"spiking / rate trial success {ratio} (worst task "
                 f"{_num(cmp['worst_task_ratio'])}; step accuracy {_num(cmp['step_ratio'])})"
                 f"{per}")
    lines.append("trial success: fixation held and the right unit on every decision step "
                 "(forgives nothing); step: decision steps right, pooled (forgives a wrong "
                 "step); Yang: last step within 36 deg (forgives one ring unit off)")
    return "\n".join(lines)
