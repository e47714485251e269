"""Progress that behaves on a terminal and in a log file.

On a terminal, :func:`bar` draws a tqdm bar and the library's ``logging`` messages (stage
labels: step-0 evaluation, held-out accuracy at each evaluation, calibration, the gate) appear
as plain lines above it; the CLI turns them on (:func:`log_to_stderr`) unless ``--no-progress``
or ``--json``. When stderr is not a terminal (a log file, a CI job) both stay off, so a log holds
the command's results and, on failure, its one-line error, not carriage-return noise. A script
sees the same messages with ``logging.basicConfig(level=logging.INFO)``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def bar(total: int | None = None, *, desc: str, unit: str = "it", enabled: bool = True,
        initial: int = 0, **kwargs: Any) -> Any:
    """A tqdm bar that is off when ``enabled`` is False or stderr is not a terminal."""
    from tqdm.auto import tqdm

    on = enabled and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not on,
                dynamic_ncols=True, leave=False, **kwargs)


def log_to_stderr(level: int = logging.INFO) -> logging.Handler:
    """Show neurosheet's log messages on stderr, one plain line each (idempotent)."""
    logger = logging.getLogger("neurosheet")
    for h in logger.handlers:
        if getattr(h, "_neurosheet_cli", False):
            return h
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    handler._neurosheet_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
