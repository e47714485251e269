"""Rate circuit -> spiking circuit of CubaLIF neurons on exactly the same sparse graph.

The rate model's unit ``x_i`` (``x <- (1-a) x + a (W_rec relu(x) + W_in u + b)``) becomes the
synaptic current of a current-based LIF neuron (:mod:`neurosheet.spiking.model`), scaled by a
per-neuron factor ``c_i`` (or one global factor); its rate ``relu(x_i)`` becomes the firing
rate ``rho_i = kappa c_i relu(x_i)`` spikes per ms, with ``kappa = (1 - beta) r / (threshold
dt)`` the integrate-and-fire slope of the membrane (exact for ``tau_mem`` much longer than an
inter-spike interval; shorter ``tau_mem`` bends the rate curve near threshold). Then::

    tau_syn = -task_dt / ln(1 - dt/tau)                 # the rate model's leak per task step
    W_ij    = c_i W_rate_ij (1 - alpha) / (dt kappa c_j) # a spike train at rho_j carries x_j
    J_i     = c_i (W_in u + b)_i  [+ threshold / (2 r) with ``offset``: the LIF rate offset]
    W_out   = W_out_rate / (kappa c_j)                   # readout of the spike trace z_j ~ rho_j
    c_j     = rate_hz / 1000 / (kappa r_p,j)             # r_p: a high percentile of the rates

``r_p`` is the ``percentile``-th percentile of the positive rates of the rate model (at K
sub-steps, steps inside each trial) on calibration trials: of all neurons (``calibration =
"global"``, Rueckauer et al. 2017) or of each neuron (``"neuron"``, floored at ``neuron_floor``
times the global value so a rarely active neuron does not get a huge gain). Every synapse of
the spiking circuit is an edge of the rate graph (same CSR order), so synapse counts and edge
sets are equal by construction. Fine-tuning (:mod:`neurosheet.spiking.finetune`) starts here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit, task_mode_of
from neurosheet.spiking.model import (
    READOUTS,
    RESETS,
    NeuronModel,
    SpikingCircuit,
    check_inputs,
    weights_fingerprint,
)

DTYPES = ("float32", "float64")
GATE_MODES = ("error", "warn", "off")
CALIBRATIONS = ("global", "neuron")


@dataclass(frozen=True)
class ConversionConfig:
    """Every knob of the conversion; the defaults are the measured recipe (docs/spiking.md).

    ``substeps`` (K): simulation steps per task step; ``rate_hz``: firing rate given to the
    calibration percentile; ``tau_mem_ms``, ``reset``, ``readout``, ``tau_out_ms``: the neuron
    model (:class:`~neurosheet.spiking.model.NeuronModel`); ``offset``: add the LIF rate offset
    ``threshold / (2 r)`` to every bias current; ``gate``: what a failed "rate model still works
    at K sub-steps" check does (``error``: refuse, ``warn``: record it, ``off``: skip it);
    ``finetuned``: a run's stages use its fine-tuned circuit when one was tuned from the same
    weights and neuron model (``False``: always the plain conversion).
    """

    substeps: int = 20
    rate_hz: float = 400.0
    percentile: float = 99.9
    calibration: str = "global"
    neuron_floor: float = 0.1
    tau_mem_ms: float = 20.0
    reset: str = "zero"
    readout: str = "count"
    tau_out_ms: float = 10.0
    offset: bool = True
    gate: str = "error"
    gate_min_agreement: float = 0.7
    dtype: str = "float32"
    finetuned: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.substeps, int | np.integer) or self.substeps < 1:
            raise NeurosheetError(f"substeps must be an integer >= 1, got {self.substeps}",
                                  "substeps")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise NeurosheetError(f"rate_hz must be a positive number, got {self.rate_hz}",
                                  "rate_hz")
        if not 0.0 < self.percentile <= 100.0:
            raise NeurosheetError(f"percentile must be in (0, 100], got {self.percentile}",
                                  "percentile")
        if self.calibration not in CALIBRATIONS:
            raise NeurosheetError(f"calibration must be one of {', '.join(CALIBRATIONS)}, "
                                  f"got {self.calibration!r}", "calibration")
        if not 0.0 < self.neuron_floor <= 1.0:
            raise NeurosheetError(f"neuron_floor must be in (0, 1], got {self.neuron_floor}")
        if self.reset not in RESETS:
            raise NeurosheetError(f"reset must be one of {', '.join(RESETS)}, got {self.reset!r}",
                                  "reset")
        if self.readout not in READOUTS:
            raise NeurosheetError(
                f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}", "readout")
        for name in ("tau_mem_ms", "tau_out_ms"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise NeurosheetError(f"{name} must be a positive number, got {v}", name)
        if self.gate not in GATE_MODES:
            raise NeurosheetError(f"gate must be one of {', '.join(GATE_MODES)}, got {self.gate!r}",
                                  "gate")
        if not 0.0 <= self.gate_min_agreement <= 1.0:
            raise NeurosheetError(
                f"gate_min_agreement must be in [0, 1], got {self.gate_min_agreement}"
            )
        if self.dtype not in DTYPES:
            raise NeurosheetError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def neuron(self, tau_syn_ms: float) -> NeuronModel:
        """The neuron model these knobs describe, with the rate model's ``tau_syn_ms``."""
        return NeuronModel(tau_syn_ms=tau_syn_ms, tau_mem_ms=self.tau_mem_ms, reset=self.reset,
                           readout=self.readout, tau_out_ms=self.tau_out_ms)

    def key(self) -> dict[str, Any]:
        """The knobs that change the converted circuit (not the gate's or the precision)."""
        d = asdict(self)
        for k in ("gate", "gate_min_agreement", "dtype", "finetuned"):
            d.pop(k)
        return d


