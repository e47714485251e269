"""The spiking circuit: current-based LIF neurons (NIR ``CubaLIF``) on a sheet graph's edges.

Continuous-time model (times in ms; every neuron alike: ``v_leak = 0``, one threshold)::

    tau_syn dI/dt = -I + J(t) + tau_syn sum_j W_ij S_j(t)     J = W_in u(t) + b  (input current)
    tau_mem dv/dt = -v + r I
    v > threshold  ->  spike, v <- 0 (NIR's reset to v_reset = 0)  [or v <- v - threshold]
    readout  tau_out dz_j/dt = -z_j + S_j(t);   y = W_out z + b_out   ("li": an LI node)
             or z_j = spikes of neuron j in the task step / task step length    ("count")

``S_j`` is neuron j's spike train (a sum of Dirac deltas), so a spike of j raises ``I_i`` by
``W_ij`` at once; ``z`` is in spikes per ms. The input ``u(t)`` is held over each task step.
Simulated exactly for the linear parts at ``sim_dt = task_dt / K``: per step, with
``alpha = exp(-dt/tau_syn)``, ``beta = exp(-dt/tau_mem)``, ``alpha_out = exp(-dt/tau_out)``
and ``s`` the spikes of the previous step::

    I <- alpha I + W s + (1 - alpha) J_t
    v <- beta v + (1 - beta) r I;   s = [v > threshold];   v <- 0 where s (or v - threshold s)
    z <- alpha_out z + (1 - alpha_out) s / dt

and the readout of task step t is ``y_t = W_out z + b_out`` at the end of the step. Both
spiking backends run exactly this map. Weights live on the graph's edges (CSR order), so a
spiking circuit holds no synapse off the graph; :class:`SpikingCircuit` is what conversion and
fine-tuning produce and what ``simulate``, ``evaluate``, ``export`` and ``budget`` use.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import read_npz, write_npz
from neurosheet.core.rundir import fingerprint as weights_fingerprint
from neurosheet.graph.circuit import OnGraph, freeze_on_graph
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.spiking.inputs import check_inputs

__all__ = ["NeuronModel", "SpikingCircuit", "StepConstants", "check_inputs",
           "weights_fingerprint"]

RESETS = ("zero", "subtract")
READOUTS = ("li", "count")
FORMAT = "neurosheet.spiking_circuit"
VERSION = 1
WEIGHTS = ("w_rec", "w_in", "b", "w_out", "b_out")


@dataclass(frozen=True)
class NeuronModel:
    """Constants of the CubaLIF neurons and the readout (continuous time, ms)."""

    tau_syn_ms: float
    tau_mem_ms: float = 20.0
    r: float = 1.0
    threshold: float = 1.0
    reset: str = "zero"
    readout: str = "li"
    tau_out_ms: float = 50.0

    def __post_init__(self) -> None:
        for name in ("tau_syn_ms", "tau_mem_ms", "r", "threshold", "tau_out_ms"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise NeurosheetError(f"{name} must be a finite number > 0, got {value!r}")
        if self.reset not in RESETS:
            raise NeurosheetError(f"reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        if self.readout not in READOUTS:
            raise NeurosheetError(
                f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")

    def constants(self, sim_dt_ms: float) -> StepConstants:
        """The per-step factors of the discrete map at ``sim_dt_ms``."""
        if not sim_dt_ms > 0:
            raise NeurosheetError(f"sim_dt_ms must be > 0, got {sim_dt_ms}")
        alpha = math.exp(-sim_dt_ms / self.tau_syn_ms)
        beta = math.exp(-sim_dt_ms / self.tau_mem_ms)
        return StepConstants(sim_dt_ms, alpha, beta, (1.0 - beta) * self.r,
                             math.exp(-sim_dt_ms / self.tau_out_ms))


@dataclass(frozen=True)
class StepConstants:
    """``alpha``, ``beta``, the membrane gain ``(1 - beta) r`` and ``alpha_out`` at one step."""

    dt_ms: float
    alpha: float
    beta: float
    gain: float
    alpha_out: float


@dataclass(frozen=True, eq=False)
class SpikingCircuit(OnGraph):
    """CubaLIF neurons on ``graph``: weights on its edges plus the neuron model.

    ``w_rec [synapses]``: jump of the synaptic current per presynaptic spike (CSR order);
    ``w_in [input synapses]``, ``b [N]``: input current ``J = W_in u + b``; ``w_out``,
    ``b_out``: readout of the spike trace ``z`` (spikes per ms). ``substeps`` is K, the
    simulation steps per task step; ``meta`` records where the circuit came from.
    """

    graph: SheetGraph
    w_rec: np.ndarray
    w_in: np.ndarray
    b: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    neuron: NeuronModel
    task_dt_ms: float
    substeps: int
    tasks: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_on_graph(self, "spiking circuit", ("w_rec", "w_in", "b", "w_out", "b_out"))
        if not (isinstance(self.substeps, int | np.integer) and self.substeps >= 1):
            raise NeurosheetError(f"substeps must be an integer >= 1, got {self.substeps}")
        if not self.task_dt_ms > 0:
            raise NeurosheetError(f"task_dt_ms must be > 0, got {self.task_dt_ms}")
        object.__setattr__(self, "substeps", int(self.substeps))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    # ------------------------------------------------------------------ shapes and steps
    @property
    def synapses(self) -> int:
        return self.graph.synapses

    @property
    def sim_dt_ms(self) -> float:
        """Simulation step = task step / K, in ms."""
        return self.task_dt_ms / self.substeps

    def constants(self, substeps: int | None = None) -> StepConstants:
        """Per-step factors at K = ``substeps`` (default: the circuit's own)."""
        return self.neuron.constants(self.task_dt_ms / (substeps or self.substeps))

    def at_substeps(self, substeps: int) -> SpikingCircuit:
        """The same circuit simulated with another K (the continuous model is unchanged)."""
        return replace(self, substeps=substeps)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(post, pre) of every synapse: the rate graph's edges, CSR order."""
        return self.graph.edges()

    # ------------------------------------------------------------------ matrices
    def rec_matrix(self) -> sp.csr_array:
        a = self.graph.adjacency
        return sp.csr_array((self.w_rec.astype(np.float64), a.indices, a.indptr), shape=a.shape)

    def in_matrix(self) -> sp.csr_array:
        m = self.graph.inputs.mask  # type: ignore[union-attr]
        return sp.csr_array((self.w_in.astype(np.float64), m.indices, m.indptr), shape=m.shape)

    def out_matrix(self) -> sp.csr_array:
        m = self.graph.readout.mask  # type: ignore[union-attr]
        return sp.csr_array((self.w_out.astype(np.float64), m.indices, m.indptr), shape=m.shape)

    def drive(self, inputs: np.ndarray) -> np.ndarray:
        """Input current ``J = W_in u_t + b`` per task step, ``[T, B, N]`` float64."""
        u = check_inputs(inputs, self.n_inputs)
        t, b, n_in = u.shape
        cur = (self.in_matrix() @ u.reshape(t * b, n_in).T).T.reshape(t, b, self.n)
        return cur + self.b.astype(np.float64)

    def readout_weights(self, substeps: int | None = None) -> np.ndarray:
        """Weight of a spike at sub-step j of a task step in the end-of-step trace, ``[K]``.

        ``li``: ``(1 - alpha_out) / dt * alpha_out^(K-1-j)``; ``count``: ``1 / task_dt``.
        """
        k = substeps or self.substeps
        if self.neuron.readout == "count":
            return np.full(k, 1.0 / self.task_dt_ms)
        c = self.constants(k)
        return (1.0 - c.alpha_out) / c.dt_ms * c.alpha_out ** np.arange(k - 1, -1, -1.0)

    def decode(self, weighted: np.ndarray, substeps: int | None = None) -> np.ndarray:
        """Logits ``[T, B, n_out]`` from per-task-step weighted spike counts ``[T, B, N]``.

        ``weighted[t]`` = sum over the spikes of task step t of :meth:`readout_weights`; the
        ``li`` trace carries over between task steps with ``alpha_out^K``.
        """
        w = np.asarray(weighted, dtype=np.float64)
        if self.neuron.readout == "li":
            carry = self.constants(substeps).alpha_out ** (substeps or self.substeps)
            z = np.empty_like(w)
            acc = np.zeros(w.shape[1:])
            for t in range(w.shape[0]):
                acc = carry * acc + w[t]
                z[t] = acc
        else:
            z = w
        t, b, n = z.shape
        y = (self.out_matrix() @ z.reshape(t * b, n).T).T.reshape(t, b, -1)
        return y + self.b_out.astype(np.float64)

    # ------------------------------------------------------------------ identity and files
    def fingerprint(self) -> str:
        """SHA-256 of the graph, every weight array and the neuron model (what is simulated)."""
        h = hashlib.sha256(self.graph.fingerprint().encode())
        for name in WEIGHTS:
            h.update(name.encode())
            h.update(np.ascontiguousarray(getattr(self, name), dtype=np.float32).tobytes())
        h.update(json.dumps({"neuron": asdict(self.neuron), "task_dt_ms": self.task_dt_ms},
                            sort_keys=True).encode())
        return h.hexdigest()

    def with_weights(self, **weights: np.ndarray) -> SpikingCircuit:
        """A copy with some weight arrays replaced (same graph, model, K)."""
        unknown = set(weights) - set(WEIGHTS)
        if unknown:
            raise NeurosheetError(f"unknown weight arrays: {', '.join(sorted(unknown))}")
        return replace(self, **weights)

    def summary(self) -> dict[str, Any]:
        """The neuron model, the step and the provenance as plain JSON-able values."""
        c = self.constants()
        return {"neuron": asdict(self.neuron), "task_dt_ms": self.task_dt_ms,
                "substeps": self.substeps, "sim_dt_ms": self.sim_dt_ms, "alpha": c.alpha,
                "beta": c.beta, "synapses": self.synapses, "fingerprint": self.fingerprint(),
                "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        """Write weights, neuron model and provenance (not the graph) to ``path`` atomically."""
        return write_npz(
            path, format=np.array(FORMAT), version=np.array(VERSION),
            graph_fingerprint=np.array(self.graph.fingerprint()),
            **{name: getattr(self, name) for name in WEIGHTS},
            neuron=np.array(json.dumps(asdict(self.neuron))),
            task_dt_ms=np.array(self.task_dt_ms), substeps=np.array(self.substeps),
            tasks=np.array(json.dumps(list(self.tasks))),
            meta=np.array(json.dumps(self.meta, default=_json_default)),
        )

    @classmethod
    def load(cls, path: str | Path, graph: SheetGraph) -> SpikingCircuit:
        """Read a circuit written by :meth:`save` onto ``graph`` (fingerprints must match)."""
        path = Path(path)
        arrays = read_npz(path, "spiking circuit", FORMAT, VERSION)
        if str(arrays.get("graph_fingerprint", "")) != graph.fingerprint():
            raise NeurosheetError(f"{path}: spiking circuit does not match its graph "
                                  "(fingerprint differs)")
        try:
            return cls(graph, *(arrays[name] for name in WEIGHTS),
                       neuron=NeuronModel(**json.loads(str(arrays["neuron"]))),
                       task_dt_ms=float(arrays["task_dt_ms"]), substeps=int(arrays["substeps"]),
                       tasks=tuple(json.loads(str(arrays["tasks"]))),
                       meta=json.loads(str(arrays["meta"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise NeurosheetError(f"{path}: damaged spiking circuit file ({exc})") from None

    # ------------------------------------------------------------------ interop
    def to_snntorch(self, *, surrogate: Any = None, dtype: Any = None,
                    trainable: bool = True) -> Any:
        """This circuit as a torch ``nn.Module`` (:class:`neurosheet.spiking.network.SpikingSheet`:
        the step of snntorch's ``Synaptic`` neuron, snntorch's surrogate spike gradient), usable
        in your own training loop: ``forward(inputs [T, B, n_in]) -> SpikeOutput`` with
        ``.logits``; its parameters are the edge values; ``.to_circuit()`` converts back.
        (The Brian2 network of the circuit: :func:`neurosheet.spiking.backends.brian2.brian2_network`.)
        """
        from neurosheet.spiking.network import SpikingSheet

        return SpikingSheet(self, surrogate=surrogate, dtype=dtype, trainable=trainable)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
