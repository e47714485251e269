"""Output paths checked before any work: a folder that is a file, a path under a file, a
read-only folder are refused at once, with one line naming the parameter, never after a run.

Every stage that writes calls one of these first; the CLI maps ``param`` to its flag.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurosheet.core.errors import NeurosheetError


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or itself) that exists."""
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(".")


def _access(path: Path, mode: int) -> bool:
    """``os.access`` for the effective user where the platform can tell."""
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


def _writable(folder: Path) -> bool:
    """Can this process create files in ``folder`` (permissions, read-only mounts, immutable)?"""
    return _access(folder, os.W_OK | os.X_OK)


def check_writable_dir(path: str | os.PathLike[str], param: str = "out",
                       what: str = "output folder", files: tuple[str, ...] = ()) -> Path:
    """``path`` is (or can be created as) a folder this process can write into.

    ``files`` names files inside the folder that will be modified in place (appended to,
    truncated): when they exist they must be writable too. Nothing is created.
    """
    p = Path(path).expanduser()
    if not str(path).strip():
        raise NeurosheetError(f"{what} is empty", param)
    if p.exists():
        if not p.is_dir():
            raise NeurosheetError(f"{what} {p} is an existing file, not a folder", param)
        if not _writable(p):
            raise NeurosheetError(f"{what} {p} is not writable (permission denied or "
                                  "read-only)", param)
        for name in files:
            f = p / name
            if f.exists() and not (f.is_file() and _access(f, os.W_OK)):
                raise NeurosheetError(f"{f} is not writable (permission denied or read-only)",
                                      param)
        return p
    base = _existing_ancestor(p)
    if not base.is_dir():
        raise NeurosheetError(f"cannot create {what} {p}: {base} is a file, not a folder", param)
    if not _writable(base):
        raise NeurosheetError(f"cannot create {what} {p}: {base} is not writable (permission "
                              "denied or read-only)", param)
    return p


def check_writable_file(path: str | os.PathLike[str], param: str,
                        what: str = "output file") -> Path:
    """``path`` names a file this process can (over)write: not a folder, its folder writable.

    The file is written atomically (a sibling temporary file renamed over it), so what
    matters is its folder, which may not exist yet. Nothing is created.
    """
    p = Path(path).expanduser()
    if not str(path).strip():
        raise NeurosheetError(f"{what} is empty", param)
    if p.is_dir():
        raise NeurosheetError(f"{what} {p} is an existing folder, not a file", param)
    if str(path).endswith(("/", os.sep)):
        raise NeurosheetError(f"{what} {path} names a folder, not a file", param)
    base = _existing_ancestor(p.parent)
    if not base.is_dir():
        raise NeurosheetError(f"cannot write {what} {p}: {base} is a file, not a folder", param)
    if not _writable(base):
        raise NeurosheetError(f"cannot write {what} {p}: {base} is not writable (permission "
                              "denied or read-only)", param)
    return p
