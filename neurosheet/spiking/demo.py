"""Seeded stand-in circuits and inputs (for tests, benchmarks and trying the backends untrained)."""

from __future__ import annotations

import numpy as np

from neurosheet.graph.circuit import Circuit, RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.model import RateRNN


def random_circuit(n: int = 64, *, density: float = 0.1, n_inputs: int = 4, n_outputs: int = 3,
                   gain: float = 0.8, params: RateParams | None = None, seed: int = 0) -> Circuit:
    """A ReLU rate circuit on an LM-RNN radius graph with fan-in-scaled Gaussian weights.

    ``gain < 1`` keeps the dynamics contractive, so the rate model is well behaved at any
    sub-step count (as a trained model should be); the input weights are made positive so
    positive inputs drive the sheet.
    """
    graph = build_graph(make_sheet(n), "radius", density=density)
    graph = attach_projections(graph, n_inputs, n_outputs)
    params = params or RateParams("relu", tau_ms=100.0, dt_ms=20.0, substeps=4)
    circuit = RateRNN(graph, params, gain=gain, seed=seed).to_circuit(meta={"demo": True})
    return circuit.with_weights(w_in=np.abs(circuit.w_in), b_rec=np.full(n, 0.1, np.float32))


def random_inputs(steps: int, trials: int, n_inputs: int, *, seed: int = 0) -> np.ndarray:
    """Positive task-like inputs ``[T, B, n_in]``: a per-trial random level per channel, plus noise."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.0, 1.0, size=(1, trials, n_inputs))
    noise = 0.1 * rng.standard_normal((steps, trials, n_inputs))
    return np.clip(level + noise, 0.0, None).astype(np.float32)
