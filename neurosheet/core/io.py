"""Atomic file writes: a crash or Ctrl-C never leaves a half-written checkpoint or report.

Every writer goes to a temporary file in the destination folder, flushes and fsyncs it,
then ``os.replace``-s it over the target, which is atomic on POSIX and Windows. The temporary
file is named ``.<name>.<pid>.<random>.tmp`` so that one left by a killed process can be told
from one being written now (:func:`clean_stale_temps`), and the file takes the permissions a
plain ``open`` would give it (``0666`` less the umask), so runs can be shared.

JSON files never hold ``NaN`` or ``Infinity`` (not valid JSON): :func:`write_json` refuses a
non-finite number with one line naming the file and the key, instead of writing it (a report
must not silently carry an undefined number; producers say ``None`` where a value is
undefined). JSON shown on stdout converts them to ``null`` (:func:`finite_or_none`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import threading
import time
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                               dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would not
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask (read by setting and restoring it; serialized between threads)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


#: ``.<name>.<pid>.<8 random>.tmp`` (this version) or ``.<name>.<8 random>.tmp`` (older ones)
_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")
LEGACY_TEMP_AGE_S = 3600.0  # a temp without a pid is stale once this old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files of atomic writes under ``folder`` whose writer is gone.

    A killed process leaves its ``.<name>.<pid>.<random>.tmp`` behind; it is removed when
    that pid no longer runs (temps of live writers are kept). Returns the removed files.
    """
    removed: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for path in root.rglob(".*.tmp"):
        m = _TEMP.match(path.name)
        if m is None or not path.is_file():
            continue
        pid = m.group("pid")
        try:
            stale = (not _alive(int(pid))) if pid else \
                time.time() - path.stat().st_mtime > LEGACY_TEMP_AGE_S
            if stale and int(pid or 0) != os.getpid():
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


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
    """Write ``obj`` as JSON atomically (numpy scalars and arrays are converted).

    A ``NaN`` or infinite number is refused (one :class:`NeurosheetError` line naming the file
    and the key) rather than written as the invalid-JSON ``NaN``/``Infinity``.
    """
    return write_text(path, dumps_json(obj, indent=indent, what=str(path)) + "\n")


def dumps_json(obj: Any, indent: int | None = None, what: str = "JSON output") -> str:
    """``json.dumps`` that converts numpy values and refuses non-finite numbers (one line)."""
    try:
        return json.dumps(obj, indent=indent, default=_json_default, allow_nan=False)
    except ValueError:
        from neurosheet.core.errors import NeurosheetError

        where = non_finite_key(json.loads(json.dumps(obj, default=_json_default)))
        raise NeurosheetError(f"{what}: refusing to write the non-finite number at "
                              f"'{where}' as JSON") from None


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN/infinite float (numpy ones included) replaced by ``None``.

    For results shown rather than kept (``--json`` on stdout), where an undefined number
    (a ratio over a zero accuracy, a z-score of a constant null) reads as ``null``.
    """
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return finite_or_none(obj.tolist())
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def non_finite_key(obj: Any, prefix: str = "") -> str | None:
    """Dotted key of the first NaN/infinite float inside ``obj`` (None when all are finite)."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (prefix or "<root>")
    items = obj.items() if isinstance(obj, dict) else \
        enumerate(obj) if isinstance(obj, list | tuple) else ()
    for key, value in items:
        found = non_finite_key(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


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


def write_torch(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """``torch.save`` a checkpoint payload atomically (serialized first, then one file write)."""
    import io as _io

    import torch

    buf = _io.BytesIO()
    torch.save(payload, buf)
    return write_with(path, lambda fh: fh.write(buf.getvalue()))


def read_torch(path: str | os.PathLike[str], fmt: str, what: str) -> dict[str, Any]:
    """A checkpoint payload written by :func:`write_torch` whose ``format`` is ``fmt``; a
    damaged or foreign file raises one clear error naming ``what`` it should have been."""
    import torch

    from neurosheet.core.errors import NeurosheetError

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for damaged files
        raise NeurosheetError(f"{path}: corrupt checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise NeurosheetError(f"{path}: not a neurosheet {what}")
    return payload
