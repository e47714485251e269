"""Seeded stand-in circuits and inputs (for tests, benchmarks and trying the backends untrained)."""

from __future__ import annotations

from typing import Any

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


def balanced_circuit(n: int, *, density: float | None = None, radius: float | None = None,
                     n_inputs: int = 4, n_outputs: int = 3, inhibitory: float = 0.2,
                     weight: float = 0.4, bias: tuple[float, float] = (0.8, 1.2),
                     task_dt_ms: float = 20.0, substeps: int = 20, seed: int = 0) -> Any:
    """A spiking circuit firing at a realistic 10-30 Hz without training (benchmarks, tests).

    Balanced E/I on a radius sheet: a random ``inhibitory`` fraction of neurons inhibits, every
    out-edge of an excitatory neuron weighs ``weight / sqrt(mean fan-in)`` and of an inhibitory
    one ``-(1 - inhibitory) / inhibitory`` times that (zero mean input at equal rates); each
    neuron's constant input current is uniform in ``bias`` (threshold 1: 0.9 is just below it,
    1.3 fires at ~35 Hz alone), so the recurrent input only adds fluctuations. CubaLIF with
    tau_syn 10 ms, tau_mem 20 ms, reset to zero; ``task_dt_ms / substeps`` = 1 ms.
    """
    from neurosheet.spiking.model import NeuronModel, SpikingCircuit

    graph = build_graph(make_sheet(n), "radius", density=density, radius=radius)
    graph = attach_projections(graph, n_inputs, n_outputs)
    rng = np.random.default_rng(seed)
    _, pre = graph.edges()
    inh = rng.random(n) < inhibitory
    w_e = weight / np.sqrt(max(graph.synapses / n, 1.0))
    w_rec = np.where(inh[pre], -w_e * (1.0 - inhibitory) / inhibitory, w_e).astype(np.float32)
    w_in = 0.05 * rng.random(graph.inputs.synapses)  # type: ignore[union-attr]
    w_out = rng.standard_normal(graph.readout.synapses) / np.sqrt(n)  # type: ignore[union-attr]
    return SpikingCircuit(
        graph, w_rec, w_in.astype(np.float32), rng.uniform(*bias, n).astype(np.float32),
        w_out.astype(np.float32), np.zeros(n_outputs, np.float32),
        NeuronModel(tau_syn_ms=10.0, tau_mem_ms=20.0, readout="count"), task_dt_ms, substeps,
        meta={"demo": "balanced", "inhibitory": inhibitory, "weight": weight, "seed": seed})
