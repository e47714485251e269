"""Spike-aware fine-tuning: only the graph's edges train, exact resume, run-directory hand-off."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurosheet.cli import main
from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit, save_run_circuit
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit
from neurosheet.spiking.finetune import (
    FinetuneConfig,
    RateTeacher,
    distill_penalty,
    finetune,
    param_groups,
    rate_cap_penalty,
)
from neurosheet.spiking.model import SpikingCircuit
from neurosheet.spiking.network import SpikingSheet

BUSY = {"rate_hz": 1000.0, "tau_mem_ms": 50.0}
TINY = {"batch": 4, "eval_every": 2, "eval_trials": 2, "substeps": (4,), "checkpoint_every": 2,
        "distill": 0.0}


def _task_circuit(seed: int = 3) -> Circuit:
    """An untrained circuit shaped for the Mod-Cog go task (33 + 1 inputs, 17 outputs)."""
    from neurosheet.tasks import N_OBS, N_OUT

    c = random_circuit(36, density=0.2, n_inputs=N_OBS + 1, n_outputs=N_OUT, seed=seed)
    return Circuit(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, c.params, ("go",))


@pytest.fixture(scope="module")
def converted():
    from neurosheet.spiking.persist import calibration_batch

    c = _task_circuit()
    cal = calibration_batch(c, 8, 0)
    return c, convert(c, cal.inputs, ConversionConfig(substeps=8, gate="off", **BUSY))


def test_finetuning_keeps_masked_synapses_exactly_zero(converted, tmp_path):
    _, sc = converted
    res = finetune(sc, tmp_path, FinetuneConfig(steps=4, **TINY))
    last = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    net = SpikingSheet(sc)
    net.load_state_dict(last)
    tuned = net.to_circuit()
    assert not np.array_equal(tuned.w_rec, sc.w_rec)  # the edge values trained
    mask = sc.graph.adjacency.toarray() != 0
    dense = tuned.rec_matrix().toarray()
    assert not dense[~mask].any()  # every non-edge is exactly zero
    # and the module has nothing to train off the edges: its parameters are the edge values
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    assert shapes == {"w_rec": (sc.synapses,), "w_in": (sc.graph.inputs.synapses,),
                      "b": (sc.n,), "w_out": (sc.graph.readout.synapses,),
                      "b_out": (sc.n_outputs,)}
    in_mask = sc.graph.inputs.mask.toarray() != 0
    assert not tuned.in_matrix().toarray()[~in_mask].any()
    assert res.circuit.graph.fingerprint() == sc.graph.fingerprint()
    assert res.circuit.meta["source"] == "finetune"


def test_gradients_reach_only_edge_values(converted):
    _, sc = converted
    net = SpikingSheet(sc)
    from neurosheet.spiking.persist import calibration_batch

    b = calibration_batch(sc_circuit := converted[0], 4, 1)
    out = net(torch.as_tensor(b.inputs), substeps=4)
    out.logits.sum().backward()
    assert net.w_rec.grad is not None and net.w_rec.grad.shape == (sc.synapses,)
    assert torch.isfinite(net.w_rec.grad).all() and net.w_rec.grad.abs().sum() > 0
    assert sc_circuit.n == sc.n


def test_rate_cap_penalty_is_zero_below_the_cap_and_pulls_rates_down_above_it(converted):
    # counts per 100 ms task step: 5 spikes = 50 Hz, 12 spikes = 120 Hz
    counts = torch.tensor([[[5.0, 12.0]], [[12.0, 5.0]]], requires_grad=True)  # (T, B, N)
    valid = torch.tensor([[True], [False]])  # the second step is masked out
    assert float(rate_cap_penalty(counts, valid, 100.0, 130.0).detach()) == 0.0
    pen = rate_cap_penalty(counts, valid, 100.0, 80.0)
    assert float(pen.detach()) == pytest.approx((120.0 - 80.0) ** 2 / 2)  # one of 2 valid neuron-steps
    pen.backward()
    g = counts.grad
    assert g[0, 0, 1] > 0 and g[0, 0, 0] == 0 and g[1].abs().sum() == 0
    # on a simulated circuit: the hinge reaches the weights only when rates exceed the cap
    _, sc = converted
    from neurosheet.spiking.persist import calibration_batch

    b = calibration_batch(converted[0], 4, 1)
    grads = []
    for cap in (1e6, 20.0):
        net = SpikingSheet(sc)
        out = net(torch.as_tensor(b.inputs), substeps=4)
        rate_cap_penalty(out.counts, torch.ones(out.counts.shape[:2], dtype=torch.bool),
                         sc.task_dt_ms, cap).backward()
        grads.append(net.w_rec.grad.abs().sum())
    assert grads[0] == 0 and grads[1] > 0


def test_distillation_targets_are_the_conversion_map_of_the_rate_networks_rates(converted):
    from neurosheet.spiking.conversion import rate_logits
    from neurosheet.spiking.persist import calibration_batch

    c, sc = converted
    teacher = RateTeacher.for_circuit(c, sc)
    b = calibration_batch(c, 4, 2)
    _, rates = rate_logits(c, b.inputs)
    target = teacher.targets(b.inputs).double().numpy()
    # a unit at the calibration percentile fires rate_hz: BUSY's 1000 Hz is 100 spikes per 100 ms
    assert teacher.norm == pytest.approx(BUSY["rate_hz"] / 1000.0 * sc.task_dt_ms)
    np.testing.assert_allclose(target, rates * teacher.norm / sc.meta["rate_percentile_global"],
                               rtol=1e-5, atol=1e-6)
    # the penalty: zero where counts equal the target, only valid steps count, gradient signs
    counts = torch.tensor([[[2.0, 6.0]], [[9.0, 9.0]]], requires_grad=True)
    tgt = torch.tensor([[[2.0, 4.0]], [[0.0, 0.0]]])
    valid = torch.tensor([[True], [False]])
    pen = distill_penalty(counts, tgt, valid, 4.0)
    assert float(pen.detach()) == pytest.approx(((6.0 - 4.0) / 4.0) ** 2 / 2)
    pen.backward()
    assert counts.grad[0, 0, 0] == 0 and counts.grad[0, 0, 1] > 0 and not counts.grad[1].any()


def test_distillation_needs_a_teacher_and_maps_per_neuron_calibration(converted, tmp_path):
    from neurosheet.spiking.conversion import rate_logits
    from neurosheet.spiking.persist import calibration_batch

    c, sc = converted
    with pytest.raises(NeurosheetError, match="teacher"):
        finetune(sc, tmp_path, FinetuneConfig(steps=2, **{**TINY, "distill": 1.0}))
    per_neuron = convert(c, calibration_batch(c, 8, 0).inputs,
                         ConversionConfig(substeps=8, gate="off", calibration="neuron", **BUSY))
    r_p = np.asarray(per_neuron.meta["rate_percentiles"])
    assert r_p.shape == (c.n,) and np.unique(r_p).size > 1
    b = calibration_batch(c, 4, 2)
    _, rates = rate_logits(c, b.inputs)
    teacher = RateTeacher.for_circuit(c, per_neuron)
    np.testing.assert_allclose(teacher.targets(b.inputs).double().numpy(),
                               rates * teacher.norm / r_p, rtol=1e-5, atol=1e-6)
    legacy = type(per_neuron)(**{**per_neuron.__dict__, "meta": {
        k: v for k, v in per_neuron.meta.items() if k != "rate_percentiles"}})
    with pytest.raises(NeurosheetError, match="calibration percentiles"):
        RateTeacher.for_circuit(c, legacy)  # converted before per-neuron percentiles were kept


def test_distillation_pulls_spike_counts_toward_the_rate_network(converted, tmp_path):
    c, sc = converted
    teacher = RateTeacher.for_circuit(c, sc)
    cfg = FinetuneConfig(steps=12, lr=0.03, **{**TINY, "distill": 50.0})
    finetune(sc, tmp_path, cfg, teacher=teacher)
    values = [json.loads(line)["distill"] for line in
              (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert len(values) == 12 and all(np.isfinite(values))
    assert np.mean(values[-3:]) < np.mean(values[:3])  # the counts moved toward the teacher
    with pytest.raises(NeurosheetError, match="other settings"):  # distill is part of the config
        finetune(sc, tmp_path, FinetuneConfig(steps=12, lr=0.03, **{**TINY, "distill": 10.0}),
                 teacher=teacher)


def test_resume_reproduces_an_uninterrupted_run(converted, tmp_path):
    _, sc = converted
    cfg = FinetuneConfig(steps=6, substeps=(3, 4), **{k: v for k, v in TINY.items()
                                                      if k != "substeps"})
    whole = finetune(sc, tmp_path / "whole", cfg)
    part = tmp_path / "part"
    first = finetune(sc, part, cfg, stop_after=4)
    assert first.steps == 4
    rest = finetune(sc, part, cfg)
    assert rest.resumed_from == 4 and rest.steps == 6

    def losses(d):
        return [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "train"]

    assert losses(part) == losses(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(part / "checkpoint.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k])
    assert whole.best_step == rest.best_step


def test_resume_refuses_other_settings(converted, tmp_path):
    _, sc = converted
    finetune(sc, tmp_path, FinetuneConfig(steps=2, **TINY))
    with pytest.raises(NeurosheetError, match="other settings"):
        finetune(sc, tmp_path, FinetuneConfig(steps=2, lr=0.5, **TINY))


def test_param_groups_scale_the_step_to_each_array(converted):
    _, sc = converted
    net = SpikingSheet(sc)
    groups = {g["name"]: g["lr"] for g in param_groups(net, 0.01)}
    rms = float(net.w_in.detach().pow(2).mean().sqrt())
    assert groups["w_in"] == pytest.approx(0.01 * rms)
    assert set(groups) == {"w_rec", "w_in", "b", "w_out", "b_out"}


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"lr": -1.0}, {"substeps": ()},
                                    {"rate_l2": -1.0}, {"seed": -1}, {"rate_cap_l2": -1.0},
                                    {"rate_cap_hz": float("nan")}])
def test_bad_finetune_knobs_are_one_line_errors(kwargs):
    with pytest.raises(NeurosheetError) as err:
        FinetuneConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_to_snntorch_trains_in_a_users_own_loop(converted):
    """The converted circuit as an nn.Module: a plain torch optimizer loop changes only edges."""
    c, sc = converted
    from neurosheet.spiking.persist import calibration_batch

    net = sc.to_snntorch()
    assert isinstance(net, torch.nn.Module)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    batch = calibration_batch(c, 4, 2)
    before = net.w_rec.detach().clone()
    for _ in range(2):
        out = net(torch.as_tensor(batch.inputs), substeps=4)
        loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1),
                                                 torch.as_tensor(batch.targets).flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(before, net.w_rec.detach())
    back = net.to_circuit()
    assert isinstance(back, SpikingCircuit) and back.synapses == sc.synapses


def test_finetune_cli_writes_the_circuit_every_command_uses(tmp_path, capsys):
    c = _task_circuit(seed=5)
    save_run_circuit(tmp_path, c)
    argv = ["finetune", str(tmp_path), "--finetune-steps", "2", "--train-substeps", "4", "--batch",
            "4", "--substeps", "6", "--rate-hz", "1000", "--tau-mem", "50", "--gate", "off",
            "--calibration-trials", "8", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["substeps"] == 6
    tuned_path = tmp_path / "spiking" / "circuit.npz"
    assert tuned_path.is_file() and (tmp_path / "spiking" / "conversion.npz").is_file()
    from neurosheet.spiking.persist import load_tuned, spiking_for_run

    cfg = ConversionConfig(substeps=6, rate_hz=1000.0, tau_mem_ms=50.0, gate="off")
    tuned = load_tuned(tmp_path, c, cfg)
    assert tuned is not None and tuned.meta["source"] == "finetune"
    assert spiking_for_run(tmp_path, c, cfg, 8, 0).fingerprint() == tuned.fingerprint()
    assert spiking_for_run(tmp_path, c, cfg, 8, 0, tuned=False).meta["source"] == "conversion"
    # new rate weights: the tuned circuit no longer belongs to the run
    w = c.w_rec.copy()
    w[0] += 1.0
    assert load_tuned(tmp_path, c.with_weights(w_rec=w), cfg) is None
    # simulate picks the tuned circuit up
    assert main(["simulate", str(tmp_path), "--task", "go", "--trials", "2", "--substeps", "6",
                 "--rate-hz", "1000", "--tau-mem", "50", "--gate", "off", "--json"]) == 0
    sim = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sim["conversion"]["meta"]["source"] == "finetune"
    # continue from the tuned circuit at a finer step (a curriculum's second stage)
    argv[argv.index("--substeps") + 1] = "12"
    argv[argv.index("--train-substeps") + 1] = "12"
    assert main([*argv, "--from-tuned"]) == 0
    cont = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cont["substeps"] == 12 and cont["train_substeps"] == [12]
    assert (tmp_path / "spiking" / "finetune-from-tuned-k12" / "start.npz").is_file()


def test_finetune_cli_distills_by_default_also_with_per_neuron_calibration(tmp_path, capsys):
    save_run_circuit(tmp_path, _task_circuit(seed=5))
    argv = ["finetune", str(tmp_path), "--finetune-steps", "2", "--train-substeps", "4", "--batch",
            "4", "--substeps", "6", "--rate-hz", "1000", "--tau-mem", "50", "--gate", "off",
            "--calibration-trials", "8", "--calibration", "neuron", "--json"]
    assert main(argv) == 0
    records = [json.loads(line) for line in
               (tmp_path / "spiking" / "finetune" / "metrics.jsonl").read_text().splitlines()]
    terms = [r["distill"] for r in records if r["kind"] == "train"]
    assert len(terms) == 2 and all(np.isfinite(terms)) and terms[0] > 0


def test_continued_finetuning_starts_from_the_tuned_circuit_and_resumes_exactly(tmp_path):
    from neurosheet.spiking.finetune import finetune_run
    from neurosheet.spiking.persist import load_tuned, save_tuned

    c = _task_circuit(seed=7)
    save_run_circuit(tmp_path, c)
    knobs = {"rate_hz": 1000.0, "tau_mem_ms": 50.0, "gate": "off"}
    coarse, fine = ConversionConfig(substeps=4, **knobs), ConversionConfig(substeps=8, **knobs)
    with pytest.raises(NeurosheetError, match="no fine-tuned circuit"):
        finetune_run(tmp_path, FinetuneConfig(steps=2, **TINY), fine, calibration_trials=8,
                     start="tuned")
    finetune_run(tmp_path, FinetuneConfig(steps=2, **TINY), coarse, calibration_trials=8)
    tuned = load_tuned(tmp_path, c, fine)
    cfg = FinetuneConfig(steps=4, **{**TINY, "substeps": (8,)})
    part, whole = tmp_path / "part", tmp_path / "whole"
    first = finetune_run(tmp_path, cfg, fine, calibration_trials=8, start="tuned", out_dir=part,
                         stop_after=2)
    assert first.steps == 2 and first.initial["mean"] == finetune_run(
        tmp_path, cfg, fine, calibration_trials=8, start="tuned", out_dir=whole).initial["mean"]
    # the run's circuit is now the continued one (here: also changed by hand); resuming still
    # starts from the kept starting circuit
    now = load_tuned(tmp_path, c, fine)
    assert now.meta["finetune"]["start"] == "tuned"
    save_tuned(tmp_path, now.with_weights(w_rec=now.w_rec * 0.5))
    rest = finetune_run(tmp_path, cfg, fine, calibration_trials=8, start="tuned", out_dir=part)
    assert rest.resumed_from == 2 and rest.steps == 4
    assert SpikingCircuit.load(part / "start.npz", c.graph).fingerprint() == tuned.fingerprint()

    def losses(d):
        return [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "train"]

    assert losses(part) == losses(whole)
