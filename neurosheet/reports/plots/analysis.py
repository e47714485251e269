"""Pictures of modularity: the sheet colored by functional cluster, and the sorted task-variance map."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from neurosheet.graph.circuit import Circuit
from neurosheet.rate.analysis import FunctionalClusters


def plot_cluster_sheet(circuit: Circuit, clusters: FunctionalClusters, ax: Any = None,
                       report: dict[str, Any] | None = None) -> Any:
    """Neurons at their sheet positions, colored by functional cluster (inactive units grey)."""
    ax = ax or plt.gca()
    sheet = circuit.graph.sheet
    labels = clusters.unit_labels(circuit.n)
    size = max(4.0, 6000.0 / circuit.n)
    inactive = labels < 0
    ax.scatter(*sheet.positions[inactive].T, s=size, c="0.85", lw=0, label="inactive")
    cmap = plt.get_cmap("tab20" if clusters.k > 10 else "tab10")
    for c in range(clusters.k):
        sel = labels == c
        ax.scatter(*sheet.positions[sel].T, s=size, color=cmap(c % cmap.N), lw=0,
                   label=f"{c} ({int(sel.sum())})")
    ax.set_xlim(0, sheet.width)
    ax.set_ylim(0, sheet.height)
    ax.set_aspect("equal")
    title = f"functional clusters on the sheet (k = {clusters.k})"
    if report and "anatomical" in report:
        an = report["anatomical"]
        title += (f"\nQ = {an['newman_q']:.3f}, compactness z = {an['spatial']['pooled']['z']:.1f}, "
                  f"within = {an['within_fraction']:.2f}")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, title="cluster (units)")
    return ax


def plot_task_variance(clusters: FunctionalClusters, ax: Any = None, max_tasks_labelled: int = 40) -> Any:
    """Normalized task variance, units sorted by cluster (rows) against tasks (columns)."""
    ax = ax or plt.gca()
    order = np.argsort(clusters.labels, kind="stable")
    im = ax.imshow(clusters.normalized[order], aspect="auto", cmap="hot", interpolation="nearest",
                   vmin=0, vmax=max(float(clusters.normalized.max()), 1e-12))
    bounds = np.flatnonzero(np.diff(clusters.labels[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="cyan", lw=0.6)
    n_tasks = len(clusters.tasks)
    if n_tasks <= max_tasks_labelled:
        ax.set_xticks(range(n_tasks))
        ax.set_xticklabels(clusters.tasks, rotation=90, fontsize=6)
    ax.set_xlabel("task")
    ax.set_ylabel("active units (sorted by cluster)")
    ax.set_title("normalized task variance", fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.04)
    return ax


def analysis_figure(circuit: Circuit, clusters: FunctionalClusters,
                    report: dict[str, Any] | None = None) -> Any:
    """The two panels side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.1, 1]})
    plot_cluster_sheet(circuit, clusters, axes[0], report)
    plot_task_variance(clusters, axes[1])
    fig.tight_layout()
    return fig
