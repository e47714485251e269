"""Figures of a spiking run: the raster of one trial and the decoded output over time."""

from __future__ import annotations

from typing import Any

import numpy as np


def spike_figure(steps: np.ndarray, neurons: np.ndarray, n: int, sim_dt_ms: float,
                 substeps: int, logits: np.ndarray, *, rate_logits: np.ndarray | None = None,
                 targets: np.ndarray | None = None, title: str = "") -> Any:
    """Raster (spike time x neuron index, sheet order) over the softmax of the decoded readout.

    ``logits [T, n_out]`` are the spiking readout per task step; ``rate_logits`` (the rate
    network's) and ``targets [T]`` are overlaid as the argmax/target class per task step.
    """
    import matplotlib.pyplot as plt

    t_steps, n_out = logits.shape
    task_ms = sim_dt_ms * substeps
    fig, (ax_r, ax_p, ax_o) = plt.subplots(
        3, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1, 2]})
    keep = np.asarray(steps) < t_steps * substeps  # the raster may run past the trial's end
    steps, neurons = np.asarray(steps)[keep], np.asarray(neurons)[keep]
    times = steps * sim_dt_ms
    ax_r.scatter(times, neurons, s=0.5, c="k", marker="|", linewidths=0.5)
    ax_r.set_ylim(-0.5, n - 0.5)
    ax_r.set_ylabel("neuron")
    ax_r.set_title(title or "spike raster")

    per_step = np.bincount(np.asarray(steps) // substeps, minlength=t_steps)[:t_steps]
    rate_hz = per_step / (n * task_ms / 1000.0)
    edges = np.arange(t_steps + 1) * task_ms
    ax_p.stairs(rate_hz, edges, color="tab:blue")
    ax_p.set_ylabel("mean rate (Hz)")

    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ax_o.imshow(prob.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                extent=(0, t_steps * task_ms, -0.5, n_out - 0.5), vmin=0, vmax=1)
    centers = (np.arange(t_steps) + 0.5) * task_ms
    if targets is not None:
        ax_o.plot(centers, targets, "o", mfc="white", mec="k", ms=5, label="target")
    if rate_logits is not None:
        ax_o.plot(centers, rate_logits.argmax(-1), "rx", ms=5, label="rate network")
    ax_o.plot(centers, logits.argmax(-1), "c+", ms=6, label="spiking network")
    ax_o.set_ylabel("output class")
    ax_o.yaxis.get_major_locator().set_params(integer=True)
    ax_o.set_xlabel("time (ms)")
    ax_o.set_xlim(0, t_steps * task_ms)
    ax_o.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7, ncol=3)
    fig.tight_layout()
    return fig
