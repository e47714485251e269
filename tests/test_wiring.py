"""Wiring rules: exact counts on lattices, closest achievable density, seeds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph, radius_for_density


def _brute_force_density(sheet, r, self_conn=True):
    n = sheet.n
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = sheet.distance(i.ravel(), j.ravel()).reshape(n, n)
    m = d <= r
    if not self_conn:
        np.fill_diagonal(m, False)
    return m


@pytest.mark.parametrize("r, degree", [(1, 5), (2, 13), (3, 29), (4, 49), (5, 81)])
def test_torus_in_degree_is_lattice_points_within_r(r, degree):
    # Known counts of lattice points in a disc (the spec's table): independent of N on a torus.
    g = build_graph(make_sheet(1024, "grid", periodic=True), "radius", radius=r)
    assert (g.fan_in == degree).all() and (g.fan_out == degree).all()
    assert g.density == pytest.approx(degree / 1024)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("layout", ["grid", "random"])
def test_radius_graph_equals_brute_force(periodic, layout):
    sheet = make_sheet(150, layout, periodic=periodic, seed=2)
    g = build_graph(sheet, "radius", radius=2.3)
    dense = g.adjacency.toarray()
    np.testing.assert_array_equal(dense, _brute_force_density(sheet, 2.3))
    g2 = build_graph(sheet, "radius", radius=2.3, self_connections=False)
    assert g2.self_connections == 0 and g2.synapses == g.synapses - 150


@pytest.mark.parametrize("target", [0.02, 0.04, 0.1, 0.33])
@pytest.mark.parametrize("layout", ["grid", "jittered"])
def test_density_picks_the_closest_achievable_radius(target, layout):
    sheet = make_sheet(400, layout, seed=5)
    choice = radius_for_density(sheet, target)
    g = build_graph(sheet, "radius", density=target)
    assert g.density == pytest.approx(choice.density)
    assert g.synapses == choice.synapses
    # Every achievable density (one per distinct pair distance) is at least as far from target.
    n = sheet.n
    i, j = np.triu_indices(n, 1)
    d = np.unique(np.round(sheet.distance(i, j), 9))
    counts = n + 2 * np.searchsorted(np.sort(np.round(sheet.distance(i, j), 9)), d, side="right")
    achievable = np.concatenate([[n], counts]) / n**2
    assert abs(g.density - target) <= np.abs(achievable - target).min() + 1e-12


def test_unreachable_density_is_a_clear_error():
    with pytest.raises(NeurosheetError, match="unreachable") as exc:
        build_graph(make_sheet(16), "radius", density=0.01)
    assert "0.0625" in str(exc.value)


@pytest.mark.parametrize("rule", ["gaussian", "exponential"])
def test_kernel_rules_hit_target_density_and_are_local(rule):
    sheet = make_sheet(900, "grid")
    g = build_graph(sheet, rule, density=0.05, seed=1)
    assert g.density == pytest.approx(0.05, rel=0.1)
    rnd = build_graph(sheet, "random", density=g.density, seed=1)
    assert g.edge_lengths().mean() < 0.5 * rnd.edge_lengths().mean()
    long_ones = g.edge_lengths() > 6 * g.meta["scale"] * (2 if rule == "exponential" else 1)
    assert not long_ones.any()


@pytest.mark.parametrize("rule", ["gaussian", "exponential", "random"])
def test_random_rules_same_seed_same_edges(rule):
    sheet = make_sheet(300, "random", seed=0)
    a = build_graph(sheet, rule, density=0.05, seed=7)
    b = build_graph(sheet, rule, density=0.05, seed=7)
    c = build_graph(sheet, rule, density=0.05, seed=8)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_random_rule_has_exact_synapse_count_and_no_locality():
    sheet = make_sheet(400)
    g = build_graph(sheet, "random", density=0.05, seed=0)
    assert g.synapses == round(0.05 * 400**2)
    ng = build_graph(sheet, "random", density=0.05, self_connections=False, seed=0)
    assert ng.self_connections == 0 and ng.synapses == round(0.05 * 400**2)
    fixed = build_graph(sheet, "random", density=0.05, fixed_fan_in=True, seed=0)
    assert (fixed.fan_in == 20).all()


def test_full_and_autapse():
    sheet = make_sheet(30)
    full = build_graph(sheet, "full")
    assert full.synapses == 900 and full.density == 1.0
    assert build_graph(sheet, "full", self_connections=False).synapses == 870
    aut = build_graph(sheet, "autapse")
    assert aut.synapses == 30 and aut.self_connections == 30
    assert aut.edge_lengths().sum() == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"rule": "small-world"}, "unknown wiring rule"),
    ({"rule": "radius", "density": 0.0}, "density"),
    ({"rule": "radius", "density": 1.5}, "density"),
    ({"rule": "radius", "radius": -1.0}, "radius"),
    ({"rule": "radius"}, "exactly one"),
    ({"rule": "gaussian", "scale": -2.0}, "scale"),
    ({"rule": "random"}, "needs a density"),
])
def test_bad_wiring_arguments(kwargs, message):
    with pytest.raises(NeurosheetError, match=message):
        build_graph(make_sheet(25), **kwargs)


def test_radius_search_is_not_quadratic_in_memory():
    # 20k neurons at 0.1 %: the dense mask would be 400 MB of bools; the search stays O(E).
    import tracemalloc

    sheet = make_sheet(20_000, "grid")
    tracemalloc.start()
    g = build_graph(sheet, "radius", density=0.001)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert g.density == pytest.approx(0.001, rel=0.3)
    assert peak < 0.25 * 20_000**2  # far below the N^2 bytes of a dense bool mask
    assert math.isfinite(g.summary()["mean_length"])


def test_a_density_far_from_the_target_is_a_warning_not_silence(monkeypatch):
    """The kernel rules sample edges: a target they miss by far is reported, not swallowed."""
    import warnings

    from neurosheet.graph import wiring

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_graph(make_sheet(144), "radius", density=0.14)  # reachable: silent
    with pytest.warns(wiring.DensityWarning, match="asked for density"):
        wiring._warn_off_target("gaussian", 0.10, 0.05, 64)