@dataclass(frozen=True)
class GateReport:
    """Does the rate model integrated with K sub-steps still behave like the trained one?

    ``agreement``: fraction of (step, trial) pairs (decision steps when a mask is given) whose
    argmax output is the same at ``substeps`` as at the trained sub-step count;
    ``rel_error``: ||logits_K - logits_trained|| / ||logits_trained||.
    """

    trained_substeps: int
    substeps: int
    agreement: float
    rel_error: float
    min_agreement: float

    @property
    def passed(self) -> bool:
        return self.agreement >= self.min_agreement

    def message(self) -> str:
        return (
            f"rate model at {self.substeps} sub-steps agrees with its trained "
            f"{self.trained_substeps}-sub-step dynamics on {self.agreement:.1%} of decisions "
            f"(gate {self.min_agreement:.0%}, logit error {self.rel_error:.2f})"
        )


def rate_weights_fingerprint(circuit: Circuit) -> str:
    """Fingerprint of a rate circuit's weights and dynamics (keys a saved conversion)."""
    p = circuit.params
    dyn = np.array([p.tau_ms, p.dt_ms, p.substeps], dtype=np.float64)
    return weights_fingerprint(circuit.w_rec, circuit.w_in, circuit.b_rec, circuit.w_out,
                               circuit.b_out, dyn, np.frombuffer(p.activation.encode(), np.uint8))


def tau_syn_ms(circuit: Circuit) -> float:
    """The rate model's time constant in its sub-step limit: one task step decays by 1 - dt/tau."""
    p = circuit.params
    if p.alpha >= 1.0:
        raise NeurosheetError(
            f"dt_ms = tau_ms ({p.dt_ms}): the rate model has no memory across a task step, "
            "which a synaptic current cannot express; train with tau_ms > dt_ms")
    return -p.dt_ms / math.log(1.0 - p.alpha)


