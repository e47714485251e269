"""Event-driven recurrent propagation (no gradients): the same spikes as the products."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosheet.spiking import events
from neurosheet.spiking.backends.brian2 import Brian2Backend
from neurosheet.spiking.backends.snntorch import SnntorchBackend
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import balanced_circuit, random_circuit, random_inputs
from neurosheet.spiking.network import SpikingSheet


@pytest.fixture(scope="module")
def balanced():
    """256 neurons at ~20 Hz (1 ms steps): 1-3% of the neurons spike per step."""
    sc = balanced_circuit(256, density=0.1)
    return sc, random_inputs(10, 5, sc.n_inputs, seed=3)


@pytest.fixture(scope="module")
def busy():
    """A converted rate circuit firing hard (many spikes per step), reset by subtraction."""
    circuit = random_circuit(64, density=0.1, seed=1)
    u = random_inputs(6, 4, 4, seed=2)
    cfg = ConversionConfig(substeps=20, dtype="float64", rate_hz=1000.0, tau_mem_ms=50.0,
                           reset="subtract")
    return convert(circuit, u, cfg), u


def _run(sc, u, kernel, dtype=torch.float64, grad=False, **kw):
    net = SpikingSheet(sc, dtype=dtype, trainable=grad, kernel=kernel)
    cur = sc.drive(u)
    if grad:
        out = net(u, current=cur, record=2, **kw)
    else:
        with torch.no_grad():
            out = net(u, current=cur, record=2, **kw)
    return out, net


@pytest.mark.parametrize("which", ["balanced", "busy"])
@pytest.mark.parametrize("ell", [True, False])
def test_float64_events_give_the_spikes_of_the_products(which, ell, request, monkeypatch):
    sc, u = request.getfixturevalue(which)
    if not ell:  # the ragged (CSC + repeat_interleave) layout instead of the padded one
        monkeypatch.setattr(events, "ELL_MAX_PADDING", 0.0)
    ev, net = _run(sc, u, "events")
    assert net.event_structure().ell == ell
    assert net.last_propagation["events"] > 0 and net.last_propagation["product"] == 0
    assert ev.counts.sum() > 200  # not two silent networks
    for kernel in ("csr", "dense"):
        ref, rnet = _run(sc, u, kernel)
        assert rnet.last_propagation["events"] == 0
        torch.testing.assert_close(ev.counts, ref.counts, rtol=0, atol=0)
        assert torch.equal(ev.raster, ref.raster)
        torch.testing.assert_close(ev.weighted, ref.weighted, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ev.logits, ref.logits, rtol=1e-9, atol=1e-9)
    # the gradient path (unchanged) simulates the same map
    grad, _ = _run(sc, u, "csr", grad=True)
    assert grad.counts.requires_grad or grad.logits.requires_grad
    torch.testing.assert_close(ev.counts, grad.counts.detach(), rtol=0, atol=0)
    assert torch.equal(ev.raster, grad.raster)


def test_float64_events_are_brian2s_spikes(balanced):
    sc, u = balanced
    a = SnntorchBackend(device="cpu", dtype="float64", matmul="events").run(sc, u, record=1)
    b = Brian2Backend(target="numpy").run(sc, u, record=1)
    assert 10 <= a.mean_rate_hz() <= 40  # the realistic regime the scatter is for
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.rasters[0][0], b.rasters[0][0])
    np.testing.assert_array_equal(a.rasters[0][1], b.rasters[0][1])


def test_float32_events_flip_at_most_a_few_borderline_spikes(balanced):
    """float32 sums in another order than the CSR kernel: allow 0.1% of the spikes to differ."""
    sc, u = balanced
    ev, _ = _run(sc, u, "events", dtype=torch.float32)
    ref, _ = _run(sc, u, "csr", dtype=torch.float32)
    diff = float((ev.counts - ref.counts).abs().sum())
    assert ev.counts.sum() > 200
    assert diff <= 1e-3 * float(ref.counts.sum())


def test_noise_draws_the_same_stream_on_both_paths(balanced):
    sc, u = balanced
    outs = []
    for grad in (False, True):
        gen = torch.Generator().manual_seed(5)
        out, _ = _run(sc, u, "events" if not grad else "csr", grad=grad, noise=0.3,
                      generator=gen)
        outs.append(out.counts.detach())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_gradients_still_flow_through_the_product(balanced):
    sc, u = balanced
    net = SpikingSheet(sc, dtype=torch.float64, trainable=True)
    out = net(u, current=None)
    out.logits.sum().backward()
    assert net.w_rec.grad is not None and net.w_rec.grad.abs().sum() > 0
    assert net.last_propagation == {}  # the no-gradient loop did not run


def test_auto_picks_events_at_low_rates_and_the_product_when_busy(balanced, busy):
    sc, u = balanced
    _, net = _run(sc, u[:, :1], "auto")
    assert net.last_propagation["events"] > 0
    sc2, u2 = busy
    many = np.repeat(u2, 64, axis=1)  # 256 trials, ~half the neurons spike per step
    _, net2 = _run(sc2, many, "auto")
    assert net2.last_propagation["product"] > net2.last_propagation["events"]


def test_the_rule_trades_spikes_against_synapses_and_trials():
    lim1 = events.max_event_edges("csr", 8192, 3_331_654, 1)
    lim16 = events.max_event_edges("csr", 8192, 3_331_654, 16)
    assert 0 < lim1 < lim16 < 16 * lim1  # more trials: more spikes allowed, fewer per trial
    assert events.use_events(100, 400.0, lim1) and not events.use_events(10**6, 400.0, lim1)
    small = events.max_event_edges("dense", 64, 400, 1)
    assert small < events.max_event_edges("dense", 512, 13_000, 1)
