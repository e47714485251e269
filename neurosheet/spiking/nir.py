"""Export a spiking circuit as a NIR graph that the field's readers simulate as neurosheet does.

The file states a population of NIR ``CubaLIF`` neurons in NIR's own continuous-time terms;
nothing a reader must know is hidden in metadata. Graph (names sort in execution order, which
nirtorch 2.6 needs when it reads a subgraph)::

    input -> proj_in (Affine: W_in, b) -> rnn -> readout (Affine: W_out, b_out) -> output
    rnn = NIRGraph{ input -> lif (CubaLIF); lif -> w_rec (Linear) -> lif; lif -> output }

The recurrent layer is a subgraph, as snntorch's own export writes one: a flat ``lif <-> w_rec``
cycle is rewritten by ``snntorch.import_from_nir`` into a subgraph that feeds the layer's
input through ``w_rec`` (docs/spiking.md, "NIR export", has the reader survey).

What a reader runs, per reader step ``dt`` (snntorch 1.0 and norse 1.1 both do exactly this)::

    I <- (1 - dt/tau_syn) I + (dt/tau_syn) (W_in u + b + W_rec z)    # z: spikes of the last step
    v <- (1 - dt/tau_mem) v + (dt/tau_mem) r I;  z = [v > v_threshold];  v <- v_reset = 0 where z
    y = W_out z + b_out

A spike is a unit value for one reader step, so weights fed by spikes are stated per spike per
``dt_s`` (:data:`FILE_DT_S` = 0.1 ms, the step snntorch's reader is fixed to); ``r =
tau_mem / dt_s`` (which snntorch requires) and the voltage scale sits in the one threshold.
Outside the graph, in continuous time (graph metadata ``input_rule`` / ``readout_rule``): each
task input is held for its task step, and a task step's logits are the time average of the
output over that step. :func:`simulate` is a plain implementation of exactly that reading.

NIR has no sparse weight node: ``w_rec`` is written dense, float32, once; the exact edge list
(``post``, ``pre``, ``weight`` as in the dense matrix, ``source_weight`` in neurosheet's units,
CSR order, zero weights included) rides in its metadata, neuron positions in the ``lif``
node's, the graph fingerprint in the graph's.
:func:`read_nir` checks that the dense matrix holds nothing off that edge list.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError

FORMAT = "neurosheet.spiking"
VERSION = 2
FILE_DT_S = 1e-4
NODE_NAMES = ("input", "proj_in", "rnn", "readout", "output")
INPUT_RULE = "each task input is held constant for its task step (task_dt_s)"
READOUT_RULE = "a task step's logits are the time average of the graph output over that step"


@dataclass(frozen=True, eq=False)
class NirNetwork:
    """What the file states: one recurrent CubaLIF population, times in seconds.

    ``post``/``pre``: recurrent edges (CSR order), ``w_rec`` their weights per spike per
    ``dt_s`` step in the file's units; ``w_in [N, n_in]``, ``bias [N]``: input current;
    ``w_out [n_out, N]`` per spike per step, ``b_out``; scalar neuron constants shared by all.
    ``edge_weight`` is the same edges' weights in the source model's own units (kept verbatim).
    """

    post: np.ndarray
    pre: np.ndarray
    w_rec: np.ndarray
    w_in: np.ndarray
    bias: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    tau_syn_s: float
    tau_mem_s: float
    v_threshold: float
    dt_s: float
    task_dt_s: float
    edge_weight: np.ndarray | None = None
    positions: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.bias.size)

    @property
    def r(self) -> float:
        """``tau_mem / dt_s``: with it one reader step adds ``I`` to ``v`` (snntorch's rule)."""
        return self.tau_mem_s / self.dt_s

    @property
    def steps_per_task_step(self) -> int:
        return _steps(self.task_dt_s, self.dt_s)

    def dense_rec(self) -> np.ndarray:
        """``W_rec [post, pre]`` as a dense float32 matrix (what NIR can hold)."""
        dense = np.zeros((self.n, self.n), dtype=np.float32)
        dense[self.post, self.pre] = self.w_rec
        return dense


def _steps(task_dt_s: float, dt_s: float) -> int:
    k = round(task_dt_s / dt_s)
    if k < 1 or not math.isclose(k * dt_s, task_dt_s, rel_tol=1e-9):
        raise NeurosheetError(f"the reader step dt_s = {dt_s} s must divide the task step "
                              f"{task_dt_s} s")
    return int(k)


# --------------------------------------------------------------------------- source models
def network_from_spiking(spiking: Any, dt_s: float = FILE_DT_S, *,
                         rescale_time: bool = False) -> NirNetwork:
    """The NIR statement of a spiking circuit (see the module docstring for the mapping).

    ``rescale_time``: state one simulation step of the circuit as one file step ``dt_s``, i.e.
    compress time by ``sim_dt / dt_s`` (metadata ``time_scale``): every time constant and the
    task step in the file are that much shorter than the model's. A reader at ``dt_s`` then runs
    neurosheet's own map step for step; use it only for a circuit that depends on its step.
    """
    if hasattr(spiking, "neuron"):
        return _from_cubalif(spiking, dt_s, rescale_time)
    raise NeurosheetError(f"cannot export a {type(spiking).__name__} as NIR")


def _from_cubalif(spiking: Any, dt_s: float, rescale_time: bool = False) -> NirNetwork:
    """neurosheet's CubaLIF circuit (``neurosheet.spiking.model``) in NIR's terms.

    Its exact-exponential map at step delta (``I <- alpha I + W s + (1 - alpha) J``,
    ``v <- beta v + (1 - beta) r I``) is, at the file step, the forward-Euler map of a CubaLIF
    with tau_syn_f = dt/(1 - alpha_f), tau_mem_f = dt/(1 - beta_f) (alpha_f = exp(-dt/tau_syn)),
    spike weight W / (1 - alpha_f) and the voltage scaled by 1 / ((1 - beta_f) r). The two maps
    are identical when neurosheet simulates at delta = dt_s (or, with ``rescale_time``, always:
    then alpha_f = exp(-delta/tau_syn) and the file's clock runs delta/dt_s times faster).
    """
    from neurosheet.spiking.signs import check_dale

    check_dale(spiking, where="NIR export")  # E/I circuits: the file keeps every sign
    model = spiking.neuron
    if model.reset != "zero":
        raise NeurosheetError(f"reset {model.reset!r} cannot be read back: the NIR readers reset "
                              "to v_reset = 0 (use reset 'zero')")
    if model.readout != "count":
        raise NeurosheetError(f"readout {model.readout!r} cannot be read back: snntorch imports "
                              "no NIR LI node (use readout 'count')")
    step = spiking.sim_dt_ms / 1e3 if rescale_time else dt_s  # model time per file step
    alpha_f = math.exp(-step / (model.tau_syn_ms / 1e3))
    beta_f = math.exp(-step / (model.tau_mem_ms / 1e3))
    graph = spiking.graph
    post, pre = graph.edges()
    w_rec = np.asarray(spiking.w_rec, np.float64)
    return NirNetwork(
        post=post, pre=pre, w_rec=(w_rec / (1.0 - alpha_f)).astype(np.float32),
        w_in=spiking.in_matrix().toarray().astype(np.float32),
        bias=np.asarray(spiking.b, np.float32),
        w_out=(spiking.out_matrix().toarray() / (step * 1e3)).astype(np.float32),
        b_out=np.asarray(spiking.b_out, np.float32),
        tau_syn_s=dt_s / (1.0 - alpha_f), tau_mem_s=dt_s / (1.0 - beta_f),
        v_threshold=model.threshold / ((1.0 - beta_f) * model.r), dt_s=dt_s,
        task_dt_s=spiking.task_dt_ms / 1e3 * dt_s / step, edge_weight=w_rec.astype(np.float32),
        positions=graph.sheet.positions,
        meta={"graph_fingerprint": graph.fingerprint(), "synapses": int(graph.synapses),
              "tasks": ",".join(spiking.tasks), "source_model": "neurosheet CubaLIF",
              "source_sim_dt_s": spiking.sim_dt_ms / 1e3,
              "source_tau_syn_s": model.tau_syn_ms / 1e3,
              "source_tau_mem_s": model.tau_mem_ms / 1e3, "source_r": model.r,
              "source_threshold": model.threshold, "time_scale": step / dt_s,
              "circuit_fingerprint": spiking.fingerprint()},
    )


# --------------------------------------------------------------------------- NIR graph
def to_nir(spiking: Any, dt_s: float = FILE_DT_S, *, dense: bool = True,
           rescale_time: bool = False) -> Any:
    """The spiking circuit (or a :class:`NirNetwork`) as an in-memory ``nir.NIRGraph``.

    ``dense=False`` gives ``w_rec`` a zero-stride placeholder of the right shape (4 bytes, for
    :func:`write_nir`, which streams the real matrix from the edge list).
    """
    import nir

    net = _network(spiking, dt_s, rescale_time)
    n, n_in, n_out = net.n, net.w_in.shape[1], net.w_out.shape[0]
    ones = np.ones(n, dtype=np.float32)
    lif_meta: dict[str, Any] = {}
    if net.positions is not None:
        lif_meta = {"x": np.asarray(net.positions[:, 0], np.float32),
                    "y": np.asarray(net.positions[:, 1], np.float32)}
    lif = nir.CubaLIF(
        tau_syn=net.tau_syn_s * ones, tau_mem=net.tau_mem_s * ones, r=net.r * ones,
        v_leak=0.0 * ones, v_threshold=net.v_threshold * ones, v_reset=0.0 * ones,
        w_in=ones.copy(), metadata=lif_meta)
    rec_meta = {"post": np.asarray(net.post, np.int64), "pre": np.asarray(net.pre, np.int64),
                "weight": np.asarray(net.w_rec, np.float32), "sparse_format": "csr_edges"}
    if net.edge_weight is not None:
        rec_meta["source_weight"] = np.asarray(net.edge_weight, np.float32)
    weight = net.dense_rec() if dense else np.broadcast_to(np.float32(0.0), (n, n))
    w_rec = nir.Linear(weight=weight, metadata=rec_meta)
    rnn = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": lif,
               "w_rec": w_rec, "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "proj_in": nir.Affine(weight=np.asarray(net.w_in, np.float32),
                              bias=np.asarray(net.bias, np.float32)),
        "rnn": rnn,
        "readout": nir.Affine(weight=np.asarray(net.w_out, np.float32),
                              bias=np.asarray(net.b_out, np.float32)),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "proj_in"), ("proj_in", "rnn"), ("rnn", "readout"), ("readout", "output")]
    meta = {"format": FORMAT, "version": VERSION, "dt_s": net.dt_s, "task_dt_s": net.task_dt_s,
            "input_rule": INPUT_RULE, "readout_rule": READOUT_RULE,
            **{k: v for k, v in net.meta.items() if v is not None}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _network(spiking: Any, dt_s: float, rescale_time: bool = False) -> NirNetwork:
    if isinstance(spiking, NirNetwork):
        return spiking
    return network_from_spiking(spiking, dt_s, rescale_time=rescale_time)


def write_nir(spiking: Any, path: str | Path, dt_s: float = FILE_DT_S, *,
              rescale_time: bool = False) -> Path:
    """Write the NIR graph to ``path`` (HDF5, gzip, the layout ``nir.write`` produces) atomically.

    The dense ``w_rec`` is streamed to the file in row blocks built from the edge list, so
    exporting never holds the N x N matrix (``nir.write`` would hold it three times over).
    """
    net = _network(spiking, dt_s, rescale_time)
    graph = to_nir(net, dense=False)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        _write_h5(tmp, graph, net)  # h5py needs a readable file, so a named sibling, then rename
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _write_h5(path: str, graph: Any, net: NirNetwork) -> None:
    """``nir.write``'s layout, node by node; ``rnn/w_rec/weight`` filled block by block."""
    import h5py
    import nir

    def write_dict(group: Any, d: dict[str, Any]) -> None:  # as nir.serialization.write
        for k, v in d.items():
            if k == "metadata":
                if v:
                    write_dict(group.create_group(k), v)
            elif isinstance(v, str):
                group.create_dataset(k, data=v, dtype=h5py.string_dtype())
            elif isinstance(v, np.ndarray):
                group.create_dataset(k, data=v, dtype=v.dtype, compression="gzip")
            elif isinstance(v, dict):
                write_dict(group.create_group(str(k)), v)
            else:
                group.create_dataset(k, data=v)

    def write_node(group: Any, node: Any) -> None:
        if isinstance(node, nir.NIRGraph):
            write_dict(group, {"type": "NIRGraph", "edges": node.edges,
                               "metadata": node.metadata})
            nodes = group.create_group("nodes")
            for name, child in node.nodes.items():
                write_node(nodes.create_group(name), child)
        elif node is rec:
            write_dict(group, {"type": "Linear", "metadata": node.metadata})
            _write_dense_rec(group, net)
        else:
            write_dict(group, node.to_dict())

    rec = graph.nodes["rnn"].nodes["w_rec"]
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
        write_node(f.create_group("node"), graph)


def _write_dense_rec(group: Any, net: NirNetwork, block_bytes: int = 1 << 26) -> None:
    """Dense float32 ``weight [post, pre]`` from the edge list, written ~64 MB of rows at a time."""
    n = net.n
    chunk_rows = max(1, min(n, (1 << 20) // (4 * n)))
    ds = group.create_dataset("weight", shape=(n, n), dtype=np.float32, compression="gzip",
                              chunks=(chunk_rows, n))
    post, pre, w = net.post, net.pre, net.w_rec
    if np.any(post[1:] < post[:-1]):  # CSR order is already sorted by post: no copies then
        order = np.argsort(post, kind="stable")
        post, pre, w = post[order], pre[order], w[order]
    rows = max(chunk_rows, block_bytes // (4 * n) // chunk_rows * chunk_rows)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        a, b = np.searchsorted(post, [lo, hi])
        block = np.zeros((hi - lo, n), dtype=np.float32)
        block[post[a:b] - lo, pre[a:b]] = w[a:b]
        ds[lo:hi] = block


# --------------------------------------------------------------------------- reading back
@dataclass(frozen=True, eq=False)
class NirSheet:
    """What :func:`read_nir` recovers: the network as stated, and the graph's metadata."""

    network: NirNetwork
    meta: dict[str, Any]

    @property
    def post(self) -> np.ndarray:
        return self.network.post

    @property
    def pre(self) -> np.ndarray:
        return self.network.pre

    @property
    def weight(self) -> np.ndarray:
        """The recurrent edge weights in the source model's units (file units if absent)."""
        w = self.network.edge_weight
        return self.network.w_rec if w is None else w

    @property
    def positions(self) -> np.ndarray | None:
        return self.network.positions

    @property
    def synapses(self) -> int:
        return int(self.network.post.size)


def read_nir(path: str | Path) -> NirSheet:
    """Read a graph written by :func:`write_nir`; the edge list must match the dense weights."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NeurosheetError(f"NIR file not found: {path}")
    try:
        graph = nir.read(path)
        meta = {k: _scalar(v) for k, v in graph.metadata.items()}
        rnn = graph.nodes["rnn"]
        lif, rec = rnn.nodes["lif"], rnn.nodes["w_rec"]
        proj, out = graph.nodes["proj_in"], graph.nodes["readout"]
        post = np.asarray(rec.metadata["post"], dtype=np.int64)
        pre = np.asarray(rec.metadata["pre"], dtype=np.int64)
        weight = np.asarray(rec.metadata["weight"], dtype=np.float32)
        source = rec.metadata.get("source_weight")
        dense = np.asarray(rec.weight)
        positions = None
        if "x" in lif.metadata:
            positions = np.stack([lif.metadata["x"], lif.metadata["y"]], axis=1)
        consts = {name: _uniform(getattr(lif, name), name)
                  for name in ("tau_syn", "tau_mem", "r", "v_threshold", "v_leak", "v_reset")}
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise NeurosheetError(f"{path}: not a neurosheet NIR export ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise NeurosheetError(f"{path}: not a neurosheet NIR export (version {VERSION})")
    if dense.dtype != np.float32:
        raise NeurosheetError(f"{path}: w_rec is {dense.dtype}, expected float32")
    if not np.array_equal(dense[post, pre], weight):
        raise NeurosheetError(f"{path}: edge list weights differ from the dense w_rec")
    dense[post, pre] = 0.0
    off = int(np.count_nonzero(dense))
    if off:
        raise NeurosheetError(f"{path}: w_rec has {off} weights off the edge list")
    if consts["v_leak"] != 0.0 or consts["v_reset"] != 0.0:
        raise NeurosheetError(f"{path}: v_leak and v_reset must be 0")
    net = NirNetwork(
        post=post, pre=pre, w_rec=weight, w_in=np.asarray(proj.weight, np.float32),
        bias=np.asarray(proj.bias, np.float32), w_out=np.asarray(out.weight, np.float32),
        b_out=np.asarray(out.bias, np.float32), tau_syn_s=consts["tau_syn"],
        tau_mem_s=consts["tau_mem"], v_threshold=consts["v_threshold"],
        dt_s=float(meta["dt_s"]), task_dt_s=float(meta["task_dt_s"]),
        edge_weight=None if source is None else np.asarray(source, np.float32),
        positions=positions, meta=meta)
    if not math.isclose(consts["r"], net.r, rel_tol=1e-5):
        raise NeurosheetError(f"{path}: r = {consts['r']} is not tau_mem / dt_s = {net.r}")
    return NirSheet(net, meta)


def _uniform(values: Any, name: str) -> float:
    arr = np.unique(np.asarray(values, dtype=np.float64))
    if arr.size != 1:
        raise ValueError(f"{name} differs between neurons")
    return float(arr[0])


def _scalar(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return _scalar(v.item())
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------- reference reader
def hold_inputs(inputs: np.ndarray, task_dt_s: float, dt_s: float) -> np.ndarray:
    """Task inputs ``[T, B, n_in]`` resampled to a reader step: each held for its task step."""
    u = np.asarray(inputs)
    if u.ndim != 3:
        raise NeurosheetError(f"inputs must have shape [T, B, n_in], got {list(u.shape)}")
    return np.repeat(u, _steps(task_dt_s, dt_s), axis=0)


def average_outputs(outputs: np.ndarray, task_dt_s: float, dt_s: float) -> np.ndarray:
    """Reader outputs ``[T*k, B, n_out]`` -> task-step logits ``[T, B, n_out]`` (time average)."""
    y = np.asarray(outputs, dtype=np.float64)
    k = _steps(task_dt_s, dt_s)
    if y.shape[0] % k:
        raise NeurosheetError(f"{y.shape[0]} reader steps are not whole task steps of {k}")
    return y.reshape(y.shape[0] // k, k, *y.shape[1:]).mean(axis=1)


def simulate(net: NirNetwork, inputs: np.ndarray, dt_s: float | None = None, *,
             dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Simulate the file as NIR states it (forward Euler at ``dt_s``, default the file's step).

    Returns task-step logits ``[T, B, n_out]`` and spike counts per task step ``[T, B, N]``.
    A plain reference for the readers: the same map snntorch's and norse's importers run.
    """
    import torch

    dt_s = net.dt_s if dt_s is None else dt_s
    k = _steps(net.task_dt_s, dt_s)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    u = torch.as_tensor(np.asarray(inputs), dtype=tdt)
    steps, trials, _ = u.shape
    w_in = torch.as_tensor(net.w_in, dtype=tdt)
    bias = torch.as_tensor(net.bias, dtype=tdt)
    idx = torch.as_tensor(np.stack([net.post, net.pre]))
    w_rec = torch.sparse_coo_tensor(idx, torch.as_tensor(net.w_rec, dtype=tdt), (net.n, net.n),
                                    check_invariants=True).coalesce().to_sparse_csr()
    a, m = dt_s / net.tau_syn_s, dt_s / net.tau_mem_s
    gain = m * net.r
    cur = torch.zeros((trials, net.n), dtype=tdt)
    v = torch.zeros_like(cur)
    z = torch.zeros_like(cur)
    counts = np.zeros((steps, trials, net.n), dtype=np.int32)
    with torch.no_grad():
        for t in range(steps):
            drive = u[t] @ w_in.T + bias
            acc = torch.zeros_like(cur)
            for _ in range(k):
                x = drive + (w_rec @ z.T).T
                cur = (1.0 - a) * cur + a * x
                v = (1.0 - m) * v + gain * cur
                z = (v > net.v_threshold).to(tdt)
                v = v * (1.0 - z)
                acc += z
            counts[t] = acc.numpy().astype(np.int32)
    w_out = net.w_out.astype(np.float64)
    logits = counts.astype(np.float64) / k @ w_out.T + net.b_out.astype(np.float64)
    return logits, counts
