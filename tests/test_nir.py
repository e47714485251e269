"""NIR export: nir's own nodes, and a read-back with exactly the graph's edges and weights."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.nir import read_nir, to_nir, write_nir


@pytest.fixture(scope="module")
def spiking():
    c = random_circuit(64, density=0.1, seed=7)
    return convert(c, random_inputs(6, 8, 4, seed=8), ConversionConfig(substeps=10))


def test_graph_uses_nir_nodes(spiking):
    g = to_nir(spiking)
    assert isinstance(g.nodes["lif"], nir.CubaLIF)
    assert isinstance(g.nodes["w_rec"], nir.Linear)
    assert isinstance(g.nodes["w_in"], nir.Affine) and isinstance(g.nodes["w_out"], nir.Affine)
    assert ("w_rec", "lif") in g.edges and ("lif", "w_rec") in g.edges
    assert g.nodes["w_rec"].weight.shape == (64, 64)
    assert np.allclose(np.exp(-g.metadata["dt_s"] / g.nodes["lif"].tau_syn), spiking.beta)


def test_round_trip_keeps_edges_and_weights(spiking, tmp_path):
    path = write_nir(spiking, tmp_path / "sheet.nir")
    back = read_nir(path)
    post, pre = spiking.edges()
    assert back.synapses == spiking.synapses
    np.testing.assert_array_equal(back.post, post)
    np.testing.assert_array_equal(back.pre, pre)
    np.testing.assert_array_equal(back.weight, spiking.spike_weights())
    np.testing.assert_array_equal(back.positions, spiking.graph.sheet.positions)
    np.testing.assert_array_equal(back.bias, spiking.circuit.b_rec.astype(np.float64))
    assert back.meta["graph_fingerprint"] == spiking.graph.fingerprint()
    assert back.meta["substeps"] == 10 and back.meta["reset"] == "subtract"
    assert back.meta["g"] == spiking.g
    # plain nir can read it too
    assert set(nir.read(path).nodes) == {"input", "w_in", "lif", "w_rec", "w_out", "output"}


def test_zero_weight_synapses_survive(spiking, tmp_path):
    w = spiking.circuit.w_rec.copy()
    w[:5] = 0.0
    c = spiking.circuit.with_weights(w_rec=w)
    sc = convert(c, random_inputs(6, 8, 4, seed=8), ConversionConfig(substeps=10))
    back = read_nir(write_nir(sc, tmp_path / "z.nir"))
    assert back.synapses == c.graph.synapses  # the dense matrix alone would lose them
    assert (back.weight[:5] == 0).all()


def test_tampered_file_is_refused(spiking, tmp_path):
    path = write_nir(spiking, tmp_path / "t.nir")
    with h5py.File(path, "r+") as f:
        w = f["node/nodes/w_rec/weight"]
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
