"""Budget arithmetic against hand counts, partitions, quantization, verdicts, reports and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from neurosheet.cli import main
from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit, save_run_circuit
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.sheetgraph import Projection, SheetGraph, csr_from_edges
from neurosheet.graph.wiring import build_graph
from neurosheet.hardware.budget import SpikeCounts, budget_report, compare_targets, synaptic_ops
from neurosheet.hardware.partition import (
    Partition,
    core_loads,
    crossing_edges,
    fit_tiling,
    random_partition,
    tile_partition,
)
from neurosheet.hardware.quantize import quantize_array, quantize_circuit
from neurosheet.hardware.targets import Target, load_target
from neurosheet.reports.budget import write_budget, write_comparison

# Hand-built graph: 6 neurons on a 3 x 2 grid
#   0 1 2      (y = 0.5)
#   3 4 5      (y = 1.5)
# recurrent edges pre -> post:
PRE_POST = [(0, 1), (1, 0), (1, 2), (2, 5), (3, 4), (4, 3), (4, 1), (5, 4), (0, 3)]


def small_graph() -> SheetGraph:
    pre = np.array([e[0] for e in PRE_POST])
    post = np.array([e[1] for e in PRE_POST])
    sheet = make_sheet(6, "grid")
    adj = csr_from_edges(post, pre, (6, 6))
    # one input channel reaching neurons 0 and 3; one readout reading neurons 2 and 5
    inp = sp.csr_array((np.ones(2, bool), ([0, 3], [0, 0])), shape=(6, 1))
    out = sp.csr_array((np.ones(2, bool), ([0, 0], [2, 5])), shape=(1, 6))
    return SheetGraph(sheet, adj, Projection(inp, np.zeros((1, 2))),
                      Projection(out, np.zeros((1, 2))))


def small_circuit(seed: int = 0) -> Circuit:
    g = small_graph()
    rng = np.random.default_rng(seed)
    return Circuit(g, rng.normal(size=9), rng.normal(size=2), np.zeros(6),
                   rng.normal(size=2), np.zeros(1))


def target(**extra) -> Target:
    data = {
        "title": "hand chip", "kind": "digital", "recurrent": True,
        "neurons_per_core": {"value": 3, "source": "s", "status": "verified"},
        "cores_per_chip": {"value": 2, "source": "s", "status": "verified"},
        "weight_bits": {"value": 8, "source": "s", "status": "verified"},
        "sources": {"s": "hand-made test profile"},
    }
    for k, v in extra.items():
        fig = {"value": v, "source": "s", "status": "verified"}
        data[k] = v if isinstance(v, dict) else fig
    return Target.model_validate({**data, "name": "hand"})


def test_counts_by_hand():
    r = budget_report(small_graph(), target())
    assert r["neurons"] == 6
    assert r["synapses"] == {"recurrent": 9, "input": 2, "readout": 2, "total": 13,
                             "stored_on_cores": 11}
    # fan-in: rec rows 0:1 1:2 2:1 3:2 4:2 5:1, plus the input on 0 and 3 -> max 3 (neuron 3)
    assert r["fan_in"]["max_recurrent"] == 2 and r["fan_in"]["max"] == 3
    # fan-out: rec 0:2 1:2 2:1 3:1 4:2 5:1, plus the readout of 2 and 5 -> max 2
    assert r["fan_out"]["max_recurrent"] == 2 and r["fan_out"]["max"] == 2


def test_given_partition_by_hand():
    g = small_graph()
    part = Partition(np.array([0, 0, 1, 0, 0, 1]), 2, "given")
    # crossing: 1->2 and 5->4 only
    assert crossing_edges(g, part.core) == 2
    loads = core_loads(g, part)
    assert loads.crossing_edges == 2 and loads.crossing_fraction == pytest.approx(2 / 9)
    assert loads.neurons.tolist() == [4, 2]
    assert loads.synapses.tolist() == [9, 2]        # core 0: 7 recurrent + 2 input
    assert loads.in_axons.tolist() == [6, 2]        # sources {0,1,3,4,5} + input channel; {1,2}
    assert loads.out_axons.tolist() == [5, 2]       # neuron 1 targets both cores
    assert loads.fan_out_cores.tolist() == [1, 2, 1, 1, 1, 1]
    # spikes of 1 (-> 2 on core 1) and 5 (-> 4 on core 0) leave their core
    assert loads.remote_cores.tolist() == [0, 1, 0, 0, 0, 1]
    # Loihi-style memory: 8-bit weight + 6 index bits (min) = 14 bits; every axon holds
    # <= 2 synapses -> 2*14 + 10 header <= 64 -> one 64-bit word per axon.
    mem = {"bits_per_core": {"value": 10_000, "source": "s", "status": "verified"},
           "block_synapses": {"value": 64, "source": "s", "status": "verified"},
           "block_header_bits": {"value": 10, "source": "s", "status": "verified"},
           "word_bits": {"value": 64, "source": "s", "status": "verified"},
           "min_index_bits": {"value": 6, "source": "s", "status": "verified"}}
    loads = core_loads(g, part, target(synapse_memory=mem))
    assert loads.memory_bits.tolist() == [6 * 64, 2 * 64]
    # 2 cores per chip: both cores on one chip, nothing leaves the chip
    assert loads.remote_chips.tolist() == [0] * 6
    assert loads.fan_out_chips.tolist() == [1] * 6


def test_cores_needed_by_hand():
    g = small_graph()
    # 3 neurons per core -> 2 cores by neurons; 5 stored synapses per core -> ceil(11/5) = 3
    fit = fit_tiling(g, target(synapses_per_core=5))
    assert fit.lower_bounds == {"neurons_per_core": 2, "synapses_per_core": 3}
    assert fit.partition.n_cores == 3 and fit.binding == "synapses_per_core"
    # the tiles are {0,1}, {3,4}, {2,5}: stored synapses 3+1, 4+1, 2
    assert sorted(fit.loads.synapses.tolist()) == [2, 4, 5]
    r = budget_report(g, target(synapses_per_core=5))
    assert r["cores"]["needed"] == 3 and r["cores"]["chips"] == 2
    assert r["cores"]["binding"] == "synapses"
    # an in-axon limit of 3 forces more tiles: tiles {0,1} draw on 0,1,4 + input = 4 sources
    fit = fit_tiling(g, target(max_in_axons_per_core=3))
    assert fit.binding == "max_in_axons_per_core"
    assert fit.loads.in_axons.max() <= 3 and fit.partition.n_cores > 2


def test_no_partition_possible_is_a_verdict():
    # neuron 3 draws on 2 recurrent sources + 1 input: 3 axons, more than 2 allowed
    r = budget_report(small_graph(), target(max_in_axons_per_core=2))
    assert not r["verdict"]["fits"] and r["cores"] is None
    assert "input axons" in r["verdict"]["first_broken"]


def test_synaptic_ops_by_hand():
    g = small_graph()
    spikes = SpikeCounts.from_array([1, 2, 0, 3, 1, 4], 6, "hand")
    ops = synaptic_ops(g, spikes)
    # recurrent fan-out 2,2,1,1,2,1 -> 2+4+0+3+2+4 = 15; readout reads 2 and 5 -> 0 + 4
    assert ops == {"spikes": 11.0, "recurrent": 15.0, "readout": 4.0, "total": 19.0}
    r = budget_report(g, target(energy_per_synop_pj={"value": 10.0, "source": "s",
                                                     "status": "unverified"}), spikes=spikes)
    assert r["activity"]["energy_per_trial_uj"] == pytest.approx(19 * 10e-6)
    # [trials, N] counts are averaged per trial
    two = SpikeCounts.from_array([[2, 4, 0, 6, 2, 8], [0, 0, 0, 0, 0, 0]], 6)
    assert synaptic_ops(g, two)["total"] == 19.0 and two.trials == 2
    with pytest.raises(NeurosheetError, match="5 neurons"):
        SpikeCounts.from_array([1, 2, 3, 4, 5], 6)


def test_activity_and_accuracy_are_never_estimated():
    r = budget_report(small_circuit(), target())
    assert r["activity"]["status"] == "not simulated"
    assert r["quantization"]["accuracy"]["status"] == "not evaluated"
    assert r["quantization"]["accuracy"]["quantized"] is None


def test_accuracy_fn_is_called_on_float_and_quantized_circuits():
    seen = []

    def acc(c: Circuit) -> float:
        seen.append(c)
        return 0.9 if len(seen) == 1 else 0.8

    c = small_circuit()
    r = budget_report(c, target(), accuracy_fn=acc)
    a = r["quantization"]["accuracy"]
    assert a == {"status": "evaluated", "float": 0.9, "quantized": 0.8,
                 "delta": pytest.approx(-0.1), "metric": ""}
    assert seen[0] is c and np.array_equal(seen[1].graph.adjacency.indices,
                                           c.graph.adjacency.indices)
    # a comparison evaluates each precision once
    seen.clear()
    compare_targets(c, [target(), target()], accuracy_fn=acc)
    assert len(seen) == 2


def test_quantization_symmetric_per_matrix():
    w = np.array([-1.0, -0.5, 0.0, 0.26, 1.0])
    wq, s = quantize_array(w, 3)  # qmax 3, scale 1/3
    assert s["qmax"] == 3 and s["scale"] == pytest.approx(1 / 3)
    assert np.allclose(wq, [-1, -2 / 3, 0, 1 / 3, 1])
    wq, _ = quantize_array(w, 2, sign_extra=True)  # qmax 3 too
    assert np.allclose(wq, [-1, -2 / 3, 0, 1 / 3, 1])
    c = small_circuit()
    q, stats = quantize_circuit(c, 4)
    for name in ("w_rec", "w_in", "w_out"):
        levels = np.unique(np.rint(getattr(q, name) / stats["matrices"][name]["scale"]))
        assert np.abs(levels).max() <= 7
    assert np.array_equal(q.b_rec, c.b_rec) and q.graph is c.graph


def test_tiling_beats_random_on_lm_rnn():
    g = attach_projections(build_graph(make_sheet(576, "grid"), "radius", radius=2.5), 8, 4)
    tiles = tile_partition(g, 9)
    assert tiles.sizes().tolist() == [64] * 9
    rand = random_partition(tiles, np.random.default_rng(0))
    assert rand.sizes().tolist() == [64] * 9
    tile_frac = crossing_edges(g, tiles.core) / g.synapses
    rand_frac = crossing_edges(g, rand.core) / g.synapses
    print(f"crossing-edge fraction: sheet tiling {tile_frac:.3f}, random {rand_frac:.3f}")
    assert tile_frac < 0.5 * rand_frac
    r = budget_report(g, load_target("dynapse2"))  # 256 neurons per core -> 3 cores
    p = r["partitions"]
    assert r["cores"]["needed"] == 3 and "probe" not in p
    # on Loihi the whole sheet fits one core: a 4-tile probe still measures locality
    r = budget_report(g, load_target("loihi"))
    probe = r["partitions"]["probe"]
    assert r["cores"]["needed"] == 1 and probe["cores"] == 4
    assert probe["tiling_crossing_fraction"] < 0.5 * probe["random_crossing_fraction"]
    assert p["tiling"]["crossing_fraction"] < p["random"]["crossing_fraction"]


def test_layer_structured_target_gives_verdict():
    r = budget_report(small_circuit(), load_target("akida"))
    assert r["verdict"]["fits"] is False
    assert "layer-structured" in r["verdict"]["text"] and r["cores"] is None


def test_first_limit_broken_is_named():
    g = attach_projections(build_graph(make_sheet(400, "grid"), "radius", radius=5), 40, 2)
    r = budget_report(g, load_target("dynapse2"))
    assert r["verdict"]["first_broken"] == "max fan-in per neuron"
    assert f"{r['fan_in']['max']} > 64" in r["verdict"]["text"]
    r = budget_report(g, load_target("xylo"))
    assert r["verdict"]["first_broken"] == "input channels"


def test_reports_written(tmp_path):
    c = small_circuit()
    spikes = SpikeCounts.from_array(np.ones(6), 6)
    reports = compare_targets(c, [load_target("loihi"), load_target("speck")], spikes=spikes)
    files = write_budget(reports[0], tmp_path)
    assert files["markdown"].read_text().startswith("# Synapse budget: Intel Loihi")
    assert json.loads(files["json"].read_text())["verdict"]["fits"] is True
    assert files["chart"].stat().st_size > 1000
    files = write_comparison(reports, tmp_path)
    text = files["markdown"].read_text()
    assert "| loihi | fits |" in text and "| speck | does not fit" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_budget(tmp_path, capsys):
    save_run_circuit(tmp_path / "run", small_circuit())
    np.save(tmp_path / "spk.npy", np.ones((3, 6)))
    rc = main(["budget", str(tmp_path / "run"), "--targets", "loihi", "--json",
               "--spikes", str(tmp_path / "spk.npy"), "--out", str(tmp_path / "rep")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"]["fits"] and out["activity"]["synops_per_trial"]["total"] == 11.0
    assert (tmp_path / "rep" / "budget-loihi.md").is_file()
    assert main(["budget", str(tmp_path / "run"), "--targets", "truenorh"]) == 2
    assert "did you mean: truenorth" in capsys.readouterr().err
    assert main(["budget", str(tmp_path / "run"), "--targets", "all"]) == 0
    assert "| xylo |" in capsys.readouterr().out


def _task_circuit(seed: int, w_in: tuple[float, float], bias: float) -> Circuit:
    """A 36-neuron circuit with random weights (input weights ~ N(mean, sd) = ``w_in``) whose
    rule inputs are the tasks go and anti."""
    from neurosheet.graph.circuit import RateParams
    from neurosheet.tasks import N_OBS, N_OUT

    tasks = ("go", "anti")
    g = attach_projections(build_graph(make_sheet(36), "radius", radius=1.5),
                           N_OBS + len(tasks), N_OUT)
    rng = np.random.default_rng(seed)
    return Circuit(g, rng.normal(0, 0.2, g.synapses), rng.normal(*w_in, g.inputs.synapses),
                   np.full(g.n, bias), rng.normal(0, 0.2, g.readout.synapses), np.zeros(N_OUT),
                   RateParams(tau_ms=200.0, substeps=2), tasks)


def test_cli_evaluate_quantized_accuracy(tmp_path, capsys):
    c = _task_circuit(seed=1, w_in=(0.0, 0.2), bias=0.0)
    g = c.graph
    save_run_circuit(tmp_path / "run", c)
    rc = main(["budget", str(tmp_path / "run"), "--targets", "dynapse2", "--json", "--evaluate",
               "--trials", "4"])
    assert rc == 0
    acc = json.loads(capsys.readouterr().out)["quantization"]["accuracy"]
    assert acc["status"] == "evaluated" and "trial_success" in acc["metric"]
    assert 0.0 <= acc["float"] <= 1.0 and 0.0 <= acc["quantized"] <= 1.0
    assert acc["delta"] == pytest.approx(acc["quantized"] - acc["float"])
    # a bare graph has no weights to evaluate: one-line error
    g.save(tmp_path / "g.npz")
    assert main(["budget", str(tmp_path / "g.npz"), "--targets", "loihi", "--evaluate"]) == 2
    assert "needs a run directory" in capsys.readouterr().err


def test_cli_simulate_counts_spikes(tmp_path, capsys):
    c = _task_circuit(seed=2, w_in=(0.1, 0.3), bias=0.2)
    save_run_circuit(tmp_path / "run", c)
    rc = main(["budget", str(tmp_path / "run"), "--targets", "loihi", "--json",
               "--backend", "snntorch", "--spike-trials", "3", "--substeps", "5",
               "--gate", "off", "--calibration-trials", "4"])
    assert rc == 0
    act = json.loads(capsys.readouterr().out)["activity"]
    assert act["status"] == "from spike counts" and act["trials"] == 3
    assert act["source"].startswith("snntorch, 3 held-out trials")
    assert act["spikes_per_trial"] > 0
    assert act["synops_per_trial"]["total"] == pytest.approx(
        act["synops_per_trial"]["recurrent"] + act["synops_per_trial"]["readout"])
    assert main(["budget", str(tmp_path / "run"), "--targets", "loihi", "--backend", "snntorch",
                 "--spikes", "x.npy"]) == 2
    assert "not both" in capsys.readouterr().err
