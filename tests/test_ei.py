"""E/I populations and Dale's law: placement, wiring per pair type, files, training, spikes, NIR."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.graph.populations import (
    PairScales,
    assign_types,
    pair_counts,
    pair_index,
    sign_violations,
)
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.config import ModelPreset, load_model_preset, with_overrides
from neurosheet.rate.dale import spectrum
from neurosheet.rate.model import RateRNN


def _ei_graph(n: int = 100, inh: float = 0.2, scales: PairScales | None = None,
              density: float = 0.12, seed: int = 0) -> SheetGraph:
    sheet = make_sheet(n, "grid")
    types = assign_types(sheet, inh, "interleaved", seed)
    g = build_graph(sheet, "radius", density=density, types=types, pair_scales=scales)
    return attach_projections(g, 5, 3)


def _all_signs_ok(graph: SheetGraph, w_rec: np.ndarray, w_out: np.ndarray) -> bool:
    _, pre = graph.edges()
    _, rpre = graph.readout.edges()
    return (sign_violations(graph.types, pre, w_rec) == 0
            and sign_violations(graph.types, rpre, w_out) == 0)


# ------------------------------------------------------------------ populations and wiring
def test_types_fraction_placement_and_seed():
    sheet = make_sheet(144, "grid")
    t = assign_types(sheet, 0.2, "interleaved")
    assert t.dtype == np.int8 and set(np.unique(t)) == {-1, 1}
    assert int((t < 0).sum()) == round(0.2 * 144)
    np.testing.assert_array_equal(t, assign_types(sheet, 0.2, "interleaved", seed=5))
    # interleaved: every 4x4 block of the 12x12 lattice holds 2-5 of the 29 inhibitory neurons
    grid = (t < 0).reshape(12, 12)
    blocks = grid.reshape(3, 4, 3, 4).sum(axis=(1, 3))
    assert blocks.min() >= 2 and blocks.max() <= 5
    r0, r1 = (assign_types(sheet, 0.2, "random", s) for s in (0, 1))
    assert int((r0 < 0).sum()) == 29 and not np.array_equal(r0, r1)
    with pytest.raises(NeurosheetError, match="inhibitory"):
        assign_types(sheet, 1.0)


def test_pair_type_radii_and_density():
    scales = PairScales(1.0, 1.0, 0.6, 0.6)
    g = _ei_graph(400, scales=scales, density=0.05)
    post, pre = g.edges()
    d = g.sheet.distance(pre, post)
    r = g.meta["radius"]
    inh_axon = g.types[pre] < 0
    assert d[inh_axon].max() <= 0.6 * r + 1e-9
    assert d[~inh_axon].max() > 0.6 * r  # excitatory axons reach further
    assert abs(g.density - 0.05) < 0.01
    counts = pair_counts(g.types, post, pre)
    assert sum(counts.values()) == g.synapses
    assert counts["I->E"] == int(((g.types[pre] < 0) & (g.types[post] > 0)).sum())
    assert g.summary()["populations"]["pair_synapses"] == counts
    assert set(pair_index(g.types, post, pre)) <= {0, 1, 2, 3}
    with pytest.raises(NeurosheetError, match="per-pair"):
        build_graph(g.sheet, "random", density=0.1, types=g.types, pair_scales=scales)


def test_types_in_graph_file_and_fingerprint(tmp_path):
    g = _ei_graph()
    untyped = SheetGraph(g.sheet, g.adjacency, g.inputs, g.readout, dict(g.meta))
    assert g.fingerprint() != untyped.fingerprint()
    back = SheetGraph.load(g.save(tmp_path / "graph.npz"))
    np.testing.assert_array_equal(back.types, g.types)
    assert back.fingerprint() == g.fingerprint()
    flipped = g.types.copy()
    flipped[0] = -flipped[0]
    other = SheetGraph(g.sheet, g.adjacency, g.inputs, g.readout, dict(g.meta), flipped)
    assert other.fingerprint() != g.fingerprint()
    # an untyped graph keeps the fingerprint it had before types existed (no 'types' array)
    assert "types" not in np.load(untyped.save(tmp_path / "u.npz"))


def test_excitatory_readout_reads_no_inhibitory_neuron():
    sheet = make_sheet(64)
    g = build_graph(sheet, "radius", radius=1.5, types=assign_types(sheet, 0.25))
    g = attach_projections(g, 4, 3, excitatory_readout=True)
    _, rpre = g.readout.edges()
    assert (g.types[rpre] > 0).all() and g.readout.synapses == 3 * 48
    with pytest.raises(NeurosheetError, match="excitatory"):
        attach_projections(build_graph(sheet, "radius", radius=1.5), 4, 3, excitatory_readout=True)


# ------------------------------------------------------------------ init and constraint
def test_balanced_init_has_no_outlier_and_radius_gain():
    g = _ei_graph(256, density=0.1)
    bal = RateRNN(g, gain=1.2, seed=0)
    unbal = RateRNN(g, gain=1.2, seed=0, ei_balance=False)
    sb = spectrum(g, bal.rec.values.detach().numpy())
    su = spectrum(g, unbal.rec.values.detach().numpy())
    assert sb["spectral_radius"] == pytest.approx(1.2, rel=1e-4)
    assert sb["sign_violations"] == 0 and su["sign_violations"] == 0
    assert abs(sb["uniform_mode"]) < 1e-3
    # unbalanced Dale init: the uniform mode is an eigenvalue far outside the bulk
    assert su["uniform_mode"] > 0.5 * su["spectral_radius"]
    assert su["outlier"]["real"] > 0 and abs(su["outlier"]["imag"]) < 1e-6
    assert _all_signs_ok(g, bal.to_circuit().w_rec, bal.to_circuit().w_out)


def test_constraint_survives_adversarial_steps_and_refuses_wrong_signs():
    g = _ei_graph(64, density=0.2)
    m = RateRNN(g, seed=1)
    w0 = m.rec.values.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=10.0)
    for _ in range(5):  # push every weight hard towards the opposite sign
        opt.zero_grad()
        (m.rec.values * torch.sign(w0)).sum().backward()
        (m.out.values * torch.sign(m.out.values.detach())).sum().backward()
        opt.step()
        c = m.to_circuit()
        assert _all_signs_ok(g, c.w_rec, c.w_out)
    bad = {k: np.array(getattr(c, k)) for k in ("w_rec", "w_in", "b_rec", "w_out", "b_out")}
    bad["w_rec"][0] = -np.sign(g.types[g.edges()[1][0]]) * 1.0
    with pytest.raises(NeurosheetError, match="Dale"):
        RateRNN(g, weights=bad)


# ------------------------------------------------------------------ the bar: train -> every file
def _tiny_ei(**sheet: object) -> ModelPreset:
    preset, _ = load_model_preset("demo-ei")
    return with_overrides(preset, {
        "sheet": {"n": 36, "density": 0.3, **sheet},
        "dynamics": {"substeps": 2, "train_substeps": None},
        "training": {"batch": 8, "eval_every": 4, "eval_trials": 4, "checkpoint_every": 4,
                     "log_every": 2},
    }, "tiny")


def test_trained_ei_circuit_keeps_every_sign_in_every_file(tmp_path, monkeypatch):
    import neurosheet.rate.training as training
    from neurosheet.rate.training import load_checkpoint, train
    from neurosheet.spiking.conversion import ConversionConfig, convert
    from neurosheet.spiking.nir import write_nir
    from neurosheet.spiking.persist import calibration_batch

    checked = []
    step = training._train_step

    def step_and_check(st, tc, device):  # after every optimizer step, in the live model
        loss = step(st, tc, device)
        m = st.model
        assert _all_signs_ok(m.graph, m.rec.values.detach().numpy(),
                             m.out.values.detach().numpy())
        checked.append(st.step)
        return loss

    monkeypatch.setattr(training, "_train_step", step_and_check)
    run = tmp_path / "ei"
    preset = _tiny_ei()
    first = None
    for stop in (4, 8, 12):  # interrupted twice: resume must keep the signs too
        train(run, preset, "demo", seed=3, steps=12, stop_after=stop, progress=False)
        c = load_run_circuit(run)
        g = c.graph
        assert g.types is not None and int((g.types < 0).sum()) == round(0.2 * 36)
        assert _all_signs_ok(g, c.w_rec, c.w_out)
        ck = load_checkpoint(run / "checkpoint.pt")["model"]
        assert (ck["rec.signs"].numpy() == g.types[g.edges()[1]]).all()
        if first is None:
            first = c.w_rec.copy()
    assert not np.array_equal(first, c.w_rec)  # it did train
    assert checked == list(range(12))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["init_spectrum"]["sign_violations"] == 0
    assert summary["populations"]["inhibitory"] == 7

    # the rate model rebuilt from circuit.npz
    m = RateRNN.from_circuit(c)
    assert _all_signs_ok(g, m.rec.values.detach().numpy(), m.out.values.detach().numpy())

    batch = calibration_batch(c, 8, 0)
    spiking = convert(c, batch.inputs, ConversionConfig(substeps=8, gate="off"))
    post, pre = g.edges()
    _, rpre = g.readout.edges()
    assert sign_violations(g.types, pre, spiking.w_rec) == 0
    assert sign_violations(g.types, rpre, spiking.w_out) == 0
    # spike-aware fine-tuning keeps every sign, step after step
    from neurosheet.spiking.finetune import FinetuneConfig, finetune

    tuned = finetune(spiking, tmp_path / "ft", FinetuneConfig(steps=6, batch=4, eval_every=3,
                                                              eval_trials=2, substeps=(8,),
                                                              distill=0.0)).circuit
    assert sign_violations(g.types, pre, tuned.w_rec) == 0
    assert sign_violations(g.types, rpre, tuned.w_out) == 0
    # snntorch: the weights of the module it simulates
    net = tuned.to_snntorch(trainable=False)
    assert sign_violations(g.types, pre, net.w_rec.detach().numpy()) == 0
    # Brian2: the weights held by its Synapses object
    from brian2 import BrianLogger

    from neurosheet.spiking.backends.brian2 import brian2_network

    BrianLogger.suppress_name("unused_brian_object")  # we read the weights without running
    objs = brian2_network(tuned, batch.inputs[:, :1])
    w_b2 = np.asarray(objs["synapses"].w[:], dtype=np.float64)
    pre_b2 = np.asarray(objs["synapses"].i[:], dtype=np.int64)
    assert sign_violations(g.types, pre_b2, w_b2) == 0
    # NIR: the dense recurrent matrix read back from the file, column = presynaptic neuron
    import h5py

    path = write_nir(tuned, tmp_path / "ei.nir")
    with h5py.File(path, "r") as fh:
        names = [k for k in fh["node/nodes"] if "w_rec" in k or "rnn" in k]
        w = _find_dense(fh["node/nodes"], g.n)
    assert names and w is not None
    assert sign_violations(g.types, pre, w[post, pre]) == 0


def _find_dense(group, n):
    """The N x N weight dataset anywhere under an HDF5 group (NIR nests the recurrent subgraph)."""
    import h5py

    for key in group:
        item = group[key]
        if isinstance(item, h5py.Dataset) and item.shape == (n, n):
            return item[...]
        if isinstance(item, h5py.Group):
            found = _find_dense(item, n)
            if found is not None:
                return found
    return None


def test_wrong_sign_in_spiking_is_refused():
    from dataclasses import replace

    from neurosheet.spiking.conversion import ConversionConfig, convert
    from neurosheet.spiking.demo import random_inputs
    from neurosheet.spiking.nir import write_nir
    from neurosheet.spiking.signs import check_dale

    g = _ei_graph(64, density=0.15)
    from neurosheet.graph.circuit import RateParams

    params = RateParams("relu", tau_ms=100.0, dt_ms=20.0, substeps=4)
    c = RateRNN(g, params, gain=0.8, seed=0).to_circuit()
    c = c.with_weights(w_in=np.abs(c.w_in), b_rec=np.full(64, 0.1, np.float32))
    sp = convert(c, random_inputs(6, 8, 5, seed=1), ConversionConfig(substeps=8, gate="off"))
    check_dale(sp)  # a converted E/I circuit passes
    flip = np.array(sp.w_rec)
    _, pre = g.edges()
    flip[0] = -np.sign(g.types[pre[0]]) * (abs(flip[0]) + 1.0)
    bad = replace(sp, w_rec=flip)
    with pytest.raises(NeurosheetError, match="Dale"):
        check_dale(bad)
    with pytest.raises(NeurosheetError, match="Dale"):
        write_nir(bad, "/nonexistent/never-written.nir")


def test_bimt_swaps_and_pruning_keep_types_and_signs(tmp_path):
    from neurosheet.rate.training import train

    preset, _ = load_model_preset("bimt")
    preset = with_overrides(preset, {
        "sheet": {"n": 16, "inhibitory": 0.25},
        "training": {"batch": 8, "eval_every": 6, "eval_trials": 4, "checkpoint_every": 6},
        "bimt": {"swap_every": 2, "swap_top_k": 8, "prune": 0.2},
    }, "tiny-bimt")
    run = tmp_path / "bimt"
    train(run, preset, "demo", seed=0, steps=6, progress=False)
    c = load_run_circuit(run)
    g = c.graph
    assert _all_signs_ok(g, c.w_rec, c.w_out)
    perm = np.asarray(c.meta["bimt"]["perm"])
    assert c.meta["bimt"]["swaps"] and not np.array_equal(perm, np.arange(16))
    np.testing.assert_array_equal(g.types[perm], g.types)  # swaps stay within a type
    pruned = load_run_circuit(run / "pruned")
    np.testing.assert_array_equal(pruned.graph.types, g.types)
    assert pruned.graph.synapses < g.synapses
    assert _all_signs_ok(pruned.graph, pruned.w_rec, pruned.w_out)


def test_old_run_config_without_ei_fields_still_resumes():
    from neurosheet.rate.training import _same_run

    new = {"suite": "demo", "sheet": {"n": 4, "inhibitory": 0.0, "placement": "interleaved"},
           "dynamics": {"gain": 1.0, "ei_balance": True}, "training": {"steps": 5}}
    old = {"suite": "demo", "sheet": {"n": 4}, "dynamics": {"gain": 1.0},
           "training": {"steps": 3}}
    assert _same_run(old, new) == []
    assert _same_run({**old, "sheet": {"n": 4, "inhibitory": 0.2}}, new) == ["sheet"]


# ------------------------------------------------------------------ budgets check signs
def _free_and_ei_circuits():
    g = _ei_graph(64, density=0.15)
    untyped = SheetGraph(g.sheet, g.adjacency, g.inputs, g.readout, dict(g.meta))
    return RateRNN(untyped, seed=2).to_circuit(), RateRNN(g, seed=2).to_circuit()


def test_every_target_states_its_sign_rule_with_a_source():
    from neurosheet.hardware.targets import list_targets, load_target

    rules = {}
    for name in list_targets():
        t = load_target(name)
        assert t.sign_rule is not None, name
        assert all(k.strip() in t.sources for k in t.sign_rule.source.split(","))
        rules[name] = t.sign_rule.rule
    assert rules["brainscales2"] == "per_row" and rules["loihi"] == "per_synapse"
    assert rules["spinnaker"] == "per_synapse_type"


@pytest.mark.parametrize("target", ["brainscales2", "truenorth"])
def test_cli_budget_reports_mixed_sign_neurons(tmp_path, capsys, target):
    from neurosheet.cli import main
    from neurosheet.graph.circuit import save_run_circuit

    free, ei = _free_and_ei_circuits()
    save_run_circuit(tmp_path / "free", free)
    save_run_circuit(tmp_path / "ei", ei)
    assert main(["budget", str(tmp_path / "free"), "--targets", target, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    st = r["signs"]["structure"]
    assert st["mixed_neurons"] > 0 and r["signs"]["fits"] is False
    cost = st["split_cost"]
    assert cost["extra_neurons"] == st["mixed_neurons"]
    # each split neuron's copy needs its recurrent fan-in and its 5 input synapses again
    assert cost["extra_synapses"] > 5 * st["mixed_neurons"]
    assert not r["verdict"]["fits"] and "mixed-sign" in r["verdict"]["first_broken"]
    assert main(["budget", str(tmp_path / "ei"), "--targets", target, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["signs"]["structure"]["mixed_neurons"] == 0 and r["signs"]["fits"] is True
    assert r["signs"]["structure"]["type_violations"] == 0
    assert main(["budget", str(tmp_path / "free"), "--targets", target]) == 0
    assert "mixed-sign neurons" in capsys.readouterr().out


def test_any_sign_target_fits_both_and_report_shows_counts(tmp_path):
    from neurosheet.hardware.budget import budget_report
    from neurosheet.hardware.targets import load_target
    from neurosheet.reports.budget import budget_markdown, comparison_markdown

    free, ei = _free_and_ei_circuits()
    loihi = load_target("loihi")
    r = budget_report(free, loihi)
    assert r["signs"]["fits"] is True and r["signs"]["structure"]["mixed_neurons"] > 0
    assert not any("mixed-sign" in c["name"] for c in r["checks"])
    md = budget_markdown(budget_report(free, load_target("brainscales2")))
    assert "## Signs (Dale's law)" in md and "Splitting every mixed-sign neuron" in md
    assert "per row" in comparison_markdown([budget_report(ei, load_target("brainscales2"))])


# ------------------------------------------------------------------ the sheet command
def test_cli_sheet_inhibitory(tmp_path, capsys):
    from neurosheet.cli import main

    path = tmp_path / "g.npz"
    rc = main(["sheet", "--n", "144", "--density", "0.15", "--inhibitory", "0.2",
               "--pair-scales", "1,1,0.75,0.75", "--save", str(path), "--json",
               "--plot", str(tmp_path / "s.png")])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["populations"]["inhibitory"] == 29 and s["populations"]["excitatory"] == 115
    assert sum(s["populations"]["pair_synapses"].values()) == s["synapses"]
    assert s["pair_radius"]["I->E"] == pytest.approx(0.75 * s["pair_radius"]["E->E"])
    g = SheetGraph.load(path)
    assert int((g.types < 0).sum()) == 29 and (tmp_path / "s.png").stat().st_size > 0
    # random placement follows the seed
    main(["sheet", "--n", "144", "--inhibitory", "0.2", "--placement", "random", "--seed", "1",
          "--save", str(tmp_path / "r1.npz")])
    main(["sheet", "--n", "144", "--inhibitory", "0.2", "--placement", "random", "--seed", "2",
          "--save", str(tmp_path / "r2.npz")])
    capsys.readouterr()
    t1, t2 = (SheetGraph.load(tmp_path / f"r{k}.npz").types for k in (1, 2))
    assert not np.array_equal(t1, t2)
    assert main(["sheet", "--n", "16", "--inhibitory", "1.5"]) == 2
    assert "--inhibitory" in capsys.readouterr().err
    assert main(["sheet", "--n", "16", "--inhibitory", "0.2", "--pair-scales", "1,1"]) == 2
    assert "--pair-scales" in capsys.readouterr().err
