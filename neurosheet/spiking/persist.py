"""The run-directory side of spiking: task inputs, calibration, the saved circuits.

The run's ``spiking/conversion.npz`` (see :class:`~neurosheet.core.rundir.RunDir`; a readable
``conversion.json`` beside it) is the converted :class:`SpikingCircuit`, keyed by the graph,
the rate weights (a fingerprint of the weight arrays) and the conversion knobs: a changed
weight, graph or knob converts again. ``spiking/circuit.npz`` is the fine-tuned circuit
(``neurosheet finetune``); when it exists and was tuned from the current rate weights with the
same neuron model, every spiking stage (``simulate``, ``evaluate``, ``export``, ``budget``, the
pipeline) uses it, simulated at the requested K.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.core.rundir import RunDir
from neurosheet.core.seeds import SeedPlan
from neurosheet.graph.circuit import Circuit, task_mode_of
from neurosheet.spiking.conversion import ConversionConfig, convert, rate_weights_fingerprint
from neurosheet.spiking.model import SpikingCircuit

log = logging.getLogger(__name__)


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
    """A trial sampler over the circuit's trained tasks (same rule-input layout and task mode
    as training)."""
    if not circuit.tasks:
        raise NeurosheetError("this circuit records no tasks: give input arrays (inputs)")
    return _tasks_module().TrialSampler(list(circuit.tasks), seed=seed,
                                        mode=task_mode_of(circuit))


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
        raise NeurosheetError(f"inputs file not found: {path}", "inputs")
    try:
        u = np.load(path, allow_pickle=False)
        if isinstance(u, np.lib.npyio.NpzFile):
            names = list(u.files)
            u.close()
            raise NeurosheetError(f"{path}: an .npz archive ({', '.join(names[:3]) or 'empty'}),"
                                  " not one .npy array", "inputs")
    except NeurosheetError:
        raise
    except Exception as exc:  # numpy raises many types for damaged files
        detail = "pickled object, not an array" if "pickle" in str(exc) else \
            (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise NeurosheetError(f"{path}: not a readable .npy array ({detail})", "inputs") from None
    if not np.issubdtype(u.dtype, np.number) or np.issubdtype(u.dtype, np.complexfloating):
        raise NeurosheetError(f"{path}: inputs must be real numbers, got dtype {u.dtype}",
                              "inputs")
    if u.ndim != 3 or u.shape[2] != n_inputs or 0 in u.shape:
        raise NeurosheetError(f"{path}: inputs must have shape [T, B, {n_inputs}], got "
                              f"{list(u.shape)}", "inputs")
    u = u.astype(np.float32)
    if not np.isfinite(u).all():
        raise NeurosheetError(f"{path}: inputs contain NaN or infinite values (or values too "
                              "large for float32)", "inputs")
    return u


# ------------------------------------------------------------------ saved circuits
def save_conversion(run_dir: str | Path, spiking: SpikingCircuit) -> Path:
    """Record the converted circuit in ``DIR/spiking/conversion.npz`` (+ a JSON summary)."""
    run = RunDir(run_dir)
    write_json(run.conversion_json, spiking.summary())
    return spiking.save(run.conversion)


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
    """Was ``sc`` made from these rate weights (and this graph), for the same task mode?"""
    return (sc.meta.get("rate_weights") == rate_weights_fingerprint(circuit)
            and sc.meta.get("graph_fingerprint") == circuit.graph.fingerprint()
            and task_mode_of(sc) == task_mode_of(circuit))


def load_from(path: str | Path, circuit: Circuit) -> SpikingCircuit | None:
    """The spiking circuit saved at ``path`` if it was made from ``circuit``'s current weights
    (and graph); else None (a continued fine-tuning's kept starting point)."""
    sc = _read(Path(path), circuit)
    return sc if sc is not None and _from(sc, circuit) else None


def load_conversion(run_dir: str | Path, circuit: Circuit,
                    config: ConversionConfig | None = None) -> SpikingCircuit | None:
    """The saved conversion of this run if it was made from ``circuit``'s current weights
    (and with ``config``'s knobs); else None."""
    sc = _read(RunDir(run_dir).conversion, circuit)
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
    sc = _read(RunDir(run_dir).spiking_circuit, circuit)
    if sc is None or not _from(sc, circuit):
        return None
    if config is not None:
        if sc.neuron != config.neuron(sc.neuron.tau_syn_ms):
            return None
        sc = sc.at_substeps(config.substeps)
    return sc


def save_tuned(run_dir: str | Path, spiking: SpikingCircuit) -> Path:
    """Write the fine-tuned circuit to ``DIR/spiking/circuit.npz``."""
    return spiking.save(RunDir(run_dir).spiking_circuit)


def spiking_for_run(run_dir: str | Path, circuit: Circuit, config: ConversionConfig,
                    calibration_trials: int, seed: int, inputs: np.ndarray | None = None,
                    tuned: bool | None = None) -> SpikingCircuit:
    """The spiking circuit of a run: its fine-tuned circuit (``tuned``, default
    ``config.finetuned``, and one matches), else its saved conversion for ``config``, else a
    fresh conversion (calibrated on task trials or ``inputs``), which is saved."""
    if tuned is None:
        tuned = config.finetuned
    if tuned and inputs is None:
        found = load_tuned(run_dir, circuit, config)
        if found is not None:
            return found
    found = load_conversion(run_dir, circuit, config)
    if found is not None and inputs is None:
        return found
    log.info("calibrating the spiking conversion on %s trials (K = %d sub-steps)",
             calibration_trials if inputs is None else inputs.shape[1], config.substeps)
    if inputs is None:
        batch = calibration_batch(circuit, calibration_trials, seed)
        sc = convert(circuit, batch.inputs, config, mask=batch.decision, valid=valid_steps(batch))
    else:
        sc = convert(circuit, inputs, config)
    save_conversion(run_dir, sc)
    return sc
