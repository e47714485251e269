"""Pruning a trained circuit into a sparse graph (a run directory like any other)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.graph.circuit import Circuit, load_run_circuit, save_run_circuit
from neurosheet.graph.sheetgraph import Projection, SheetGraph, canonical_csr


def _prune_mask(values: np.ndarray, threshold: float, relative: bool) -> tuple[np.ndarray, float]:
    a = np.abs(values)
    cut = threshold * float(a.max(initial=0.0)) if relative else threshold
    return a > cut, cut


def prune_circuit(circuit: Circuit, threshold: float, relative: bool = False) -> Circuit:
    """Drop every weight with ``|w| <= threshold`` (or ``<= threshold * max|W|`` per matrix).

    Returns a circuit on a new sparse graph holding exactly the surviving recurrent, input and
    readout synapses (biases kept); the graph's meta records the source rule and the cut.
    """
    if not threshold >= 0 or (relative and threshold > 1):
        raise NeurosheetError(f"prune threshold must be >= 0 (<= 1 when relative), got {threshold}")
    g = circuit.graph
    keep_rec, cut_rec = _prune_mask(circuit.w_rec, threshold, relative)
    keep_in, cut_in = _prune_mask(circuit.w_in, threshold, relative)
    keep_out, cut_out = _prune_mask(circuit.w_out, threshold, relative)

    def sub(mask: sp.csr_array, keep: np.ndarray) -> sp.csr_array:
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))[keep]
        cols = mask.indices[keep]
        coo = sp.coo_array((np.ones(rows.size, bool), (rows, cols)), shape=mask.shape)
        return canonical_csr(coo.tocsr(), mask.shape)

    info = {"threshold": threshold, "relative": relative,
            "cut": {"rec": cut_rec, "inp": cut_in, "out": cut_out},
            "before": {"rec": g.synapses, "inp": int(keep_in.size), "out": int(keep_out.size)},
            "after": {"rec": int(keep_rec.sum()), "inp": int(keep_in.sum()),
                      "out": int(keep_out.sum())}}
    inputs = Projection(sub(g.inputs.mask, keep_in), g.inputs.positions,  # type: ignore[union-attr]
                        g.inputs.region)  # type: ignore[union-attr]
    readout = Projection(sub(g.readout.mask, keep_out), g.readout.positions,  # type: ignore[union-attr]
                         g.readout.region)  # type: ignore[union-attr]
    meta = {"rule": "pruned", "source_rule": g.meta.get("rule"),
            "prune_threshold": threshold, "prune_relative": relative}
    graph = SheetGraph(g.sheet, sub(g.adjacency, keep_rec), inputs, readout, meta)
    # CSR order of a subset of canonical edges is the subset in the same order.
    return Circuit(graph, circuit.w_rec[keep_rec], circuit.w_in[keep_in], circuit.b_rec,
                   circuit.w_out[keep_out], circuit.b_out, circuit.params, circuit.tasks,
                   {**circuit.meta, "prune": info})


def prune_run(src: str | Path, dst: str | Path, threshold: float,
              relative: bool = False) -> Circuit:
    """Prune the circuit of run directory ``src`` into run directory ``dst`` (+ ``prune.json``)."""
    pruned = prune_circuit(load_run_circuit(src), threshold, relative)
    save_run_circuit(dst, pruned)
    write_json(Path(dst) / "prune.json", {"source": str(src), **pruned.meta["prune"]})
    return pruned
