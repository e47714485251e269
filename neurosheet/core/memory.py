"""Refuse work that cannot fit in memory at once, with the estimate, instead of dying later.

A graph of 10^8 neurons at density 0.01 needs ~10^14 synapses; building it would run for a
minute and end in ``std::bad_alloc``. Callers estimate their peak bytes and call
:func:`check_fits`, which compares them with the memory this process can still get (Linux
``MemAvailable``, capped by a cgroup limit when there is one; ``psutil`` elsewhere).
"""

from __future__ import annotations

from pathlib import Path

from neurosheet.core.errors import NeurosheetError


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 memory limit (None without a limit)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory this process can still allocate, in bytes (None when it cannot be told)."""
    found = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    if not found:
        try:
            import psutil  # optional: only where /proc is missing

            found.append(int(psutil.virtual_memory().available))
        except Exception:  # no way to tell: never refuse on a guess
            return None
    return min(found)


def format_bytes(n: float) -> str:
    """``1.5 GB`` style (powers of 1000, as memory is sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.3g} EB"  # pragma: no cover


def check_fits(need: float, what: str, param: str | None = None,
               available: int | None = None) -> None:
    """Refuse ``what`` when its estimated peak ``need`` (bytes) exceeds the available memory."""
    room = available_bytes() if available is None else available
    if room is not None and need > room:
        raise NeurosheetError(
            f"{what} needs about {format_bytes(need)} of memory (estimate), more than the "
            f"{format_bytes(room)} available: use fewer neurons or a lower density", param)
