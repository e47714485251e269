"""The Mod-Cog task battery (Khona et al. 2023; Yang et al. 2019): 126 tasks, batched and scored.

``TASKS`` names every task; ``TrialSampler`` draws padded batches with a one-hot rule input,
every trial fixed by its seed and index (vectorized numpy); ``score`` measures outputs per task;
``load_suite`` reads the task lists in ``tasks/*.toml``; ``ModCogEnv`` is each task as a
neurogym TrialEnv (a gymnasium Env), registered as ``neurosheet/ModCog-<task>-v0``
(``env_id``). Every name is imported on first use, so that gymnasium's plugin hook, which
imports ``neurosheet.tasks.gym_ids`` on ``import gymnasium``, loads only the registry, and
neurogym (which imports torch) loads only with ``ModCogEnv``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DECISION_WEIGHT": "dataset",
    "TaskBatch": "dataset",
    "TrialSampler": "dataset",
    "ModCogEnv": "envs",
    "env_id": "gym_ids",
    "env_ids": "gym_ids",
    "register_envs": "gym_ids",
    "METRICS": "metrics",
    "score": "metrics",
    **{name: "registry" for name in (
        "ALIASES", "BASE_TASKS", "DT_MS", "INT_BASES", "N_OBS", "N_OUT", "N_RING", "SPECS",
        "TASKS", "TaskSpec", "resolve_task", "resolve_tasks", "task_spec")},
    "Suite": "suites",
    "list_suites": "suites",
    "load_suite": "suites",
}



def __getattr__(name: str) -> Any:
    """Each public name from its module, imported on first access."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_LAZY)
