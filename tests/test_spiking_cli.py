"""``neurosheet simulate`` / ``export`` on a run directory, and their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurosheet.cli import main
from neurosheet.core.rundir import RunDir
from neurosheet.graph.circuit import save_run_circuit
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.nir import read_nir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    circuit = random_circuit(49, density=0.15, seed=11)
    save_run_circuit(d, circuit)
    np.save(d / "inputs.npy", random_inputs(6, 5, 4, seed=12))
    return d


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


@pytest.mark.parametrize("backend", ["snntorch", "brian2"])
def test_simulate_prints_numbers_and_draws_a_raster(run_dir, backend, capsys, tmp_path):
    png = tmp_path / "raster.png"
    code = main(["simulate", str(run_dir), "--backend", backend, "--inputs",
                 str(run_dir / "inputs.npy"), "--trials", "4", "--substeps", "10",
                 "--brian2-target", "numpy", "--plot", str(png), "--json"])
    assert code == 0
    s = _json(capsys)
    assert s["backend"] == backend and s["trials"] == 4 and s["spikes"] > 0
    assert s["synaptic_events"] > s["spikes"]
    assert 0.0 <= s["decision_agreement_with_rate"] <= 1.0
    assert s["conversion"]["substeps"] == 10
    assert s["conversion"]["neuron"]["reset"] == "zero"
    assert png.stat().st_size > 1000
    assert RunDir(run_dir).conversion.is_file() and RunDir(run_dir).conversion_json.is_file()


def test_simulate_text_output(run_dir, capsys):
    code = main(["simulate", str(run_dir), "--inputs", str(run_dir / "inputs.npy"),
                 "--trials", "2", "--substeps", "5"])
    assert code == 0
    out = capsys.readouterr().out
    assert "real-time factor" in out and "decisions agree" in out


def test_export_writes_a_nir_file_with_the_graph(run_dir, capsys, tmp_path):
    path = tmp_path / "c.nir"
    code = main(["export", str(run_dir), "--nir", str(path), "--inputs",
                 str(run_dir / "inputs.npy"), "--substeps", "10", "--json"])
    assert code == 0
    info = _json(capsys)
    from neurosheet.graph.circuit import load_run_circuit

    graph = load_run_circuit(run_dir).graph
    back = read_nir(path)
    post, pre = graph.edges()
    assert info["synapses"] == graph.synapses == back.synapses
    np.testing.assert_array_equal(back.post, post)
    np.testing.assert_array_equal(back.pre, pre)
    assert info["time_scale"] == 1.0 and info["file_dt_ms"] == 0.1


def test_export_rescale_time_states_one_step_per_file_step(run_dir, capsys, tmp_path):
    path = tmp_path / "fast.nir"
    code = main(["export", str(run_dir), "--nir", str(path), "--inputs",
                 str(run_dir / "inputs.npy"), "--substeps", "10", "--rescale-time", "--json"])
    assert code == 0
    info = _json(capsys)
    assert info["time_scale"] == pytest.approx(info["sim_dt_ms"] / 0.1)
    assert read_nir(path).network.steps_per_task_step == 10


def _one_line_error(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert match in err
    return err


def test_circuit_that_does_not_match_its_graph(tmp_path, capsys):
    save_run_circuit(tmp_path, random_circuit(49, density=0.15, seed=1))
    other = random_circuit(49, density=0.3, seed=1)
    other.graph.save(RunDir(tmp_path).graph)
    np.save(tmp_path / "u.npy", random_inputs(3, 2, 4))
    for cmd in (["simulate", str(tmp_path), "--inputs", str(tmp_path / "u.npy")],
                ["export", str(tmp_path), "--nir", str(tmp_path / "x.nir")]):
        _one_line_error(capsys, cmd, "does not match its graph")


def test_nan_weights_are_refused(tmp_path, capsys):
    save_run_circuit(tmp_path, random_circuit(49, density=0.15, seed=1))
    with np.load(RunDir(tmp_path).circuit) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["w_rec"] = arrays["w_rec"].copy()
    arrays["w_rec"][3] = np.nan
    with open(RunDir(tmp_path).circuit, "wb") as fh:
        np.savez(fh, **arrays)
    np.save(tmp_path / "u.npy", random_inputs(3, 2, 4))
    _one_line_error(capsys, ["simulate", str(tmp_path), "--inputs", str(tmp_path / "u.npy")],
                    "NaN")
    _one_line_error(capsys, ["export", str(tmp_path), "--nir", str(tmp_path / "x.nir")], "NaN")


def test_other_bad_input_is_one_line(run_dir, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 9), np.float32))
    _one_line_error(capsys, ["simulate", str(run_dir), "--inputs", str(tmp_path / "bad.npy")],
                    "shape")
    _one_line_error(capsys, ["simulate", str(tmp_path / "nope"), "--inputs", "x.npy"],
                    "not found")
    _one_line_error(capsys, ["simulate", str(run_dir), "--inputs", str(run_dir / "inputs.npy"),
                             "--rate-hz", "-3"], "--rate-hz")
    _one_line_error(capsys, ["simulate", str(run_dir), "--inputs", str(run_dir / "inputs.npy"),
                             "--tau-mem", "0"], "--tau-mem")
    _one_line_error(capsys, ["export", str(run_dir), "--nir", str(tmp_path / "y.nir")],
                    "no tasks")


@pytest.fixture(scope="module")
def task_run_dir(tmp_path_factory):
    """An (untrained) circuit shaped for two Mod-Cog tasks: 33 + 2 inputs, 17 outputs."""
    from neurosheet.tasks import N_OBS, N_OUT

    d = tmp_path_factory.mktemp("taskrun")
    c = random_circuit(49, density=0.15, n_inputs=N_OBS + 2, n_outputs=N_OUT, seed=13)
    c = type(c)(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, c.params, ("go", "dm1"))
    save_run_circuit(d, c)
    return d


def test_simulate_a_task_reports_accuracy_next_to_the_rate_network(task_run_dir, capsys, tmp_path):
    png = tmp_path / "task.png"
    code = main(["simulate", str(task_run_dir), "--task", "dm1", "--trials", "3", "--substeps",
                 "5", "--calibration-trials", "8", "--plot", str(png), "--json"])
    assert code == 0
    s = _json(capsys)
    assert s["task"] == "dm1" and s["trials"] == 3
    assert set(s["spiking_accuracy"]) == set(s["rate_accuracy"]) >= {"step_accuracy"}
    assert png.is_file()
    _one_line_error(capsys, ["simulate", str(task_run_dir), "--task", "anti"], "anti")


def test_evaluate_prints_spiking_next_to_rate_accuracy(task_run_dir, capsys):
    code = main(["evaluate", str(task_run_dir), "--backend", "snntorch", "--trials", "3",
                 "--substeps", "5", "--calibration-trials", "8", "--json"])
    assert code == 0
    s = _json(capsys)
    cmp = s["comparison"]
    assert set(cmp["per_task"]) == {"go", "dm1"}
    assert cmp["mean_rate"] == s["rate"]["mean"]
    assert cmp["mean_spiking"]["trial_success"] == pytest.approx(s["mean"]["trial_success"])
    lo, hi = s["ci"]["trial_success"]
    assert 0.0 <= lo <= s["mean"]["trial_success"] <= hi <= 1.0
    assert s["trials"] == s["rate"]["trials"] == 3 and s["seed"] == s["rate"]["seed"]
    code = main(["evaluate", str(task_run_dir), "--backend", "brian2", "--brian2-target", "numpy",
                 "--trials", "2", "--substeps", "5", "--calibration-trials", "8"])
    assert code == 0
    out = capsys.readouterr().out
    assert "brian2 trial" in out and "rate trial" in out and "spiking / rate trial success" in out
    assert "forgives" in out
