"""Export a spiking circuit as a NIR graph (package ``nir``), keeping the sparse edge list.

Graph: ``input -> w_in (Affine: W_in, b) -> lif (CubaLIF) -> w_rec (Linear) -> lif`` and
``lif -> w_out (Affine) -> output``. NIR has no sparse weight node, so ``w_rec`` is dense, and
the exact edge list (``post``, ``pre``, ``weight``, CSR order, zero-valued synapses included)
rides along in that node's metadata, the neuron positions in the ``lif`` node's metadata.
:func:`read_nir` checks that the dense matrix holds nothing off that edge list.

Semantics (also in the graph metadata): a discrete-time map at ``dt`` seconds, weights are per
spike per step; ``CubaLIF`` carries ``tau_syn`` with exp(-dt/tau_syn) = beta, and an IF soma
approximated by ``tau_mem`` = 1e4 s with ``r = tau_mem * g / dt`` (so v += g I per step);
threshold 1, **reset by subtraction** and a floor at 0 (NIR's LIF resets to ``v_reset``; readers
must take ``reset`` from the metadata); the readout sums ``w_out`` over the K steps of a task step.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_bytes
from neurosheet.spiking.conversion import SpikingCircuit

FORMAT = "neurosheet.spiking"
VERSION = 1
TAU_MEM_IF_S = 1e4


def to_nir(spiking: SpikingCircuit) -> Any:
    """The spiking circuit as an in-memory ``nir.NIRGraph`` built from nir's own nodes."""
    import nir

    c = spiking.circuit
    n, n_in, n_out = c.n, c.n_inputs, c.n_outputs
    dt_s = spiking.sim_dt_ms / 1000.0
    tau_syn_s = max(spiking.tau_syn_ms / 1000.0, 1e-12)
    post, pre = spiking.edges()
    w_spike = spiking.spike_weights()
    types = c.graph.types
    if types is not None:
        from neurosheet.spiking.signs import check_dale

        check_dale(spiking, w_spike, "NIR export")
    ones = np.ones(n)
    lif = nir.CubaLIF(
        tau_syn=tau_syn_s * ones, tau_mem=TAU_MEM_IF_S * ones,
        r=TAU_MEM_IF_S * spiking.g / dt_s * ones, v_leak=np.zeros(n), v_threshold=ones.copy(),
        v_reset=np.zeros(n), w_in=1.0,
        metadata={"x": c.graph.sheet.positions[:, 0].copy(),
                  "y": c.graph.sheet.positions[:, 1].copy(),
                  "reset": "subtract", "v_floor": 0.0, "v_cap_after_reset": 1.0,
                  # E/I circuits: +1 excitatory / -1 inhibitory; every outgoing weight has it
                  **({"types": types.astype(np.int64)} if types is not None else {})},
    )
    w_rec = nir.Linear(
        weight=c.rec_matrix().toarray().astype(np.float64) / spiking.g,
        metadata={"post": post, "pre": pre, "weight": w_spike, "sparse_format": "csr_edges"},
    )
    in_post, in_pre = c.graph.inputs.edges()
    w_in = nir.Affine(weight=c.in_matrix().toarray().astype(np.float64),
                      bias=c.b_rec.astype(np.float64),
                      metadata={"post": in_post, "pre": in_pre})
    out_post, out_pre = c.graph.readout.edges()
    w_out = nir.Affine(
        weight=c.out_matrix().toarray().astype(np.float64) / (spiking.substeps * spiking.g),
        bias=c.b_out.astype(np.float64),
        metadata={"post": out_post, "pre": out_pre, "readout": "sum over each task step"},
    )
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "w_in": w_in, "lif": lif, "w_rec": w_rec, "w_out": w_out,
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
             ("lif", "w_out"), ("w_out", "output")]
    meta = {
        "format": FORMAT, "version": VERSION, "dt_s": dt_s, "task_dt_s": spiking.task_dt_ms / 1e3,
        "substeps": spiking.substeps, "g": spiking.g, "beta": spiking.beta,
        "graph_fingerprint": c.graph.fingerprint(), "synapses": c.graph.synapses,
        "reset": "subtract", "tasks": ",".join(c.tasks),
        "dale": types is not None,
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(spiking: SpikingCircuit, path: str | Path) -> Path:
    """Write the NIR graph to ``path`` (HDF5) atomically."""
    import nir

    buf = io.BytesIO()
    nir.write(buf, to_nir(spiking))
    return write_bytes(path, buf.getvalue())


@dataclass(frozen=True, eq=False)
class NirSheet:
    """What :func:`read_nir` recovers: the sparse recurrent graph and its spike weights."""

    post: np.ndarray
    pre: np.ndarray
    weight: np.ndarray
    positions: np.ndarray
    w_in: np.ndarray
    bias: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    types: np.ndarray | None = None  # E/I types (+1/-1) of an E/I circuit

    @property
    def synapses(self) -> int:
        return int(self.post.size)


def read_nir(path: str | Path) -> NirSheet:
    """Read a graph written by :func:`write_nir`; the edge list must match the dense weights."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NeurosheetError(f"NIR file not found: {path}")
    try:
        graph = nir.read(path)
        rec, lif = graph.nodes["w_rec"], graph.nodes["lif"]
        meta = {k: _scalar(v) for k, v in graph.metadata.items()}
        post = np.asarray(rec.metadata["post"], dtype=np.int64)
        pre = np.asarray(rec.metadata["pre"], dtype=np.int64)
        weight = np.asarray(rec.metadata["weight"], dtype=np.float64)
        dense = np.asarray(rec.weight, dtype=np.float64)
        positions = np.stack([lif.metadata["x"], lif.metadata["y"]], axis=1).astype(np.float64)
        w_in, w_out = graph.nodes["w_in"], graph.nodes["w_out"]
        types = (np.asarray(lif.metadata["types"], dtype=np.int64)
                 if "types" in lif.metadata else None)
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise NeurosheetError(f"{path}: not a neurosheet NIR export ({exc})") from None
    if meta.get("format") != FORMAT:
        raise NeurosheetError(f"{path}: not a neurosheet NIR export")
    if not np.array_equal(dense[post, pre], weight):
        raise NeurosheetError(f"{path}: edge list weights differ from the dense w_rec")
    off = dense.copy()
    off[post, pre] = 0.0
    if np.count_nonzero(off):
        raise NeurosheetError(f"{path}: w_rec has {np.count_nonzero(off)} weights off the edge list")
    if types is not None:  # Dale's law: each column (presynaptic neuron) has one sign
        signs = types.astype(np.float64)
        bad = int(np.count_nonzero(dense * signs[None, :] < 0)
                  + np.count_nonzero(np.asarray(w_out.weight) * signs[None, :] < 0))
        if bad:
            raise NeurosheetError(f"{path}: {bad} weight(s) break the file's E/I types")
    return NirSheet(post, pre, weight, positions, np.asarray(w_in.weight), np.asarray(w_in.bias),
                    np.asarray(w_out.weight), np.asarray(w_out.bias), meta, types)


def _scalar(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    return v
