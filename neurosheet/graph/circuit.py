"""Circuit: a SheetGraph plus the weights and neuron parameters that live on it.

This is the declarative description every backend builds from (torch rate model, snntorch,
Brian2, NIR export, budget reports), in the spirit of Nengo's model/builder split. Weights
are stored *on the edges*: ``w_rec[k]`` is the weight of the k-th recurrent synapse in the
graph's canonical CSR order, so a circuit cannot hold a weight off the graph.

A run directory holds ``graph.npz`` (the :class:`SheetGraph`) and ``circuit.npz`` (these
weights, the graph's fingerprint and the parameters). Loading checks that they match and
that every weight is finite.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import read_npz, write_npz
from neurosheet.core.rundir import RunDir
from neurosheet.graph.sheetgraph import SheetGraph

FORMAT = "neurosheet.circuit"
VERSION = 1
ACTIVATIONS = ("relu", "softplus", "tanh", "retanh")


class OnGraph:
    """Sizes of anything that carries weights on a :class:`SheetGraph` (``self.graph``)."""

    graph: SheetGraph

    @property
    def n(self) -> int:
        return self.graph.n

    @property
    def n_inputs(self) -> int:
        return self.graph.inputs.shape[1]  # type: ignore[union-attr]

    @property
    def n_outputs(self) -> int:
        return self.graph.readout.shape[0]  # type: ignore[union-attr]


def freeze_on_graph(obj: Any, what: str, names: tuple[str, str, str, str, str]) -> None:
    """Check ``obj``'s five weight arrays against ``obj.graph`` and store read-only float32
    copies: recurrent (one per synapse), input (one per input synapse), bias (one per neuron),
    readout (one per readout synapse), readout bias (one per output)."""
    g = obj.graph
    if g.inputs is None or g.readout is None:
        raise NeurosheetError(f"a {what} needs a graph with input and readout projections")
    shapes = ((g.synapses,), (g.inputs.synapses,), (g.n,), (g.readout.synapses,),
              (g.readout.shape[0],))
    for name, shape in zip(names, shapes, strict=True):
        arr = np.array(getattr(obj, name), dtype=np.float32)  # a copy: the caller's stays writable
        if arr.shape != shape:
            raise NeurosheetError(f"{what} {name} has shape {arr.shape}, but the graph needs {shape}")
        if not np.isfinite(arr).all():
            raise NeurosheetError(f"{what} {name} contains NaN or infinite values")
        arr.setflags(write=False)
        object.__setattr__(obj, name, arr)


@dataclass(frozen=True)
class RateParams:
    """Dynamics of the rate network that owns the weights.

    ``x <- (1 - a) x + a (W_rec f(x) + W_in u + b)`` per Euler sub-step, with
    ``a = 1 - (1 - dt/tau)^(1/substeps)`` so one task step decays by ``1 - dt/tau`` whatever
    the number of sub-steps; readout ``y = W_out f(x) + b_out``.
    """

    activation: str = "relu"
    tau_ms: float = 100.0
    dt_ms: float = 100.0
    substeps: int = 1

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise NeurosheetError(
                f"unknown activation {self.activation!r}; use one of {', '.join(ACTIVATIONS)}"
            )
        if not (self.tau_ms > 0 and self.dt_ms > 0):
            raise NeurosheetError("tau_ms and dt_ms must be positive")
        if self.dt_ms > self.tau_ms:
            raise NeurosheetError(f"dt_ms ({self.dt_ms}) must not exceed tau_ms ({self.tau_ms})")
        if self.substeps < 1:
            raise NeurosheetError(f"substeps must be >= 1, got {self.substeps}")

    @property
    def alpha(self) -> float:
        """Leak per task step, dt / tau."""
        return self.dt_ms / self.tau_ms

    def substep_alpha(self, substeps: int | None = None) -> float:
        """Leak per Euler sub-step so that ``substeps`` of them decay like one task step.

        With ``dt == tau`` (alpha = 1) the state has no memory across a task step; each
        sub-step then replaces the state fully (a = 1) and the sub-steps iterate the map.
        """
        k = self.substeps if substeps is None else substeps
        if self.alpha >= 1.0:
            return 1.0
        return 1.0 - (1.0 - self.alpha) ** (1.0 / k)


@dataclass(frozen=True, eq=False)
class Circuit(OnGraph):
    """Weights on a graph's edges plus neuron parameters: everything a backend needs."""

    graph: SheetGraph
    w_rec: np.ndarray
    w_in: np.ndarray
    b_rec: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    params: RateParams = field(default_factory=RateParams)
    tasks: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_on_graph(self, "circuit", ("w_rec", "w_in", "b_rec", "w_out", "b_out"))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    # ----------------------------------------------------------------- matrices
    def rec_matrix(self) -> sp.csr_array:
        """W_rec as scipy CSR ``[post, pre]`` (exactly the graph's edges)."""
        a = self.graph.adjacency
        return sp.csr_array((self.w_rec.copy(), a.indices, a.indptr), shape=a.shape)

    def in_matrix(self) -> sp.csr_array:
        """W_in as scipy CSR ``[N, n_inputs]``."""
        m = self.graph.inputs.mask  # type: ignore[union-attr]
        return sp.csr_array((self.w_in.copy(), m.indices, m.indptr), shape=m.shape)

    def out_matrix(self) -> sp.csr_array:
        """W_out as scipy CSR ``[n_outputs, N]``."""
        m = self.graph.readout.mask  # type: ignore[union-attr]
        return sp.csr_array((self.w_out.copy(), m.indices, m.indptr), shape=m.shape)

    def with_weights(self, **weights: np.ndarray) -> Circuit:
        """A copy with some weight arrays replaced (e.g. quantized)."""
        fields = {k: getattr(self, k) for k in ("w_rec", "w_in", "b_rec", "w_out", "b_out")}
        fields.update(weights)
        return Circuit(self.graph, params=self.params, tasks=self.tasks, meta=dict(self.meta),
                       **fields)

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Write the weights (not the graph) to ``path`` atomically, keyed by the graph fingerprint."""
        return write_npz(
            path,
            format=np.array(FORMAT),
            version=np.array(VERSION),
            graph_fingerprint=np.array(self.graph.fingerprint()),
            w_rec=self.w_rec, w_in=self.w_in, b_rec=self.b_rec, w_out=self.w_out,
            b_out=self.b_out,
            params=np.array(json.dumps(asdict(self.params))),
            tasks=np.array(json.dumps(list(self.tasks))),
            meta=np.array(json.dumps(self.meta)),
        )

    @classmethod
    def load(cls, path: str | Path, graph: SheetGraph) -> Circuit:
        """Read weights saved by :meth:`save` onto ``graph``; refuses a mismatch or NaN."""
        path = Path(path)
        arrays = read_npz(path, "circuit", FORMAT, VERSION)
        if str(arrays["graph_fingerprint"]) != graph.fingerprint():
            raise NeurosheetError(f"{path}: circuit does not match its graph (fingerprint differs)")
        try:
            params = RateParams(**json.loads(str(arrays["params"])))
            return cls(
                graph,
                arrays["w_rec"], arrays["w_in"], arrays["b_rec"], arrays["w_out"],
                arrays["b_out"], params, tuple(json.loads(str(arrays["tasks"]))),
                json.loads(str(arrays["meta"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NeurosheetError(f"{path}: damaged circuit file ({exc})") from None


def save_run_circuit(run_dir: str | Path, circuit: Circuit) -> None:
    """Write ``graph.npz`` and ``circuit.npz`` into a run directory."""
    run_dir = Path(run_dir)
    circuit.graph.save(RunDir(run_dir).graph)
    circuit.save(RunDir(run_dir).circuit)


def task_mode_of(circuit: Any) -> str:
    """The task generator (``fixed`` or ``reference``) a circuit was trained on, from its meta:
    every later stage (conversion, fine-tuning, spike counts) draws its trials the same way."""
    return str(circuit.meta.get("task_mode", "fixed"))


def load_run_circuit(run_dir: str | Path) -> Circuit:
    """Load the circuit of a run directory (graph + weights), checking they belong together."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NeurosheetError(f"run directory not found: {run_dir}")
    run = RunDir(run_dir)
    graph = SheetGraph.load(run.graph)
    circuit = Circuit.load(run.circuit, graph)
    if "task_mode" not in circuit.meta and run.config_json.is_file():  # saved before recorded
        try:
            mode = json.loads(run.config_json.read_text()).get("training", {}).get("task_mode")
        except (OSError, ValueError, AttributeError):
            mode = None
        if mode:
            circuit.meta["task_mode"] = str(mode)
    return circuit
