"""BIMT inside the trainer: presets, exact resume across swaps, the pruned run directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurosheet.core import rundir
from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.config import ModelPreset, load_model_preset
from neurosheet.rate.training import train

SUITE = "demo"


def tiny_bimt(rule: str = "full", **bimt) -> ModelPreset:
    """16 neurons, fully connected, swaps every 3 steps: trains in about a second."""
    return ModelPreset.model_validate({
        "sheet": {"n": 16, "rule": rule, **({"density": 0.3} if rule == "radius" else {})},
        "dynamics": {"substeps": 1, "rec_noise": 0.05},
        "training": {"steps": 8, "batch": 8, "lr": 0.01, "eval_every": 8, "eval_trials": 4,
                     "checkpoint_every": 4, "log_every": 1},
        "bimt": {"lam": 0.5, "swap_every": 3, "swap_top_k": 8, "prune": 0.2, **bimt},
    })


def test_presets_validate_with_their_modes():
    modes = {name: load_model_preset(name)[0].bimt.mode for name in ("bimt", "l1", "none")}
    assert modes == {"bimt": "bimt", "l1": "l1", "none": "none"}
    base = load_model_preset("bimt")[0]
    for name in ("l1", "none"):  # same network and training: only the regularizer differs
        other = load_model_preset(name)[0]
        assert (other.sheet, other.dynamics, other.training) == \
            (base.sheet, base.dynamics, base.training)


def test_bimt_run_resumes_exactly_across_swaps_and_prunes(tmp_path):
    full = train(tmp_path / "full", tiny_bimt(), SUITE, seed=3, progress=False)
    train(tmp_path / "cut", tiny_bimt(), SUITE, seed=3, progress=False, stop_after=5)
    train(tmp_path / "cut", tiny_bimt(), SUITE, seed=3, progress=False)
    loss = [[r["loss"] for r in rundir.read_metrics(d) if r["kind"] == "train"]
            for d in (tmp_path / "full", tmp_path / "cut")]
    assert loss[0] == loss[1]
    a, b = load_run_circuit(tmp_path / "full"), load_run_circuit(tmp_path / "cut")
    assert np.array_equal(a.w_rec, b.w_rec)
    assert a.meta["bimt"]["perm"] == b.meta["bimt"]["perm"]
    assert [h["step"] for h in a.meta["bimt"]["swaps"]] == [2, 5]
    assert a.meta["bimt"]["perm"] != list(range(16))  # neurons did move
    # the pruned circuit is a run directory of its own, with its evaluation
    pruned = load_run_circuit(rundir.RunDir(full.run_dir).pruned.path)
    assert pruned.graph.synapses < a.graph.synapses
    summary = json.loads(rundir.RunDir(full.run_dir).summary.read_text())
    assert summary["pruned"]["synapses"] == pruned.graph.synapses
    assert summary["bimt_mode"] == "bimt" and summary["swap_passes"] == 2
    assert (rundir.RunDir(full.run_dir).pruned.eval).is_file()
    # the resolved config.toml (with its [bimt] table) is itself the same preset
    again, _ = load_model_preset(rundir.RunDir(full.run_dir).config_toml)
    assert again == tiny_bimt()


def test_swaps_on_a_sparse_mask_are_a_clear_error(tmp_path):
    with pytest.raises(NeurosheetError, match="fully connected"):
        train(tmp_path / "r", tiny_bimt("radius"), SUITE, progress=False)
    # the wiring cost alone is fine on an LM-RNN mask
    train(tmp_path / "ok", tiny_bimt("radius", swap_every=0), SUITE, progress=False, steps=2)
