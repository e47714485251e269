"""Small helpers shared by the subcommands (argument types, JSON output)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from neurosheet.core.io import _json_default


def _number(text: str, cast: type, ok: object, requirement: str) -> float:
    try:
        value = cast(text)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not ok(value):  # type: ignore[operator]
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    return int(_number(text, int, lambda v: v > 0, "> 0"))


def fraction(text: str) -> float:
    """argparse type: a float in (0, 1]."""
    return _number(text, float, lambda v: 0.0 < v <= 1.0, "in (0, 1]")


def non_negative(text: str) -> float:
    """argparse type: a float >= 0."""
    return _number(text, float, lambda v: v >= 0.0, ">= 0")


def print_json(obj: Any) -> None:
    """One JSON object on stdout."""
    json.dump(obj, sys.stdout, default=_json_default)
    sys.stdout.write("\n")


def seed_int(text: str) -> int:
    """argparse type: a seed every stream can use (an integer in [0, MAX_SEED])."""
    from neurosheet.core.seeds import MAX_SEED

    return int(_number(text, int, lambda v: 0 <= v <= MAX_SEED, f"in [0, {MAX_SEED}]"))
