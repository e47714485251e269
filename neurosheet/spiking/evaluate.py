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
from neurosheet.spiking.conversion import ConversionConfig, SpikingCircuit, convert


def spiking_logits_fn(circuit: Circuit, backend: str = "snntorch", *,
                      substeps: int | None = None, rho_max: float | None = None,
                      gate: str | None = None, calibration_trials: int = 64, seed: int = 0,
                      run_directory: str | Path | None = None, device: str | None = None,
                      brian2_target: str = "auto", progress: bool = False,
                      **_: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Convert ``circuit`` and return ``inputs -> logits`` simulated by ``backend``.

    With ``run_directory`` the conversion is read from / saved to the run (``spiking/conversion.json``)
    and Brian2 caches its build there.
    """
    from neurosheet.spiking import rundir

    d = ConversionConfig()
    config = ConversionConfig(substeps=substeps or d.substeps, rho_max=rho_max or d.rho_max,
                              gate=gate or d.gate)
    sc: SpikingCircuit
    if run_directory is not None:
        sc = rundir.spiking_for_run(run_directory, circuit, config, calibration_trials, seed)
    else:
        batch = rundir.calibration_batch(circuit, calibration_trials, seed)
        sc = convert(circuit, batch.inputs, config, mask=batch.decision,
                     valid=rundir.valid_steps(batch))
    if backend == "brian2":
        build = None if run_directory is None else rundir.brian2_build_dir(run_directory)
        sim = get_backend("brian2", target=brian2_target, build_dir=build)
    else:
        sim = get_backend(backend, device=device)

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
SPIKING_OPTIONS = ("rho_max", "gate", "device", "brian2_target", "calibration_trials")


def add_evaluate_args(p: Any) -> None:
    """Spiking knobs for ``neurosheet evaluate`` (its ``--substeps`` is K for spiking backends)."""
    from neurosheet.spiking.backends.brian2 import TARGETS
    from neurosheet.spiking.conversion import GATE_MODES

    d = ConversionConfig()
    g = p.add_argument_group("spiking backends (snntorch, brian2)")
    g.add_argument("--rho-max", type=float, default=d.rho_max,
                   help=f"spikes per step at the percentile rate (default {d.rho_max})")
    g.add_argument("--gate", choices=GATE_MODES, default=d.gate,
                   help="what a failed 'rate model works at K sub-steps' check does")
    g.add_argument("--device", help="snntorch device (default: cuda when available)")
    g.add_argument("--brian2-target", choices=TARGETS, default="auto",
                   help="Brian2 code generation (default auto: cython, else numpy)")
    g.add_argument("--calibration-trials", type=int, default=64,
                   help="trials that calibrate the spike scale g (default 64)")


def spiking_options(args: Any) -> dict[str, Any]:
    """Factory options for a spiking backend from parsed ``evaluate`` arguments."""
    opts = {k: getattr(args, k) for k in SPIKING_OPTIONS if getattr(args, k, None) is not None}
    opts["run_directory"] = args.run_dir
    opts["progress"] = not getattr(args, "json", False)
    return opts


def compare(spiking: dict[str, Any], rate: dict[str, Any]) -> dict[str, Any]:
    """Per-task spiking vs rate accuracy and their ratio (the fidelity bar is mean ratio >= 0.9)."""
    rows = {}
    for name, s in spiking["per_task"].items():
        r = rate["per_task"][name]
        rows[name] = {"spiking": s["step_accuracy"], "rate": r["step_accuracy"],
                      "spiking_trial": s["trial_success"], "rate_trial": r["trial_success"]}
    ms, mr = spiking["mean"]["step_accuracy"], rate["mean"]["step_accuracy"]
    return {"per_task": rows, "mean_spiking": ms, "mean_rate": mr,
            "ratio": ms / mr if mr else float("nan")}


def format_comparison(backend: str, cmp: dict[str, Any]) -> str:
    """Table: step accuracy and trial success of the spiking network next to the rate network's."""
    head = f"{'task':<22}{backend + ' step':>16}{'rate step':>11}{'spk trial':>11}{'rate trial':>11}"
    lines = [head, "-" * len(head)]
    for name, r in cmp["per_task"].items():
        lines.append(f"{name:<22}{r['spiking']:>16.3f}{r['rate']:>11.3f}"
                     f"{r['spiking_trial']:>11.3f}{r['rate_trial']:>11.3f}")
    lines.append("-" * len(head))
    lines.append(f"{'mean over tasks':<22}{cmp['mean_spiking']:>16.3f}{cmp['mean_rate']:>11.3f}")
    lines.append(f"spiking / rate mean step accuracy: {cmp['ratio']:.3f}")
    return "\n".join(lines)
