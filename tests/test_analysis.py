"""Yang-2019 task-variance clustering and anatomical modularity metrics."""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.analysis import (
    FunctionalClusters,
    analyze_circuit,
    anatomical_modularity,
    functional_clusters,
    newman_q,
    normalize_task_variance,
    silhouette_score,
    spatial_compactness,
    structure_metrics,
    task_variance,
    within_fraction,
)


def test_silhouette_matches_hand_computation():
    x = np.array([[0.0], [1.0], [4.0], [5.0]])
    # point 0: a = 1, b = (4 + 5)/2 -> 7/9; point 1: a = 1, b = (3 + 4)/2 -> 5/7; mirror for 2, 3
    assert silhouette_score(x, np.array([0, 0, 1, 1])) == pytest.approx((7 / 9 + 5 / 7) / 2)
    # a singleton cluster scores 0; point 0: a=1, b=10 -> 0.9; point 1: a=1, b=9 -> 8/9
    x = np.array([[0.0], [1.0], [10.0]])
    assert silhouette_score(x, np.array([3, 3, 7])) == pytest.approx((0.9 + 8 / 9) / 3)
    with pytest.raises(NeurosheetError):
        silhouette_score(x, np.zeros(3, int))


def test_newman_q_two_triangles_hand_count():
    a = np.zeros((6, 6))
    for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]:
        a[i, j] = a[j, i] = 1
    # m = 7; each triangle: 3 internal edges, degree sum 7 -> Q = 2 (3/7 - (7/14)^2) = 5/14
    assert newman_q(a, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(5 / 14)
    assert newman_q(a, np.zeros(6)) == pytest.approx(0.0)
    # weights count: two disconnected equal blocks give 1/2
    b = np.kron(np.eye(2), np.ones((3, 3)) - np.eye(3)) * 2.5
    assert newman_q(b, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(0.5)
    assert within_fraction(b + np.eye(6), np.array([0, 0, 0, 1, 1, 1])) == 1.0


def test_task_variance_by_hand_and_masks():
    t, b = 4, 2
    ra = np.zeros((t, b, 3))
    ra[:, 0, 0], ra[:, 1, 0] = 0.0, 2.0     # unit 0 varies in task a: var 1 at every step
    rb = np.zeros((t, b, 3))
    rb[:, 1, 1] = np.array([0.0, 0.0, 4.0, 4.0])  # unit 1 in task b: var 0,0,4,4 -> mean 2
    tv, names = task_variance({"a": ra, "b": rb})
    assert names == ["a", "b"]
    np.testing.assert_allclose(tv, [[1, 0], [0, 2], [0, 0]])
    tv, _ = task_variance({"a": ra, "b": rb}, {"b": np.array([0, 0, 1, 1], bool)})
    assert tv[1, 1] == pytest.approx(4.0)
    x, active = normalize_task_variance(tv, "max")
    np.testing.assert_array_equal(active, [0, 1])
    np.testing.assert_allclose(x, [[1, 0], [0, 1]])
    with pytest.raises(NeurosheetError, match="T, B, N"):
        task_variance({"a": np.zeros((3, 3))})


def planted_rates(seed: int = 0):
    """12 units in 3 groups; group g varies in tasks (2g, 2g+1) only; 2 silent units."""
    rng = np.random.default_rng(seed)
    n, tasks = 14, 6
    rates = {}
    for task in range(tasks):
        r = np.zeros((10, 16, n))
        for g in range(3):
            units = np.arange(4 * g, 4 * g + 4)
            amp = 1.0 if task in (2 * g, 2 * g + 1) else 0.02
            r[..., units] = amp * rng.normal(size=(10, 16, 4))
        rates[f"task{task}"] = r
    return rates


def test_functional_clusters_recover_planted_groups():
    fc = functional_clusters(planted_rates(), k_max=6, seed=0, n_init=4)
    assert fc.k == 3
    np.testing.assert_array_equal(fc.active, np.arange(12))
    np.testing.assert_array_equal(fc.labels, np.repeat([0, 1, 2], 4))  # ordered by preferred task
    assert max(fc.silhouette, key=fc.silhouette.get) == 3
    pref = fc.summary()["preferred_task"]
    assert all(pref[g] in (f"task{2 * g}", f"task{2 * g + 1}") for g in range(3))
    again = functional_clusters(planted_rates(), k_max=6, seed=0, n_init=4)
    assert again.silhouette == fc.silhouette  # seeded


def test_spatial_compactness_detects_blocks():
    sheet = make_sheet(64)
    pos = sheet.positions
    d = np.hypot(*(pos[:, None] - pos[None]).transpose(2, 0, 1))
    halves = (pos[:, 0] > sheet.width / 2).astype(int)
    res = spatial_compactness(d, halves, n_perm=100, seed=1)
    assert res["pooled"]["ratio"] < 0.8 and res["pooled"]["z"] > 5
    shuffled = np.random.default_rng(5).permutation(halves)
    res = spatial_compactness(d, shuffled, n_perm=100, seed=1)
    assert abs(res["pooled"]["z"]) < 3


def block_circuit() -> tuple[Circuit, FunctionalClusters]:
    """16 units: left and right halves of a 4x4 sheet, wired only within each half."""
    g = attach_projections(build_graph(make_sheet(16), "full"), 2, 2)
    post, pre = g.edges()
    left = g.sheet.positions[:, 0] < 2
    w_rec = np.where(left[post] == left[pre], 1.0, 0.0).astype(np.float32)
    w_rec[post == pre] = 3.0
    c = Circuit(g, w_rec, np.ones(g.inputs.synapses, np.float32), np.zeros(16, np.float32),
                np.ones(g.readout.synapses, np.float32), np.zeros(2, np.float32))
    labels = (~left).astype(int)
    fc = FunctionalClusters(["a", "b"], np.ones((16, 2)), np.arange(16), np.ones((16, 2)),
                            labels, 2, {2: 1.0})
    return c, fc


def test_anatomical_modularity_of_block_circuit():
    c, fc = block_circuit()
    res = anatomical_modularity(c, fc, n_perm=50)
    assert res["within_fraction"] == 1.0
    assert res["newman_q"] == pytest.approx(0.5)
    assert res["spatial"]["pooled"]["z"] > 2
    report = analyze_circuit(c, fc, n_perm=20)
    assert set(report) == {"structure", "functional", "anatomical"}


def test_structure_metrics_by_hand():
    c, _ = block_circuit()
    s = structure_metrics(c, "manhattan")
    w = c.rec_matrix().toarray()
    pos = c.graph.sheet.positions
    d = np.abs(pos[:, None] - pos[None]).sum(-1)
    assert s["rec"]["wiring_length"] == pytest.approx((np.abs(w) * d).sum())
    assert s["rec"]["nonzero"] == int((w != 0).sum())
    assert s["diagonal_fraction"] == pytest.approx(3 * 16 / np.abs(w).sum())
    assert s["connected_units"] == 16
    # inputs sit on the left border (x = 0): each input pays the neuron's Manhattan distance to it
    ip = c.graph.inputs.positions
    want = sum(np.abs(pos[i] - ip[j]).sum() for i in range(16) for j in range(2))
    assert s["inp"]["wiring_length"] == pytest.approx(want)


def test_analysis_figure_is_written(tmp_path):
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.analysis import analysis_figure

    c, fc = block_circuit()
    path = save_figure(analysis_figure(c, fc, analyze_circuit(c, fc, n_perm=10)), tmp_path / "a.png")
    assert path.stat().st_size > 1000


def test_cli_analyze_with_rates_file(tmp_path, capsys):
    import json

    from neurosheet.cli import main
    from neurosheet.core.io import write_npz
    from neurosheet.graph.circuit import save_run_circuit

    c, _ = block_circuit()
    save_run_circuit(tmp_path / "run", c)
    rng = np.random.default_rng(0)
    left = c.graph.sheet.positions[:, 0] < 2
    arrays = {}
    for task, group in (("a", left), ("b", ~left)):
        r = 0.01 * rng.normal(size=(5, 8, 16))
        r[..., group] += rng.normal(size=(5, 8, int(group.sum())))
        arrays[f"rates/{task}"] = r
    arrays["mask/a"] = np.ones((5, 8), bool)
    write_npz(tmp_path / "rates.npz", **arrays)
    code = main(["analyze", str(tmp_path / "run"), "--rates", str(tmp_path / "rates.npz"),
                 "--json", "--plot", str(tmp_path / "fig.png"), "--perm", "20", "--k-max", "4"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["functional"]["k"] == 2
    assert report["anatomical"]["within_fraction"] == 1.0
    assert (tmp_path / "fig.png").stat().st_size > 1000
    assert main(["analyze", str(tmp_path / "run"), "--structure-only"]) == 0
    assert "autapse share" in capsys.readouterr().out


def test_cli_analyze_errors_are_one_line(tmp_path, capsys):
    from neurosheet.cli import main

    assert main(["analyze", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run directory not found" in err


def test_task_rates_run_the_circuits_tasks():
    from neurosheet.rate.analysis import task_rates
    from neurosheet.rate.model import RateRNN
    from neurosheet.tasks.registry import N_OBS

    g = attach_projections(build_graph(make_sheet(16), "full"), N_OBS + 2, 17)
    circuit = RateRNN(g, seed=1).to_circuit(tasks=("go", "anti"))
    rates, masks = task_rates(circuit, batch=6, seed=0)
    assert list(rates) == ["go", "anti"]
    assert rates["go"].shape[1:] == (6, 16) and masks["go"].shape == rates["go"].shape[:2]
    assert not masks["go"][0].any()  # the initial fixation step is left out
    fc = functional_clusters(rates, masks, k_max=4, active_threshold=0.0)
    assert fc.variance.shape == (16, 2)
    with pytest.raises(NeurosheetError, match="inputs"):
        task_rates(RateRNN(attach_projections(build_graph(make_sheet(16), "full"), 3, 17))
                   .to_circuit(tasks=("go",)))
