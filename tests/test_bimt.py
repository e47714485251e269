"""BIMT: exact swap criterion, function-preserving swaps, optimizer moments, cost, pruning."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import validate
from neurosheet.graph.circuit import RateParams, load_run_circuit, save_run_circuit
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.bimt.config import BimtConfig
from neurosheet.rate.bimt.cost import (
    WiringGeometry,
    dense_abs,
    relocate,
    swap_deltas,
    swap_dense,
    wiring_cost,
)
from neurosheet.rate.bimt.prune import prune_circuit, prune_run
from neurosheet.rate.bimt.regularizer import BimtRegularizer
from neurosheet.rate.model import RateRNN

N, N_IN, N_OUT = 16, 5, 3


def full_graph(n: int = N, periodic: bool = False, self_connections: bool = True):
    g = build_graph(make_sheet(n, "grid", periodic=periodic), "full",
                    self_connections=self_connections)
    return attach_projections(g, N_IN, N_OUT)


def make_model(graph, seed: int = 0) -> RateRNN:
    return RateRNN(graph, RateParams("relu", tau_ms=100.0, dt_ms=20.0), gain=1.5, seed=seed)


def swapped(mats, geo, j, k):
    return swap_dense(*mats, j, k)


def random_mats(rng, n=N):
    return (np.abs(rng.normal(size=(n, n))), np.abs(rng.normal(size=(n, N_IN))),
            np.abs(rng.normal(size=(N_OUT, n))))


@pytest.mark.parametrize(("metric", "periodic"), [("manhattan", False), ("euclidean", True)])
def test_closed_form_swap_delta_equals_brute_force(metric, periodic):
    geo = WiringGeometry.from_graph(full_graph(periodic=periodic), metric)
    mats = random_mats(np.random.default_rng(1))
    w = (2.0, 0.5, 3.0)
    base = wiring_cost(*mats, geo, w)
    for j in (0, 5, 15):
        fast = swap_deltas(j, *mats, geo, w)
        brute = np.array([wiring_cost(*swapped(mats, geo, j, k), geo, w) - base for k in range(N)])
        np.testing.assert_allclose(fast, brute, atol=1e-10, rtol=0)
        assert fast[j] == 0.0


def test_relocate_reports_true_cost_change_and_lowers_it():
    geo = WiringGeometry.from_graph(full_graph())
    mats = random_mats(np.random.default_rng(2))
    report = relocate(*mats, geo, top_k=N)
    assert report.swaps > 0 and report.delta < 0
    o = report.order
    after = (mats[0][np.ix_(o, o)], mats[1][o], mats[2][:, o])
    np.testing.assert_allclose(wiring_cost(*after, geo) - wiring_cost(*mats, geo), report.delta,
                               atol=1e-9)
    # a second pass from the optimum it reached cannot raise the cost
    again = relocate(*after, geo, top_k=N)
    assert again.delta <= 0


def test_swaps_preserve_function_and_reduce_wiring_cost():
    model = make_model(full_graph()).eval()
    reg = BimtRegularizer(model, BimtConfig(swap_every=1, swap_top_k=N), 100)
    u = torch.randn(12, 4, N_IN, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(u)
        cost0 = float(reg.cost())
    report = reg.relocate()
    assert report.swaps > 0
    with torch.no_grad():
        after = model(u)
        cost1 = float(reg.cost())
    torch.testing.assert_close(after.logits, before.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after.rates, before.rates[..., torch.as_tensor(report.order)],
                               atol=1e-5, rtol=1e-5)
    assert cost1 < cost0
    # the cost change of the model equals the pass's reported delta (A * mean normalisation)
    assert cost1 - cost0 == pytest.approx(report.delta, rel=1e-3, abs=1e-6)
    # perm maps slots back to the original neurons
    np.testing.assert_array_equal(reg.perm, report.order)
    assert sorted(reg.perm) == list(range(N))


def test_optimizer_moments_follow_the_swap():
    """Swapping mid-training then stepping == stepping then swapping (Adam state travels)."""
    torch.manual_seed(0)
    graph = full_graph()
    a = make_model(graph)
    b = copy.deepcopy(a)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(6, 4, N_IN, generator=gen), torch.randint(0, N_OUT, (6, 4), generator=gen))
               for _ in range(3)]

    def step(model, opt, batch):
        opt.zero_grad()
        u, y = batch
        loss = torch.nn.functional.cross_entropy(model(u).logits.reshape(-1, N_OUT), y.reshape(-1))
        loss.backward()
        opt.step()

    for batch in batches[:2]:
        step(a, opt_a, batch)
        step(b, opt_b, batch)
    reg = BimtRegularizer(b, BimtConfig(swap_every=1, swap_top_k=N), 10)
    order = reg.relocate(opt_b).order
    assert not np.array_equal(order, np.arange(N))
    step(a, opt_a, batches[2])
    step(b, opt_b, batches[2])
    o = torch.as_tensor(order)
    post, pre = graph.edges()
    wa = torch.zeros(N, N).index_put((torch.as_tensor(post), torch.as_tensor(pre)),
                                     a.rec.values.detach())
    wb = torch.zeros(N, N).index_put((torch.as_tensor(post), torch.as_tensor(pre)),
                                     b.rec.values.detach())
    torch.testing.assert_close(wb, wa[o][:, o], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b.b_rec.detach(), a.b_rec.detach()[o], atol=1e-6, rtol=1e-5)
    ma = opt_a.state[a.rec.values]["exp_avg_sq"]
    mb = opt_b.state[b.rec.values]["exp_avg_sq"]
    torch.testing.assert_close(mb.reshape(N, N), ma.reshape(N, N)[o][:, o])


def test_cost_formula_and_l1_limit():
    model = make_model(full_graph())
    cfg = BimtConfig(lam=0.1, schedule="constant", locality=2.0, l0=0.5, reduction="sum",
                     penalize_bias=True)
    reg = BimtRegularizer(model, cfg, 10)
    with torch.no_grad():
        model.b_rec.fill_(0.25)
    mats = reg.dense_abs()
    expected = 2.0 * wiring_cost(*mats, reg.geometry) + 0.5 * sum(m.sum() for m in mats) \
        + 0.5 * 0.25 * N
    assert reg.cost().item() == pytest.approx(expected, rel=1e-5)
    assert reg.penalty(3).item() == pytest.approx(0.1 * expected, rel=1e-5)
    # A = 0 with a per-matrix mean is plain L1: lam * l0 * mean|w| per matrix
    l1 = BimtRegularizer(model, BimtConfig(lam=1.0, schedule="constant", locality=0.0,
                                           swap_every=0), 10)
    want = 0.5 * sum(float(p.detach().abs().mean())
                     for p in (model.rec.values, model.inp.values, model.out.values))
    assert l1.penalty(0).item() == pytest.approx(want, rel=1e-5)
    assert l1.config.mode == "l1" and reg.config.mode == "bimt"
    reg.penalty(0).backward()  # differentiable
    assert model.rec.values.grad is not None


def test_lambda_schedules():
    bump = BimtConfig(lam=0.01, schedule="bump")
    assert [bump.lam_at(s, 100) for s in (0, 24, 25, 74, 75, 99)] == \
        pytest.approx([0.01, 0.01, 0.1, 0.1, 0.01, 0.01])
    ramp = BimtConfig(lam=0.01, schedule="ramp")
    assert [ramp.lam_at(s, 100) for s in (0, 25, 50, 99)] == pytest.approx([0.01, 0.1, 1.0, 1.0])
    custom = BimtConfig(lam=1.0, milestones=[(0.5, 3.0)])
    assert custom.lam_at(49, 100) == 1.0 and custom.lam_at(50, 100) == 3.0
    assert BimtConfig(lam=0, swap_every=0).mode == "none"
    with pytest.raises(NeurosheetError, match="milestones"):
        validate(BimtConfig, {"milestones": [[0.8, 1.0], [0.2, 2.0]]}, "x.toml")
    with pytest.raises(NeurosheetError, match="lam"):
        validate(BimtConfig, {"lam": -1}, "x.toml")


def test_after_step_swaps_on_schedule_only():
    model = make_model(full_graph())
    reg = BimtRegularizer(model, BimtConfig(swap_every=3, swap_top_k=4), 10)
    done = [s for s in range(9) if reg.after_step(s) is not None]
    assert done == [2, 5, 8]
    assert [h["step"] for h in reg.meta()["bimt"]["swaps"]] == [2, 5, 8]


def test_swaps_need_a_full_graph():
    g = attach_projections(build_graph(make_sheet(N), "radius", radius=1.5), N_IN, N_OUT)
    with pytest.raises(NeurosheetError, match="fully connected"):
        BimtRegularizer(make_model(g), BimtConfig(), 10)
    # the cost alone works on any graph (L1 / locality penalty on an LM-RNN)
    reg = BimtRegularizer(make_model(g), BimtConfig(swap_every=0), 10)
    assert reg.cost().item() > 0
    g2 = full_graph(self_connections=False)
    BimtRegularizer(make_model(g2), BimtConfig(), 10).relocate()  # no autapses is fine too
    g3 = attach_projections(build_graph(make_sheet(N), "full"), N_IN, N_OUT, input_region="left:0.5")
    with pytest.raises(NeurosheetError, match="input projection"):
        BimtRegularizer(make_model(g3), BimtConfig(), 10)


def test_prune_keeps_exactly_the_surviving_edges(tmp_path):
    circuit = make_model(full_graph()).to_circuit(tasks=("go",))
    pruned = prune_circuit(circuit, 0.3)
    post, pre = circuit.graph.edges()
    keep = np.abs(circuit.w_rec) > 0.3
    assert set(zip(*pruned.graph.edges(), strict=True)) == \
        set(zip(post[keep], pre[keep], strict=True))
    np.testing.assert_array_equal(pruned.rec_matrix().toarray(),
                                  np.where(np.abs(circuit.rec_matrix().toarray()) > 0.3,
                                           circuit.rec_matrix().toarray(), 0))
    np.testing.assert_array_equal(pruned.in_matrix().toarray(),
                                  np.where(np.abs(circuit.in_matrix().toarray()) > 0.3,
                                           circuit.in_matrix().toarray(), 0))
    assert pruned.graph.synapses == int(keep.sum()) < circuit.graph.synapses
    assert pruned.meta["prune"]["after"]["rec"] == int(keep.sum())
    assert pruned.graph.summary()["density"] == pytest.approx(keep.sum() / N**2)
    # a valid run directory that round-trips
    save_run_circuit(tmp_path / "src", circuit)
    out = prune_run(tmp_path / "src", tmp_path / "dst", 0.5, relative=True)
    loaded = load_run_circuit(tmp_path / "dst")
    np.testing.assert_array_equal(loaded.w_rec, out.w_rec)
    cut = 0.5 * np.abs(circuit.w_out).max()
    assert loaded.graph.readout.synapses == int((np.abs(circuit.w_out) > cut).sum())
    assert (tmp_path / "dst" / "prune.json").is_file()
    # the pruned circuit runs as a rate model and a zero threshold changes nothing
    RateRNN.from_circuit(loaded)
    assert prune_circuit(circuit, 0.0).graph.synapses == circuit.graph.synapses
    with pytest.raises(NeurosheetError, match="threshold"):
        prune_circuit(circuit, 2.0, relative=True)


def test_dense_abs_places_edge_values():
    g = full_graph(4)
    post, pre = g.edges()
    vals = np.arange(post.size, dtype=float) - 5
    m = dense_abs(vals, post, pre, (4, 4))
    assert m[1, 2] == abs(vals[1 * 4 + 2])


def _toy_batch(rng, b, n_tasks=4, steps=8, task=None):
    """Rule-cued sign task: report the sign of stimulus channel ``task`` (seen with noise)."""
    tasks = rng.integers(0, n_tasks, b) if task is None else np.full(b, task)
    stim = rng.normal(size=(b, n_tasks))
    u = np.zeros((steps, b, 2 * n_tasks), np.float32)
    u[:, :, :n_tasks] = stim[None] + 0.5 * rng.normal(size=(steps, b, n_tasks))
    u[:, np.arange(b), n_tasks + tasks] = 1
    return torch.as_tensor(u), torch.as_tensor((stim[np.arange(b), tasks] > 0).astype(np.int64))


def _toy_train(cfg: BimtConfig, steps: int = 1500):
    torch.set_num_threads(1)
    g = attach_projections(build_graph(make_sheet(64), "full"), 8, 2)
    model = RateRNN(g, RateParams("relu", 100.0, 50.0), seed=0)
    reg = BimtRegularizer(model, cfg, steps)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    rng = np.random.default_rng(0)
    for s in range(steps):
        u, y = _toy_batch(rng, 64)
        loss = torch.nn.functional.cross_entropy(model(u).logits[-1], y) + reg.penalty(s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        reg.after_step(s, opt)
    return model.to_circuit(meta=reg.meta())


def _toy_accuracy(circuit) -> float:
    model = RateRNN.from_circuit(circuit).eval()
    rng = np.random.default_rng(99)
    with torch.no_grad():
        u, y = _toy_batch(rng, 800)
        return float((model(u).logits[-1].argmax(-1) == y).float().mean())


@pytest.mark.slow
def test_bimt_wires_shorter_than_l1_at_same_accuracy_and_prunes_safely():
    """Toy 4-task problem, N = 64, 1500 steps each (~10 s): the BIMT-vs-L1 claim in small."""
    from neurosheet.rate.analysis import structure_metrics

    l1 = _toy_train(BimtConfig(lam=0.1, locality=0.0, swap_every=0))
    bimt = _toy_train(BimtConfig(lam=0.1, swap_every=100, swap_top_k=16))
    acc_l1, acc_bimt = _toy_accuracy(l1), _toy_accuracy(bimt)
    assert acc_bimt > 0.85 and acc_bimt > acc_l1 - 0.03
    wire = {k: structure_metrics(c)["rec"]["wiring_length"] for k, c in (("l1", l1), ("bimt", bimt))}
    assert wire["bimt"] < 0.8 * wire["l1"]
    assert len(bimt.meta["bimt"]["swaps"]) == 15
    pruned = prune_circuit(bimt, 0.05, relative=True)
    assert pruned.graph.synapses < 0.5 * bimt.graph.synapses
    assert _toy_accuracy(pruned) > acc_bimt - 0.02


def test_regularizer_state_round_trip():
    model = make_model(full_graph())
    reg = BimtRegularizer(model, BimtConfig(swap_every=1, swap_top_k=N), 10)
    reg.after_step(0)
    other = BimtRegularizer(model, BimtConfig(swap_every=1, swap_top_k=N), 10)
    other.load_state_dict(reg.state_dict())
    np.testing.assert_array_equal(other.perm, reg.perm)
    assert other.history == reg.history
    with pytest.raises(NeurosheetError, match="permutation"):
        other.load_state_dict({"perm": [0] * N, "history": []})


def test_moments_stay_behind_without_permute_optimizer_and_l1_swaps_work():
    model = make_model(full_graph())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    reg = BimtRegularizer(model, BimtConfig(lam=1.0, locality=0.0, swap_every=1, swap_top_k=N,
                                            permute_optimizer=False), 10)
    assert reg.config.mode == "l1+swap"
    reg.penalty(0).backward()
    opt.step()
    before = opt.state[model.rec.values]["exp_avg"].clone()
    with torch.no_grad():  # make the layout costly so that swaps certainly happen
        model.rec.values.mul_(torch.rand(N * N, generator=torch.Generator().manual_seed(1)))
    report = reg.relocate(opt)
    assert report.swaps > 0
    torch.testing.assert_close(opt.state[model.rec.values]["exp_avg"], before)  # reference Q1


def _torch_after_import(*modules: str) -> bool:
    """Whether importing ``modules`` in a fresh interpreter pulls torch into sys.modules."""
    code = f"import sys\nimport {', '.join(modules)}\nprint('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip() == "True"


def test_reading_presets_and_bimt_settings_does_not_import_torch():
    # what `neurosheet --help` and preset validation need: no torch (issue 10, fast start)
    assert not _torch_after_import("neurosheet.rate.config", "neurosheet.core.presets",
                                   "neurosheet.rate.bimt", "neurosheet.rate.bimt.config",
                                   "neurosheet.rate.bimt.cost", "neurosheet.rate.bimt.prune")
    # the check sees torch where it is imported (the training hook)
    assert _torch_after_import("neurosheet.rate.bimt.regularizer")
