"""Every Mod-Cog task as a gymnasium id: ``neurosheet/ModCog-<task>-v0`` (default mode) and
``neurosheet/ModCogRef-<task>-v0`` (reference mode), 126 each.

Registration stores entry points as strings (gymnasium's own pattern), so it imports neither
neurogym nor torch; ``gym.make`` imports ``neurosheet.tasks.envs`` on first use.
``import neurosheet`` calls :func:`register_envs`.
"""

from __future__ import annotations

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks.registry import TASKS, resolve_task

NAMESPACE = "neurosheet"
VERSION = 0
ENTRY_POINT = "neurosheet.tasks.envs:ModCogEnv"
_PREFIX = {"fixed": "ModCog", "reference": "ModCogRef"}


def env_id(task: str, mode: str = "fixed") -> str:
    """The gymnasium id of a task (name or alias), e.g. ``neurosheet/ModCog-dlygo-intr-v0``."""
    if mode not in _PREFIX:
        raise NeurosheetError(f"unknown task mode {mode!r}; use one of {', '.join(_PREFIX)}")
    return f"{NAMESPACE}/{_PREFIX[mode]}-{resolve_task(task)}-v{VERSION}"


def env_ids(mode: str = "fixed") -> tuple[str, ...]:
    """The 126 gymnasium ids of one mode, in ``TASKS`` order."""
    return tuple(env_id(t, mode) for t in TASKS)


def register_envs() -> None:
    """Register the 252 ids with gymnasium (ids already registered are left alone)."""
    from gymnasium.envs.registration import register, registry

    for mode in _PREFIX:
        for task in TASKS:
            name = env_id(task, mode)
            if name not in registry:
                register(id=name, entry_point=ENTRY_POINT, kwargs={"task": task, "mode": mode})
