"""`neurosheet sheet`: JSON output, plots, saved graphs and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from neurosheet.cli import main
from neurosheet.graph.sheetgraph import SheetGraph


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_documented_keys(capsys):
    code, out, _ = run_cli(capsys, "sheet", "--n", "1024", "--density", "0.04", "--json")
    assert code == 0
    obj = json.loads(out)
    for key in ("n", "synapses", "density", "mean_fan_in", "max_fan_in", "mean_length"):
        assert key in obj
    assert obj["n"] == 1024 and obj["density"] == pytest.approx(0.04, rel=0.05)


@pytest.mark.parametrize("rule", ["radius", "gaussian", "exponential", "random", "full", "autapse"])
def test_every_rule_runs(capsys, rule):
    code, out, _ = run_cli(capsys, "sheet", "--n", "100", "--rule", rule, "--density", "0.1",
                           "--seed", "3", "--json")
    assert code == 0
    obj = json.loads(out)
    expected = {"full": 1.0, "autapse": 0.01}.get(rule, 0.1)
    assert obj["density"] == pytest.approx(expected, rel=0.35)


def test_plot_and_save(tmp_path, capsys):
    png, npz = tmp_path / "sheet.png", tmp_path / "g.npz"
    code, out, _ = run_cli(capsys, "sheet", "--n", "256", "--density", "0.05", "--periodic",
                           "--plot", str(png), "--save", str(npz), "--n-inputs", "35",
                           "--n-outputs", "17")
    assert code == 0 and "recurrent synapses" in out
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    g = SheetGraph.load(npz)
    assert g.sheet.periodic and g.inputs.shape == (256, 35)


@pytest.mark.parametrize("args, fragment", [
    (["--n", "0"], "positive integer"),
    (["--n", "-5"], "positive integer"),
    (["--n", "100", "--density", "0"], "must be in (0, 1]"),
    (["--n", "100", "--density", "1.5"], "must be in (0, 1]"),
    (["--n", "100", "--radius", "-2"], "must be >= 0"),
    (["--n", "100", "--rule", "ring"], "invalid choice"),
    (["--n", "16", "--density", "0.01"], "unreachable"),
    (["--n", "100", "--neuron", "500", "--plot", "x.png"], "--neuron 500"),
])
def test_bad_input_is_one_line_on_stderr(capsys, args, fragment):
    code, _, err = run_cli(capsys, "sheet", *args)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_exits_nonzero_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "neurosheet", "sheet", "--n", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("neurosheet sheet: error: number of neurons must be a "
                                   "positive integer, got 0")
