"""SheetGraph: counts, torch views, projections and the file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.projections import input_projection, readout_projection, region_members
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.sheetgraph import SheetGraph, csr_from_edges
from neurosheet.graph.wiring import build_graph


def test_counts_match_a_hand_built_graph():
    sheet = make_sheet(4)  # 2 x 2 grid
    # edges (post, pre): 0<-1, 0<-2, 1<-0, 3<-3
    g = SheetGraph(sheet, csr_from_edges([0, 0, 1, 3], [1, 2, 0, 3], (4, 4)))
    assert g.synapses == 4 and g.self_connections == 1
    assert g.density == 4 / 16
    assert g.fan_in.tolist() == [2, 1, 0, 1]
    assert g.fan_out.tolist() == [1, 1, 1, 1]
    assert g.edge_lengths().tolist() == [1.0, 1.0, 1.0, 0.0]
    s = g.summary()
    assert (s["max_fan_in"], s["mean_fan_in"], s["total_length"]) == (2, 1.0, 3.0)
    assert s["mean_length"] == 0.75


def test_edges_are_canonical_and_duplicates_merged():
    g = SheetGraph(make_sheet(4), csr_from_edges([1, 0, 0, 0], [0, 2, 1, 2], (4, 4)))
    post, pre = g.edges()
    assert post.tolist() == [0, 0, 1] and pre.tolist() == [1, 2, 0]


def test_torch_views_have_exactly_the_edges(lm_graph):
    mask = lm_graph.to_torch_mask()
    assert mask.shape == (64, 64) and int(mask.sum()) == lm_graph.synapses
    np.testing.assert_array_equal(mask.numpy() > 0, lm_graph.adjacency.toarray())
    vals = torch.arange(lm_graph.synapses, dtype=torch.float32)
    sp = lm_graph.to_torch_sparse(vals)
    dense = sp.to_dense()
    post, pre = lm_graph.edges()
    assert torch.equal(dense[post, pre], vals)
    with pytest.raises(NeurosheetError, match="synapses"):
        lm_graph.to_torch_sparse(torch.ones(3))


def test_projections_are_counted_separately(lm_graph):
    s = lm_graph.summary()
    assert s["input_synapses"] == 64 * 35 and s["readout_synapses"] == 17 * 64
    assert s["total_synapses"] == s["synapses"] + 64 * 35 + 17 * 64


def test_region_restricted_projections():
    sheet = make_sheet(100)  # 10 x 10
    left = region_members(sheet, "left:0.3")
    assert left.size == 30 and (sheet.positions[left, 0] < 3).all()
    inp = input_projection(sheet, 5, "left:0.3")
    assert inp.synapses == 150 and inp.shape == (100, 5)
    out = readout_projection(sheet, 17, "right")
    assert out.synapses == 17 * 30 and out.shape == (17, 100)
    assert (out.positions[:, 0] == sheet.width).all() and (inp.positions[:, 0] == 0).all()
    with pytest.raises(NeurosheetError, match="unknown sheet region"):
        region_members(sheet, "middle")


def test_save_load_round_trip(tmp_path, lm_graph):
    path = lm_graph.save(tmp_path / "g.npz")
    back = SheetGraph.load(path)
    assert back.fingerprint() == lm_graph.fingerprint()
    np.testing.assert_array_equal(back.sheet.positions, lm_graph.sheet.positions)
    assert (back.adjacency != lm_graph.adjacency).nnz == 0
    assert back.inputs.synapses == lm_graph.inputs.synapses
    assert back.meta == lm_graph.meta
    assert back.summary() == lm_graph.summary()


def test_round_trip_of_a_periodic_random_sheet(tmp_path):
    g = build_graph(make_sheet(300, "random", periodic=True, seed=4), "gaussian", density=0.05)
    back = SheetGraph.load(g.save(tmp_path / "g.npz"))
    assert back.sheet.periodic and back.sheet.seed == 4
    assert back.fingerprint() == g.fingerprint()


def test_corrupt_files_are_refused_with_one_line(tmp_path, lm_graph):
    path = lm_graph.save(tmp_path / "g.npz")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    for bad in (truncated, garbage):
        with pytest.raises(NeurosheetError, match="corrupt") as exc:
            SheetGraph.load(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(NeurosheetError, match="not found"):
        SheetGraph.load(tmp_path / "missing.npz")


def test_tampered_and_mismatched_files_are_refused(tmp_path, lm_graph):
    path = lm_graph.save(tmp_path / "g.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["adj.indices"] = arrays["adj.indices"].copy()
    arrays["adj.indices"][0] = (arrays["adj.indices"][0] + 7) % 64
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(NeurosheetError, match=r"fingerprint|damaged"):
        SheetGraph.load(tampered)
    other = build_graph(make_sheet(64), "radius", radius=2.0)
    with pytest.raises(NeurosheetError, match="does not match"):
        SheetGraph.load(path, expect_fingerprint=other.fingerprint())
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(NeurosheetError, match="not a neurosheet graph"):
        SheetGraph.load(foreign)


def test_failed_save_keeps_the_previous_file(tmp_path, lm_graph, monkeypatch):
    path = lm_graph.save(tmp_path / "g.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        lm_graph.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]  # no temp file left behind
