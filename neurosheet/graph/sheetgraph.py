"""SheetGraph: the one sparse-graph type every stage shares.

Convention: the recurrent adjacency is an N x N CSR matrix indexed ``[post, pre]`` so that
row ``i`` lists the presynaptic partners of neuron ``i`` (its fan-in) and a weight vector
aligned with the CSR ``indices`` gives ``W[post, pre]`` with ``x_i = sum_j W_ij r_j``.
Indices within each row are sorted (canonical CSR), so the edge order is fixed by the
structure alone and any weight array of length ``synapses`` is unambiguous.

Input and readout projections are kept separately (:class:`Projection`) and counted
apart from recurrent synapses.

File format (``.npz``, written atomically): ``format="neurosheet.graph"``, ``version``,
``fingerprint`` (SHA-256 of the structure), the sheet arrays under ``sheet.*``, the
adjacency under ``adj.indptr``/``adj.indices``/``adj.shape``, optional projections under
``in.*``/``out.*`` (same CSR fields plus ``positions`` of the external units and
``region``), optional ``types`` (int8, +1 excitatory / -1 inhibitory per neuron, see
:mod:`neurosheet.graph.populations`; part of the fingerprint) and ``meta`` (JSON: the rule and
its parameters).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import read_npz, write_npz
from neurosheet.graph.populations import EXCITATORY, INHIBITORY, check_types, pair_counts
from neurosheet.graph.sheet import Sheet

FORMAT = "neurosheet.graph"
VERSION = 1


def canonical_csr(matrix: Any, shape: tuple[int, int]) -> sp.csr_array:
    """A structure-only CSR (int64 indices, sorted, no duplicates, bool data) of ``matrix``."""
    m = sp.csr_array(matrix, shape=shape)
    m.sum_duplicates()
    m.sort_indices()
    out = sp.csr_array(
        (np.ones(m.nnz, dtype=bool), m.indices.astype(np.int64), m.indptr.astype(np.int64)),
        shape=shape,
    )
    out.has_sorted_indices = True
    return out


def csr_from_edges(post: np.ndarray, pre: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """Canonical CSR structure from parallel edge arrays (duplicates merged)."""
    post = np.asarray(post, dtype=np.int64)
    pre = np.asarray(pre, dtype=np.int64)
    coo = sp.coo_array((np.ones(post.size, dtype=bool), (post, pre)), shape=shape)
    return canonical_csr(coo.tocsr(), shape)


@dataclass(frozen=True, eq=False)
class Projection:
    """Feed-forward connections between the sheet and external units (inputs or readouts).

    ``mask`` is CSR ``[post, pre]``: for an input projection ``[N, n_inputs]``, for a readout
    ``[n_outputs, N]``. ``positions`` place the external units on the sheet (used by wiring
    costs); ``region`` says which part of the sheet they touch (``all`` by default).
    """

    mask: sp.csr_array
    positions: np.ndarray
    region: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", canonical_csr(self.mask, self.mask.shape))
        object.__setattr__(self, "positions", np.asarray(self.positions, dtype=np.float64))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    @property
    def synapses(self) -> int:
        return int(self.mask.nnz)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(post, pre) index arrays in CSR order."""
        return _csr_edges(self.mask)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.indptr": self.mask.indptr,
            f"{prefix}.indices": self.mask.indices,
            f"{prefix}.shape": np.array(self.mask.shape, dtype=np.int64),
            f"{prefix}.positions": self.positions,
            f"{prefix}.region": np.array(self.region),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> Projection:
        shape = tuple(int(s) for s in arrays[f"{prefix}.shape"])
        mask = _csr_from_parts(arrays[f"{prefix}.indptr"], arrays[f"{prefix}.indices"], shape)
        return cls(mask, arrays[f"{prefix}.positions"], str(arrays[f"{prefix}.region"]))


