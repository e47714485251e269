"""Spiking backends for held-out evaluation: ``circuit -> (inputs [T, B, n_in] -> logits)``.

:func:`spiking_logits_fn` converts a circuit (calibrating g on trials of its own tasks, or
reusing the run directory's saved conversion) and returns a function that simulates task
inputs with snntorch or Brian2 and decodes the readout. :func:`register` offers both as
``neurosheet evaluate --backend snntorch|brian2`` through :mod:`neurosheet.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.circuit import Circuit
from neurosheet.conversion import ConversionConfig, SpikingCircuit, convert
from neurosheet.spiking.base import BACKENDS, get_backend


def spiking_logits_fn(circuit: Circuit, backend: str = "snntorch", *,
                      substeps: int | None = None, rho_max: float | None = None,
                      gate: str | None = None, calibration_trials: int = 64, seed: int = 0,
                      run_dir: str | Path | None = None, device: str | None = None,
                      brian2_target: str = "auto", progress: bool = False,
                      **_: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Convert ``circuit`` and return ``inputs -> logits`` simulated by ``backend``.

    With ``run_dir`` the conversion is read from / saved to the run (``spiking/conversion.json``)
    and Brian2 caches its build there.
    """
    from neurosheet.spiking import rundir

    d = ConversionConfig()
    config = ConversionConfig(substeps=substeps or d.substeps, rho_max=rho_max or d.rho_max,
                              gate=gate or d.gate)
    sc: SpikingCircuit
    if run_dir is not None:
        sc = rundir.spiking_for_run(run_dir, circuit, config, calibration_trials, seed)
    else:
        batch = rundir.calibration_batch(circuit, calibration_trials, seed)
        sc = convert(circuit, batch.inputs, config, mask=batch.decision,
                     valid=rundir.valid_steps(batch))
    if backend == "brian2":
        build = None if run_dir is None else rundir.brian2_build_dir(run_dir)
        sim = get_backend("brian2", target=brian2_target, build_dir=build)
    else:
        sim = get_backend(backend, device=device)

    def run(inputs: np.ndarray) -> np.ndarray:
        return sim.run(sc, inputs, progress=progress).logits.astype(np.float32)

    run.spiking = sc  # type: ignore[attr-defined]
    return run


def register() -> None:
    """Offer the spiking backends to ``neurosheet evaluate`` (idempotent)."""
    from neurosheet.evaluation import backends, register_backend

    for name in BACKENDS:
        if name not in backends():
            register_backend(name, lambda circuit, _name=name, **opts: spiking_logits_fn(
                circuit, _name, **opts))
