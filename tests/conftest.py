"""Shared fixtures: small seeded sheets and graphs that keep the suite fast."""

from __future__ import annotations

import os
import tempfile

import pytest

from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph

# Compiled simulator code goes to one cache for the whole test session (subprocesses inherit
# it), never to the user's own ~/.cache/neurosheet.
os.environ.setdefault("NEUROSHEET_CACHE", tempfile.mkdtemp(prefix="neurosheet-test-cache-"))


@pytest.fixture
def grid64():
    return make_sheet(64, "grid")


@pytest.fixture
def lm_graph():
    """An 8x8 LM-RNN radius graph with 35 inputs and 17 readouts."""
    g = build_graph(make_sheet(64, "grid"), "radius", radius=1.5)
    return attach_projections(g, 35, 17)