@dataclass(frozen=True, eq=False)
class SheetGraph:
    """Neurons on a sheet plus their sparse recurrent wiring (and optional projections).

    ``types`` (optional) is each neuron's sign, +1 excitatory / -1 inhibitory (Dale's law);
    None means unconstrained neurons.
    """

    sheet: Sheet
    adjacency: sp.csr_array
    inputs: Projection | None = None
    readout: Projection | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    types: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.sheet.n
        if self.adjacency.shape != (n, n):
            raise NeurosheetError(
                f"adjacency shape {self.adjacency.shape} does not match the sheet's {n} neurons"
            )
        object.__setattr__(self, "adjacency", canonical_csr(self.adjacency, (n, n)))
        if self.types is not None:
            object.__setattr__(self, "types", check_types(self.types, n))
        if self.inputs is not None and self.inputs.shape[0] != n:
            raise NeurosheetError(f"input projection has {self.inputs.shape[0]} rows, expected {n}")
        if self.readout is not None and self.readout.shape[1] != n:
            raise NeurosheetError(
                f"readout projection has {self.readout.shape[1]} columns, expected {n}"
            )

    # ----------------------------------------------------------------- counts
    @property
    def n(self) -> int:
        """Number of neurons on the sheet."""
        return self.sheet.n

    @property
    def synapses(self) -> int:
        """Number of recurrent synapses (nonzero entries of the mask)."""
        return int(self.adjacency.nnz)

    @property
    def self_connections(self) -> int:
        """Number of autapses (diagonal entries)."""
        return int(self.adjacency.diagonal().sum())

    @property
    def density(self) -> float:
        """Recurrent synapses / N^2 (the fraction of nonzero entries of W_rec, autapses included)."""
        return self.synapses / float(self.n) ** 2

    @property
    def fan_in(self) -> np.ndarray:
        """Presynaptic partners per neuron (row counts)."""
        return np.diff(self.adjacency.indptr)

    @property
    def fan_out(self) -> np.ndarray:
        """Postsynaptic targets per neuron (column counts)."""
        return np.bincount(self.adjacency.indices, minlength=self.n)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(post, pre) index arrays of the recurrent synapses, in canonical CSR order."""
        return _csr_edges(self.adjacency)

    def edge_lengths(self, metric: str = "euclidean") -> np.ndarray:
        """Sheet distance of every recurrent synapse, in CSR order (autapses have length 0)."""
        post, pre = self.edges()
        return self.sheet.distance(pre, post, metric)

    @property
    def signed(self) -> bool:
        """True when the neurons have E/I types (every outgoing weight keeps its type's sign)."""
        return self.types is not None

    def population_summary(self) -> dict[str, Any]:
        """E and I counts and synapses per pair type (pre->post); empty for untyped neurons."""
        if self.types is None:
            return {}
        post, pre = self.edges()
        out: dict[str, Any] = {
            "excitatory": int(np.count_nonzero(self.types == EXCITATORY)),
            "inhibitory": int(np.count_nonzero(self.types == INHIBITORY)),
            "pair_synapses": pair_counts(self.types, post, pre),
        }
        if self.readout is not None:
            _, rpre = self.readout.edges()
            out["readout_from_inhibitory"] = int(np.count_nonzero(self.types[rpre] < 0))
        return out

    def projection_synapses(self) -> dict[str, int]:
        return {
            "input": self.inputs.synapses if self.inputs is not None else 0,
            "readout": self.readout.synapses if self.readout is not None else 0,
        }

    def summary(self) -> dict[str, Any]:
        """Counts every later stage reports: synapses, density, fan-in/out, wiring length."""
        fan_in, fan_out = self.fan_in, self.fan_out
        lengths = self.edge_lengths()
        proj = self.projection_synapses()
        return {
            "n": self.n,
            "synapses": self.synapses,
            "input_synapses": proj["input"],
            "readout_synapses": proj["readout"],
            "total_synapses": self.synapses + proj["input"] + proj["readout"],
            "self_connections": self.self_connections,
            "density": self.density,
            "mean_fan_in": float(fan_in.mean()),
            "max_fan_in": int(fan_in.max(initial=0)),
            "mean_fan_out": float(fan_out.mean()),
            "max_fan_out": int(fan_out.max(initial=0)),
            "total_length": float(lengths.sum()),
            "mean_length": float(lengths.mean()) if lengths.size else 0.0,
            "sheet": {
                "layout": self.sheet.layout,
                "width": self.sheet.width,
                "height": self.sheet.height,
                "periodic": self.sheet.periodic,
            },
            **{k: v for k, v in self.meta.items() if k not in ("n",)},
            **({"populations": self.population_summary()} if self.types is not None else {}),
        }

    # ----------------------------------------------------------------- torch
    def to_torch_mask(self, dtype: Any = None, device: Any = None) -> Any:
        """Dense ``[N, N]`` torch tensor with ones on the edges (for masked dense training)."""
        import torch

        mask = torch.zeros((self.n, self.n), dtype=dtype or torch.float32, device=device)
        post, pre = self.edges()
        mask[torch.as_tensor(post), torch.as_tensor(pre)] = 1
        return mask

    def to_torch_sparse(self, values: Any = None, dtype: Any = None, device: Any = None) -> Any:
        """torch sparse CSR ``[N, N]`` on the graph's edges; ``values`` default to ones."""
        import torch

        if values is None:
            values = torch.ones(self.synapses, dtype=dtype or torch.float32)
        values = torch.as_tensor(values, dtype=dtype)
        if values.shape != (self.synapses,):
            raise NeurosheetError(
                f"{values.shape[0] if values.ndim else 0} weights for {self.synapses} synapses"
            )
        return torch.sparse_csr_tensor(
            torch.as_tensor(self.adjacency.indptr),
            torch.as_tensor(self.adjacency.indices),
            values,
            size=(self.n, self.n),
            device=device,
            check_invariants=True,
        )

    # ----------------------------------------------------------------- files
    def fingerprint(self) -> str:
        """SHA-256 of the structure (positions, geometry, edges, projections).

        Weight files store it so a circuit can never be loaded onto a different graph.
        """
        h = hashlib.sha256()
        for key, arr in sorted(self._structure_arrays().items()):
            a = np.ascontiguousarray(arr)
            h.update(key.encode())
            h.update(str(a.dtype).encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes() if a.dtype.kind != "U" else str(a).encode())
        return h.hexdigest()

    def with_projections(self, inputs: Projection | None, readout: Projection | None) -> SheetGraph:
        """A copy of this graph with the given input/readout projections."""
        return SheetGraph(self.sheet, self.adjacency, inputs, readout, dict(self.meta), self.types)

    def _structure_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"sheet.{k}": v for k, v in self.sheet.to_arrays().items()}
        arrays["adj.indptr"] = self.adjacency.indptr
        arrays["adj.indices"] = self.adjacency.indices
        arrays["adj.shape"] = np.array(self.adjacency.shape, dtype=np.int64)
        if self.inputs is not None:
            arrays.update(self.inputs.to_arrays("in"))
        if self.readout is not None:
            arrays.update(self.readout.to_arrays("out"))
        if self.types is not None:  # absent for untyped graphs: their fingerprints are unchanged
            arrays["types"] = np.asarray(self.types, dtype=np.int8)
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write the graph to ``path`` (``.npz``) atomically."""
        arrays = self._structure_arrays()
        arrays["format"] = np.array(FORMAT)
        arrays["version"] = np.array(VERSION)
        arrays["fingerprint"] = np.array(self.fingerprint())
        arrays["meta"] = np.array(json.dumps(self.meta, default=_json_scalar))
        return write_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | Path, expect_fingerprint: str | None = None) -> SheetGraph:
        """Read a graph file; a corrupt, foreign or mismatched file raises one clear error."""
        path = Path(path)
        arrays = read_npz(path, "graph", FORMAT, VERSION)
        try:
            sheet = Sheet.from_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("sheet.")})
            n = sheet.n
            shape = tuple(int(s) for s in arrays["adj.shape"])
            if shape != (n, n):
                raise ValueError(f"adjacency shape {shape} for {n} neurons")
            adj = _csr_from_parts(arrays["adj.indptr"], arrays["adj.indices"], shape)
            inputs = Projection.from_arrays(arrays, "in") if "in.shape" in arrays else None
            readout = Projection.from_arrays(arrays, "out") if "out.shape" in arrays else None
            meta = json.loads(str(arrays["meta"]))
            types = np.asarray(arrays["types"]) if "types" in arrays else None
            graph = cls(sheet, adj, inputs, readout, meta, types)
        except (KeyError, ValueError, NeurosheetError) as exc:
            raise NeurosheetError(f"{path}: damaged graph file ({exc})") from None
        stored = str(arrays["fingerprint"])
        if graph.fingerprint() != stored:
            raise NeurosheetError(f"{path}: graph file is corrupt (fingerprint does not match)")
        if expect_fingerprint is not None and stored != expect_fingerprint:
            raise NeurosheetError(
                f"{path}: graph does not match the one expected (fingerprint "
                f"{stored[:12]} != {expect_fingerprint[:12]})"
            )
        return graph


def _csr_edges(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    post = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return post, m.indices.astype(np.int64)


def _csr_from_parts(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, ...]) -> sp.csr_array:
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    rows, cols = int(shape[0]), int(shape[1])
    if indptr.shape != (rows + 1,) or indptr[0] != 0 or indptr[-1] != indices.size:
        raise ValueError("inconsistent CSR index pointer")
    if np.any(np.diff(indptr) < 0) or (indices.size and (indices.min() < 0 or indices.max() >= cols)):
        raise ValueError("CSR indices out of range")
    return sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=(rows, cols))


def _json_scalar(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