# --------------------------------------------------------------------------- helpers
def decisions(logits: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """One decision per trial: argmax of the logits summed over the masked steps (default: last).

    ``logits [T, B, n_out]``, ``mask [T, B]`` bool (e.g. a task batch's decision period).
    """
    y = np.asarray(logits, dtype=np.float64)
    if mask is None:
        return y[-1].argmax(-1)
    m = np.asarray(mask, dtype=bool)
    if m.shape != y.shape[:2]:
        raise NeurosheetError(f"mask shape {list(m.shape)} does not match logits {list(y.shape[:2])}")
    return (y * m[..., None]).sum(0).argmax(-1)


def rate_logits(circuit: Circuit, inputs: np.ndarray, substeps: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Logits and rates of the rate model (optionally at another sub-step count), float64 numpy."""
    import torch

    from neurosheet.rate.model import RateRNN

    u = check_inputs(inputs, circuit.n_inputs)
    model = RateRNN.from_circuit(circuit, substeps=substeps).eval()
    with torch.no_grad():
        out = model(torch.as_tensor(u, dtype=torch.float32))
    return out.logits.double().numpy(), out.rates.double().numpy()


def rate_gate(circuit: Circuit, inputs: np.ndarray, substeps: int, mask: np.ndarray | None = None,
              min_agreement: float = 0.7) -> GateReport:
    """Compare the rate model at ``substeps`` with itself at its trained sub-step count."""
    trained = circuit.params.substeps
    y_ref, _ = rate_logits(circuit, inputs)
    y_k = y_ref if substeps == trained else rate_logits(circuit, inputs, substeps)[0]
    sel = np.ones(y_ref.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if not np.isfinite(y_k).all():  # diverged at the finer step
        return GateReport(trained, substeps, 0.0, math.inf, min_agreement)
    same = y_ref.argmax(-1) == y_k.argmax(-1)
    agreement = float(same[sel].mean()) if sel.any() else 1.0
    denom = float(np.linalg.norm(y_ref)) or 1.0
    rel = float(np.linalg.norm(y_k - y_ref)) / denom
    return GateReport(trained, substeps, agreement, rel, min_agreement)


def convert(circuit: Circuit, calibration_inputs: np.ndarray,
            config: ConversionConfig | None = None, *, mask: np.ndarray | None = None,
            valid: np.ndarray | None = None) -> SpikingCircuit:
    """Calibrate the scales on task inputs, check the sub-step gate, return the spiking circuit.

    ``calibration_inputs [T, B, n_in]`` should be representative trials (e.g. a mix of the
    circuit's tasks); ``mask [T, B]`` restricts the gate to decision steps and ``valid [T, B]``
    the rate percentile to the steps inside each trial (padding after a short trial is input
    the network never saw in training, where its rates can run away).
    """
    config = config or ConversionConfig()
    act = circuit.params.activation
    notes: list[str] = []
    if act == "tanh":
        raise NeurosheetError(
            "tanh rate circuits have signed rates, which spiking neurons cannot carry; "
            "train with dynamics.activation = \"relu\" in the model preset"
        )
    if act != "relu":
        notes.append(f"LIF neurons fire at ~kappa*relu(I); the {act} rate function is "
                     "approximated")
    k = config.substeps
    neuron = config.neuron(tau_syn_ms(circuit))
    gate = None
    if config.gate != "off":
        gate = rate_gate(circuit, calibration_inputs, k, mask, config.gate_min_agreement)
        if not gate.passed:
            if config.gate == "error":
                raise NeurosheetError(
                    f"conversion gate failed: {gate.message()}; train with more sub-steps "
                    "or set gate = 'warn'", "gate"
                )
            notes.append(f"gate failed: {gate.message()}")

    _, rates = rate_logits(circuit, calibration_inputs, k)
    if valid is not None:
        rates = rates[np.asarray(valid, dtype=bool)]
    rates = rates.reshape(-1, circuit.n)
    if not np.isfinite(rates).all():
        raise NeurosheetError(f"the rate model diverges at {k} sub-steps; cannot calibrate")
    positive = rates[rates > 0]
    if positive.size == 0:
        raise NeurosheetError("the rate model is silent on the calibration inputs; "
                              "cannot calibrate")
    r_global = float(np.percentile(positive, config.percentile))
    r_p = np.full(circuit.n, r_global)
    if config.calibration == "neuron":
        for i in range(circuit.n):
            col = rates[:, i]
            col = col[col > 0]
            r_p[i] = np.percentile(col, config.percentile) if col.size else 0.0
        r_p = np.maximum(r_p, config.neuron_floor * r_global)
    c_step = neuron.constants(circuit.params.dt_ms / k)
    kappa = c_step.gain / (neuron.threshold * c_step.dt_ms)  # spikes per ms per unit current
    scale = (config.rate_hz / 1000.0) / (kappa * r_p)  # c_i
    post, pre = circuit.graph.edges()
    w_rec = (scale[post] * circuit.w_rec.astype(np.float64) * (1.0 - c_step.alpha)
             / (c_step.dt_ms * kappa * scale[pre]))
    in_post, _ = circuit.graph.inputs.edges()  # type: ignore[union-attr]
    w_in = scale[in_post] * circuit.w_in.astype(np.float64)
    b = scale * circuit.b_rec.astype(np.float64)
    if config.offset:
        b = b + neuron.threshold / (2.0 * neuron.r)
    _, out_pre = circuit.graph.readout.edges()  # type: ignore[union-attr]
    w_out = circuit.w_out.astype(np.float64) / (kappa * scale[out_pre])
    meta = {
        "source": "conversion",
        "conversion": asdict(config),
        "rate_weights": rate_weights_fingerprint(circuit),
        "graph_fingerprint": circuit.graph.fingerprint(),
        "task_mode": task_mode_of(circuit),
        "rate_percentile_global": r_global,
        # per-neuron calibration: each neuron's percentile (fine-tuning's teacher maps rates
        # with it); the global one is the scalar above
        "rate_percentiles": r_p.tolist() if config.calibration == "neuron" else None,
        "scale_min": float(scale.min()), "scale_max": float(scale.max()),
        "kappa_per_ms": kappa,
        "gate": None if gate is None else {**asdict(gate), "passed": gate.passed},
        "notes": notes,
    }
    from neurosheet.spiking.signs import check_dale

    sc = SpikingCircuit(circuit.graph, w_rec, w_in, b, w_out, circuit.b_out, neuron,
                        circuit.params.dt_ms, k, circuit.tasks, meta)
    check_dale(sc, where="conversion")  # E/I circuits: positive scales keep every sign
    return sc
