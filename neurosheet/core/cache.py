"""The user's cache folder for neurosheet (compiled simulator code shared across runs).

``$NEUROSHEET_CACHE`` when set, else ``$XDG_CACHE_HOME/neurosheet``, else
``~/.cache/neurosheet``. What lives here is derived data keyed by its content (e.g. Brian2's
compiled Cython modules are keyed by their generated code), so it is safe to share between
processes and run directories and to delete at any time.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """``<cache>/<parts...>``, created if missing."""
    base = os.environ.get("NEUROSHEET_CACHE")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "neurosheet"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
