"""Bad input never gets a traceback, and nothing already saved is touched (issue 12).

A regression corpus built from *kinds* of bad input (not fixed files): each kind is made in
``tmp_path`` and handed to every subcommand that takes that input. Every case must exit with
status 2, print exactly one line on stderr, no traceback, and leave the bytes of every file
that existed before (the case's folder and the shared trained run) unchanged.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY_TOML

from neurosheet.cli import main
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import resolve_preset
from neurosheet.core.rundir import RunDir
from neurosheet.tasks.registry import N_OBS

TINY = 'description = "tiny run for the bad-input corpus"\n' + TINY_TOML
SUITE = 'description = "demo tasks"\ntasks = ["go", "anti", "dm1", "go-seqr", "dlygo-intr"]\n'
N_IN = N_OBS + 5  # the trained run's input channels (observations + one rule per task)
N = 25


# --------------------------------------------------------------------- shared trained run
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.toml").write_text(TINY)
    out = root / "run"
    assert main(["train", "--preset", str(root / "tiny.toml"), "--suite", "demo", "--out",
                 str(out), "--no-progress", "--json"]) == 0
    return out


@dataclass
class Ctx:
    """What a case builds its bad input in: its own folder, the trained run, cleanups."""

    tmp: Path
    trained: Path
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def tiny(self) -> str:
        path = self.tmp / "tiny.toml"
        if not path.exists():
            path.write_text(TINY)
        return str(path)

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)

    def run_copy(self, name: str = "run") -> Path:
        """A copy of the trained run directory (for cases that resume or damage it)."""
        dest = self.tmp / name
        if not dest.exists():
            shutil.copytree(self.trained, dest)
        return dest

    def report(self) -> Path:
        """An existing pipeline folder: a finished run plus index and budget files."""
        out = self.tmp / "report"
        if not out.exists():
            self.run_copy("report/run")
            (out / "index.json").write_text('{"out": "report"}\n')
            (out / "index.md").write_text("# neurosheet pipeline report\n")
            (out / "budget").mkdir()
            (out / "budget" / "budget-all.json").write_text('{"rows": []}\n')
        return out

    def existing_dir(self, name: str) -> Path:
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        (d / "results.json").write_text("{}\n")
        return d

    def read_only(self, path: Path) -> Path:
        """Make folder ``path`` unwritable for this process (skips when that is impossible)."""
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o555)
        self.cleanups.append(lambda: os.chmod(path, 0o755))
        if os.geteuid() == 0 and shutil.which("chattr"):  # root ignores modes: immutable
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
                self.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(path)],
                                                            capture_output=True))
        try:
            (path / ".probe").write_text("x")
        except OSError:
            return path
        (path / ".probe").unlink()
        pytest.skip("cannot make a folder read-only here")


@pytest.fixture
def ctx(tmp_path, trained) -> Iterator[Ctx]:
    c = Ctx(tmp_path / "case", trained)
    c.tmp.mkdir()
    yield c
    for undo in reversed(c.cleanups):
        undo()


def snapshot(*roots: Path) -> dict[Path, bytes]:
    """Every file under ``roots`` with its bytes."""
    files: dict[Path, bytes] = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file() and not p.is_symlink():
                files[p] = p.read_bytes()
    return files


def check_bad(argv: list[str], capsys, *roots: Path) -> str:
    """Run ``neurosheet argv``: status 2, one stderr line, no traceback, old files untouched."""
    before = snapshot(*roots)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    shown = f"{argv}: status {code}, stderr {err!r}"
    assert code == 2, shown
    assert len(lines) == 1 and lines[0].startswith(f"neurosheet {argv[0]}"), shown
    assert ": error: " in lines[0] and "Traceback" not in out + err, shown
    after = snapshot(*roots)
    changed = [str(p) for p, data in before.items() if after.get(p) != data]
    assert not changed, f"{argv} modified {changed}"
    temps = [str(p) for p in after if p.name.endswith(".tmp")]
    assert not temps, f"{argv} left {temps}"
    return lines[0]


# --------------------------------------------------------------------- kinds of bad files
def _good_target() -> str:
    return resolve_preset("deploy", "loihi").read_text(encoding="utf-8")


GOOD = {"preset": lambda: TINY, "suite": lambda: SUITE, "target": _good_target}


def _nonfinite(role: str, value: str) -> str:
    text = GOOD[role]()
    if role == "preset":
        return text.replace("[training]\n", f"[training]\nlr = {value}\n")
    if role == "suite":
        return text + f"weights = [{value}, 1, 1, 1, 1]\n"
    return re.sub(r"(energy_per_synop_pj = \{ value = )[0-9.]+", rf"\g<1>{value}", text)


TOML_KINDS: dict[str, Callable[[str], bytes]] = {
    "binary": lambda role: bytes(range(256)) * 8,
    "latin1": lambda role: ("# réseau cortical, mémoire\n" + GOOD[role]()).encode("latin-1"),
    "utf16": lambda role: GOOD[role]().encode("utf-16"),
    "syntax": lambda role: (GOOD[role]() + "\n[unclosed\nx = = 1\n").encode(),
    "empty": lambda role: b"",
    "nan": lambda role: _nonfinite(role, "nan").encode(),
    "inf": lambda role: _nonfinite(role, "inf").encode(),
    "-inf": lambda role: _nonfinite(role, "-inf").encode(),
}


def _toml_path(ctx: Ctx, kind: str, role: str) -> str:
    if kind == "directory":
        d = ctx.tmp / f"{role}.toml"
        d.mkdir()
        return str(d)
    if kind == "missing-with-newline":
        return str(ctx.tmp / f"no\nsuch-{role}.toml")
    return ctx.file(f"bad-{role}.toml", TOML_KINDS[kind](role))


TOML_COMMANDS: dict[str, dict[str, Callable[[Ctx, str], list[str]]]] = {
    "preset": {
        "train": lambda c, f: ["train", "--preset", f, "--suite", "demo", "--out",
                               str(c.run_copy()), "--no-progress"],
        "pipeline": lambda c, f: ["pipeline", "--preset", f, "--out", str(c.report()),
                                  "--no-progress"],
        "sweep": lambda c, f: ["sweep", "--presets", f, "--suite", "demo", "--out",
                               str(c.existing_dir("sweep"))],
    },
    "suite": {
        "train": lambda c, f: ["train", "--preset", c.tiny, "--suite", f, "--out",
                               str(c.run_copy()), "--no-progress"],
        "pipeline": lambda c, f: ["pipeline", "--preset", c.tiny, "--suite", f, "--out",
                                  str(c.report()), "--no-progress"],
        "sweep": lambda c, f: ["sweep", "--presets", c.tiny, "--suite", f, "--out",
                               str(c.existing_dir("sweep"))],
        "evaluate": lambda c, f: ["evaluate", str(c.trained), "--suite", f, "--trials", "1"],
        "tasks": lambda c, f: ["tasks", "list", "--suite", f],
    },
    "target": {
        "budget": lambda c, f: ["budget", str(c.trained), "--targets", f],
        "pipeline": lambda c, f: ["pipeline", "--preset", c.tiny, "--targets", f, "--out",
                                  str(c.report()), "--no-progress"],
    },
}
TOML_CASES = [(role, kind, cmd) for role, cmds in TOML_COMMANDS.items()
              for kind in [*TOML_KINDS, "directory", "missing-with-newline"] for cmd in cmds]


@pytest.mark.parametrize("role, kind, cmd", TOML_CASES,
                         ids=[f"{r}-{k}-{c}" for r, k, c in TOML_CASES])
def test_bad_toml_files(ctx, capsys, role, kind, cmd):
    path = _toml_path(ctx, kind, role)
    line = check_bad(TOML_COMMANDS[role][cmd](ctx, path), capsys, ctx.tmp, ctx.trained)
    if kind in ("binary", "latin1", "utf16"):
        assert ("UTF-8" in line or "binary" in line) and "bad-" in line, line
    if kind in ("nan", "inf", "-inf"):
        assert "finite" in line or "nan" in line.lower() or "inf" in line.lower(), line


def test_huge_weight_bits_are_refused(ctx, capsys):
    text = re.sub(r"weight_bits = \{ value = \d+", "weight_bits = { value = 100000",
                  _good_target())
    f = ctx.file("bits.toml", text.encode())
    line = check_bad(["budget", str(ctx.trained), "--targets", f], capsys, ctx.tmp, ctx.trained)
    assert "weight_bits" in line
    check_bad(["pipeline", "--preset", ctx.tiny, "--targets", f, "--out", str(ctx.report()),
               "--no-progress"], capsys, ctx.tmp, ctx.trained)


# --------------------------------------------------------------------- kinds of bad arrays
def _npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _array_kinds(good_shape: tuple[int, ...]) -> dict[str, bytes]:
    good = np.ones(good_shape, dtype=np.float32)
    nan = good.copy()
    nan.flat[0] = np.nan
    return {
        "truncated-npy": _npy_bytes(good)[:-7],
        "header-only-npy": _npy_bytes(good)[:60],
        "npz-not-npy": _npz_bytes(a=good, b=good),
        "truncated-npz": _npz_bytes(a=good)[:40],
        "pickled-object": _npy_bytes(np.array([{"a": 1}, None], dtype=object), True),
        "text": b"1,2,3\n4,5,6\n",
        "empty": b"",
        "wrong-shape": _npy_bytes(np.ones((4, 1, 3), dtype=np.float32)),
        "strings": _npy_bytes(np.array(["a", "b"])),
        "nan": _npy_bytes(nan),
    }


INPUT_KINDS = list(_array_kinds((4, 1, N_IN)))
INPUT_COMMANDS = {
    "simulate": lambda c, f: ["simulate", str(c.trained), "--inputs", f, "--trials", "1"],
    "export": lambda c, f: ["export", str(c.trained), "--nir", str(c.tmp / "x.nir"),
                            "--inputs", f],
}


@pytest.mark.parametrize("cmd", list(INPUT_COMMANDS))
@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_bad_input_arrays(ctx, capsys, cmd, kind):
    f = ctx.file("inputs.npy", _array_kinds((4, 1, N_IN))[kind])
    line = check_bad(INPUT_COMMANDS[cmd](ctx, f), capsys, ctx.tmp, ctx.trained)
    assert "inputs.npy" in line


@pytest.mark.parametrize("kind", list(_array_kinds((2, N))))
def test_bad_spike_counts(ctx, capsys, kind):
    f = ctx.file("spikes.npy", _array_kinds((2, N))[kind])
    check_bad(["budget", str(ctx.trained), "--targets", "loihi", "--spikes", f], capsys,
              ctx.tmp, ctx.trained)


# --------------------------------------------------------------------- output paths
def _folder(ctx: Ctx, kind: str) -> str:
    if kind == "existing-file":
        return ctx.file("taken", b"a file, not a folder\n")
    if kind == "under-a-file":
        return str(Path(ctx.file("taken", b"a file\n")) / "sub")
    return str(ctx.read_only(ctx.tmp / "ro") / "sub")


def _file(ctx: Ctx, kind: str, suffix: str) -> str:
    if kind == "existing-folder":
        d = ctx.tmp / f"folder{suffix}"
        d.mkdir()
        return str(d)
    if kind == "under-a-file":
        return str(Path(ctx.file("taken", b"a file\n")) / f"x{suffix}")
    if kind == "unknown-format":
        return str(ctx.tmp / "figure.xyz")
    return str(ctx.read_only(ctx.tmp / "ro") / f"x{suffix}")


FOLDER_COMMANDS = {
    "train": lambda c, p: ["train", "--preset", c.tiny, "--suite", "demo", "--out", p,
                           "--no-progress"],
    "pipeline": lambda c, p: ["pipeline", "--preset", c.tiny, "--out", p, "--no-progress"],
    "budget": lambda c, p: ["budget", str(c.trained), "--targets", "loihi", "--out", p],
    "sweep": lambda c, p: ["sweep", "--presets", c.tiny, "--suite", "demo", "--out", p],
}
FILE_COMMANDS = {  # name -> (argv builder, suffix, is a figure)
    "sheet-plot": (lambda c, p: ["sheet", "--n", "16", "--plot", p], ".png", True),
    "sheet-save": (lambda c, p: ["sheet", "--n", "16", "--save", p], ".npz", False),
    "export-nir": (lambda c, p: ["export", str(c.trained), "--nir", p], ".nir", False),
    "simulate-plot": (lambda c, p: ["simulate", str(c.trained), "--task", "go", "--trials", "1",
                                    "--plot", p], ".png", True),
    "tasks-plot": (lambda c, p: ["tasks", "show", "go", "--plot", p], ".png", True),
    "analyze-plot": (lambda c, p: ["analyze", str(c.trained), "--plot", p], ".png", True),
}


@pytest.mark.parametrize("cmd", list(FOLDER_COMMANDS))
@pytest.mark.parametrize("kind", ["existing-file", "under-a-file", "read-only"])
def test_unwritable_output_folders(ctx, capsys, cmd, kind):
    path = _folder(ctx, kind)
    line = check_bad(FOLDER_COMMANDS[cmd](ctx, path), capsys, ctx.tmp, ctx.trained)
    assert "--out" in line


FILE_CASES = [(cmd, kind) for cmd, (_, _, figure) in FILE_COMMANDS.items()
              for kind in ["existing-folder", "under-a-file", "read-only"]
              + (["unknown-format"] if figure else [])]


@pytest.mark.parametrize("cmd, kind", FILE_CASES, ids=[f"{c}-{k}" for c, k in FILE_CASES])
def test_unwritable_output_files(ctx, capsys, cmd, kind):
    build, suffix, _ = FILE_COMMANDS[cmd]
    line = check_bad(build(ctx, _file(ctx, kind, suffix)), capsys, ctx.tmp, ctx.trained)
    assert re.search(r"\(--(plot|save|nir)\)$", line), line


@pytest.mark.parametrize("cmd", ["train", "pipeline"])
def test_resuming_a_read_only_run_directory(ctx, capsys, cmd):
    if cmd == "train":
        run = ctx.run_copy()
        argv = ["train", "--preset", ctx.tiny, "--suite", "demo", "--out", str(run),
                "--no-progress"]
    else:
        run = ctx.report() / "run"
        argv = ["pipeline", "--preset", ctx.tiny, "--out", str(ctx.report()), "--no-progress"]
    ctx.read_only(run)
    assert "not writable" in check_bad(argv, capsys, ctx.tmp, ctx.trained)


# --------------------------------------------------------------------- damaged run directories
def _damage(run: Path, kind: str) -> None:
    rd = RunDir(run)
    if kind == "checkpoint-format-tag-only":
        torch.save({"format": "neurosheet.checkpoint"}, rd.checkpoint)
    elif kind == "checkpoint-wrong-shapes":
        payload = torch.load(rd.checkpoint, weights_only=False)
        payload["model"] = {k: torch.zeros(v.numel() + 3) for k, v in payload["model"].items()}
        torch.save(payload, rd.checkpoint)
    elif kind == "checkpoint-wrong-optimizer":
        payload = torch.load(rd.checkpoint, weights_only=False)
        for st in payload["optimizer"]["state"].values():
            st["exp_avg"] = torch.zeros(7)
        torch.save(payload, rd.checkpoint)
    elif kind == "checkpoint-truncated":
        rd.checkpoint.write_bytes(rd.checkpoint.read_bytes()[:200])
    elif kind == "checkpoint-not-torch":
        rd.checkpoint.write_bytes(b"definitely not a checkpoint\n" * 10)
    elif kind == "config-a-list":
        rd.config_json.write_text("[1, 2, 3]\n")
    elif kind == "config-table-a-list":
        cfg = json.loads(rd.config_json.read_text())
        cfg["training"] = [1, 2]
        rd.config_json.write_text(json.dumps(cfg))
    elif kind == "config-wrong-type":
        cfg = json.loads(rd.config_json.read_text())
        cfg["training"]["lr"] = "fast"
        rd.config_json.write_text(json.dumps(cfg))
    elif kind == "config-not-json":
        rd.config_json.write_bytes(b"\xff\xfe garbage")
    elif kind == "metrics-garbage":
        rd.metrics.write_bytes(b"\x00\x01garbage\n{not json\n" * 20)
    elif kind == "metrics-wrong-records":
        n = len(rd.metrics.read_bytes())
        rd.metrics.write_bytes((b'{"kind": "eval", "step": 0}\n' * n)[:n - 1] + b"\n")
    elif kind == "metrics-short":
        rd.metrics.write_bytes(rd.metrics.read_bytes()[:10])
    elif kind == "circuit-truncated":
        rd.circuit.write_bytes(rd.circuit.read_bytes()[:100])
    elif kind == "graph-garbage":
        rd.graph.write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "circuit-missing":
        rd.circuit.unlink()
    elif kind == "conversion-garbage":
        rd.spiking.mkdir(exist_ok=True)
        rd.conversion.write_text('{"graph_fingerprint": ')
    else:  # pragma: no cover
        raise AssertionError(kind)


RESUME_KINDS = ["checkpoint-format-tag-only", "checkpoint-wrong-shapes",
                "checkpoint-wrong-optimizer", "checkpoint-truncated", "checkpoint-not-torch",
                "config-a-list", "config-table-a-list", "config-wrong-type", "config-not-json",
                "metrics-garbage", "metrics-wrong-records", "metrics-short"]


@pytest.mark.parametrize("cmd", ["train", "pipeline"])
@pytest.mark.parametrize("kind", RESUME_KINDS)
def test_damaged_run_directory_on_resume(ctx, capsys, cmd, kind):
    if cmd == "train":
        run = ctx.run_copy()
        argv = ["train", "--preset", ctx.tiny, "--suite", "demo", "--out", str(run),
                "--no-progress"]
    else:
        run = ctx.report() / "run"
        argv = ["pipeline", "--preset", ctx.tiny, "--out", str(ctx.report()), "--no-progress"]
    _damage(run, kind)
    line = check_bad(argv, capsys, ctx.tmp, ctx.trained)
    assert str(run) in line


LATER_STAGES = {
    "evaluate": lambda r: ["evaluate", r, "--trials", "1"],
    "evaluate-snntorch": lambda r: ["evaluate", r, "--trials", "1", "--backend", "snntorch",
                                    "--calibration-trials", "2"],
    "simulate": lambda r: ["simulate", r, "--task", "go", "--trials", "1",
                           "--calibration-trials", "2"],
    "export": lambda r: ["export", r, "--nir", str(Path(r).parent / "x.nir"),
                         "--calibration-trials", "2"],
    "budget": lambda r: ["budget", r, "--targets", "loihi"],
    "analyze": lambda r: ["analyze", r, "--structure-only"],
}
LATER_KINDS = ["circuit-truncated", "graph-garbage", "circuit-missing", "conversion-garbage"]
LATER_CASES = [(c, k) for c in LATER_STAGES for k in LATER_KINDS
               if k != "conversion-garbage" or c in ("evaluate-snntorch", "simulate", "export")]


@pytest.mark.parametrize("cmd, kind", LATER_CASES, ids=[f"{c}-{k}" for c, k in LATER_CASES])
def test_damaged_run_directory_in_later_stages(ctx, capsys, cmd, kind):
    run = ctx.run_copy()
    _damage(run, kind)
    check_bad(LATER_STAGES[cmd](str(run)), capsys, ctx.tmp, ctx.trained)


# --------------------------------------------------------------------- sizes, seeds, names
SIZE_CASES = {
    "sheet-1e8": lambda c: ["sheet", "--n", "100000000", "--density", "0.01"],
    "sheet-1e6-dense": lambda c: ["sheet", "--n", "1000000", "--density", "0.05"],
    "sheet-1e10-autapse": lambda c: ["sheet", "--n", "10000000000", "--rule", "autapse"],
    "sheet-gaussian": lambda c: ["sheet", "--n", "1000000", "--rule", "gaussian", "--scale",
                                 "300"],
    "train-n": lambda c: ["train", "--preset", c.tiny, "--suite", "demo", "--n", "100000000",
                          "--out", str(c.run_copy()), "--no-progress"],
    "pipeline-preset": lambda c: ["pipeline", "--preset", c.file("big.toml", TINY.replace(
        "n = 25", "n = 100000000").encode()), "--out", str(c.report()), "--no-progress"],
    "sweep-n": lambda c: ["sweep", "--presets", c.tiny, "--suite", "demo", "--n", "100000000",
                          "--out", str(c.existing_dir("sweep"))],
}


@pytest.mark.parametrize("case", list(SIZE_CASES))
def test_sizes_that_cannot_fit_are_refused_at_once(ctx, capsys, case):
    t0 = time.perf_counter()
    line = check_bad(SIZE_CASES[case](ctx), capsys, ctx.tmp, ctx.trained)
    assert time.perf_counter() - t0 < 5.0
    assert "memory" in line and "estimate" in line, line


SEED_COMMANDS = {
    "sheet": lambda c, s: ["sheet", "--n", "16", "--seed", s],
    "train": lambda c, s: ["train", "--preset", c.tiny, "--suite", "demo", "--out",
                           str(c.run_copy()), "--seed", s, "--no-progress"],
    "pipeline": lambda c, s: ["pipeline", "--out", str(c.report()), "--seed", s],
    "evaluate": lambda c, s: ["evaluate", str(c.trained), "--seed", s],
    "simulate": lambda c, s: ["simulate", str(c.trained), "--task", "go", "--seed", s],
    "export": lambda c, s: ["export", str(c.trained), "--nir", str(c.tmp / "x.nir"),
                            "--seed", s],
    "budget": lambda c, s: ["budget", str(c.trained), "--targets", "loihi", "--seed", s],
    "analyze": lambda c, s: ["analyze", str(c.trained), "--seed", s],
    "tasks": lambda c, s: ["tasks", "show", "go", "--trial-seed", s],
    "sweep": lambda c, s: ["sweep", "--presets", c.tiny, "--suite", "demo", "--seeds", s,
                           "--out", str(c.existing_dir("sweep"))],
}


@pytest.mark.parametrize("seed", ["-1", str(2**63), str(2**64 + 5)])
@pytest.mark.parametrize("cmd", list(SEED_COMMANDS))
def test_seeds_out_of_range(ctx, capsys, cmd, seed):
    check_bad(SEED_COMMANDS[cmd](ctx, seed), capsys, ctx.tmp, ctx.trained)


def test_library_entries_refuse_bad_seeds(tmp_path):
    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import build_graph
    from neurosheet.rate.training import train
    from neurosheet.tasks import TrialSampler

    sheet = make_sheet(16)
    for seed in (-1, 2**63, 2**70):
        for call in (lambda s: make_sheet(16, "random", seed=s),
                     lambda s: build_graph(sheet, "random", density=0.2, seed=s),
                     lambda s: TrialSampler(["go"], seed=s),
                     lambda s: train(tmp_path / "r", "demo", "demo", seed=s)):
            with pytest.raises(NeurosheetError) as err:
                call(seed)
            assert err.value.param == "seed"
    assert not (tmp_path / "r").exists()


def test_names_and_noise(ctx, capsys):
    line = check_bad(["train", "--preset", str(ctx.tmp / "no\nsuch.toml"), "--suite", "demo",
                      "--out", str(ctx.run_copy())], capsys, ctx.tmp, ctx.trained)
    assert "\\n" in line  # the newline shown escaped, on one line
    # an unknown suite or task is refused before any progress bar is drawn
    check_bad(["sweep", "--presets", ctx.tiny, "--suite", "no_such_suite", "--out",
               str(ctx.existing_dir("sweep"))], capsys, ctx.tmp, ctx.trained)
    suite = ctx.file("suite.toml", b'tasks = ["go", "no_such_task"]\n')
    check_bad(["sweep", "--presets", ctx.tiny, "--suite", suite, "--out",
               str(ctx.existing_dir("sweep"))], capsys, ctx.tmp, ctx.trained)


# --------------------------------------------------------------------- the bars of issue 12
def test_huge_sheet_fails_in_under_5_s_with_the_estimate(capsys):
    t0 = time.perf_counter()
    assert main(["sheet", "--n", "100000000", "--density", "0.01"]) == 2
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert elapsed < 5.0, elapsed
    assert "\n" not in err and re.search(r"needs about [\d.]+ [kMGTPE]?B of memory \(estimate\)",
                                         err), err


@pytest.mark.parametrize("target", ["no_such_chip", "malformed", "nan", "binary"])
def test_bad_target_leaves_an_existing_pipeline_folder_byte_identical(ctx, capsys, target):
    existing = ctx.report()
    if target == "malformed":
        target = ctx.file("chip.toml", b'title = "chip"\nkind = "digital"\nrecurrent = "yes"\n')
    elif target in ("nan", "binary"):
        target = ctx.file("chip.toml", TOML_KINDS[target]("target"))
    before = snapshot(existing)
    check_bad(["pipeline", "--preset", ctx.tiny, "--targets", target, "--out", str(existing),
               "--no-progress"], capsys, existing)
    assert snapshot(existing) == before


LOCK_STEPS = 150
LOCK_PRESET = TINY.replace("steps = 3", f"steps = {LOCK_STEPS}").replace(
    "eval_every = 3", "eval_every = 50").replace("checkpoint_every = 3", "checkpoint_every = 50")


def _lock_held(path: Path) -> bool:
    try:
        fh = open(path, "a")  # closed by the with below
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def test_second_train_on_a_run_in_use_fails_at_once(tmp_path, capsys):
    preset = tmp_path / "lock.toml"
    preset.write_text(LOCK_PRESET)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    first = subprocess.Popen([sys.executable, "-m", "neurosheet", "train", "--preset",
                              str(preset), "--suite", "demo", "--out", str(out), "--no-progress",
                              "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not _lock_held(out / ".lock"):
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first train never took its lock"
            time.sleep(0.05)
        t0 = time.perf_counter()
        code = main(["train", "--preset", str(preset), "--suite", "demo", "--out", str(out),
                     "--no-progress"])
        elapsed = time.perf_counter() - t0
        err = capsys.readouterr().err
        busy = first.poll() is None
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert busy, "the first train finished before the second was tried: make it longer"
    assert code == 2 and len(err.splitlines()) == 1 and "in use" in err, err
    assert elapsed < 5.0
    assert first.returncode == 0, stderr
    # the first run's directory is whole: finished, its metrics exactly what it logged
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["steps"] == LOCK_STEPS
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == LOCK_STEPS
    assert ckpt["metrics_bytes"] == (out / "metrics.jsonl").stat().st_size
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == \
        list(range(10, LOCK_STEPS + 1, 10))
    assert [r["step"] for r in records if r["kind"] == "eval"] == \
        list(range(0, LOCK_STEPS + 1, 50))
    assert json.loads(stdout)["steps"] == LOCK_STEPS
    assert not list(out.rglob("*.tmp"))


# --------------------------------------------------------------------- clean ends
def test_unexpected_error_is_one_line_with_the_trace_in_a_file(tmp_path, capsys, monkeypatch):
    import neurosheet.cli.tasks as tasks_cli

    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(tasks_cli, "run", boom)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(["tasks", "list"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    trace = Path(err.strip().rsplit("full trace: ", 1)[1].rstrip(")"))
    assert trace.is_file() and "Traceback" in trace.read_text()


def test_json_reports_refuse_non_finite_numbers(tmp_path):
    from neurosheet.core.io import write_json

    with pytest.raises(NeurosheetError, match=r"'a\.b\.1'"):
        write_json(tmp_path / "r.json", {"a": {"b": [1.0, float("nan")]}})
    with pytest.raises(NeurosheetError, match="non-finite"):
        write_json(tmp_path / "r.json", {"x": np.float32("inf")})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_files_take_the_umask(tmp_path, mask):
    from neurosheet.core.io import write_json

    old = os.umask(mask)
    try:
        path = write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_stale_temporary_files_are_cleaned_on_the_next_run(ctx, capsys):
    run = ctx.run_copy()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = [run / f".checkpoint.pt.{dead}.abcd1234.tmp",
             run / "plots" / f".learning_curves.png.{dead}.x1y2z3w4.tmp"]
    live = run / f".summary.json.{os.getppid()}.q1w2e3r4.tmp"  # a live writer's: kept
    for p in [*stale, live]:
        p.write_bytes(b"partial")
    assert main(["train", "--preset", ctx.tiny, "--suite", "demo", "--out", str(run),
                 "--no-progress", "--json"]) == 0
    assert not any(p.exists() for p in stale) and live.exists()


def test_later_stages_say_when_a_run_did_not_finish(ctx, capsys):
    run = ctx.run_copy()
    (run / "summary.json").write_text('{"complete": false, "steps": 0, "target_steps": 3}\n')
    for argv in (["evaluate", str(run), "--trials", "1"],
                 ["budget", str(run), "--targets", "loihi"],
                 ["export", str(run), "--nir", str(ctx.tmp / "x.nir"),
                  "--calibration-trials", "2", "--gate", "off"]):
        assert main(argv) == 0, capsys.readouterr().err
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "warning:" in err[0] and "not a finished" in err[0], err
    assert main(["evaluate", str(ctx.trained), "--trials", "1"]) == 0
    assert capsys.readouterr().err == ""


def test_zero_accuracy_is_a_result_not_a_crash(ctx, capsys):
    """The tiny run scores 0 trial success: the spiking/rate ratio is undefined, said so."""
    run = ctx.run_copy()
    base = ["evaluate", str(run), "--backend", "snntorch", "--trials", "2",
            "--calibration-trials", "2", "--gate", "off", "--no-progress"]
    assert json.loads((run / "eval.json").read_text())["mean"]["trial_success"] == 0
    assert main(base) == 0
    out, err = capsys.readouterr()
    assert "undefined (rate accuracy 0)" in out and err == ""
    assert main([*base, "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))
    assert data["comparison"]["ratio"] is None


def test_nan_loss_without_a_checkpoint_says_so(ctx, capsys):
    preset = ctx.file("wild.toml", TINY.replace("[training]\n", "[training]\nlr = 1e30\n"
                                                "grad_clip = 1e30\n").replace(
        "steps = 3", "steps = 40").replace("checkpoint_every = 3",
                                           "checkpoint_every = 40").encode())
    code = main(["train", "--preset", preset, "--suite", "demo", "--out",
                 str(ctx.tmp / "wild"), "--no-progress"])
    err = capsys.readouterr().err.splitlines()
    if code == 0:
        pytest.skip("the loss stayed finite with lr = 1e30")
    assert code == 2 and len(err) == 1 and "no checkpoint was written yet" in err[0], err
    assert "not a finished" in (RunDir(ctx.tmp / "wild").unfinished() or "")
