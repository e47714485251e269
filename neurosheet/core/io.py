"""Atomic file writes: a crash or Ctrl-C never leaves a half-written checkpoint or report.

Every writer goes to a temporary file in the destination folder, flushes and fsyncs it,
then ``os.replace``-s it over the target, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success."""
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open writes only ('w' or 'wb')")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically (numpy scalars and arrays are converted)."""
    return write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Write a compressed ``.npz`` atomically (the name is kept exactly, no ``.npz`` appended)."""
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> Path:
    """Atomically write ``path`` with ``writer(fh)`` (e.g. ``torch.save`` or ``fig.savefig``)."""
    with atomic_open(path, "wb") as fh:
        writer(fh)
    return Path(path)


def load_npz_arrays(path: str | os.PathLike[str], what: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickles); missing or unreadable -> one line naming the file."""
    from neurosheet.core.errors import NeurosheetError

    path = Path(path)
    if not path.is_file():
        raise NeurosheetError(f"{what} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # numpy reports a non-zip file as "pickled data"; say what it is instead.
        detail = "not a .npz archive" if "pickle" in str(exc) else str(exc)
        raise NeurosheetError(f"{path}: corrupt or not a {what} file ({detail})") from None


def read_npz(path: str | os.PathLike[str], what: str, fmt: str, version: int) -> dict[str, np.ndarray]:
    """Load a neurosheet ``.npz`` of format ``fmt``; missing, corrupt, foreign or too-new files
    raise one :class:`NeurosheetError` line naming the file (``what`` names the kind of file)."""
    from neurosheet.core.errors import NeurosheetError

    path = Path(path)
    arrays = load_npz_arrays(path, what)
    if str(arrays.get("format", "")) != fmt:
        raise NeurosheetError(f"{path}: not a neurosheet {what} file")
    if int(arrays.get("version", 0)) > version:
        raise NeurosheetError(
            f"{path}: {what} format version {int(arrays['version'])} is newer than this "
            f"neurosheet supports ({version})"
        )
    return arrays


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
