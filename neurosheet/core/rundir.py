"""The run directory: the hand-off from training to every later stage, owned by one type.

:class:`RunDir` names every file of a run directory; no other module spells a file name.
Layout (all files written atomically, except ``metrics.jsonl`` which is append-only and
trimmed back to the last checkpoint on resume)::

    config.json        resolved preset + suite + tasks + seed + versions (what was run)
    config.toml        the same settings as an editable model preset
    graph.npz          the SheetGraph (format tag "neurosheet.graph")
    circuit.npz        the latest weights on the graph's edges (format tag "neurosheet.circuit")
    checkpoint.pt      model + optimizer + RNG states + step, for exact resume
    metrics.jsonl      one JSON object per line: {"kind": "train", ...} / {"kind": "eval", ...}
    eval.json          the final held-out evaluation (per task and mean)
    summary.json       steps done, final accuracy, steps to criterion, wall time
    plots/learning_curves.png
    spiking/conversion.npz    the converted spiking circuit (keyed on graph, weights and knobs)
    spiking/conversion.json   the same, readable (neuron model, constants, provenance)
    spiking/circuit.npz       the fine-tuned spiking circuit (``neurosheet finetune``)
    spiking/finetune/         fine-tuning's checkpoint, metrics and best circuit so far
    spike_counts.npz   spikes per neuron per trial (the synaptic-op budget's activity)
    pruned/            BIMT runs: the pruned circuit, a run directory of its own
    .lock              empty; a writer (train, pipeline) holds an flock on it (one writer)

``summary.json`` says whether training finished (``complete``); a run directory without it,
or with ``complete: false``, holds partly trained weights and later stages say so
(:meth:`RunDir.unfinished`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk: the path of each of its files and their generic readers."""

    path: Path

    def __init__(self, path: str | Path | RunDir) -> None:
        object.__setattr__(self, "path", Path(path.path if isinstance(path, RunDir) else path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # ---------------------------------------------------------------- file names
    @property
    def config_json(self) -> Path:
        return self.path / "config.json"

    @property
    def config_toml(self) -> Path:
        return self.path / "config.toml"

    @property
    def graph(self) -> Path:
        return self.path / "graph.npz"

    @property
    def circuit(self) -> Path:
        return self.path / "circuit.npz"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def curves_plot(self) -> Path:
        return self.plots / "learning_curves.png"

    @property
    def spiking(self) -> Path:
        return self.path / "spiking"

    @property
    def conversion(self) -> Path:
        return self.spiking / "conversion.npz"

    @property
    def conversion_json(self) -> Path:
        return self.spiking / "conversion.json"

    @property
    def spiking_circuit(self) -> Path:
        return self.spiking / "circuit.npz"

    @property
    def finetune(self) -> Path:
        return self.spiking / "finetune"

    @property
    def spike_counts(self) -> Path:
        return self.path / "spike_counts.npz"

    @property
    def pruned(self) -> RunDir:
        return RunDir(self.path / "pruned")

    @property
    def lock(self) -> Path:
        return self.path / LOCK_NAME

    # ---------------------------------------------------------------- readers
    def require(self) -> RunDir:
        """This run directory, or one clear error when it does not exist."""
        if not self.path.is_dir():
            raise NeurosheetError(f"run directory not found: {self.path}")
        return self

    def has_circuit(self) -> bool:
        return self.graph.is_file() and self.circuit.is_file()

    def read_config(self) -> dict[str, Any]:
        """The resolved configuration of the run."""
        self.require()
        return read_json(self.config_json)

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary)

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def unfinished(self) -> str | None:
        """Why this training run is not finished (None when it is, or is no training run).

        A run killed before its end keeps ``circuit.npz`` (partly or un-trained weights);
        ``summary.json`` with ``complete: true`` is written only when training reached its
        step count.
        """
        if not self.config_json.is_file():
            return None  # not a training run (a bare circuit, a pruned sub-run)
        try:
            summary = json.loads(self.summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"{self.path} is not a finished training run (no readable summary.json)"
        if not isinstance(summary, dict):
            return f"{self.path}: summary.json is not a JSON object"
        if summary.get("complete") is not True:
            return (f"{self.path} is not a finished training run (training to step "
                    f"{summary.get('target_steps', '?')} did not finish): its weights are "
                    "partly trained")
        return None

    def writer(self, param: str = "out") -> contextlib.AbstractContextManager[Path]:
        """Hold this run directory's one-writer lock (see :func:`exclusive_dir`)."""
        return exclusive_dir(self.path, param, "run directory")


LOCK_NAME = ".lock"
_HELD: dict[str, list[Any]] = {}  # realpath -> [open lock file, depth]: re-entrant per process
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def exclusive_dir(path: str | Path, param: str = "out", what: str = "output folder"
                  ) -> Iterator[Path]:
    """Create ``path`` and hold its one-writer lock; clean temps left by killed writers.

    The lock is an ``flock`` on ``path/.lock``: a second process is refused at once with one
    line; the OS releases the lock of a process that dies, so a killed run never blocks the
    next one. Re-entrant within a process (the pipeline's lock covers its training stage).
    The folder is checked for writability first; nothing in it is modified.
    """
    from neurosheet.core.io import clean_stale_temps
    from neurosheet.core.paths import check_writable_dir

    folder = check_writable_dir(path, param, what)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is None:
        try:
            fh = open(folder / LOCK_NAME, "a")  # held until the context ends
        except OSError as exc:
            raise NeurosheetError(f"cannot lock {what} {folder}: {exc.strerror or exc}",
                                  param) from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise NeurosheetError(
                f"{what} {folder} is in use by another neurosheet process (it holds "
                f"{folder / LOCK_NAME}); wait for it to finish or use another folder",
                param) from None
        with _HELD_GUARD:
            _HELD[key] = [fh, 1]
        clean_stale_temps(folder)
    try:
        yield folder
    finally:
        with _HELD_GUARD:
            entry = _HELD[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[key]
                entry[0].close()  # releases the flock


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of a run directory; missing or damaged -> one clear error."""
    path = Path(path)
    if not path.is_file():
        raise NeurosheetError(f"{path.name} not found in {path.parent} (not a training run?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NeurosheetError(f"{path}: damaged JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NeurosheetError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved configuration of a run."""
    return RunDir(run_dir).read_config()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``metrics.jsonl`` (a torn last line, from a crash, is skipped)."""
    path = RunDir(run_dir).metrics
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays (dtype, shape and bytes): ties saved files to the weights they came
    from (e.g. a saved conversion to the rate weights it was computed on)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()
