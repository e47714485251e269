"""The Mod-Cog task battery (Khona et al. 2023; Yang et al. 2019): 126 tasks, batched and scored.

``TASKS`` names every task; ``TrialSampler`` draws padded batches with a one-hot rule input
from one seed (vectorized numpy); ``score`` measures outputs per task; ``load_suite`` reads
the task lists in ``tasks/*.toml``; ``ModCogEnv`` is each task as a neurogym TrialEnv (a
gymnasium Env), registered as ``neurosheet/ModCog-<task>-v0`` (``env_id``). ``ModCogEnv`` is
imported on first use: neurogym (and with it torch) loads only then.
"""

from typing import Any

from neurosheet.tasks.dataset import DECISION_WEIGHT, TaskBatch, TrialSampler
from neurosheet.tasks.gym_ids import env_id, env_ids, register_envs
from neurosheet.tasks.metrics import METRICS, score
from neurosheet.tasks.registry import (
    ALIASES,
    BASE_TASKS,
    DT_MS,
    INT_BASES,
    N_OBS,
    N_OUT,
    N_RING,
    SPECS,
    TASKS,
    TaskSpec,
    resolve_task,
    resolve_tasks,
    task_spec,
)
from neurosheet.tasks.suites import Suite, list_suites, load_suite

__all__ = [
    "ALIASES",
    "BASE_TASKS",
    "DECISION_WEIGHT",
    "DT_MS",
    "INT_BASES",
    "METRICS",
    "N_OBS",
    "N_OUT",
    "N_RING",
    "SPECS",
    "TASKS",
    "ModCogEnv",
    "Suite",
    "TaskBatch",
    "TaskSpec",
    "TrialSampler",
    "env_id",
    "env_ids",
    "list_suites",
    "load_suite",
    "register_envs",
    "resolve_task",
    "resolve_tasks",
    "score",
    "task_spec",
]


def __getattr__(name: str) -> Any:
    """``ModCogEnv`` on first access (it imports neurogym, which imports torch)."""
    if name == "ModCogEnv":
        from neurosheet.tasks.envs import ModCogEnv

        return ModCogEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
