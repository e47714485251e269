"""One interface for every spiking backend: a SpikingCircuit and task inputs in, spike counts out.

A backend simulates the discrete-time map documented in :mod:`neurosheet.spiking.model` for a
batch of trials and returns :class:`SpikeResult`: spike counts per task step, the readout
logits (decoded by ``SpikingCircuit.decode`` from readout-weighted counts, the same function
for every backend), optional full rasters of the first trials, and wall-clock times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurosheet.spiking.model import SpikingCircuit


@dataclass
class SpikeResult:
    """Output of a spiking run.

    ``counts [T, B, N]`` spikes per neuron per task step; ``logits [T, B, n_out]`` the decoded
    readout; ``rasters[b] = (sim_step, neuron)`` for each recorded trial; ``build_s`` is the time
    spent building/compiling (0 for snntorch) and ``run_s`` the simulation time.
    """

    backend: str
    counts: np.ndarray
    logits: np.ndarray
    sim_dt_ms: float
    substeps: int
    rasters: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    build_s: float = 0.0
    run_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def total_spikes(self) -> int:
        return int(self.counts.sum())

    @property
    def biological_s(self) -> float:
        """Simulated time per trial in seconds."""
        return self.counts.shape[0] * self.substeps * self.sim_dt_ms / 1000.0

    def per_neuron_counts(self) -> np.ndarray:
        """Total spikes per (trial, neuron), ``[B, N]``."""
        return self.counts.sum(0)

    def mean_rate_hz(self) -> float:
        _, b, n = self.counts.shape
        return float(self.total_spikes / (b * n * self.biological_s)) if self.biological_s else 0.0

    def synaptic_events(self, fan_out: np.ndarray) -> int:
        """Recurrent synaptic events: each spike of neuron j reaches its fan_out[j] targets."""
        return int((self.counts.sum((0, 1)).astype(np.int64) * np.asarray(fan_out)).sum())

    def summary(self, fan_out: np.ndarray | None = None) -> dict[str, Any]:
        t, b, _ = self.counts.shape
        out = {
            "backend": self.backend,
            "trials": b,
            "task_steps": t,
            "sim_dt_ms": self.sim_dt_ms,
            "biological_s_per_trial": self.biological_s,
            "spikes": self.total_spikes,
            "mean_rate_hz": self.mean_rate_hz(),
            "build_s": self.build_s,
            "run_s": self.run_s,
            **self.info,
        }
        if fan_out is not None:
            out["synaptic_events"] = self.synaptic_events(fan_out)
        return out


class SpikingBackend(ABC):
    """Simulates a :class:`SpikingCircuit` on a batch of trials."""

    name: str = "base"

    @classmethod
    def from_run(cls, run: Any, **options: Any) -> SpikingBackend:
        """An instance set up for a run directory (e.g. its build cache); default: no files."""
        return cls(**options)

    @abstractmethod
    def run(self, spiking: SpikingCircuit, inputs: np.ndarray, *, record: int = 0,
            progress: bool = False) -> SpikeResult:
        """Simulate ``inputs [T, B, n_in]``; keep full rasters of the first ``record`` trials."""


def counts_from_spikes(steps: np.ndarray, trials: np.ndarray, neurons: np.ndarray,
                       shape: tuple[int, int, int], substeps: int,
                       weights: np.ndarray | None = None) -> np.ndarray:
    """Spike counts per task step ``[T, B, N]`` from per-spike simulation-step indices; with
    ``weights [K]`` each spike at sub-step j counts ``weights[j]`` (the readout's weighting)."""
    steps = np.asarray(steps)
    idx = (steps // substeps, trials, neurons)
    if weights is None:
        counts = np.zeros(shape, dtype=np.int32)
        np.add.at(counts, idx, 1)
        return counts
    out = np.zeros(shape, dtype=np.float64)
    np.add.at(out, idx, np.asarray(weights, dtype=np.float64)[steps % substeps])
    return out
