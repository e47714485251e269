"""The train / evaluate / sweep commands: outputs, JSON and one-line errors."""

from __future__ import annotations

import json

from tiny import TINY_TOML

from neurosheet.cli import main

TINY = TINY_TOML


def test_train_then_evaluate_json(tmp_path, capsys):
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY)
    out = tmp_path / "run"
    assert main(["train", "--preset", str(preset), "--suite", "demo", "--out", str(out),
                 "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and "trial_success" in summary["final"]
    assert main(["evaluate", str(out), "--trials", "3", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["backend"] == "rate" and ev["trials"] == 3 and ev["per_task"]
    assert main(["evaluate", str(out), "--trials", "3", "--rate-substeps", "2"]) == 0
    table = capsys.readouterr().out
    assert "mean over tasks" in table


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--preset", "lmrn", "--suite", "demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean" in err and "\n" not in err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and "\n" not in err
    assert main(["sweep", "--presets", "lmrn", "--suite", "demo", "--out", str(tmp_path)]) == 2
    assert "did you mean" in capsys.readouterr().err
