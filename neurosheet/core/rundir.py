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
    spiking/conversion.json   the saved conversion (keyed on graph, weights and knobs)
    spiking/brian2/           (older runs) Brian2 build cache; now in the user cache
    spike_counts.npz   spikes per neuron per trial (the synaptic-op budget's activity)
    pruned/            BIMT runs: the pruned circuit, a run directory of its own
"""

from __future__ import annotations

import hashlib
import json
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
        return self.spiking / "conversion.json"

    @property
    def brian2_build(self) -> Path:
        return self.spiking / "brian2"

    @property
    def spike_counts(self) -> Path:
        return self.path / "spike_counts.npz"

    @property
    def pruned(self) -> RunDir:
        return RunDir(self.path / "pruned")

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
    """A short content hash of arrays (dtype, shape and bytes): ties saved files together."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
