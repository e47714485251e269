"""``neurosheet tasks list/show``: output, JSON, the plot file, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from neurosheet.cli import main


def test_list_all_and_suite_json(capsys):
    assert main(["tasks", "list"]) == 0
    out = capsys.readouterr().out
    assert "126 tasks" in out and "dlygo-intr-seqr" in out and "dlygointseq" in out
    assert main(["tasks", "list", "--suite", "modcog82", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["suite"] == "modcog82" and data["n_tasks"] == 82
    assert data["tasks"][20]["name"] == "dlygo-intr"
    assert data["tasks"][20]["reference_name"] == "dlygointr"
    assert main(["tasks", "list", "--suites", "--json"]) == 0
    names = {s["name"] for s in json.loads(capsys.readouterr().out)["suites"]}
    assert {"yang20", "modcog82", "modcog126", "modcog-seq", "modcog-int", "demo"} <= names


def test_show_prints_a_trial_and_plots(capsys, tmp_path):
    png = tmp_path / "trial.png"
    assert main(["tasks", "show", "dmsintl", "--trial-seed", "4", "--plot", str(png), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "dms-intl" and data["trial"]["seed"] == 4
    assert sum(data["trial"]["periods"].values()) == data["trial"]["steps"]
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["tasks", "show", "go-seql"]) == 0
    assert "decision period" in capsys.readouterr().out


@pytest.mark.parametrize("argv, names", [
    (["tasks", "show", "dlygo-intx"], ["'dlygo-intx'", "dlygo-intr"]),
    (["tasks", "list", "--suite", "modcog83"], ["'modcog83'", "modcog82"]),
    (["tasks", "list", "--suite", "modcog132"], ["modcog132", "modcog126"]),
])
def test_unknown_names_one_line_exit_2(capsys, argv, names):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("neurosheet tasks: error:")
    assert all(n in err for n in names)
    assert captured.out == ""
