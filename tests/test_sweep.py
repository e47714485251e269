"""Sweeps: the grid of jobs, the process pool, the Ray backend and the results files."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.experiments.sweep import aggregate, plan_jobs, run_sweep, write_results

TINY = """
[sheet]
n = 36
rule = "radius"
density = 0.2
[dynamics]
substeps = 1
[training]
steps = 4
batch = 4
eval_every = 2
eval_trials = 2
checkpoint_every = 2
threads = 1
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return str(path)


def test_plan_covers_the_grid_and_skips_density_for_autapse(tiny, tmp_path):
    jobs = plan_jobs([tiny, "autapse"], [0.1, 0.3], [0, 1], "demo", tmp_path / "sw", steps=4,
                     n=36)
    names = sorted(j.run_dir.split("/")[-1] for j in jobs)
    assert names == ["autapse-s0", "autapse-s1", "tiny-d0.1-s0", "tiny-d0.1-s1",
                     "tiny-d0.3-s0", "tiny-d0.3-s1"]
    with pytest.raises(NeurosheetError, match="density"):
        plan_jobs([tiny], [1.5], [0], "demo", tmp_path)
    with pytest.raises(NeurosheetError, match="did you mean"):
        plan_jobs(["lmrn"], [0.1], [0], "demo", tmp_path)


def check_results(rows, out):
    assert all("error" not in r for r in rows), rows
    table = aggregate(rows)
    assert {(t["target_density"], len(t["seeds"])) for t in table} == {(0.1, 2), (0.3, 2)}
    dens = {t["target_density"]: t["density"] for t in table}
    assert dens[0.1] < dens[0.3]  # the override reached the graph
    paths = write_results(out, rows)
    saved = json.loads(paths["json"].read_text())
    assert len(saved["runs"]) == 4 and len(saved["table"]) == 2
    assert paths["plot"].is_file() and paths["csv"].read_text().startswith("preset,")
    for r in rows:
        assert r["steps_done"] == 4 and r["curve"]["steps"] == [0, 2, 4]


def test_process_pool_sweep_writes_results(tiny, tmp_path):
    jobs = plan_jobs([tiny], [0.1, 0.3], [0, 1], "demo", tmp_path / "sw")
    rows = run_sweep(jobs, "process", workers=2)
    check_results(rows, tmp_path / "sw")
    # a second call resumes: every run is already complete, results are the same
    again = run_sweep(jobs, "process", workers=1)
    assert [r["final"] for r in again] == [r["final"] for r in rows]


def test_a_failing_point_becomes_an_error_row(tiny, tmp_path):
    with pytest.raises(NeurosheetError, match="suite"):  # planning checks every input first
        plan_jobs([tiny], [0.1], [0], "no-such-suite", tmp_path / "sw")
    jobs = plan_jobs([tiny], [0.1], [0], "demo", tmp_path / "sw")
    jobs = [dataclasses.replace(jobs[0], suite="no-such-suite")]  # e.g. a suite file removed
    rows = run_sweep(jobs, "process", workers=1)
    assert "suite" in rows[0]["error"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'neurosheet[ray]')")
def test_ray_backend_on_a_local_ray_instance(tiny, tmp_path):
    jobs = plan_jobs([tiny], [0.1, 0.3], [0, 1], "demo", tmp_path / "sw")
    rows = run_sweep(jobs, "ray", workers=2)  # starts (and stops) a local Ray instance
    check_results(rows, tmp_path / "sw")
