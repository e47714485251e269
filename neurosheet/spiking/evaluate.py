"""Spiking backends for held-out evaluation: ``circuit -> (inputs [T, B, n_in] -> logits)``.

:func:`spiking_logits_fn` converts a circuit (calibrating g on trials of its own tasks, or
reusing the run directory's saved conversion) and returns a function that simulates task
inputs with snntorch or Brian2 and decodes the readout. :func:`register` offers both as
``neurosheet evaluate --backend snntorch|brian2`` through :mod:`neurosheet.rate.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.graph.circuit import Circuit
from neurosheet.spiking.backends.base import BACKENDS, get_backend
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.model import SpikingCircuit


def spiking_logits_fn(circuit: Circuit, backend: str = "snntorch", *,
                      substeps: int | None = None, conversion: ConversionConfig | None = None,
                      gate: str | None = None, calibration_trials: int = 64, seed: int = 0,
                      run_directory: str | Path | None = None, device: str | None = None,
                      dtype: str | None = None, brian2_target: str = "auto",
                      tuned: bool = True, progress: bool = False,
                      **_: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Convert ``circuit`` (or take its run's fine-tuned circuit) and return ``inputs -> logits``
    simulated by ``backend``.

    With ``run_directory`` the spiking circuit is read from / saved to the run (``tuned``: use
    ``spiking/circuit.npz`` when it was tuned from these weights) and Brian2 caches its build
    there. ``substeps`` and ``gate`` override those of ``conversion``.
    """
    from dataclasses import replace

    from neurosheet.spiking import rundir

    config = conversion or ConversionConfig()
    if substeps:
        config = replace(config, substeps=substeps)
    if gate:
        config = replace(config, gate=gate)
    sc: SpikingCircuit
    if run_directory is not None:
        sc = rundir.spiking_for_run(run_directory, circuit, config, calibration_trials, seed,
                                    tuned=tuned)
    else:
        batch = rundir.calibration_batch(circuit, calibration_trials, seed)
        sc = convert(circuit, batch.inputs, config, mask=batch.decision,
                     valid=rundir.valid_steps(batch))
    if backend == "brian2":
        build = None if run_directory is None else rundir.brian2_build_dir(run_directory)
        sim = get_backend("brian2", target=brian2_target, build_dir=build)
    else:
        sim = get_backend(backend, device=device, dtype=dtype or config.dtype)

    def run(inputs: np.ndarray) -> np.ndarray:
        return sim.run(sc, inputs, progress=progress).logits.astype(np.float32)

    run.spiking = sc  # type: ignore[attr-defined]
    return run


def register() -> None:
    """Offer the spiking backends to ``neurosheet evaluate`` (idempotent)."""
    from neurosheet.rate.evaluation import backends, register_backend

    for name in BACKENDS:
        if name not in backends():
            register_backend(name, lambda circuit, _name=name, **opts: spiking_logits_fn(
                circuit, _name, **opts))


# ------------------------------------------------------------------ `neurosheet evaluate` glue
SPIKING_OPTIONS = ("gate", "device", "brian2_target", "calibration_trials")


def add_evaluate_args(p: Any) -> None:
    """Spiking knobs for ``neurosheet evaluate`` (its ``--substeps`` is K for spiking backends)."""
    from neurosheet.spiking.backends.brian2 import TARGETS
    from neurosheet.spiking.conversion import GATE_MODES

    d = ConversionConfig()
    g = p.add_argument_group("spiking backends (snntorch, brian2)")
    g.add_argument("--gate", choices=GATE_MODES, default=d.gate,
                   help="what a failed 'rate model works at K sub-steps' check does")
    g.add_argument("--device", help="snntorch device (default: cuda when available)")
    g.add_argument("--brian2-target", choices=TARGETS, default="auto",
                   help="Brian2 code generation (default auto: cython, else numpy)")
    g.add_argument("--calibration-trials", type=int, default=64,
                   help="trials that calibrate the conversion (default 64)")
    g.add_argument("--converted", action="store_true",
                   help="simulate the plain conversion even when a fine-tuned circuit exists")


def spiking_options(args: Any) -> dict[str, Any]:
    """Factory options for a spiking backend from parsed ``evaluate`` arguments."""
    opts = {k: getattr(args, k) for k in SPIKING_OPTIONS if getattr(args, k, None) is not None}
    opts["run_directory"] = args.run_dir
    opts["tuned"] = not getattr(args, "converted", False)
    opts["progress"] = not getattr(args, "json", False)
    return opts


def compare(spiking: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
    """Per-task spiking vs rate metrics on the same trials; the headline ratio is trial success
    (issue 11 bar: mean >= 0.95 x rate, no task below 0.85 x its rate value)."""
    rows = {}
    for name, s in spiking["per_task"].items():
        r = rate["per_task"][name]
        rows[name] = {"spiking": s, "rate": r,
                      "ratio": s["trial_success"] / r["trial_success"]
                      if r["trial_success"] else float("nan")}
    ms, mr = spiking["mean"]["trial_success"], rate["mean"]["trial_success"]
    return {"per_task": rows, "mean_spiking": spiking["mean"], "mean_rate": rate["mean"],
            "ci_spiking": spiking.get("ci"), "ci_rate": rate.get("ci"),
            "ratio": ms / mr if mr else float("nan"),
            "worst_task_ratio": min((r["ratio"] for r in rows.values() if r["ratio"] == r["ratio"]),
                                    default=float("nan"))}


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


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
            f"{r['ratio']:>9.3f}{s['step_accuracy']:>8.3f}/{q['step_accuracy']:.3f}"
            f"{s['yang_success']:>8.3f}/{q['yang_success']:.3f}")
    lines.append("-" * len(head))
    s, q = cmp["mean_spiking"], cmp["mean_rate"]
    cs = (cmp.get("ci_spiking") or {}).get("trial_success")
    cr = (cmp.get("ci_rate") or {}).get("trial_success")
    lines.append(f"{'mean':<14}{s['trial_success']:>8.3f} {_ci(cs):>17}"
                 f"{q['trial_success']:>8.3f} {_ci(cr):>17}{cmp['ratio']:>9.3f}"
                 f"{s['step_accuracy']:>8.3f}/{q['step_accuracy']:.3f}"
                 f"{s['yang_success']:>8.3f}/{q['yang_success']:.3f}")
    per = f" ({trials} trials per task, the same for both)" if trials else ""
    lines.append(f"spiking / rate trial success {cmp['ratio']:.3f} (worst task "
                 f"{cmp['worst_task_ratio']:.3f}){per}")
    lines.append("trial success: fixation held and the right unit on every decision step "
                 "(forgives nothing); step: decision steps right, pooled (forgives a wrong "
                 "step); Yang: last step within 36 deg (forgives one ring unit off)")
    return "\n".join(lines)
