"""A run trained on the reference task code keeps that task mode in every later stage.

Conversion calibrates on, fine-tuning trains and validates on, and spike counts are drawn from
the same generator as the rate training (issue: a reference-mode run was fine-tuned on
fixed-mode trials, whose labels differ, and lost a third of its trial success)."""

from __future__ import annotations

import json

import pytest

from neurosheet import stages
from neurosheet.graph.circuit import load_run_circuit, task_mode_of
from neurosheet.spiking import persist
from neurosheet.spiking.conversion import ConversionConfig
from neurosheet.spiking.finetune import FinetuneConfig, finetune
from tests.tiny import TINY_TOML


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("refmode")
    preset = root / "tiny.toml"
    preset.write_text(TINY_TOML + 'task_mode = "reference"\n')
    run = root / "run"
    stages.train(run, preset, "demo", seed=0, progress=False, device="cpu")
    return run


def test_every_stage_draws_the_runs_task_mode(reference_run, tmp_path):
    circuit = load_run_circuit(reference_run)
    assert task_mode_of(circuit) == "reference"
    assert persist.sampler(circuit, 1).mode == "reference"
    conv = ConversionConfig(gate="off")
    sc = persist.spiking_for_run(reference_run, circuit, conv, 8, 0, tuned=False)
    assert task_mode_of(sc) == "reference"
    out = tmp_path / "ft"
    finetune(sc, out, FinetuneConfig(steps=1, batch=2, eval_trials=1, eval_every=1, distill=0.0))
    ckpt = __import__("torch").load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["task_mode"] == "reference"
    assert ckpt["sampler"]["mode"] == "reference"


def test_a_run_saved_before_the_mode_was_recorded_reads_it_from_its_config(reference_run,
                                                                             tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(reference_run, old)
    circuit = load_run_circuit(old)
    circuit.meta.pop("task_mode")
    circuit.save(old / "circuit.npz")
    assert "task_mode" not in json.loads(str(__import__("numpy").load(
        old / "circuit.npz")["meta"]))
    assert task_mode_of(load_run_circuit(old)) == "reference"


def test_a_conversion_for_another_task_mode_is_not_reused(reference_run):
    circuit = load_run_circuit(reference_run)
    conv = ConversionConfig(gate="off")
    sc = persist.spiking_for_run(reference_run, circuit, conv, 8, 0, tuned=False)
    assert persist.load_conversion(reference_run, circuit, conv) is not None
    fixed = type(circuit)(**{**circuit.__dict__, "meta": {**circuit.meta, "task_mode": "fixed"}})
    assert persist.load_conversion(reference_run, fixed, conv) is None
    assert task_mode_of(sc) == "reference"
