"""The run-directory side of spiking: task inputs, calibration, the saved conversion, CLI knobs.

``DIR/spiking/conversion.json`` records the conversion constants (g, beta, knobs, gate) keyed
by the graph fingerprint, so ``simulate``, ``evaluate`` and ``export`` of one run use the same
spiking network. Brian2 builds are cached under ``DIR/spiking/brian2``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.cli.common import positive_int
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.graph.circuit import Circuit
from neurosheet.spiking.conversion import (
    DTYPES,
    GATE_MODES,
    ConversionConfig,
    GateReport,
    SpikingCircuit,
    convert,
)

SPIKING_DIR = "spiking"
CONVERSION_FILE = "conversion.json"


def brian2_build_dir(run_dir: str | Path) -> Path:
    """Where Brian2 caches its compiled code for this run."""
    return Path(run_dir) / SPIKING_DIR / "brian2"


# ------------------------------------------------------------------ CLI knobs
def add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The conversion knobs shared by simulate / evaluate / export."""
    d = ConversionConfig()
    g = p.add_argument_group("conversion (accuracy vs speed)")
    g.add_argument("--substeps", type=positive_int, default=d.substeps,
                   help=f"simulation steps per task step (default {d.substeps})")
    g.add_argument("--rho-max", type=float, default=d.rho_max,
                   help=f"spikes per step at the percentile rate, (0, 1] (default {d.rho_max})")
    g.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"rate percentile that sets the scale g (default {d.percentile})")
    g.add_argument("--gate", choices=GATE_MODES, default=d.gate,
                   help="what a failed 'rate model works at K sub-steps' check does")
    g.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="snntorch precision")
    g.add_argument("--calibration-trials", type=positive_int, default=64,
                   help="trials (mixed over the circuit's tasks) that calibrate g (default 64)")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """Backend options shared by simulate / evaluate."""
    from neurosheet.spiking.backends.brian2 import TARGETS

    p.add_argument("--device", help="snntorch device (default: cuda when available, else cpu)")
    p.add_argument("--brian2-target", choices=TARGETS, default="auto",
                   help="Brian2 code generation (auto: cython with a compiler, else numpy)")


def config_from_args(args: argparse.Namespace) -> ConversionConfig:
    return ConversionConfig(substeps=args.substeps, rho_max=args.rho_max,
                            percentile=args.percentile, gate=args.gate, dtype=args.dtype)


def backend_from_args(args: argparse.Namespace, run_dir: str | Path) -> Any:
    from neurosheet.spiking.backends.base import get_backend

    if args.backend == "brian2":
        return get_backend("brian2", target=args.brian2_target,
                           build_dir=brian2_build_dir(run_dir))
    return get_backend("snntorch", device=args.device)


# ------------------------------------------------------------------ task inputs
def _tasks_module() -> Any:
    try:
        import neurosheet.tasks as tasks
    except ImportError:
        raise NeurosheetError(
            "the Mod-Cog task package (neurosheet.tasks) is not available; pass --inputs FILE.npy"
        ) from None
    return tasks


def sampler(circuit: Circuit, seed: int) -> Any:
    """A trial sampler over the circuit's trained tasks (same rule-input layout as training)."""
    if not circuit.tasks:
        raise NeurosheetError("this circuit records no tasks; pass --inputs FILE.npy")
    return _tasks_module().TrialSampler(list(circuit.tasks), seed=seed)


def calibration_batch(circuit: Circuit, trials: int, seed: int) -> Any:
    """Trials mixed over the circuit's tasks, drawn from their own seed (not the test trials)."""
    return sampler(circuit, seed + 7919).sample(trials)


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
    return write_json(Path(run_dir) / SPIKING_DIR / CONVERSION_FILE, data)


def load_conversion(run_dir: str | Path, circuit: Circuit,
                    config: ConversionConfig | None = None) -> SpikingCircuit | None:
    """The saved conversion of this run, if it exists, belongs to ``circuit`` and used ``config``."""
    path = Path(run_dir) / SPIKING_DIR / CONVERSION_FILE
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
