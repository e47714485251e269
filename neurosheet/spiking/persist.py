"""The run-directory side of spiking: task inputs, calibration, the saved conversion.

The run's ``spiking/conversion.json`` (see :class:`~neurosheet.core.rundir.RunDir`) records the
conversion constants (g, beta, knobs, gate) keyed by the graph fingerprint, so ``simulate``,
``evaluate`` and ``export`` of one run use the same spiking network.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.core.rundir import RunDir
from neurosheet.core.seeds import SeedPlan
from neurosheet.graph.circuit import Circuit
from neurosheet.spiking.conversion import (
    ConversionConfig,
    GateReport,
    SpikingCircuit,
    convert,
)


# ------------------------------------------------------------------ task inputs
def _tasks_module() -> Any:
    try:
        import neurosheet.tasks as tasks
    except ImportError:
        raise NeurosheetError(
            "the Mod-Cog task package (neurosheet.tasks) is not available; give input arrays"
        ) from None
    return tasks


def sampler(circuit: Circuit, seed: int) -> Any:
    """A trial sampler over the circuit's trained tasks (same rule-input layout as training)."""
    if not circuit.tasks:
        raise NeurosheetError("this circuit records no tasks: give input arrays (inputs)")
    return _tasks_module().TrialSampler(list(circuit.tasks), seed=seed)


def calibration_batch(circuit: Circuit, trials: int, seed: int) -> Any:
    """Trials mixed over the circuit's tasks, drawn from the run's 'calibration' seed stream."""
    return sampler(circuit, SeedPlan(seed).calibration).sample(trials)


def valid_steps(batch: Any) -> np.ndarray:
    """``[T, B]`` bool: the steps inside each trial of a padded task batch."""
    return np.arange(batch.inputs.shape[0])[:, None] < np.asarray(batch.lengths)[None, :]


def load_inputs(path: str | Path, n_inputs: int) -> np.ndarray:
    """A user's input array ``[T, B, n_in]`` from ``.npy``."""
    path = Path(path)
    if not path.is_file():
        raise NeurosheetError(f"inputs file not found: {path}")
    try:
        u = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise NeurosheetError(f"{path}: not a .npy array ({exc})") from None
    if u.ndim != 3 or u.shape[2] != n_inputs:
        raise NeurosheetError(f"{path}: inputs must have shape [T, B, {n_inputs}], got {list(u.shape)}")
    return u.astype(np.float32)


# ------------------------------------------------------------------ saved conversion
def save_conversion(run_dir: str | Path, spiking: SpikingCircuit) -> Path:
    """Record the conversion constants in ``DIR/spiking/conversion.json``."""
    data = spiking.summary()
    data["graph_fingerprint"] = spiking.graph.fingerprint()
    return write_json(RunDir(run_dir).conversion, data)


def load_conversion(run_dir: str | Path, circuit: Circuit,
                    config: ConversionConfig | None = None) -> SpikingCircuit | None:
    """The saved conversion of this run, if it exists, belongs to ``circuit`` and used ``config``."""
    path = RunDir(run_dir).conversion
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data["graph_fingerprint"] != circuit.graph.fingerprint():
            return None
        saved = ConversionConfig(**data["config"])
        gate = data.get("gate")
        report = None if gate is None else GateReport(
            **{f.name: gate[f.name] for f in fields(GateReport)})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NeurosheetError(f"{path}: damaged conversion file ({exc})") from None
    if config is not None and asdict(saved) != asdict(config):
        return None
    return SpikingCircuit(circuit, saved, float(data["g"]), float(data["beta"]),
                          float(data["rate_percentile"]), report, tuple(data.get("notes", ())))


def spiking_for_run(run_dir: str | Path, circuit: Circuit, config: ConversionConfig,
                    calibration_trials: int, seed: int, inputs: np.ndarray | None = None
                    ) -> SpikingCircuit:
    """Reuse the run's saved conversion for ``config``, or calibrate (on task trials or
    ``inputs``) and save it."""
    found = load_conversion(run_dir, circuit, config)
    if found is not None and inputs is None:
        return found
    if inputs is None:
        batch = calibration_batch(circuit, calibration_trials, seed)
        sc = convert(circuit, batch.inputs, config, mask=batch.decision, valid=valid_steps(batch))
    else:
        sc = convert(circuit, inputs, config)
    save_conversion(run_dir, sc)
    return sc
