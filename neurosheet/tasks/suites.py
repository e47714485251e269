"""Task suites: named task lists (with optional sampling weights) kept as TOML in ``tasks/``.

A suite file holds ``description``, ``tasks`` (names or reference aliases) and optionally
``weights`` (one per task, relative sampling frequency). Its name is the file stem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import list_presets, load_preset, unknown_name_message
from neurosheet.tasks.dataset import _probabilities
from neurosheet.tasks.registry import resolve_tasks

NO_132 = (
    "suite 'modcog132' is not provided: the papers' 132 tasks cannot be rebuilt faithfully "
    "(the reference defines 126 = 20 base + 40 seq + 22 int + 44 int-seq; 132 matches an old "
    "README that listed dlyanti-int twice, see docs/modcog.md); use modcog126 (full battery) "
    "or modcog82 (the reference's published 82)"
)


class SuiteFile(BaseModel):
    """Schema of a suite TOML file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    description: str = ""
    tasks: list[str] = Field(min_length=1)
    weights: list[float] | None = None


@dataclass(frozen=True)
class Suite:
    """A resolved suite: canonical task names in rule-input order."""

    name: str
    tasks: tuple[str, ...]
    weights: tuple[float, ...] | None
    description: str


def load_suite(name_or_path: str | Path) -> Suite:
    """The suite named ``name_or_path`` (a stem in ``tasks/`` or a ``.toml`` path)."""
    text = str(name_or_path)
    available = list_presets("tasks")
    is_path = text.endswith(".toml") or "/" in text or Path(text).exists()
    if not is_path and text not in available:
        if text == "modcog132":
            raise NeurosheetError(NO_132)
        raise NeurosheetError(unknown_name_message("task suite", text, available))
    data, path = load_preset("tasks", name_or_path, SuiteFile)
    try:
        tasks = resolve_tasks(data.tasks)
        if data.weights is not None:
            _probabilities(data.weights, len(tasks))
    except NeurosheetError as exc:
        raise NeurosheetError(f"{path}: {exc}") from None
    weights = tuple(float(w) for w in data.weights) if data.weights is not None else None
    return Suite(path.stem, tasks, weights, data.description.strip())


def list_suites() -> dict[str, Path]:
    """Names of the shipped suites mapped to their files."""
    return list_presets("tasks")
