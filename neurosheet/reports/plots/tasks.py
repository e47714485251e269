"""Pictures of Mod-Cog trials: the 33 input channels over time above the target class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from neurosheet.tasks.registry import DT_MS, N_OBS, N_RING


def trial_figure(inputs: np.ndarray, targets: np.ndarray, periods: Sequence[tuple[str, int]],
                 title: str = "") -> Any:
    """One trial: inputs [T, >=33] as a heatmap (fixation, ring 1, ring 2), target classes
    [T] below; ``periods`` = (name, steps) in order, drawn as labelled boundaries."""
    obs = np.asarray(inputs)[:, :N_OBS]
    t_len = obs.shape[0]
    fig, (ax_in, ax_out) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained",
                                        gridspec_kw={"height_ratios": [3, 1.3]})
    lim = max(1.0, float(np.abs(obs).max()))
    im = ax_in.imshow(obs.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                      interpolation="nearest", extent=(-0.5, t_len - 0.5, -0.5, N_OBS - 0.5))
    ax_in.axhline(0.5, color="k", lw=0.6)
    ax_in.axhline(N_RING + 0.5, color="k", lw=0.6)
    ax_in.set_yticks([0, N_RING // 2 + 0.5, N_RING + N_RING // 2 + 0.5],
                     ["fixation", "ring 1", "ring 2"])
    fig.colorbar(im, ax=[ax_in, ax_out], fraction=0.03, pad=0.01, label="input")
    ax_out.step(np.arange(t_len), targets, where="mid", color="tab:red")
    ax_out.set_ylim(-0.7, N_RING + 0.7)
    ax_out.set_yticks([0, 4, 8, 12, 16], ["fix", "4", "8", "12", "16"])
    ax_out.set_ylabel("target class")
    ax_out.set_xlabel(f"time step ({DT_MS} ms)")
    start = 0
    for name, steps in periods:
        if steps <= 0:
            continue
        for ax in (ax_in, ax_out):
            ax.axvline(start - 0.5, color="0.3", lw=0.6, ls=":")
        ax_out.text(start + steps / 2 - 0.5, N_RING + 0.2, name, ha="center", va="bottom",
                    fontsize=7)
        start += steps
    ax_in.set_title(title)
    return fig
