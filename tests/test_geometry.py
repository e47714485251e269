"""Sheet distances, written once (neurosheet.core.geometry): minimum image and norms."""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.geometry import displacement, distance, norm, pairwise_distances
from neurosheet.graph.sheet import make_sheet
from neurosheet.rate.bimt.cost import pair_distances


def test_minimum_image_on_a_torus_and_not_on_a_flat_sheet():
    a, b = np.array([[0.5, 0.5]]), np.array([[9.5, 4.0]])
    assert displacement(a, b).tolist() == [[-9.0, -3.5]]
    assert displacement(a, b, (10.0, 10.0)).tolist() == [[1.0, -3.5]]
    assert distance(a, b, "manhattan", (10.0, 10.0))[0] == pytest.approx(4.5)
    assert distance(a, b, "euclidean", (10.0, 10.0))[0] == pytest.approx(np.hypot(1.0, 3.5))
    # every component ends within half a period, whatever the input's offset
    rng = np.random.default_rng(0)
    d = displacement(rng.uniform(-30, 30, (200, 2)), rng.uniform(-30, 30, (200, 2)), (4.0, 6.0))
    assert (np.abs(d) <= np.array([2.0, 3.0]) + 1e-12).all()


def test_norms_and_unknown_metric():
    d = np.array([[3.0, -4.0], [0.0, 0.0]])
    assert norm(d, "euclidean").tolist() == [5.0, 0.0]
    assert norm(d, "manhattan").tolist() == [7.0, 0.0]
    with pytest.raises(NeurosheetError, match="chebyshev"):
        norm(d, "chebyshev")
    with pytest.raises(NeurosheetError, match="unknown distance metric"):
        pairwise_distances(d, d, "l3")


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_sheet_pairwise_and_bimt_distances_agree(periodic, metric):
    s = make_sheet(30, "random", periodic=periodic, seed=4)
    pre, post = np.meshgrid(np.arange(s.n), np.arange(s.n), indexing="ij")
    paired = s.distance(pre.ravel(), post.ravel(), metric).reshape(s.n, s.n)
    dense = pairwise_distances(s.positions, s.positions, metric, s.period)
    np.testing.assert_array_equal(dense, paired)
    np.testing.assert_array_equal(dense, dense.T)
    np.testing.assert_array_equal(pair_distances(s, s.positions, s.positions, metric, False), dense)
    scale = max(s.width, s.height)
    np.testing.assert_allclose(pair_distances(s, s.positions, s.positions, metric), dense / scale,
                               rtol=1e-12, atol=1e-15)
    assert (s.period is not None) == periodic
