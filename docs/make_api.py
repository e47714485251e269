"""Write docs/api.md: every public module, class and function of neurosheet with the first line
of its docstring, read by pdoc (the standard tool; `python -m pdoc neurosheet` serves the full
HTML reference). `tests/test_docs_python.py` fails when docs/api.md is out of date.

    python docs/make_api.py            # rewrite docs/api.md
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "api.md"


def _first_line(doc: str | None) -> str:
    text = (doc or "").strip().splitlines()
    return text[0].strip() if text else ""


def render() -> str:
    import pdoc.doc

    import neurosheet

    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/make_api.py` (pdoc); the full HTML "
             "reference: `python -m pdoc neurosheet`. Public names only (no leading underscore).",
             ""]

    def walk(mod: pdoc.doc.Module) -> None:
        members = [m for m in mod.own_members if not m.name.startswith("_")
                   and isinstance(m, pdoc.doc.Class | pdoc.doc.Function)
                   and not (mod.fullname.startswith("neurosheet.cli.")
                            and m.name in ("add_parser", "run"))]  # the protocol, once
        lines.append(f"## `{mod.fullname}`")
        lines.append("")
        if first := _first_line(mod.docstring):
            lines.extend([first, ""])
        for m in members:
            kind = "class" if isinstance(m, pdoc.doc.Class) else "def"
            lines.append(f"- `{kind} {m.name}` — {_first_line(m.docstring)}")
        if members:
            lines.append("")
        for sub in mod.submodules:
            walk(sub)

    walk(pdoc.doc.Module(neurosheet))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10))} lines)")
