"""Find and validate the user-editable TOML presets (models/, tasks/, deploy/, experiments/).

A preset is named either by a path to a ``.toml`` file or by its stem. Names are looked
up first in the source checkout's top-level folder (so edits there take effect at once),
then in the copies shipped inside the installed wheel (``neurosheet/_presets/<kind>``).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from neurosheet.core.errors import NeurosheetError

PresetKind = Literal["models", "tasks", "deploy", "experiments"]
KINDS: tuple[PresetKind, ...] = ("models", "tasks", "deploy", "experiments")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the neurosheet package

M = TypeVar("M", bound=BaseModel)


def preset_dirs(kind: PresetKind) -> list[Path]:
    """Folders searched for presets of ``kind``, in priority order (existing ones only)."""
    if kind not in KINDS:
        raise NeurosheetError(f"unknown preset kind {kind!r}; expected one of {', '.join(KINDS)}")
    candidates = [_PACKAGE_DIR.parent / kind, _PACKAGE_DIR / "_presets" / kind]
    return [d for d in candidates if d.is_dir()]


def list_presets(kind: PresetKind) -> dict[str, Path]:
    """All preset names of ``kind`` mapped to their files (checkout copies win)."""
    found: dict[str, Path] = {}
    for folder in reversed(preset_dirs(kind)):
        for f in sorted(folder.glob("*.toml")):
            found[f.stem] = f
    return dict(sorted(found.items()))


def resolve_preset(kind: PresetKind, name_or_path: str | Path) -> Path:
    """Return the TOML file for a preset name or path; unknown names list the closest valid ones."""
    text = str(name_or_path)
    as_path = Path(text).expanduser()
    if as_path.suffix == ".toml" or as_path.exists() or "/" in text:
        if not as_path.is_file():
            raise NeurosheetError(f"{kind} preset file not found: {as_path}")
        return as_path
    available = list_presets(kind)
    if text in available:
        return available[text]
    raise NeurosheetError(unknown_name_message(f"{kind} preset", text, available))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax and encoding errors into one line naming the file.

    TOML is UTF-8 by definition: a Latin-1, UTF-16 or binary file is refused with the byte
    offset of the first undecodable byte, not a ``UnicodeDecodeError`` traceback.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise NeurosheetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "a binary file" if b"\0" in raw[:4096] else "not UTF-8 text"
        raise NeurosheetError(f"{path}: {kind} (undecodable byte 0x{raw[exc.start]:02x} at "
                              f"offset {exc.start}); TOML files must be UTF-8") from None
    if "\0" in text:
        raise NeurosheetError(f"{path}: a binary file (NUL byte at offset "
                              f"{text.index(chr(0))}), not TOML")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NeurosheetError(f"{path}: not valid TOML ({exc})") from None


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate ``data`` against a pydantic model; the first problem becomes one line naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise NeurosheetError(f"{source}: {format_validation_error(exc)}") from None


def load_preset(kind: PresetKind, name_or_path: str | Path, model: type[M]) -> tuple[M, Path]:
    """Resolve, read and validate a preset; returns the model and the file it came from."""
    path = resolve_preset(kind, name_or_path)
    return validate(model, read_toml(path), str(path)), path


def format_validation_error(exc: ValidationError) -> str:
    """First error of a pydantic ValidationError as ``field 'a.b': message`` (plus a count of others)."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"field '{loc}': {first.get('msg', 'invalid')}{more}"


def unknown_name_message(what: str, name: str, valid: Any) -> str:
    """``unknown <what> 'name'; did you mean: a, b, c?`` with the closest valid names."""
    names = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f"did you mean: {', '.join(close)}?" if close else f"valid: {', '.join(names[:12])}"
    if not close and len(names) > 12:
        hint += ", ..."
    return f"unknown {what} {name!r}; {hint}"
