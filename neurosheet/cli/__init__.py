"""The ``neurosheet`` command: a thin layer over the library, one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)`` and ``run(args) -> int``. Every
user-facing problem is raised as :class:`~neurosheet.core.errors.NeurosheetError` and printed
here as one line on stderr with exit status 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import NoReturn

from neurosheet.core.errors import NeurosheetError

# Subcommands in the order of the data's path; a module that is absent is simply not offered.
COMMANDS = (
    "pipeline", "sheet", "tasks", "train", "evaluate", "sweep", "simulate", "finetune",
    "export",
    "budget", "analyze",
)


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="neurosheet",
        description="Locality-masked RNNs on a cortical sheet: Mod-Cog training, spiking "
        "conversion (snntorch, Brian2) and synapse budgets for neuromorphic hardware.",
    )
    from neurosheet import __version__

    parser.add_argument("--version", action="version", version=f"neurosheet {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        modname = f"neurosheet.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        module = importlib.import_module(modname)
        sub = module.add_parser(subs)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (one line, see OneLineParser), --help, --version
        return int(exc.code or 0)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except NeurosheetError as exc:
        print(f"neurosheet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurosheet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
