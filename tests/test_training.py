"""Training: run directory, exact resume, clear errors that never lose saved files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurosheet import stages
from neurosheet.core import rundir
from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.config import ModelPreset, load_model_preset, with_overrides
from neurosheet.rate.evaluation import evaluate_run
from neurosheet.rate.training import train

SUITE = "demo"


def tiny(dynamics: dict | None = None, **training) -> ModelPreset:
    """A 36-neuron LM-RNN that trains in about a second."""
    t = {"steps": 12, "batch": 8, "lr": 0.003, "eval_every": 6, "eval_trials": 4,
         "checkpoint_every": 4, "log_every": 1, "threads": 1, **training}
    return ModelPreset.model_validate({
        "sheet": {"n": 36, "rule": "radius", "density": 0.2},
        "dynamics": {"substeps": 2, "rec_noise": 0.05, "in_noise": 0.05, **(dynamics or {})},
        "training": t,
    })


def losses(run_dir) -> list[float]:
    return [r["loss"] for r in rundir.read_metrics(run_dir) if r["kind"] == "train"]


def test_run_directory_has_every_file_and_loads(tmp_path):
    result = stages.train(tmp_path / "run", tiny(), SUITE, seed=1, progress=False)
    run = Path(result.run_dir)
    for name in ("config.json", "config.toml", "graph.npz", "circuit.npz", "checkpoint.pt",
                 "metrics.jsonl", "eval.json", "summary.json", "plots/learning_curves.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["suite"] == SUITE and config["seed"] == 1 and config["tasks"]
    circuit = load_run_circuit(run)
    assert circuit.tasks == tuple(config["tasks"])
    assert circuit.graph.synapses == json.loads((run / "summary.json").read_text())["synapses"]
    # the resolved TOML is itself a valid preset that rebuilds the same settings
    again, _ = load_model_preset(run / "config.toml")
    assert again == tiny()
    evals = [r for r in rundir.read_metrics(run) if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 6, 12]
    assert set(evals[-1]["per_task"]) == set(config["tasks"])
    assert len(losses(run)) == 12


def test_resume_reproduces_the_uninterrupted_losses(tmp_path):
    full = train(tmp_path / "full", tiny(), SUITE, seed=2, progress=False)
    train(tmp_path / "cut", tiny(), SUITE, seed=2, progress=False, stop_after=5)
    assert len(losses(tmp_path / "cut")) == 5
    resumed = train(tmp_path / "cut", tiny(), SUITE, seed=2, progress=False)
    assert resumed.resumed_from == 5
    assert losses(tmp_path / "cut") == losses(tmp_path / "full")  # bit for bit
    a = load_run_circuit(tmp_path / "cut")
    b = load_run_circuit(full.run_dir)
    assert np.array_equal(a.w_rec, b.w_rec)
    assert full.final == resumed.final


def test_resume_is_exact_with_random_training_substeps(tmp_path):
    mixed = tiny({"train_substeps": [1, 2, 3]})
    full = train(tmp_path / "full", mixed, SUITE, seed=4, progress=False, steps=8)
    train(tmp_path / "cut", mixed, SUITE, seed=4, progress=False, steps=8, stop_after=3)
    train(tmp_path / "cut", mixed, SUITE, seed=4, progress=False, steps=8)
    assert losses(tmp_path / "cut") == losses(full.run_dir)
    assert load_run_circuit(full.run_dir).params.substeps == 2  # the nominal count is saved
    plain = train(tmp_path / "plain", tiny(), SUITE, seed=4, progress=False, steps=8)
    assert losses(plain.run_dir) != losses(full.run_dir)  # the choices did change training
    with pytest.raises(NeurosheetError, match="train_substeps"):
        with_overrides(tiny(), {"dynamics": {"train_substeps": []}})


def test_more_steps_extend_a_finished_run(tmp_path):
    train(tmp_path / "r", tiny(), SUITE, seed=0, progress=False, steps=8)
    result = train(tmp_path / "r", tiny(), SUITE, seed=0, progress=False, steps=12)
    assert result.resumed_from == 8 and result.steps == 12
    assert len(losses(tmp_path / "r")) == 12


def test_nan_loss_is_a_clear_error_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    import neurosheet.rate.training as training

    calls = {"n": 0}
    real = training.masked_loss

    def poisoned(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss * float("nan") if calls["n"] == 7 else loss

    monkeypatch.setattr(training, "masked_loss", poisoned)
    run = tmp_path / "r"
    with pytest.raises(NeurosheetError, match=r"loss became nan at step 7.*checkpoint \(step 4\)"):
        train(run, tiny(steps=12), SUITE, seed=0, progress=False)
    ckpt = training.load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 4
    circuit = load_run_circuit(run)
    assert circuit.meta["step"] == 4 and np.isfinite(circuit.w_rec).all()
    # after the cause is fixed the run resumes from the kept checkpoint
    monkeypatch.setattr(training, "masked_loss", real)
    assert train(run, tiny(steps=12), SUITE, seed=0, progress=False).resumed_from == 4


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run = tmp_path / "r"
    train(run, tiny(steps=4), SUITE, seed=0, progress=False)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NeurosheetError, match="corrupt checkpoint"):
        train(run, tiny(steps=8), SUITE, seed=0, progress=False)
    assert (run / "circuit.npz").is_file()  # the trained weights are still there


def test_other_settings_in_the_same_directory_are_refused(tmp_path):
    run = tmp_path / "r"
    train(run, tiny(steps=4), SUITE, seed=0, progress=False)
    with pytest.raises(NeurosheetError, match="different seed"):
        train(run, tiny(steps=4), SUITE, seed=1, progress=False)
    other = with_overrides(tiny(steps=4), {"sheet": {"density": 0.4}})
    with pytest.raises(NeurosheetError, match="different sheet"):
        train(run, other, SUITE, seed=0, progress=False)


def test_unknown_preset_and_bad_values_are_one_line_errors(tmp_path):
    with pytest.raises(NeurosheetError, match="did you mean"):
        load_model_preset("lmrn")
    bad = tmp_path / "bad.toml"
    bad.write_text('[sheet]\nn = 16\nrule = "radius"\ndensity = 2.0\n')
    with pytest.raises(NeurosheetError, match=r"sheet\.density"):
        load_model_preset(bad)


def test_every_shipped_preset_validates():
    for name in ("lmrnn", "dense", "random-sparse", "fixed-fan-in", "autapse", "demo"):
        preset, _ = load_model_preset(name)
        assert preset.training.steps > 0


def test_evaluate_run_scores_each_task(tmp_path):
    result = train(tmp_path / "r", tiny(steps=4), SUITE, seed=0, progress=False)
    ev = evaluate_run(result.run_dir, trials=4, seed=3)
    assert set(ev["per_task"]) == set(load_run_circuit(result.run_dir).tasks)
    for m in ev["per_task"].values():
        assert 0.0 <= m["step_accuracy"] <= 1.0 and m["n_trials"] == 4
    assert ev["mean"]["step_accuracy"] == pytest.approx(
        np.mean([m["step_accuracy"] for m in ev["per_task"].values()]))
    with pytest.raises(NeurosheetError, match="backend"):
        stages.evaluate(result.run_dir, "loihi", trials=4)


def test_training_lowers_the_loss(tmp_path):
    result = train(tmp_path / "r", tiny(steps=40, lr=0.01, eval_every=40), SUITE, seed=0,
                   progress=False)
    ls = losses(result.run_dir)
    assert np.mean(ls[-5:]) < 0.8 * np.mean(ls[:5])


def test_evaluate_a_subset_of_the_trained_tasks(tmp_path):
    from neurosheet.tasks import load_suite

    result = train(tmp_path / "r", tiny(steps=2), SUITE, seed=0, progress=False)
    first = load_suite(SUITE).tasks[0]
    ev = evaluate_run(result.run_dir, tasks=(first,), trials=4)
    assert list(ev["per_task"]) == [first]
    with pytest.raises(NeurosheetError, match="not trained on"):
        evaluate_run(result.run_dir, tasks=("dnmc",), trials=4)
