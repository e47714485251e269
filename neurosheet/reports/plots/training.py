"""Figures of training: learning curves of one run, accuracy vs step across a sweep."""

from __future__ import annotations

from typing import Any

import numpy as np


def learning_curves_figure(records: list[dict[str, Any]], metric: str = "step_accuracy") -> Any:
    """Training loss (left) and held-out accuracy per task and mean (right) against step."""
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train and not evals:
        raise ValueError("no metrics to plot")
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.8))
    if train:
        ax_l.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
    ax_l.set(xlabel="training step", ylabel="loss (masked cross-entropy)", yscale="log",
             title="training loss")
    if evals:
        steps = [r["step"] for r in evals]
        for name in evals[-1]["per_task"]:
            ax_a.plot(steps, [r["per_task"].get(name, {}).get(metric, np.nan) for r in evals],
                      lw=0.7, alpha=0.5)
        ax_a.plot(steps, [r["mean"][metric] for r in evals], "k-", lw=2, label="mean over tasks")
        ax_a.legend(loc="lower right", fontsize=8)
    ax_a.set(xlabel="training step", ylabel=metric.replace("_", " "), ylim=(0, 1.02),
             title="held-out accuracy (thin: tasks)")
    fig.tight_layout()
    return fig


def sweep_figure(curves: list[dict[str, Any]], metric: str = "step_accuracy") -> Any:
    """Mean held-out accuracy vs step: one colour per density, one line style per preset.

    ``curves`` items: ``{"preset", "density", "seed", "steps": [...], "acc": [...]}``.
    Thin lines are single seeds, thick lines their mean.
    """
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("no sweep results to plot")
    presets = sorted({c["preset"] for c in curves})
    densities = sorted({c["density"] for c in curves})
    cmap = plt.get_cmap("viridis")
    colour = {d: cmap(0.9 * i / max(1, len(densities) - 1)) for i, d in enumerate(densities)}
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, preset in enumerate(presets):
        for d in densities:
            group = [c for c in curves if c["preset"] == preset and c["density"] == d]
            if not group:
                continue
            style = styles[k % len(styles)]
            for c in group:
                ax.plot(c["steps"], c["acc"], style, color=colour[d], lw=0.6, alpha=0.35)
            n = min(len(c["steps"]) for c in group)
            mean = np.mean([c["acc"][:n] for c in group], axis=0)
            ax.plot(group[0]["steps"][:n], mean, style, color=colour[d], lw=2,
                    label=f"{preset} {d:.1%} (n={len(group)})")
    ax.set(xlabel="training step", ylabel=f"held-out {metric.replace('_', ' ')} (mean over tasks)",
           ylim=(0, 1.02), title="accuracy vs training step per density")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
