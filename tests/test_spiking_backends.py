"""snntorch and Brian2 backends: same synapses as the graph, and the same spikes on the same input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.brian2 import Brian2Backend, codegen_prefs
from neurosheet.spiking.backends.snntorch import SnntorchBackend
from neurosheet.spiking.conversion import ConversionConfig, convert, decisions
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.registry import create_backend


def _convert(dtype: str, substeps: int = 20, seed: int = 1):
    circuit = random_circuit(64, density=0.1, seed=seed)
    u = random_inputs(8, 24, 4, seed=seed + 1)
    return convert(circuit, u, ConversionConfig(substeps=substeps, dtype=dtype)), u


@pytest.fixture(scope="module")
def sc64():
    return _convert("float64")


@pytest.fixture(scope="module")
def brian_numpy(sc64):
    sc, u = sc64
    return Brian2Backend(target="numpy").run(sc, u, record=2)


def _corr(a, b):
    return float(np.corrcoef(a.per_neuron_counts().ravel(), b.per_neuron_counts().ravel())[0, 1])


def test_snntorch_synapses_are_exactly_the_graph_edges(sc64):
    sc, _ = sc64
    w = SnntorchBackend(device="cpu").recurrent_matrix(sc, torch.float64)
    adj = sc.graph.adjacency
    np.testing.assert_array_equal(w.crow_indices().numpy(), adj.indptr)
    np.testing.assert_array_equal(w.col_indices().numpy(), adj.indices)
    np.testing.assert_array_equal(w.values().numpy(), sc.spike_weights())
    assert w.values().numel() == sc.graph.synapses


def test_brian2_synapses_are_exactly_the_graph_edges(sc64):
    sc, u = sc64
    with codegen_prefs(None, "numpy"):
        objs = Brian2Backend.network(sc, sc.drive(u[:, :2]), 2)
    syn = objs["net"]["sheet_syn"]
    post, pre = sc.edges()
    n, e = sc.n, sc.graph.synapses
    assert len(syn) == 2 * e  # two trials, each a full copy of the graph
    i, j, w = np.asarray(syn.i[:]), np.asarray(syn.j[:]), np.asarray(syn.w[:])
    for b in range(2):
        part = slice(b * e, (b + 1) * e)
        assert set(zip((i[part] - b * n).tolist(), (j[part] - b * n).tolist(), strict=True)) == \
            set(zip(pre.tolist(), post.tolist(), strict=True))
        np.testing.assert_allclose(w[part], sc.spike_weights())


def test_float64_backends_agree_spike_for_spike(sc64, brian_numpy):
    sc, u = sc64
    snn = SnntorchBackend(device="cpu").run(sc, u, record=2)
    b2 = brian_numpy
    assert snn.total_spikes > 1000  # the comparison is not between two silent networks
    assert _corr(snn, b2) >= 0.95
    assert (decisions(snn.logits) == decisions(b2.logits)).mean() >= 0.95
    # exact equivalence of the two implementations of the same map (float64)
    assert np.abs(snn.counts - b2.counts).sum() <= 1e-3 * snn.total_spikes
    for (s1, n1), (s2, n2) in zip(snn.rasters, b2.rasters, strict=True):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(n1, n2)


def test_float32_snntorch_meets_the_agreement_bars(brian_numpy):
    sc32, u = _convert("float32")
    snn = SnntorchBackend(device="cpu").run(sc32, u)
    assert _corr(snn, brian_numpy) >= 0.95
    assert (decisions(snn.logits) == decisions(brian_numpy.logits)).mean() >= 0.95


def test_rasters_add_up_to_the_counts(sc64, brian_numpy):
    sc, _ = sc64
    for b, (steps, neurons) in enumerate(brian_numpy.rasters):
        counts = np.zeros((brian_numpy.counts.shape[0], sc.n), int)
        np.add.at(counts, (steps // sc.substeps, neurons), 1)
        np.testing.assert_array_equal(counts, brian_numpy.counts[:, b])


def test_batching_does_not_change_the_result(sc64, brian_numpy):
    sc, u = sc64
    whole = SnntorchBackend(device="cpu", batch_size=256).run(sc, u)
    parts = SnntorchBackend(device="cpu", batch_size=5).run(sc, u)
    np.testing.assert_array_equal(whole.counts, parts.counts)
    dense = SnntorchBackend(device="cpu", matmul="dense").run(sc, u)
    assert _corr(whole, dense) > 0.99
    chunked = Brian2Backend(target="numpy", batch_size=7).run(sc, u)  # last chunk is padded
    np.testing.assert_array_equal(chunked.counts, brian_numpy.counts)


def test_result_summary_counts_synaptic_events(brian_numpy, sc64):
    sc, _ = sc64
    s = brian_numpy.summary(sc.graph.fan_out)
    per_neuron = brian_numpy.counts.sum((0, 1))
    assert s["synaptic_events"] == int((per_neuron * sc.graph.fan_out).sum())
    assert s["spikes"] == brian_numpy.total_spikes and s["mean_rate_hz"] > 0
    assert brian_numpy.biological_s == pytest.approx(8 * sc.task_dt_ms / 1000)


def test_cpp_standalone_matches_and_leaves_brian2_usable(sc64, brian_numpy, tmp_path):
    sc, u = sc64
    b2 = Brian2Backend(target="cpp_standalone", build_dir=tmp_path, batch_size=16).run(sc, u)
    assert b2.info["target"] == "cpp_standalone" and b2.build_s > 0
    assert not list(tmp_path.glob("standalone-*"))  # the call's project folder is removed
    np.testing.assert_array_equal(b2.counts, brian_numpy.counts)
    again = Brian2Backend(target="numpy").run(sc, u[:, :3])  # runtime mode works afterwards
    np.testing.assert_array_equal(again.counts, brian_numpy.counts[:, :3])


@pytest.mark.slow
def test_cython_matches_and_caches_in_the_build_dir(sc64, brian_numpy, tmp_path):
    sc, u = sc64
    b2 = Brian2Backend(target="cython", build_dir=tmp_path).run(sc, u)
    assert b2.info["target"] == "cython"
    assert any((tmp_path / "cython").iterdir())
    np.testing.assert_array_equal(b2.counts, brian_numpy.counts)


def test_bad_backend_options_are_one_line_errors():
    with pytest.raises(NeurosheetError, match="unknown backend"):
        create_backend("nest")
    with pytest.raises(NeurosheetError, match="Brian2 target"):
        Brian2Backend(target="gpu")
    with pytest.raises(NeurosheetError, match="matmul"):
        SnntorchBackend(matmul="coo")


def test_run_directories_share_one_compiled_code_cache(tmp_path, monkeypatch):
    """Brian2's compiled code lives in the user cache, not in each run or report folder."""
    monkeypatch.setenv("NEUROSHEET_CACHE", str(tmp_path / "cache"))
    a = Brian2Backend.from_run(tmp_path / "run-a")
    b = Brian2Backend.from_run(tmp_path / "run-b")
    assert a.build_dir == b.build_dir == tmp_path / "cache" / "brian2"
