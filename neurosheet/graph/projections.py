"""Input and readout projections: where task inputs enter the sheet and where the readout reads.

By default every input unit reaches every neuron and every readout unit reads every neuron
(all-to-all, as in the LM-RNN paper, whose masks are recurrent only). A *region* restricts a
projection to part of the sheet, e.g. ``left:0.25`` (the leftmost quarter) for inputs and
``right:0.25`` for the readout, as on a chip where I/O enters at one edge.

External units get positions on the sheet border (inputs on the left edge, readouts on the
right edge, spread evenly), which wiring-length costs such as BIMT use.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheet import Sheet
from neurosheet.graph.sheetgraph import Projection, SheetGraph

REGIONS = ("all", "left", "right", "top", "bottom", "center")


def region_members(sheet: Sheet, region: str) -> np.ndarray:
    """Indices of the neurons in ``region`` (``all`` or ``<side>[:fraction]``, fraction in (0, 1])."""
    name, _, frac_text = region.partition(":")
    if name not in REGIONS:
        raise NeurosheetError(f"unknown sheet region {region!r}; use one of {', '.join(REGIONS)}")
    if name == "all":
        return np.arange(sheet.n)
    try:
        frac = float(frac_text) if frac_text else 0.25
    except ValueError:
        raise NeurosheetError(f"region fraction must be a number, got {frac_text!r}") from None
    if not 0.0 < frac <= 1.0:
        raise NeurosheetError(f"region fraction must be in (0, 1], got {frac}")
    x, y = sheet.positions[:, 0] / sheet.width, sheet.positions[:, 1] / sheet.height
    if name == "left":
        sel = x < frac
    elif name == "right":
        sel = x >= 1.0 - frac
    elif name == "bottom":
        sel = y < frac
    elif name == "top":
        sel = y >= 1.0 - frac
    else:  # centre square covering `frac` of each side
        sel = (np.abs(x - 0.5) <= frac / 2) & (np.abs(y - 0.5) <= frac / 2)
    members = np.flatnonzero(sel)
    if members.size == 0:
        raise NeurosheetError(f"sheet region {region!r} contains no neuron")
    return members


def _border_positions(sheet: Sheet, count: int, side: str) -> np.ndarray:
    y = (np.arange(count) + 0.5) / max(count, 1) * sheet.height
    x = np.full(count, 0.0 if side == "left" else sheet.width)
    return np.stack([x, y], axis=1)


def input_projection(sheet: Sheet, n_inputs: int, region: str = "all") -> Projection:
    """``[N, n_inputs]`` projection: every input unit reaches every neuron of ``region``."""
    if n_inputs <= 0:
        raise NeurosheetError(f"number of inputs must be positive, got {n_inputs}")
    members = region_members(sheet, region)
    rows = np.repeat(members, n_inputs)
    cols = np.tile(np.arange(n_inputs), members.size)
    mask = sp.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(sheet.n, n_inputs))
    return Projection(mask, _border_positions(sheet, n_inputs, "left"), region)


def readout_projection(sheet: Sheet, n_outputs: int, region: str = "all",
                       only: np.ndarray | None = None) -> Projection:
    """``[n_outputs, N]`` projection: every output unit reads every neuron of ``region``
    (restricted to the boolean selection ``only`` when given, e.g. the excitatory neurons)."""
    if n_outputs <= 0:
        raise NeurosheetError(f"number of outputs must be positive, got {n_outputs}")
    members = region_members(sheet, region)
    if only is not None:
        members = members[np.asarray(only, dtype=bool)[members]]
        if members.size == 0:
            raise NeurosheetError(f"no selected neuron in readout region {region!r}",
                                  "readout_region")
    rows = np.repeat(np.arange(n_outputs), members.size)
    cols = np.tile(members, n_outputs)
    mask = sp.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(n_outputs, sheet.n))
    return Projection(mask, _border_positions(sheet, n_outputs, "right"), region)


def attach_projections(graph: SheetGraph, n_inputs: int, n_outputs: int,
                       input_region: str = "all", readout_region: str = "all",
                       excitatory_readout: bool = False) -> SheetGraph:
    """The graph with input and readout projections attached (the readout from the excitatory
    neurons only when ``excitatory_readout``, which needs E/I types)."""
    only = None
    if excitatory_readout:
        if graph.types is None:
            raise NeurosheetError("an excitatory-only readout needs E/I neuron types "
                                  "(inhibitory > 0)", "excitatory_readout")
        only = graph.types > 0
    return graph.with_projections(
        input_projection(graph.sheet, n_inputs, input_region),
        readout_projection(graph.sheet, n_outputs, readout_region, only),
    )
