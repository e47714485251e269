"""Rate circuit -> spiking circuit on exactly the same sparse graph (rate coding, one scale g).

Recipe (``shared/spec/deploy-reference.md`` §1.4: Rueckauer et al. 2017 robust normalisation,
Kim et al. 2019 one-scale transfer). A task step of the rate model becomes ``K`` simulation
steps of length ``delta = dt / K``; per simulation step, for every trial and neuron::

    I <- beta I + (1 - beta) (W_rec s / g + W_in u_t + b)   # synaptic current ~ rate state x
    v <- v + g I;  s = [v > 1];  v <- clip(v - s, 0, 1)      # non-leaky IF soma, floor 0
    y_t = W_out (spike count in task step t) / (K g) + b_out # readout from spike counts

with ``beta = (1 - alpha)^(1/K)`` (one task step decays like the rate model's ``1 - dt/tau``) and
``g = rho_max / r_p`` spikes per simulation step per unit rate, ``r_p`` the ``percentile``-th
percentile of the positive rates on a calibration batch. The IF soma's firing rate is
``g relu(I)``, so ReLU rate models convert directly. The floor at 0 stops negative current from
building up a "debt"; the cap at 1 after a reset means at most one spike per step and at most one
spike's worth of carried charge (it also keeps snntorch's reset logic in its simple case).

Every synapse of the spiking network is an edge of the rate graph (same CSR order, weight
``w_rec / g``), so synapse counts and edge sets are equal by construction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit

DTYPES = ("float32", "float64")
GATE_MODES = ("error", "warn", "off")


@dataclass(frozen=True)
class ConversionConfig:
    """Every knob of the conversion; the defaults follow the measured recipe.

    ``substeps`` (K) and ``rho_max`` trade accuracy for speed: more simulation steps per task
    step and more spikes per step (higher rates) give a closer rate approximation and more
    synaptic events (measured on a 144-neuron Mod-Cog model: K = 100 with rho_max 0.5 kept 82%
    of the rate network's accuracy at 16 Hz, rho_max 1.0 kept 91% at 32 Hz; docs/spiking.md).
    ``gate`` decides what a failed "rate model still works at K sub-steps"
    check does (``error``: refuse to convert, ``warn``: record it, ``off``: skip the check).
    """

    substeps: int = 100
    rho_max: float = 1.0
    percentile: float = 99.9
    gate: str = "error"
    gate_min_agreement: float = 0.7
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.substeps, int | np.integer) or self.substeps < 1:
            raise NeurosheetError(f"substeps must be an integer >= 1, got {self.substeps}")
        if not 0.0 < self.rho_max <= 1.0:
            raise NeurosheetError(f"rho_max must be in (0, 1] spikes per step, got {self.rho_max}")
        if not 0.0 < self.percentile <= 100.0:
            raise NeurosheetError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.gate not in GATE_MODES:
            raise NeurosheetError(f"gate must be one of {', '.join(GATE_MODES)}, got {self.gate!r}")
        if not 0.0 <= self.gate_min_agreement <= 1.0:
            raise NeurosheetError(
                f"gate_min_agreement must be in [0, 1], got {self.gate_min_agreement}"
            )
        if self.dtype not in DTYPES:
            raise NeurosheetError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


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


@dataclass(frozen=True, eq=False)
class SpikingCircuit:
    """A rate :class:`Circuit` plus the constants that turn it into IF neurons on its edges."""

    circuit: Circuit
    config: ConversionConfig
    g: float
    beta: float
    rate_percentile: float
    gate: GateReport | None = None
    notes: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> Any:
        return self.circuit.graph

    @property
    def n(self) -> int:
        return self.circuit.n

    @property
    def substeps(self) -> int:
        return self.config.substeps

    @property
    def task_dt_ms(self) -> float:
        return self.circuit.params.dt_ms

    @property
    def sim_dt_ms(self) -> float:
        """Simulation step delta = task step / K, in ms."""
        return self.task_dt_ms / self.substeps

    @property
    def tau_syn_ms(self) -> float:
        """Synaptic time constant with exp(-delta / tau_syn) = beta (0 when beta = 0)."""
        return 0.0 if self.beta <= 0.0 else -self.sim_dt_ms / math.log(self.beta)

    @property
    def synapses(self) -> int:
        return self.circuit.graph.synapses

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(post, pre) of every spiking synapse: the rate graph's edges, CSR order."""
        return self.circuit.graph.edges()

    def spike_weights(self) -> np.ndarray:
        """Per-edge weight a spike adds to the synaptic input, ``w_rec / g`` (float64)."""
        return self.circuit.w_rec.astype(np.float64) / self.g

    def drive(self, inputs: np.ndarray) -> np.ndarray:
        """Input current ``W_in u_t + b`` per task step, ``[T, B, N]`` float64."""
        u = _check_inputs(inputs, self.circuit.n_inputs)
        w_in = self.circuit.in_matrix().astype(np.float64)
        t, b, n_in = u.shape
        cur = (w_in @ u.reshape(t * b, n_in).T).T.reshape(t, b, self.n)
        return cur + self.circuit.b_rec.astype(np.float64)

    def decode(self, counts: np.ndarray) -> np.ndarray:
        """Readout logits ``[T, B, n_out]`` from spike counts per task step ``[T, B, N]``."""
        rates = np.asarray(counts, dtype=np.float64) / (self.substeps * self.g)
        w_out = self.circuit.out_matrix().astype(np.float64)
        t, b, n = rates.shape
        y = (w_out @ rates.reshape(t * b, n).T).T.reshape(t, b, -1)
        return y + self.circuit.b_out.astype(np.float64)

    def summary(self) -> dict[str, Any]:
        """The conversion constants as plain JSON-able values."""
        return {
            "config": asdict(self.config),
            "g": self.g,
            "beta": self.beta,
            "rate_percentile": self.rate_percentile,
            "sim_dt_ms": self.sim_dt_ms,
            "tau_syn_ms": self.tau_syn_ms,
            "synapses": self.synapses,
            "gate": None if self.gate is None else {**asdict(self.gate), "passed": self.gate.passed},
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- helpers
def _check_inputs(inputs: Any, n_in: int) -> np.ndarray:
    u = np.asarray(inputs, dtype=np.float64)
    if u.ndim != 3 or u.shape[2] != n_in:
        raise NeurosheetError(f"inputs must have shape [T, B, {n_in}], got {list(u.shape)}")
    if not np.isfinite(u).all():
        raise NeurosheetError("inputs contain NaN or infinite values")
    return u


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

    u = _check_inputs(inputs, circuit.n_inputs)
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
    """Calibrate ``g`` on a batch of task inputs, check the sub-step gate, return the spiking circuit.

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
            "tanh rate circuits have signed rates, which IF neurons cannot carry; "
            "train with dynamics.activation = \"relu\" in the model preset"
        )
    if act != "relu":
        notes.append(f"IF neurons fire at g*relu(I); the {act} rate function is approximated")
    k = config.substeps
    alpha = circuit.params.alpha
    beta = 0.0 if alpha >= 1.0 else (1.0 - alpha) ** (1.0 / k)
    if beta == 0.0:
        notes.append("dt = tau: the synaptic current has no memory across simulation steps")

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
    if not np.isfinite(rates).all():
        raise NeurosheetError(f"the rate model diverges at {k} sub-steps; cannot calibrate g")
    positive = rates[rates > 0]
    if positive.size == 0:
        raise NeurosheetError("the rate model is silent on the calibration inputs; cannot scale g")
    r_p = float(np.percentile(positive, config.percentile))
    g = config.rho_max / r_p
    return SpikingCircuit(circuit, config, g, beta, r_p, gate, tuple(notes))
