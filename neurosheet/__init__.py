"""neurosheet: locality-masked RNNs on a cortical sheet, from rate training to spiking hardware budgets.

The data path, one subpackage per stage (nothing imports upward)::

    core (errors, files, seeds, run directory) -> graph (sheet, wiring, SheetGraph, Circuit)
        -> tasks (Mod-Cog) -> rate (model, training, BIMT) -> spiking (conversion, backends,
        NIR) -> hardware (targets, partition, budgets) -> reports -> stages -> pipeline, cli

The names below are imported on first use, so ``import neurosheet`` stays light.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "NeurosheetError": "neurosheet.core.errors",
    "Projection": "neurosheet.graph.sheetgraph",
    "SheetGraph": "neurosheet.graph.sheetgraph",
    "Sheet": "neurosheet.graph.sheet",
    "make_sheet": "neurosheet.graph.sheet",
    "build_graph": "neurosheet.graph.wiring",
    "radius_for_density": "neurosheet.graph.wiring",
    "RunDir": "neurosheet.core.rundir",
    "SeedPlan": "neurosheet.core.seeds",
}

def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurosheet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(["__version__", *_LAZY])


def _register_gym_ids() -> None:
    """Register the Mod-Cog gymnasium ids (``neurosheet/ModCog-<task>-v0``) if gymnasium is
    already imported; otherwise gymnasium's plugin entry point (pyproject.toml) registers them on
    ``import gymnasium``. Never imports gymnasium itself, so ``import neurosheet`` stays light."""
    if "gymnasium.envs.registration" in sys.modules:
        importlib.import_module("neurosheet.tasks.gym_ids").register_envs()


_register_gym_ids()
