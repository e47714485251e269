"""Shared fixtures: small seeded sheets and graphs that keep the suite fast."""

from __future__ import annotations

import pytest

from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph


@pytest.fixture
def grid64():
    return make_sheet(64, "grid")


@pytest.fixture
def lm_graph():
    """An 8x8 LM-RNN radius graph with 35 inputs and 17 readouts."""
    g = build_graph(make_sheet(64, "grid"), "radius", radius=1.5)
    return attach_projections(g, 35, 17)
