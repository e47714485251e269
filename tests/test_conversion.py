"""Rate -> spiking conversion: same edges, documented constants, gate, readout, saved keying."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import RateParams, save_run_circuit
from neurosheet.spiking.conversion import (
    ConversionConfig,
    convert,
    decisions,
    rate_gate,
    rate_logits,
    tau_syn_ms,
)
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.model import NeuronModel, SpikingCircuit
from neurosheet.spiking.registry import create_backend

ACTIVE = {"rate_hz": 1000.0, "tau_mem_ms": 50.0}  # a busy network for the small test circuit


@pytest.fixture(scope="module")
def circuit():
    return random_circuit(64, density=0.1, seed=1)


@pytest.fixture(scope="module")
def inputs():
    return random_inputs(10, 8, 4, seed=2)


def test_spiking_synapses_are_the_rate_graphs_edges(circuit, inputs):
    sc = convert(circuit, inputs, ConversionConfig(substeps=10))
    post, pre = sc.edges()
    g_post, g_pre = circuit.graph.edges()
    assert sc.synapses == circuit.graph.synapses == post.size == sc.w_rec.size
    np.testing.assert_array_equal(post, g_post)
    np.testing.assert_array_equal(pre, g_pre)
    # a zero rate weight stays a zero spike weight; signs are kept
    np.testing.assert_array_equal(np.sign(sc.w_rec), np.sign(circuit.w_rec))
    rec = sc.rec_matrix().toarray()
    mask = circuit.graph.adjacency.toarray() != 0
    assert not rec[~mask].any()


def test_constants_follow_the_recipe(circuit, inputs):
    cfg = ConversionConfig(substeps=25, rate_hz=300.0, percentile=99.0, offset=False,
                           calibration="global")
    sc = convert(circuit, inputs, cfg)
    p = circuit.params
    assert sc.neuron.tau_syn_ms == pytest.approx(tau_syn_ms(circuit))
    c = sc.constants()
    assert c.alpha ** 25 == pytest.approx(1 - p.alpha)  # one task step decays like the rate model
    assert sc.sim_dt_ms == pytest.approx(p.dt_ms / 25)
    assert c.beta == pytest.approx(math.exp(-sc.sim_dt_ms / cfg.tau_mem_ms))
    _, rates = rate_logits(circuit, inputs, 25)
    r_p = np.percentile(rates[rates > 0], 99.0)
    assert sc.meta["rate_percentile_global"] == pytest.approx(r_p)
    kappa = c.gain / (sc.neuron.threshold * c.dt_ms)
    scale = 0.3 / (kappa * r_p)  # one global scale: 300 Hz at the percentile rate
    np.testing.assert_allclose(sc.b, scale * circuit.b_rec, rtol=1e-5)
    np.testing.assert_allclose(sc.w_rec, circuit.w_rec * (1 - c.alpha) / (c.dt_ms * kappa),
                               rtol=1e-5)
    np.testing.assert_allclose(sc.w_out, circuit.w_out / (kappa * scale), rtol=1e-5)
    assert sc.meta["gate"]["passed"] is True


def test_per_neuron_calibration_folds_scales_into_the_weights(circuit, inputs):
    glob = convert(circuit, inputs, ConversionConfig(substeps=10, calibration="global",
                                                     offset=False))
    per = convert(circuit, inputs, ConversionConfig(substeps=10, calibration="neuron",
                                                    offset=False))
    assert per.meta["scale_max"] > per.meta["scale_min"]  # scales differ between neurons
    assert per.neuron.threshold == glob.neuron.threshold == 1.0  # one threshold for all
    post, pre = circuit.graph.edges()
    scale = per.b / np.where(circuit.b_rec != 0, circuit.b_rec, np.nan)
    ok = np.isfinite(scale)
    expected = per.w_rec[ok[post] & ok[pre]]
    ratio = scale[post] / scale[pre]
    np.testing.assert_allclose(expected, (glob.w_rec * ratio)[ok[post] & ok[pre]], rtol=1e-4)


def test_dt_equal_tau_is_refused(inputs):
    c = random_circuit(36, density=0.2, params=RateParams("relu", 100.0, 100.0, 4), seed=3)
    with pytest.raises(NeurosheetError, match="no memory"):
        convert(c, inputs, ConversionConfig(substeps=10, gate="off"))


@pytest.mark.parametrize(
    "kwargs",
    [{"substeps": 0}, {"rate_hz": 0.0}, {"rate_hz": float("nan")}, {"percentile": 0.0},
     {"gate": "maybe"}, {"gate_min_agreement": 2.0}, {"dtype": "float16"},
     {"calibration": "layer"}, {"reset": "floor"}, {"readout": "max"}, {"tau_mem_ms": -1.0},
     {"neuron_floor": 0.0}],
)
def test_bad_knobs_are_one_line_errors(kwargs):
    with pytest.raises(NeurosheetError) as err:
        ConversionConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_neuron_models_are_one_line_errors():
    with pytest.raises(NeurosheetError, match="tau_mem_ms"):
        NeuronModel(tau_syn_ms=100.0, tau_mem_ms=0.0)
    with pytest.raises(NeurosheetError, match="reset"):
        NeuronModel(tau_syn_ms=100.0, reset="floor")


def test_tanh_is_refused_and_softplus_is_noted(inputs):
    c = random_circuit(36, density=0.2, seed=4)
    tanh = dataclasses.replace(c.params, activation="tanh")
    with pytest.raises(NeurosheetError, match="tanh"):
        convert(type(c)(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, tanh), inputs)
    soft = dataclasses.replace(c.params, activation="softplus")
    sc = convert(type(c)(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, soft), inputs,
                 ConversionConfig(substeps=5, gate="off"))
    assert any("softplus" in note for note in sc.meta["notes"])


def test_gate_catches_a_model_that_only_works_at_its_training_step():
    # One Euler step per task step, strongly recurrent: finer integration changes the dynamics.
    c = random_circuit(64, density=0.1, gain=2.0, params=RateParams("relu", 100.0, 50.0, 1),
                       seed=5)
    u = random_inputs(12, 16, 4, seed=6)
    report = rate_gate(c, u, 20, min_agreement=0.9)
    assert report.trained_substeps == 1 and report.substeps == 20
    assert not report.passed and report.rel_error > 0.1
    strict = ConversionConfig(substeps=20, gate_min_agreement=0.9)
    with pytest.raises(NeurosheetError, match="gate failed"):
        convert(c, u, strict)
    sc = convert(c, u, dataclasses.replace(strict, gate="warn"))
    assert not sc.meta["gate"]["passed"]
    assert any("gate failed" in note for note in sc.meta["notes"])


def test_calibration_ignores_padding_steps(circuit, inputs):
    valid = np.ones(inputs.shape[:2], bool)
    valid[5:, :4] = False
    loud = inputs.copy()
    loud[5:, :4] = 50.0  # what a network might do after a short trial ends
    sc_valid = convert(circuit, loud, ConversionConfig(substeps=10), valid=valid)
    sc_all = convert(circuit, loud, ConversionConfig(substeps=10))
    _, rates = rate_logits(circuit, loud, 10)
    kept = rates[valid]
    assert sc_valid.meta["rate_percentile_global"] == pytest.approx(
        np.percentile(kept[kept > 0], 99.9))
    assert sc_all.meta["rate_percentile_global"] > sc_valid.meta["rate_percentile_global"]


def test_gate_at_the_trained_step_is_perfect(circuit, inputs):
    report = rate_gate(circuit, inputs, circuit.params.substeps)
    assert report.agreement == 1.0 and report.rel_error == 0.0


def test_decode_count_and_li_readouts(circuit, inputs):
    sc = convert(circuit, inputs, ConversionConfig(substeps=10))
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=(3, 2, circuit.n)).astype(float)
    # count readout: spikes per ms over the task step through W_out, plus b_out
    weighted = counts * sc.readout_weights()[0]
    expected = (counts / sc.task_dt_ms) @ sc.out_matrix().toarray().T + sc.b_out
    np.testing.assert_allclose(sc.decode(weighted), expected, rtol=1e-6)
    # li readout: the trace carries over between task steps with alpha_out^K
    li = convert(circuit, inputs, ConversionConfig(substeps=10, readout="li", tau_out_ms=20.0))
    w = li.readout_weights()
    assert w[-1] > w[0]  # a late spike counts more at the end of the step
    z1 = rng.uniform(size=(2, 2, circuit.n))
    y = li.decode(z1)
    carry = li.constants().alpha_out ** 10
    z_second = carry * z1[0] + z1[1]
    np.testing.assert_allclose(y[1], z_second @ li.out_matrix().toarray().T + li.b_out)


def test_decisions_use_the_mask():
    logits = np.zeros((3, 2, 4))
    logits[2, :, 1] = 1.0
    logits[0, :, 3] = 5.0
    assert decisions(logits).tolist() == [1, 1]
    mask = np.array([[True, True], [False, False], [False, False]])
    assert decisions(logits, mask).tolist() == [3, 3]
    with pytest.raises(NeurosheetError):
        decisions(logits, np.ones((2, 2), bool))


def test_bad_inputs_are_refused(circuit, inputs):
    sc = convert(circuit, inputs, ConversionConfig(substeps=5))
    with pytest.raises(NeurosheetError, match="shape"):
        sc.drive(np.zeros((3, 2, 5)))
    bad = inputs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(NeurosheetError, match="NaN"):
        sc.drive(bad)
    with pytest.raises(NeurosheetError, match="silent"):
        convert(circuit.with_weights(w_in=np.zeros_like(circuit.w_in),
                                     b_rec=np.full(circuit.n, -1.0, np.float32)),
                inputs, ConversionConfig(substeps=5, gate="off"))


def test_spike_rates_follow_the_rate_model(circuit, inputs):
    """Converted with a busy recipe, each neuron's spike count tracks its rate (after the first
    task steps; the LIF's threshold and leak bend the curve, so a correlation, not equality)."""
    sc = convert(circuit, inputs, ConversionConfig(substeps=50, dtype="float64", **ACTIVE))
    res = create_backend("snntorch", device="cpu", dtype="float64").run(sc, inputs)
    _, rates = rate_logits(circuit, inputs, 50)
    assert res.total_spikes > 1000
    corr = np.corrcoef(res.counts[2:].ravel(), rates[2:].ravel())[0, 1]
    assert corr > 0.8


