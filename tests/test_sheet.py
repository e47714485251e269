"""Sheet placement: layouts, geometry, periodic distances, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheet import Sheet, grid_shape, make_sheet


def test_grid_is_a_square_lattice_at_cell_centres():
    s = make_sheet(16, "grid")
    assert (s.width, s.height) == (4.0, 4.0)
    assert s.positions[0].tolist() == [0.5, 0.5]
    assert s.positions[5].tolist() == [1.5, 1.5]
    assert s.seed is None


@pytest.mark.parametrize("n", [1, 2, 7, 10, 100, 1000])
def test_grid_shape_holds_n(n):
    rows, cols = grid_shape(n)
    assert rows * cols >= n and rows * cols - n < cols and 0 <= cols - rows <= 1
    s = make_sheet(n, "grid")
    assert s.n == n
    assert (s.positions >= 0).all() and (s.positions[:, 0] < s.width).all()


@pytest.mark.parametrize("layout", ["jittered", "random"])
def test_random_layouts_are_reproducible_from_seed(layout):
    a = make_sheet(200, layout, seed=3)
    b = make_sheet(200, layout, seed=3)
    c = make_sheet(200, layout, seed=4)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    assert (a.positions[:, 0] >= 0).all() and (a.positions[:, 0] <= a.width).all()


def test_jitter_stays_within_its_cell_fraction():
    g, j = make_sheet(100, "grid"), make_sheet(100, "jittered", jitter=0.3, seed=1)
    assert np.abs(j.positions - g.positions).max() <= 0.15 + 1e-12


def test_periodic_distance_uses_minimum_image():
    s = make_sheet(100, "grid", periodic=True)  # 10 x 10 torus
    # neuron 0 at (0.5, 0.5) and neuron 9 at (9.5, 0.5) are neighbours across the seam
    assert s.distance(np.array([0]), np.array([9]))[0] == pytest.approx(1.0)
    flat = make_sheet(100, "grid", periodic=False)
    assert flat.distance(np.array([0]), np.array([9]))[0] == pytest.approx(9.0)
    assert s.distance(np.array([0]), np.array([99]), "manhattan")[0] == pytest.approx(2.0)


def test_periodic_positions_are_wrapped_into_the_box():
    s = Sheet(np.array([[-0.5, 10.5], [3.0, 3.0]]), 10.0, 10.0, periodic=True)
    assert s.positions.tolist() == [[9.5, 0.5], [3.0, 3.0]]


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "positive integer"),
    ({"n": -3}, "positive integer"),
    ({"n": 10, "layout": "hexagonal"}, "unknown layout"),
    ({"n": 10, "spacing": 0}, "spacing"),
    ({"n": 10, "layout": "jittered", "jitter": 2.0}, "jitter"),
])
def test_bad_sheet_arguments_raise_one_line(kwargs, message):
    with pytest.raises(NeurosheetError, match=message) as exc:
        make_sheet(**kwargs)
    assert "\n" not in str(exc.value)


def test_positions_are_read_only():
    s = make_sheet(9)
    with pytest.raises(ValueError):
        s.positions[0, 0] = 3.0
