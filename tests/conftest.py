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
def no_compiled_kernels(monkeypatch):
    """Both compiled kernels (rate and spiking) switched off as if no compiler existed
    (``NEUROSHEET_FUSED=0``), restored and reloaded afterwards."""
    from neurosheet.rate import fused as rate_fused
    from neurosheet.spiking import fused as spiking_fused

    monkeypatch.setenv("NEUROSHEET_FUSED", "0")
    for mod in (rate_fused, spiking_fused):
        mod._library.cache_clear()
    yield
    monkeypatch.undo()
    for mod in (rate_fused, spiking_fused):
        mod._library.cache_clear()
    assert rate_fused.available() and spiking_fused.available()


@pytest.fixture
def grid64():
    return make_sheet(64, "grid")


@pytest.fixture
def lm_graph():
    """An 8x8 LM-RNN radius graph with 35 inputs and 17 readouts."""
    g = build_graph(make_sheet(64, "grid"), "radius", radius=1.5)
    return attach_projections(g, 35, 17)
