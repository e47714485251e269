"""train_many: K networks trained together end exactly as K separate runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosheet.core import rundir
from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate import fused
from neurosheet.rate.batched import RunSpec, forward_many, train_many
from neurosheet.rate.config import load_model_preset, with_overrides
from neurosheet.rate.training import train

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C compiler: eager path only")


def preset(**sheet):
    base, _ = load_model_preset("demo")  # train_substeps 4/8/16: each run draws its own
    return with_overrides(base, {
        "sheet": {"n": 64, **sheet},
        "training": {"steps": 4, "batch": 8, "eval_every": 2, "checkpoint_every": 2,
                     "eval_trials": 2, "log_every": 1},
    })


def losses(run):
    return [r["loss"] for r in rundir.read_metrics(run) if r["kind"] == "train"]


def test_the_test_networks_run_on_the_fused_engine():
    from neurosheet.rate.training import make_graph, make_model

    for p in (preset(), preset(density=0.3)):
        assert make_model(p, make_graph(p.sheet, 4, 3, 0), 0).engine == "fused"


def test_train_many_equals_separate_runs(tmp_path):
    specs = [RunSpec(tmp_path / "m0", preset(), "demo", seed=0),
             RunSpec(tmp_path / "m1", preset(), "demo", seed=1),
             RunSpec(tmp_path / "m2", preset(density=0.3), "demo", seed=2, steps=3)]
    got = train_many(specs)
    assert [r.steps for r in got] == [4, 4, 3]
    for i, spec in enumerate(specs):
        alone = tmp_path / f"a{i}"
        train(alone, spec.preset, "demo", seed=spec.seed, steps=spec.steps, progress=False)
        assert losses(spec.run_dir) == pytest.approx(losses(alone), rel=1e-6)
        assert len(losses(alone)) == got[i].steps
        a, b = load_run_circuit(spec.run_dir), load_run_circuit(alone)
        for key in ("w_rec", "w_in", "b_rec", "w_out", "b_out"):
            np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-5, atol=1e-6)
        evals = [rundir.read_metrics(d)[-1] for d in (spec.run_dir, alone)]
        assert evals[0]["kind"] == "eval" and evals[0]["mean"] == evals[1]["mean"]
        assert rundir.RunDir(spec.run_dir).summary.exists()


def test_a_failing_run_leaves_the_batch_and_the_others_finish(tmp_path):
    bad = with_overrides(preset(), {"training": {"lr": 1e9, "grad_clip": None}})
    got = train_many([RunSpec(tmp_path / "ok", preset(), "demo", seed=0),
                      RunSpec(tmp_path / "bad", bad, "demo", seed=0)])
    assert got[0].steps == 4
    assert isinstance(got[1], NeurosheetError)
    with pytest.raises(NeurosheetError) as alone:  # the same failure as a run of its own
        train(tmp_path / "alone", bad, "demo", seed=0, progress=False)
    assert str(alone.value) == str(got[1])
    assert losses(tmp_path / "alone") == losses(tmp_path / "bad")


def test_forward_many_needs_one_batch_size():
    from neurosheet.rate.training import make_graph, make_model

    p = preset()
    models = [make_model(p, make_graph(p.sheet, 4, 3, s), s) for s in (0, 1)]
    xs = [torch.rand(3, 4, 4), torch.rand(3, 5, 4)]
    with pytest.raises(NeurosheetError, match="batch size"):
        forward_many(models, xs, [None, None], [None, None])


def test_an_interrupt_checkpoints_every_run_and_resumes_exactly(tmp_path, monkeypatch):
    import os
    import signal

    from neurosheet.rate import batched
    from neurosheet.rate.training import TrainingInterrupted, load_checkpoint

    calls = []
    real = batched.joint_step

    def interrupted_after_three(*args, **kw):
        out = real(*args, **kw)
        calls.append(1)
        if len(calls) == 3:  # not a multiple of checkpoint_every (2)
            os.kill(os.getpid(), signal.SIGINT)  # caught by train_many's handler: a flag
        return out

    monkeypatch.setattr(batched, "joint_step", interrupted_after_three)
    specs = [RunSpec(tmp_path / f"m{i}", preset(), "demo", seed=i) for i in range(2)]
    with pytest.raises(TrainingInterrupted, match="checkpoint written"):
        train_many(specs)
    for s in specs:
        assert load_checkpoint(rundir.RunDir(s.run_dir).checkpoint)["step"] == 3
    monkeypatch.setattr(batched, "joint_step", real)
    assert [r.steps for r in train_many(specs)] == [4, 4]
    for s in specs:
        alone = tmp_path / f"alone{s.seed}"
        train(alone, s.preset, "demo", seed=s.seed, progress=False)
        a, b = load_run_circuit(s.run_dir), load_run_circuit(alone)
        np.testing.assert_allclose(a.w_rec, b.w_rec, rtol=1e-5, atol=1e-6)
