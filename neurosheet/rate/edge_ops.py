"""Fast products with a matrix that exists only on a graph's edges (the recurrent weights).

The paper's way, ``(M * W) @ r``, costs a dense product whatever the sparsity. Here the weights
are a torch sparse CSR matrix rebuilt from the edge values once per forward pass, and a custom
autograd function gives the two gradients with sparse kernels too:

    forward   y = W r                      (CSR @ dense)
    backward  dr = W^T dy                  (CSR of the transpose, same values permuted)
              dw_e = sum_b dy[post_e, b] r[pre_e, b]   (sampled dense-dense product, SDDMM)

so a step costs O(synapses * batch) instead of O(N^2 * batch). Which product (and whether the
fused engine of :mod:`neurosheet.rate.fused` beats both) is decided by a measured cost model,
:data:`COSTS` (per Euler sub-step: a fixed overhead plus multiply-adds at a measured rate),
not by one density cut-off: at small N the per-call overhead decides, at large N the
arithmetic. ``benchmarks/bench_kernels.py`` measures and fits it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from neurosheet.core.errors import NeurosheetError

KERNELS = ("auto", "csr", "dense")

# Seconds per Euler sub-step (forward + backward) = overhead + N * B * elementwise ns +
# multiply-adds / rate, where a sub-step does three products (W r, W^T g, the weight gradient) of
# nnz (CSR) or N^2 (dense) multiply-adds per batch column. Fitted by benchmarks/bench_kernels.py
# (non-negative least squares on relative error; 24 points N = 144-1024, density 2-100%; 1
# thread, batch 64, AMD EPYC Zen 4 at load ~12; it picks the measured fastest at 23 of 24
# points, the miss costing 1.11x). Tuple: (overhead s, elementwise ns per N*B, mult-adds/s).
COSTS: dict[str, tuple[float, float, float]] = {
    "csr": (64.4e-6, 12.76, 7.83e9),   # eager, torch sparse CSR kernels
    "dense": (0.0, 8.93, 27.2e9),      # eager, dense GEMM on W * mask
    "fused": (21.9e-6, 4.06, 17.6e9),  # the fused compiled loop
}


def step_cost(kind: str, n: int, nnz: int, batch: int = 64) -> float:
    """Modelled seconds per sub-step of implementation ``kind`` (a key of :data:`COSTS`)."""
    overhead, elem_ns, rate = COSTS[kind]
    work = 3 * batch * (n * n if kind == "dense" else nnz)
    return overhead + n * batch * elem_ns * 1e-9 + work / rate


def choose_kernel(n: int, nnz: int, batch: int = 64) -> str:
    """The cheaper eager product for an ``n``-neuron graph with ``nnz`` synapses."""
    return min(("csr", "dense"), key=lambda k: step_cost(k, n, nnz, batch))


def choose_implementation(n: int, nnz: int, batch: int = 64, fused_ok: bool = True) -> str:
    """The cheapest of ``fused``, ``csr`` and ``dense`` (``fused`` only where it is available)."""
    kinds = ("fused", "csr", "dense") if fused_ok else ("csr", "dense")
    return min(kinds, key=lambda k: step_cost(k, n, nnz, batch))



@dataclass(frozen=True, eq=False)
class EdgeStructure:
    """Index arrays of a ``[rows, cols]`` CSR structure and of its transpose (torch tensors)."""

    shape: tuple[int, int]
    post: torch.Tensor
    pre: torch.Tensor
    indptr: torch.Tensor
    indices: torch.Tensor
    t_indptr: torch.Tensor
    t_indices: torch.Tensor
    t_perm: torch.Tensor  # edge k of the transpose is edge t_perm[k] of the original
    kernel: str

    @classmethod
    def from_csr(cls, matrix: sp.csr_array, kernel: str = "auto") -> EdgeStructure:
        """Structure of a canonical CSR (sorted indices); ``kernel`` picks the product used."""
        if kernel not in KERNELS:
            raise NeurosheetError(f"unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}")
        rows, cols = matrix.shape
        nnz = int(matrix.nnz)
        if kernel == "auto":
            kernel = choose_kernel(rows, nnz)
        post = np.repeat(np.arange(rows, dtype=np.int64), np.diff(matrix.indptr))
        pre = matrix.indices.astype(np.int64)
        t = sp.csr_array((np.arange(1, nnz + 1, dtype=np.int64), (pre, post)), shape=(cols, rows))
        t.sort_indices()

        def tt(a: np.ndarray, dtype: type = np.int64) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a, dtype=dtype))

        # int32 CSR indices: the sparse kernels read half the index bytes (measured ~10% faster)
        small = np.int32 if nnz < 2**31 else np.int64
        return cls((rows, cols), tt(post), tt(pre), tt(matrix.indptr, small),
                   tt(pre, small), tt(t.indptr, small), tt(t.indices, small),
                   tt(t.data - 1), kernel)

    def to(self, device: torch.device | str) -> EdgeStructure:
        """The same structure with its index tensors on ``device``."""
        moved = {k: getattr(self, k).to(device) for k in
                 ("post", "pre", "indptr", "indices", "t_indptr", "t_indices", "t_perm")}
        return EdgeStructure(self.shape, kernel=self.kernel, **moved)

    @property
    def nnz(self) -> int:
        return int(self.post.numel())


class EdgeOperator:
    """``W @ r`` for one forward pass, with W built once from the current edge values."""

    def __init__(self, structure: EdgeStructure, values: torch.Tensor) -> None:
        self.structure = structure
        self.values = values
        s = structure
        if s.kernel == "dense":
            self.dense = torch.zeros(s.shape, dtype=values.dtype, device=values.device)
            self.dense = self.dense.index_put((s.post, s.pre), values)
        else:
            v = values.detach()
            self.w = _csr(s.indptr, s.indices, v, s.shape)
            self.wt = _csr(s.t_indptr, s.t_indices, v[s.t_perm], (s.shape[1], s.shape[0]))
            self.pattern = _csr(s.indptr, s.indices, torch.zeros_like(v), s.shape)

    def __call__(self, r: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """``W @ r (+ add)`` for ``r`` of shape ``[cols, B]``; differentiable in all inputs."""
        if self.structure.kernel == "dense":
            return self.dense @ r if add is None else torch.addmm(add, self.dense, r)
        if add is None:
            add = r.new_zeros(())
        return _CsrMatmul.apply(self.values, r, add, self.w, self.wt, self.pattern)


class _CsrMatmul(torch.autograd.Function):
    """Autograd of ``W @ r`` with W sparse CSR on fixed edges (gradient only on those edges)."""

    @staticmethod
    def forward(ctx, values, r, add, w, wt, pattern):  # type: ignore[override]
        ctx.save_for_backward(r)
        ctx.wt, ctx.pattern, ctx.add_shape = wt, pattern, add.shape
        if add.dim() == 0:
            return w @ r
        return torch.addmm(add, w, r)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (r,) = ctx.saved_tensors
        grad = grad.contiguous()
        grad_r = ctx.wt @ grad if ctx.needs_input_grad[1] else None
        grad_v = None
        if ctx.needs_input_grad[0]:
            grad_v = torch.sparse.sampled_addmm(ctx.pattern, grad, r.T, beta=0.0).values()
        grad_add = None
        if ctx.needs_input_grad[2]:
            grad_add = grad if len(ctx.add_shape) else grad.sum().reshape(())
        return grad_v, grad_r, grad_add, None, None, None


def _csr(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR tensor on a structure we built (valid by construction: no checks, no
    "beta" warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)
