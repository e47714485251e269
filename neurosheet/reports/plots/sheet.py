"""Pictures of the sheet: neuron positions with one neuron's wiring, fan-in and length histograms."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from neurosheet.graph.sheetgraph import SheetGraph


def plot_sheet(graph: SheetGraph, neuron: int | None = None, ax: Any = None) -> Any:
    """Neuron positions; the inputs (blue) and outputs (red) of ``neuron`` drawn as lines."""
    ax = ax or plt.gca()
    sheet = graph.sheet
    if neuron is None:
        neuron = int(np.argmin(np.hypot(sheet.positions[:, 0] - sheet.width / 2,
                                        sheet.positions[:, 1] - sheet.height / 2)))
    size = max(1.0, 3000.0 / sheet.n)
    if graph.types is None:
        ax.scatter(sheet.positions[:, 0], sheet.positions[:, 1], s=size, c="0.75", lw=0)
    else:  # E/I sheet: excitatory and inhibitory neurons in their own colours
        for sel, colour, label in ((graph.types > 0, "tab:orange", "excitatory"),
                                   (graph.types < 0, "tab:green", "inhibitory")):
            ax.scatter(sheet.positions[sel, 0], sheet.positions[sel, 1], s=size * 1.5,
                       c=colour, alpha=0.55, lw=0, label=f"{label} ({int(sel.sum())})")
    adj = graph.adjacency
    pre = adj.indices[adj.indptr[neuron]:adj.indptr[neuron + 1]]
    post = np.flatnonzero(adj[:, [neuron]].toarray().ravel())
    centre = sheet.positions[neuron]
    pre, post = pre[pre != neuron], post[post != neuron]
    if np.array_equal(np.sort(pre), np.sort(post)):  # symmetric wiring: one set of partners
        groups = [(pre, "tab:purple", "pre- and postsynaptic", 2.0)]
    else:
        groups = [(pre, "tab:blue", "presynaptic", 3.0), (post, "tab:red", "postsynaptic", 1.5)]
    for idx, colour, label, scale in groups:
        if idx.size == 0:
            continue
        # Draw minimum-image segments on a torus so wrapped edges stay short.
        ends = centre + sheet.displacement(np.full(idx.size, neuron), idx)
        ax.add_collection(LineCollection(np.stack([np.tile(centre, (idx.size, 1)), ends], 1),
                                         colors=colour, linewidths=0.6, alpha=0.5))
        ax.scatter(sheet.positions[idx, 0], sheet.positions[idx, 1], s=size * scale, c=colour,
                   lw=0, label=f"{label} ({idx.size})")
    ax.scatter(*centre, s=40, c="k", marker="*", label=f"neuron {neuron}", zorder=3)
    ax.set_xlim(0, sheet.width)
    ax.set_ylim(0, sheet.height)
    ax.set_aspect("equal")
    ax.set_title(f"{graph.meta.get('rule', 'graph')}: N={graph.n}, "
                 f"density {graph.density:.2%}" + (" (torus)" if sheet.periodic else ""))
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    return ax


def plot_fan_in(graph: SheetGraph, ax: Any = None) -> Any:
    """Histogram of presynaptic partners per neuron."""
    ax = ax or plt.gca()
    fan_in = graph.fan_in
    bins = np.arange(fan_in.min(), fan_in.max() + 2) - 0.5 if np.ptp(fan_in) < 60 else 40
    ax.hist(fan_in, bins=bins, color="tab:blue")
    ax.set_xlabel("fan-in (synapses per neuron)")
    ax.set_ylabel("neurons")
    ax.set_title(f"fan-in: mean {fan_in.mean():.1f}, max {fan_in.max()}")
    return ax


def plot_lengths(graph: SheetGraph, ax: Any = None) -> Any:
    """Histogram of recurrent connection lengths on the sheet (autapses excluded)."""
    ax = ax or plt.gca()
    post, pre = graph.edges()
    lengths = graph.edge_lengths()[post != pre]
    ax.hist(lengths, bins=40, color="tab:green")
    ax.set_xlabel("connection length (sheet units)")
    ax.set_ylabel("synapses")
    mean = lengths.mean() if lengths.size else 0.0
    ax.set_title(f"length (autapses excluded): mean {mean:.2f}, total {lengths.sum():.4g}")
    return ax


def sheet_figure(graph: SheetGraph, neuron: int | None = None) -> Any:
    """The three sheet panels side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    plot_sheet(graph, neuron, axes[0])
    plot_fan_in(graph, axes[1])
    plot_lengths(graph, axes[2])
    fig.tight_layout()
    return fig
