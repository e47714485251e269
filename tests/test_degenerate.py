"""A degenerate but valid result (zero accuracy, a circuit that fits no target) runs to the end."""

from __future__ import annotations

import json

import pytest
from tiny import TINY_TOML

from neurosheet.cli import main

TINY = TINY_TOML


def test_pipeline_with_zero_accuracy_writes_its_whole_report(tmp_path, capsys):
    """3 training steps: the rate network scores 0 trial success (no fidelity ratio exists),
    akida fits nothing recurrent; the pipeline still ends with a valid index."""
    (tmp_path / "tiny.toml").write_text(TINY)
    out = tmp_path / "report"
    assert main(["pipeline", "--preset", str(tmp_path / "tiny.toml"), "--out", str(out),
                 "--trials", "1", "--spike-trials", "1", "--backends", "rate,snntorch",
                 "--targets", "loihi,akida", "--gate", "warn", "--no-progress"]) == 0
    capsys.readouterr()
    index = json.loads((out / "index.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert index["evaluation"]["rate"]["mean"]["trial_success"] == 0
    assert index["evaluation"]["snntorch"].get("fidelity") is None  # undefined, not 0 or NaN
    assert all(s["status"] == "ok" for s in index["stages"])
    rows = {r["target"]: r for r in index["budget"]["rows"]}
    assert rows["akida"]["fits"] is False
    assert "## Hardware budgets" in (out / "index.md").read_text()
    assert json.loads((out / "run" / "summary.json").read_text())["complete"] is True
