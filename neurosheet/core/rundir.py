"""The run directory: the hand-off from training to every later stage.

Layout (all files written atomically, except ``metrics.jsonl`` which is append-only and
trimmed back to the last checkpoint on resume)::

    config.json        resolved preset + suite + tasks + seed + versions (what was run)
    config.toml        the same settings as an editable model preset
    graph.npz          the SheetGraph (neurosheet.graph.sheetgraph format)
    circuit.npz        the latest weights on the graph's edges (neurosheet.graph.circuit format)
    checkpoint.pt      model + optimizer + RNG states + step, for exact resume
    metrics.jsonl      one JSON object per line: {"kind": "train", ...} / {"kind": "eval", ...}
    eval.json          the final held-out evaluation (per task and mean)
    summary.json       steps done, final accuracy, steps to criterion, wall time
    plots/learning_curves.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neurosheet.core.errors import NeurosheetError

CONFIG_JSON = "config.json"
CONFIG_TOML = "config.toml"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EVAL = "eval.json"
SUMMARY = "summary.json"
PLOTS = "plots"
CURVES_PLOT = "plots/learning_curves.png"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of a run directory; missing or damaged -> one clear error."""
    if not path.is_file():
        raise NeurosheetError(f"{path.name} not found in {path.parent} (not a training run?)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NeurosheetError(f"{path}: damaged JSON ({exc})") from None


def read_config(run_dir: Path) -> dict[str, Any]:
    """The resolved configuration of a run."""
    if not Path(run_dir).is_dir():
        raise NeurosheetError(f"run directory not found: {run_dir}")
    return read_json(Path(run_dir) / CONFIG_JSON)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of ``metrics.jsonl`` (a torn last line, from a crash, is skipped)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
