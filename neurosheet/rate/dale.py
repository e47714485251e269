"""Dale's law in the rate model: sign-constrained edge values, balanced init, the spectrum.

A graph with E/I types (:mod:`neurosheet.graph.populations`) makes every outgoing weight of a
neuron (recurrent and readout) carry its type's sign. The constraint is a *parametrization* of
the edge-value parameter, ``values = sign(pre) * |magnitude|`` (a read-only property on the
module; torch's own ``parametrize`` cannot be used because its ModuleDict reserves the name
``values``): every reader of ``values`` (any kernel, the regularizers, ``to_circuit``) sees the
constrained weights, the optimizer updates ``magnitude``, and no weight can change sign at any
step (it can only reach zero). Inputs are not constrained (they come from outside the sheet).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.populations import sign_violations
from neurosheet.graph.sheetgraph import SheetGraph


def _signed_class(cls: type) -> type:
    """``cls`` whose ``values`` is the property ``signs * |magnitude|`` (made once per class)."""
    if cls.__name__.startswith("Signed"):
        return cls
    if cls not in _SIGNED:
        def values(self: Any) -> torch.Tensor:
            return self.signs * self.magnitude.abs()

        _SIGNED[cls] = type(f"Signed{cls.__name__}", (cls,), {
            "values": property(values, doc="edge values with Dale's signs (read-only)"),
            "__doc__": f"{cls.__name__} with sign-constrained edge values (Dale's law)."})
    return _SIGNED[cls]


_SIGNED: dict[type, type] = {}


def sign_module(module: nn.Module, signs: np.ndarray) -> None:
    """Turn ``module.values`` (a Parameter) into ``signs * |magnitude|`` in place.

    The trainable tensor becomes ``module.magnitude`` (initialized to ``|values|``); weights
    that already break the signs are refused rather than silently flipped.
    """
    values = module.values.detach()
    s = torch.as_tensor(np.asarray(signs, np.float32), device=values.device)
    bad = int(((values * s) < 0).sum())
    if bad:
        raise NeurosheetError(f"{bad} weight(s) break Dale's law for this graph's E/I types",
                              "types")
    del module._parameters["values"]
    module.register_parameter("magnitude", nn.Parameter(values.abs().clone()))
    module.register_buffer("signs", s)
    module.__class__ = _signed_class(type(module))


def edge_signs(graph: SheetGraph) -> dict[str, np.ndarray]:
    """Sign of every recurrent and readout edge (its presynaptic neuron's type), CSR order."""
    if graph.types is None:
        raise NeurosheetError("the graph has no E/I types", "types")
    t = graph.types.astype(np.float32)
    _, pre = graph.edges()
    _, rpre = graph.readout.edges()  # type: ignore[union-attr]
    return {"rec": t[pre], "out": t[rpre]}


def constrain(model: Any) -> None:
    """Register the sign parametrization on a RateRNN's recurrent and readout values (in place)."""
    signs = edge_signs(model.graph)
    sign_module(model.rec, signs["rec"])
    sign_module(model.out, signs["out"])


def raw_values(module: nn.Module) -> nn.Parameter:
    """The trainable tensor behind ``module.values`` (the magnitudes when sign-constrained)."""
    if "magnitude" in module._parameters:
        return module.magnitude  # type: ignore[return-value]
    return module.values  # type: ignore[return-value]


def balanced_init(graph: SheetGraph, gain: float, gen: torch.Generator,
                  balance: bool = True) -> dict[str, np.ndarray]:
    """Sign-respecting recurrent and readout weights for an E/I graph.

    Magnitudes are half-normal scaled by ``1/sqrt(fan-in)`` of each postsynaptic neuron (its
    *actual* fan-in on the sparse graph). With ``balance`` the inhibitory weights of every row
    are rescaled so that the row sums to zero (each neuron's E and I input cancel on average),
    which removes the outlier eigenvalue an unbalanced Dale matrix has (spikeRNN #3); the
    whole matrix is then scaled so that its spectral radius is ``gain``. Readout weights get
    the same treatment per output row.
    """
    if graph.types is None:
        raise NeurosheetError("balanced init needs E/I types", "types")
    t = graph.types.astype(np.float64)

    def signed(mask: Any, pre_types: np.ndarray) -> np.ndarray:
        fan_in = np.maximum(np.diff(mask.indptr), 1)
        post = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        mag = torch.randn(mask.nnz, generator=gen, dtype=torch.float64).abs().numpy()
        w = pre_types * mag / np.sqrt(fan_in[post])
        if balance:
            exc = np.bincount(post, np.where(w > 0, w, 0.0), minlength=mask.shape[0])
            inh = -np.bincount(post, np.where(w < 0, w, 0.0), minlength=mask.shape[0])
            ok = (exc > 0) & (inh > 0)  # rows with both kinds of input can be balanced
            factor = np.where(ok, exc / np.where(inh > 0, inh, 1.0), 1.0)
            w = np.where(w < 0, w * factor[post], w)
        return w

    _, pre = graph.edges()
    w_rec = signed(graph.adjacency, t[pre])
    rho = spectral_radius(graph, w_rec)
    if rho > 0:
        w_rec = w_rec * (gain / rho)
    _, rpre = graph.readout.edges()  # type: ignore[union-attr]
    w_out = signed(graph.readout.mask, t[rpre])  # type: ignore[union-attr]
    return {"w_rec": w_rec.astype(np.float32), "w_out": w_out.astype(np.float32)}


def _eigenvalues(graph: SheetGraph, w_rec: np.ndarray) -> np.ndarray:
    a = graph.adjacency
    if graph.n <= 2048:
        dense = np.zeros((graph.n, graph.n))
        post, pre = graph.edges()
        dense[post, pre] = w_rec
        return np.linalg.eigvals(dense)
    from scipy.sparse import csr_array
    from scipy.sparse.linalg import eigs

    m = csr_array((np.asarray(w_rec, np.float64), a.indices, a.indptr), shape=a.shape)
    return eigs(m, k=6, which="LM", return_eigenvectors=False, tol=1e-6)


def spectral_radius(graph: SheetGraph, w_rec: np.ndarray) -> float:
    """Largest eigenvalue modulus of W_rec."""
    return float(np.abs(_eigenvalues(graph, w_rec)).max())


def spectrum(graph: SheetGraph, w_rec: np.ndarray) -> dict[str, Any]:
    """The recurrent spectrum a Dale initialization must be checked on.

    ``spectral_radius`` (max |lambda|), ``max_real`` (largest real part: > 1 grows at alpha = 1),
    ``outlier``: the eigenvalue of largest modulus and its distance from the bulk, estimated as
    ``sqrt(mean row sum of squared centred weights)`` (circular law), and ``uniform_mode``,
    ``1^T W 1 / N`` (the mean-field eigenvalue an unbalanced E/I matrix pushes out of the bulk).
    """
    ev = _eigenvalues(graph, w_rec)
    k = int(np.argmax(np.abs(ev)))
    post, _ = graph.edges()
    w = np.asarray(w_rec, np.float64)
    n = graph.n
    row_mean = np.bincount(post, w, minlength=n) / np.maximum(graph.fan_in, 1)
    bulk = float(np.sqrt(np.bincount(post, (w - row_mean[post]) ** 2, minlength=n).mean()))
    out: dict[str, Any] = {
        "spectral_radius": float(np.abs(ev).max()),
        "max_real": float(ev.real.max()),
        "outlier": {"real": float(ev[k].real), "imag": float(ev[k].imag)},
        "bulk_radius_estimate": bulk,
        "uniform_mode": float(w.sum() / n),
    }
    if graph.types is not None:
        _, pre = graph.edges()
        out["sign_violations"] = sign_violations(graph.types, pre, w)
    return out
