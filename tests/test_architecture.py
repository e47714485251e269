"""The house rules, checked: layers along the data path, no import cycles, one meaning per flag,
and a light top-level CLI."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import neurosheet

PKG = Path(neurosheet.__file__).resolve().parent

# Layers from the bottom up; a module may import its own layer and the ones below, never above.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("graph",),
    ("tasks",),
    ("rate",),
    ("spiking",),
    ("hardware",),
    ("reports",),
    ("stages", "experiments"),
    ("pipeline",),
    ("cli", "__main__"),
]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "neurosheet":
        return None
    if len(parts) == 1:
        return -1  # the package root: version and lazy names only
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in this test")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every neurosheet module imported anywhere in ``path`` (module or function level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("neurosheet")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("neurosheet"):
                found.add(node.module)
                mods = _modules()
                for a in node.names:  # `from neurosheet.core import rundir` imports a module
                    if f"{node.module}.{a.name}" in mods:
                        found.add(f"{node.module}.{a.name}")
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {i for i in _imports(m, p) if i in mods} for m, p in mods.items()}


def test_no_module_imports_a_higher_layer():
    bad = []
    for mod, deps in _graph().items():
        lm = _layer(mod)
        for dep in deps:
            ld = _layer(dep)
            if lm is not None and ld is not None and lm >= 0 and ld > lm:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(bad))


def test_package_root_imports_nothing_at_import_time():
    tree = ast.parse((PKG / "__init__.py").read_text())
    eager = [n for n in tree.body if (isinstance(n, ast.Import | ast.ImportFrom)
             and any(a.name.startswith("neurosheet") for a in n.names))
             or (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("neurosheet"))]
    assert not eager


def test_no_import_cycles():
    graph = _graph()
    # Packages import their submodules' parents implicitly; a cycle through an __init__ that
    # imports nothing is not a cycle, so only explicit edges count.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d):], d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_cycle_detector_finds_a_planted_cycle(tmp_path, monkeypatch):
    """The checks above can fail: a planted upward import is reported."""
    graph = _graph()
    graph["neurosheet.core.io"] = graph["neurosheet.core.io"] | {"neurosheet.stages"}
    bad = [(m, d) for m, deps in graph.items() for d in deps
           if (_layer(m) or 0) >= 0 and (_layer(d) or 0) > (_layer(m) or 0)]
    assert ("neurosheet.core.io", "neurosheet.stages") in bad


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from neurosheet.cli import COMMANDS, build_parser

    out = []
    for name in COMMANDS:
        parser = build_parser(only=name)
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        p = subs.choices[name]
        out.append((name, p))
        for action in p._actions:  # nested subcommands (tasks list / tasks show)
            if isinstance(action, argparse._SubParsersAction):
                out += [(f"{name} {k}", v) for k, v in action.choices.items()]
    return out


def test_every_flag_has_one_meaning_across_subcommands():
    meanings: dict[str, dict[tuple, list[str]]] = {}
    for cmd, p in _all_parsers():
        for a in p._actions:
            for flag in a.option_strings:
                if flag in ("-h", "--help"):
                    continue
                t = getattr(a.type, "__name__", str(a.type))
                key = (a.help, t, type(a).__name__)
                meanings.setdefault(flag, {}).setdefault(key, []).append(cmd)
    clashes = {f: m for f, m in meanings.items() if len(m) > 1}
    assert not clashes, "flags with two meanings:\n" + "\n".join(
        f"{f}: " + " | ".join(f"{cmds} -> {k[0]!r}" for k, cmds in m.items())
        for f, m in clashes.items())


def test_json_and_progress_switch_on_every_command_that_reports():
    for cmd, p in _all_parsers():
        flags = {f for a in p._actions for f in a.option_strings}
        if cmd in ("tasks",):
            continue
        assert "--json" in flags, f"{cmd} has no --json"
        assert "--quiet" not in flags, f"{cmd}: the progress switch is --no-progress"


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_top_level_cli_imports_no_heavy_library(argv):
    code = ("import sys; from neurosheet.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'brian2', 'neurogym', 'snntorch', 'scipy') "
            "if m in sys.modules]\nprint('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY=", out.stdout
