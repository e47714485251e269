"""Rate -> spiking conversion: same edges, documented constants, gate, readout, fidelity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import RateParams
from neurosheet.spiking.conversion import (
    ConversionConfig,
    convert,
    decisions,
    rate_gate,
    rate_logits,
)
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.registry import create_backend


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
    assert sc.synapses == circuit.graph.synapses == post.size
    assert set(zip(post.tolist(), pre.tolist(), strict=True)) == \
        set(zip(g_post.tolist(), g_pre.tolist(), strict=True))
    np.testing.assert_allclose(sc.spike_weights() * sc.g, circuit.w_rec, rtol=1e-12)


def test_constants_follow_the_recipe(circuit, inputs):
    cfg = ConversionConfig(substeps=25, rho_max=0.4, percentile=99.0)
    sc = convert(circuit, inputs, cfg)
    alpha = circuit.params.alpha
    assert sc.beta ** 25 == pytest.approx(1 - alpha)
    assert sc.sim_dt_ms == pytest.approx(circuit.params.dt_ms / 25)
    assert np.exp(-sc.sim_dt_ms / sc.tau_syn_ms) == pytest.approx(sc.beta)
    _, rates = rate_logits(circuit, inputs, 25)
    r_p = np.percentile(rates[rates > 0], 99.0)
    assert sc.rate_percentile == pytest.approx(r_p)
    assert sc.g * r_p == pytest.approx(0.4)
    assert sc.gate is not None and sc.gate.passed
    assert sc.summary()["gate"]["passed"] is True


def test_dt_equal_tau_gives_a_memoryless_current(inputs):
    c = random_circuit(36, density=0.2, params=RateParams("relu", 100.0, 100.0, 4), seed=3)
    sc = convert(c, inputs, ConversionConfig(substeps=10, gate="off"))
    assert sc.beta == 0.0 and sc.tau_syn_ms == 0.0
    assert any("no memory" in note for note in sc.notes)


@pytest.mark.parametrize(
    "kwargs",
    [{"substeps": 0}, {"rho_max": 0.0}, {"rho_max": 1.5}, {"percentile": 0.0},
     {"gate": "maybe"}, {"gate_min_agreement": 2.0}, {"dtype": "float16"}],
)
def test_bad_knobs_are_one_line_errors(kwargs):
    with pytest.raises(NeurosheetError) as err:
        ConversionConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_tanh_is_refused_and_softplus_is_noted(inputs):
    c = random_circuit(36, density=0.2, seed=4)
    tanh = dataclasses.replace(c.params, activation="tanh")
    with pytest.raises(NeurosheetError, match="tanh"):
        convert(type(c)(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, tanh), inputs)
    soft = dataclasses.replace(c.params, activation="softplus")
    sc = convert(type(c)(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, soft), inputs,
                 ConversionConfig(substeps=5, gate="off"))
    assert any("softplus" in note for note in sc.notes)


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
    assert sc.gate is not None and not sc.gate.passed
    assert any("gate failed" in note for note in sc.notes)


def test_gate_reports_a_model_that_diverges_at_finer_steps():
    # dt = tau and strong recurrence: iterating the map 20 times per task step blows up.
    c = random_circuit(64, density=0.1, gain=2.0, params=RateParams("relu", 100.0, 100.0, 1),
                       seed=5)
    u = random_inputs(12, 16, 4, seed=6)
    report = rate_gate(c, u, 20)
    assert report.agreement == 0.0 and report.rel_error == float("inf") and not report.passed
    with pytest.raises(NeurosheetError, match="gate failed"):
        convert(c, u, ConversionConfig(substeps=20))
    with pytest.raises(NeurosheetError, match="diverges"):
        convert(c, u, ConversionConfig(substeps=20, gate="warn"))


def test_calibration_ignores_padding_steps(circuit, inputs):
    valid = np.ones(inputs.shape[:2], bool)
    valid[5:, :4] = False
    loud = inputs.copy()
    loud[5:, :4] = 50.0  # what a network might do after a short trial ends
    sc_valid = convert(circuit, loud, ConversionConfig(substeps=10), valid=valid)
    sc_all = convert(circuit, loud, ConversionConfig(substeps=10))
    _, rates = rate_logits(circuit, loud, 10)
    kept = rates[valid]
    assert sc_valid.rate_percentile == pytest.approx(np.percentile(kept[kept > 0], 99.9))
    assert sc_all.rate_percentile > sc_valid.rate_percentile


def test_gate_at_the_trained_step_is_perfect(circuit, inputs):
    report = rate_gate(circuit, inputs, circuit.params.substeps)
    assert report.agreement == 1.0 and report.rel_error == 0.0


def test_decode_inverts_the_rate_scaling(circuit, inputs):
    sc = convert(circuit, inputs, ConversionConfig(substeps=10))
    rng = np.random.default_rng(0)
    rates = rng.uniform(0, 1, size=(3, 2, circuit.n))
    counts = rates * sc.substeps * sc.g
    expected = rates @ circuit.out_matrix().toarray().T + circuit.b_out
    np.testing.assert_allclose(sc.decode(counts), expected, rtol=1e-5, atol=1e-6)


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


def test_spikes_approximate_the_rate_model(circuit, inputs):
    """At 50 sim steps per task step the decoded spike rates track the rate model's."""
    sc = convert(circuit, inputs, ConversionConfig(substeps=50, rho_max=0.5, dtype="float64"))
    res = create_backend("snntorch", device="cpu").run(sc, inputs)
    _, rates = rate_logits(circuit, inputs, 50)
    est = res.counts / (sc.substeps * sc.g)
    # compare after the first task step (the current starts at zero)
    corr = np.corrcoef(est[2:].ravel(), rates[2:].ravel())[0, 1]
    assert corr > 0.9
    y_rate, _ = rate_logits(circuit, inputs, 50)
    assert (decisions(y_rate) == decisions(res.logits)).mean() >= 0.75
