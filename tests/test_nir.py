"""NIR export: standard nodes only, the edge list kept, and a file the readers simulate as stated."""

from __future__ import annotations

import dataclasses

import h5py
import nir
import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.nir import (
    FILE_DT_S,
    average_outputs,
    hold_inputs,
    read_nir,
    simulate,
    to_nir,
    write_nir,
)
from neurosheet.spiking.registry import create_backend


@pytest.fixture(scope="module")
def spiking():
    c = random_circuit(64, density=0.1, seed=7)
    return convert(c, random_inputs(6, 8, 4, seed=8), ConversionConfig(substeps=10))


def test_graph_is_standard_nir_with_a_recurrent_subgraph(spiking):
    g = to_nir(spiking)
    assert list(g.nodes) == ["input", "proj_in", "rnn", "readout", "output"]
    assert sorted(g.nodes) == ["input", "output", "proj_in", "readout", "rnn"]
    assert isinstance(g.nodes["proj_in"], nir.Affine) and isinstance(g.nodes["readout"], nir.Affine)
    rnn = g.nodes["rnn"]
    assert isinstance(rnn, nir.NIRGraph)
    assert set(rnn.edges) == {("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                              ("lif", "output")}
    lif, w_rec = rnn.nodes["lif"], rnn.nodes["w_rec"]
    assert isinstance(lif, nir.CubaLIF) and isinstance(w_rec, nir.Linear)
    assert w_rec.weight.shape == (64, 64) and w_rec.weight.dtype == np.float32
    # what snntorch's importer asserts, and what norse silently assumes
    np.testing.assert_allclose(lif.r, lif.tau_mem / FILE_DT_S)
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0) and np.all(lif.w_in == 1)
    for name in ("tau_syn", "tau_mem", "v_threshold"):
        assert np.unique(getattr(lif, name)).size == 1, name
    assert g.metadata["dt_s"] == FILE_DT_S and "time average" in g.metadata["readout_rule"]


def test_round_trip_keeps_edges_weights_and_fingerprint(spiking, tmp_path):
    path = write_nir(spiking, tmp_path / "sheet.nir")
    back = read_nir(path)
    post, pre = spiking.edges()
    assert back.synapses == spiking.synapses
    np.testing.assert_array_equal(back.post, post)
    np.testing.assert_array_equal(back.pre, pre)
    np.testing.assert_array_equal(back.weight, spiking.w_rec)
    np.testing.assert_array_equal(back.positions, spiking.graph.sheet.positions.astype(np.float32))
    np.testing.assert_array_equal(back.network.bias, spiking.b)
    assert back.meta["graph_fingerprint"] == spiking.graph.fingerprint()
    assert back.meta["circuit_fingerprint"] == spiking.fingerprint()
    assert set(nir.read(path).nodes) == {"input", "proj_in", "rnn", "readout", "output"}


def test_dense_weight_is_written_once_in_float32(spiking, tmp_path):
    path = write_nir(spiking, tmp_path / "once.nir")
    square = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: square.append((name, obj.dtype)) if isinstance(
            obj, h5py.Dataset) and obj.shape == (64, 64) else None)
    assert square == [("node/nodes/rnn/nodes/w_rec/weight", np.dtype("float32"))]


def test_zero_weight_synapses_survive(spiking, tmp_path):
    w = spiking.w_rec.copy()
    w[:5] = 0.0
    back = read_nir(write_nir(spiking.with_weights(w_rec=w), tmp_path / "z.nir"))
    assert back.synapses == spiking.graph.synapses  # the dense matrix alone would lose them
    assert (back.weight[:5] == 0).all()


def test_tampered_or_missing_file_is_refused(spiking, tmp_path):
    path = write_nir(spiking, tmp_path / "t.nir")
    with h5py.File(path, "r+") as f:
        w = f["node/nodes/rnn/nodes/w_rec/weight"]
        arr = w[()]
        post, pre = spiking.edges()
        mask = np.ones_like(arr, bool)
        mask[post, pre] = False
        i, j = np.argwhere(mask)[0]
        arr[i, j] = 1.0
        w[...] = arr
    with pytest.raises(NeurosheetError, match="off the edge list"):
        read_nir(path)
    with pytest.raises(NeurosheetError, match="not found"):
        read_nir(tmp_path / "missing.nir")


def test_inputs_are_held_and_outputs_averaged_per_task_step():
    u = np.arange(6, dtype=np.float32).reshape(3, 1, 2)
    held = hold_inputs(u, 0.02, FILE_DT_S)
    assert held.shape == (600, 1, 2)
    np.testing.assert_array_equal(held[200:400], np.broadcast_to(u[1], (200, 1, 2)))
    np.testing.assert_allclose(average_outputs(held, 0.02, FILE_DT_S), u)
    with pytest.raises(NeurosheetError, match="must divide the task step"):
        hold_inputs(u, 0.02, 3e-3)


def test_the_file_states_neurosheets_map_at_its_step(spiking, tmp_path):
    """Simulated as NIR states it (Euler, 0.1 ms), the file spikes exactly as neurosheet does
    when neurosheet also steps 0.1 ms (task step 20 ms -> K = 200), in float64."""
    fine = spiking.at_substeps(200)
    net = read_nir(write_nir(fine, tmp_path / "r.nir")).network
    u = random_inputs(5, 4, 4, seed=1)
    ours = create_backend("snntorch", device="cpu", dtype="float64").run(fine, u)
    logits, counts = simulate(net, u)
    assert counts.sum() > 100
    np.testing.assert_array_equal(counts, ours.counts)
    np.testing.assert_allclose(logits, ours.logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("field", "value", "match"),
                         [("reset", "subtract", "reset"), ("readout", "li", "readout")])
def test_models_the_readers_cannot_run_are_refused(spiking, tmp_path, field, value, match):
    other = dataclasses.replace(spiking, neuron=dataclasses.replace(spiking.neuron, **{field: value}))
    with pytest.raises(NeurosheetError, match=match):
        write_nir(other, tmp_path / "x.nir")


def _flat(node, prefix=""):
    out = {}
    d = node.to_dict() if hasattr(node, "to_dict") else node
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_streamed_file_is_what_nir_write_writes(spiking, tmp_path):
    ours = write_nir(spiking, tmp_path / "ours.nir")
    theirs = tmp_path / "theirs.nir"
    nir.write(theirs, to_nir(spiking))
    a, b = _flat(nir.read(ours)), _flat(nir.read(theirs))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_a_time_rescaled_file_runs_neurosheets_own_step(spiking, tmp_path):
    """rescale_time: one 2 ms neurosheet step (K = 10 at 20 ms) per 0.1 ms file step."""
    back = read_nir(write_nir(spiking, tmp_path / "fast.nir", rescale_time=True))
    net = back.network
    assert back.meta["time_scale"] == pytest.approx(spiking.sim_dt_ms / 1e3 / FILE_DT_S)
    assert net.steps_per_task_step == spiking.substeps
    u = random_inputs(5, 4, 4, seed=1)
    ours = create_backend("snntorch", device="cpu", dtype="float64").run(spiking, u)
    logits, counts = simulate(net, u)
    np.testing.assert_array_equal(counts, ours.counts)
    np.testing.assert_allclose(logits, ours.logits, rtol=1e-6, atol=1e-6)
