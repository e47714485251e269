"""The ``neurosheet`` command: a thin layer over the library, one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)`` and ``run(args) -> int``. Every
user-facing problem is raised as :class:`~neurosheet.core.errors.NeurosheetError` and printed
here as one line on stderr with exit status 2 (never a traceback); so is an operating-system
error on the user's files (``OSError``: disk full, permission denied). Anything else is a bug:
one line with exit status 1 that says where the full trace was written (the output folder's
``crash-<time>.txt`` when the command has one, else a temporary file). Warnings (e.g. a run
whose training did not finish) are one ``warning:`` line each.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from neurosheet.core.errors import IncompleteRunWarning, NeurosheetError

# Subcommands in the order of the data's path, with their one-line help: `neurosheet --help`
# lists them from this table and imports only the module of the command being run, so the
# top-level help and --version import neither torch, Brian2 nor neurogym.
COMMANDS: dict[str, str] = {
    "pipeline": "train a small LM-RNN, convert it to spikes, report hardware budgets",
    "sheet": "build a sheet and its wiring; print synapse counts",
    "tasks": "list the Mod-Cog tasks and suites, show a trial",
    "train": "train a rate RNN on a task suite (resumes an interrupted run)",
    "evaluate": "per-task accuracy of a trained run on held-out trials",
    "sweep": "train presets x densities x seeds and compare learning curves",
    "experiment": "run a design file (experiments/) and report its claims with intervals",
    "simulate": "simulate a trained circuit as spiking neurons on the same graph",
    "finetune": "fine-tune the converted spiking circuit on the task loss (surrogate gradients)",
    "export": "export the spiking circuit as a NIR graph",
    "budget": "synapse budget of a circuit on hardware targets",
    "analyze": "functional and anatomical modules of a trained circuit (BIMT)",
}


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``neurosheet`` parser; with ``only``, just that subcommand is built in full."""
    parser = OneLineParser(
        prog="neurosheet",
        description="Locality-masked RNNs on a cortical sheet: Mod-Cog training, spiking "
        "conversion (snntorch, Brian2) and synapse budgets for neuromorphic hardware.",
    )
    from neurosheet import __version__

    parser.add_argument("--version", action="version", version=f"neurosheet {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, text in COMMANDS.items():
        if only is not None and name != only:
            subs.add_parser(name, help=text, add_help=False)
            continue
        module = importlib.import_module(f"neurosheet.cli.{name}")
        sub = module.add_parser(subs)
        sub.set_defaults(_run=module.run)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The subcommand named in ``argv`` ('' when there is none, e.g. ``--help``)."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return arg
    return ""


def _with_flag(exc: NeurosheetError) -> str:
    """The library's message, with the flag that set the faulty parameter when there is one."""
    from neurosheet.cli.options import PARAMETER_FLAGS

    flag = PARAMETER_FLAGS.get(exc.param or "")
    return f"{exc} ({flag})" if flag and flag not in str(exc) else str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, see OneLineParser), --help, --version
        return int(exc.code or 0)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    quiet = getattr(args, "no_progress", False) or getattr(args, "json", False)
    if not quiet and sys.stderr.isatty():
        from neurosheet.core.progress import log_to_stderr

        log_to_stderr()
    import logging

    from neurosheet.core.errors import NeurosheetWarning

    prefix = f"neurosheet {args.command}"

    def one_line_warning(message, category, *_args, **_kwargs) -> None:
        if issubclass(category, NeurosheetWarning):  # ours: what the user must know, one line
            _say(f"{prefix}: warning: {message}")
        else:  # a dependency's internals (e.g. torch's beta notices): kept out of the way
            logging.getLogger("neurosheet.dependencies").debug("%s: %s", category.__name__,
                                                              message)

    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.simplefilter("once", IncompleteRunWarning)  # several stages, one line
        warnings.showwarning = one_line_warning  # one line each
        try:
            return int(args._run(args) or 0)
        except NeurosheetError as exc:
            _say(f"{prefix}: error: {_with_flag(exc)}")
            return 2
        except KeyboardInterrupt as exc:  # training writes a checkpoint first and says so
            detail = f": {exc}" if str(exc) else ""
            _say(f"{prefix}: interrupted{detail}")
            return 130
        except OSError as exc:  # the user's files or system: a full disk, a permission
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            _say(f"{prefix}: error: {where}{exc.strerror or exc}")
            return 2
        except Exception as exc:  # a bug: one line, the trace in a file
            trace = _write_trace(args, exc)
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            _say(f"{prefix}: internal error: {type(exc).__name__}: {first} (please report it; "
                 f"full trace: {trace})")
            return 1


def _say(message: str) -> None:
    """One line on stderr: newlines in a message (e.g. from a file name) are shown escaped."""
    text = message.replace("\r", "\\r").replace("\n", "\\n")
    print(text if len(text) <= 2000 else text[:1997] + "...", file=sys.stderr)


def _write_trace(args: argparse.Namespace, exc: BaseException) -> str:
    """Write the full trace of an unexpected error; returns where (output folder or temp)."""
    text = "".join(traceback.format_exception(exc))
    header = f"neurosheet {args.command}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = getattr(args, "out", None)
    if out and Path(out).is_dir():
        try:
            path = Path(out) / f"crash-{stamp}.txt"
            path.write_text(header + text, encoding="utf-8")
            return str(path)
        except OSError:
            pass
    try:
        fd, name = tempfile.mkstemp(prefix=f"neurosheet-crash-{stamp}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(header + text)
        return name
    except OSError:
        return "nowhere (no writable folder)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
