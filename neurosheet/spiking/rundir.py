"""The run-directory side of spiking: task inputs, calibration, the saved circuits, CLI knobs.

``DIR/spiking/conversion.npz`` is the converted :class:`SpikingCircuit` (plus a readable
``conversion.json``), keyed by the graph, the rate weights (a fingerprint of the weight arrays)
and the conversion knobs: a changed weight, graph or knob converts again.
``DIR/spiking/circuit.npz`` is the fine-tuned circuit (``neurosheet finetune``); when it
exists and was tuned from the current rate weights and neuron model, every spiking command
(``simulate``, ``evaluate``, ``export``, ``budget``, the pipeline) uses it. Brian2 builds are
cached under ``DIR/spiking/brian2``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.cli.common import positive_int
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.graph.circuit import Circuit
from neurosheet.spiking.conversion import (
    CALIBRATIONS,
    DTYPES,
    GATE_MODES,
    ConversionConfig,
    convert,
    rate_weights_fingerprint,
)
from neurosheet.spiking.model import READOUTS, RESETS, SpikingCircuit

SPIKING_DIR = "spiking"
CONVERSION_FILE = "conversion.npz"
CONVERSION_JSON = "conversion.json"
TUNED_FILE = "circuit.npz"


def brian2_build_dir(run_dir: str | Path) -> Path:
    """Where Brian2 caches its compiled code for this run."""
    return Path(run_dir) / SPIKING_DIR / "brian2"


# ------------------------------------------------------------------ CLI knobs
def add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The conversion knobs shared by simulate / evaluate / export / budget."""
    d = ConversionConfig()
    g = p.add_argument_group("conversion (accuracy vs speed)")
    g.add_argument("--substeps", type=positive_int, default=d.substeps,
                   help=f"simulation steps per task step (default {d.substeps})")
    g.add_argument("--rate-hz", type=float, default=d.rate_hz,
                   help=f"firing rate at the calibration percentile (default {d.rate_hz:g})")
    g.add_argument("--percentile", type=float, default=d.percentile,
                   help=f"rate percentile that sets the scale (default {d.percentile})")
    g.add_argument("--calibration", choices=CALIBRATIONS, default=d.calibration,
                   help=f"one scale for all neurons or one per neuron (default {d.calibration})")
    g.add_argument("--tau-mem", type=float, default=d.tau_mem_ms, dest="tau_mem_ms",
                   help=f"membrane time constant in ms (default {d.tau_mem_ms:g})")
    g.add_argument("--reset", choices=RESETS, default=d.reset,
                   help=f"after a spike: v = 0 (NIR) or v - threshold (default {d.reset})")
    g.add_argument("--readout", choices=READOUTS, default=d.readout,
                   help=f"spike counts per task step or an LI trace (default {d.readout})")
    g.add_argument("--gate", choices=GATE_MODES, default=d.gate,
                   help="what a failed 'rate model works at K sub-steps' check does")
    g.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="snntorch precision")
    g.add_argument("--calibration-trials", type=positive_int, default=64,
                   help="trials (mixed over the circuit's tasks) that calibrate (default 64)")
    g.add_argument("--converted", action="store_true",
                   help="use the plain conversion even when a fine-tuned circuit exists")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    """Backend options shared by simulate / evaluate."""
    from neurosheet.spiking.backends.brian2 import TARGETS

    p.add_argument("--device", help="snntorch device (default: cuda when available, else cpu)")
    p.add_argument("--brian2-target", choices=TARGETS, default="auto",
                   help="Brian2 code generation (auto: cython with a compiler, else numpy)")


def config_from_args(args: argparse.Namespace) -> ConversionConfig:
    return ConversionConfig(substeps=args.substeps, rate_hz=args.rate_hz,
                            percentile=args.percentile, calibration=args.calibration,
                            tau_mem_ms=args.tau_mem_ms, reset=args.reset, readout=args.readout,
                            gate=args.gate, dtype=args.dtype)


def backend_from_args(args: argparse.Namespace, run_dir: str | Path) -> Any:
    from neurosheet.spiking.backends.base import get_backend

    if args.backend == "brian2":
        return get_backend("brian2", target=args.brian2_target,
                           build_dir=brian2_build_dir(run_dir))
    return get_backend("snntorch", device=args.device, dtype=getattr(args, "dtype", None))


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


# ------------------------------------------------------------------ saved circuits
def save_conversion(run_dir: str | Path, spiking: SpikingCircuit) -> Path:
    """Record the converted circuit in ``DIR/spiking/conversion.npz`` (+ a JSON summary)."""
    folder = Path(run_dir) / SPIKING_DIR
    write_json(folder / CONVERSION_JSON, spiking.summary())
    return spiking.save(folder / CONVERSION_FILE)


def _read(path: Path, circuit: Circuit) -> SpikingCircuit | None:
    """A saved spiking circuit on ``circuit``'s graph, or None when it belongs to another."""
    if not path.is_file():
        return None
    try:
        return SpikingCircuit.load(path, circuit.graph)
    except NeurosheetError as exc:
        if "fingerprint differs" in str(exc):
            return None
        raise


def _from(sc: SpikingCircuit, circuit: Circuit) -> bool:
    """Was ``sc`` made from these rate weights (and this graph)?"""
    return (sc.meta.get("rate_weights") == rate_weights_fingerprint(circuit)
            and sc.meta.get("graph_fingerprint") == circuit.graph.fingerprint())


def load_conversion(run_dir: str | Path, circuit: Circuit,
                    config: ConversionConfig | None = None) -> SpikingCircuit | None:
    """The saved conversion of this run if it was made from ``circuit``'s current weights
    (and with ``config``'s knobs); else None."""
    sc = _read(Path(run_dir) / SPIKING_DIR / CONVERSION_FILE, circuit)
    if sc is None or not _from(sc, circuit):
        return None
    saved = ConversionConfig(**sc.meta["conversion"])
    if config is not None and saved.key() != config.key():
        return None
    return sc


def load_tuned(run_dir: str | Path, circuit: Circuit,
               config: ConversionConfig | None = None) -> SpikingCircuit | None:
    """The run's fine-tuned circuit if it was tuned from ``circuit``'s current weights and its
    neuron model is ``config``'s (it is then simulated at ``config.substeps``); else None."""
    sc = _read(Path(run_dir) / SPIKING_DIR / TUNED_FILE, circuit)
    if sc is None or not _from(sc, circuit):
        return None
    if config is not None:
        if sc.neuron != config.neuron(sc.neuron.tau_syn_ms):
            return None
        sc = sc.at_substeps(config.substeps)
    return sc


def save_tuned(run_dir: str | Path, spiking: SpikingCircuit) -> Path:
    """Write the fine-tuned circuit to ``DIR/spiking/circuit.npz``."""
    return spiking.save(Path(run_dir) / SPIKING_DIR / TUNED_FILE)


def spiking_for_run(run_dir: str | Path, circuit: Circuit, config: ConversionConfig,
                    calibration_trials: int, seed: int, inputs: np.ndarray | None = None,
                    tuned: bool = True) -> SpikingCircuit:
    """The spiking circuit of a run: its fine-tuned circuit (``tuned`` and one matches), else
    its saved conversion for ``config``, else a fresh conversion (calibrated on task trials or
    ``inputs``), which is saved."""
    if tuned and inputs is None:
        found = load_tuned(run_dir, circuit, config)
        if found is not None:
            return found
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