def test_spiking_circuit_files_round_trip(circuit, inputs, tmp_path):
    sc = convert(circuit, inputs, ConversionConfig(substeps=10))
    path = sc.save(tmp_path / "sc.npz")
    back = SpikingCircuit.load(path, circuit.graph)
    assert back.fingerprint() == sc.fingerprint()
    assert back.neuron == sc.neuron and back.substeps == sc.substeps
    assert back.meta["rate_weights"] == sc.meta["rate_weights"]
    other = random_circuit(64, density=0.2, seed=1)
    with pytest.raises(NeurosheetError, match="fingerprint"):
        SpikingCircuit.load(path, other.graph)
    changed = sc.with_weights(w_rec=sc.w_rec * 2)
    assert changed.fingerprint() != sc.fingerprint()


def test_a_changed_weight_invalidates_the_saved_conversion(tmp_path):
    """The saved conversion is keyed on the weight arrays: one changed weight converts again."""
    from neurosheet.spiking.persist import load_conversion, spiking_for_run

    c = random_circuit(49, density=0.15, seed=11)
    u = random_inputs(6, 5, 4, seed=12)
    save_run_circuit(tmp_path, c)
    cfg = ConversionConfig(substeps=10)
    first = spiking_for_run(tmp_path, c, cfg, 8, 0, inputs=u)
    assert load_conversion(tmp_path, c, cfg) is not None  # reused while nothing changes
    w = c.w_rec.copy()
    w[0] += 0.25
    c2 = c.with_weights(w_rec=w)
    assert load_conversion(tmp_path, c2, cfg) is None  # same graph, same knobs, new weight
    b = c.b_rec.copy()
    b[3] -= 0.1
    assert load_conversion(tmp_path, c.with_weights(b_rec=b), cfg) is None
    second = spiking_for_run(tmp_path, c2, cfg, 8, 0, inputs=u)
    assert second.meta["rate_weights"] != first.meta["rate_weights"]
    assert not np.array_equal(second.w_rec, first.w_rec)
    assert load_conversion(tmp_path, c2, cfg) is not None
    assert load_conversion(tmp_path, c2, dataclasses.replace(cfg, rate_hz=150.0)) is None
