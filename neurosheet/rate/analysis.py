"""Modularity analysis of a trained circuit: functional clusters and how anatomical they are.

Functional modules follow Yang et al. 2019 (gyyang/multitask ``analysis/variance.py`` and
``clustering.py``): a unit's *task variance* is the variance of its rate across trials at each
time step, averaged over time; units whose summed variance passes a threshold are *active*;
each active unit's vector is normalized (by its max over tasks by default); k-means for
k = 2..K and the k with the best silhouette gives the clusters. scikit-learn is not a
dependency: k-means is ``scipy.cluster.vq.kmeans2`` (k-means++, several seeded inits, lowest
inertia kept) and the silhouette is computed here.

Anatomical modularity (our definitions; the Growing Brains paper's are not public):
spatial compactness of each cluster on the sheet (mean within-cluster pairwise distance
against a seeded label-permutation null, as a ratio and a z-score; ratio < 1 and z > 0 mean
more compact than chance), Newman's Q of the symmetrized |W_rec| with the functional clusters
as the partition, and the fraction of |W_rec| that stays within clusters (both between
distinct clustered units: autapses are reported apart as the diagonal fraction). Structure
metrics (synapse counts, wiring length Σ|w|·d, diagonal fraction) need no rates.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.vq import kmeans2

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.geometry import distance, pairwise_distances
from neurosheet.core.io import load_npz_arrays
from neurosheet.graph.circuit import Circuit

NORMALIZATIONS = ("max", "sum", "none")


# ----------------------------------------------------------------------------- task variance
def task_variance(rates: Mapping[str, np.ndarray],
                  masks: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """Task variance ``[N, n_tasks]``: Var over trials of each unit's rate, averaged over time.

    ``rates[task]`` is ``[T, B, N]``; ``masks[task]`` (optional, ``[T, B]`` or ``[T]``, True =
    use) drops time steps of trials that should not count (e.g. the initial fixation). Only time
    steps with at least two trials enter the average. Population variance, as Yang 2019.
    """
    if not rates:
        raise NeurosheetError("task variance needs rates of at least one task")
    names = list(rates)
    columns = []
    n_units = None
    for name in names:
        r = np.asarray(rates[name], dtype=np.float64)
        if r.ndim != 3:
            raise NeurosheetError(f"rates of task {name!r} must be [T, B, N], got shape {r.shape}")
        if n_units is not None and r.shape[2] != n_units:
            raise NeurosheetError(f"task {name!r} has {r.shape[2]} units, expected {n_units}")
        n_units = r.shape[2]
        m = np.ones(r.shape[:2]) if masks is None or name not in masks else \
            np.broadcast_to(np.asarray(masks[name], dtype=np.float64).reshape(r.shape[0], -1),
                            r.shape[:2])
        count = m.sum(1)  # [T]
        valid = count >= 2
        if not valid.any():
            raise NeurosheetError(f"task {name!r} has no time step with two or more trials")
        w = m[valid][..., None]
        rv, c = r[valid], count[valid][:, None]
        mean = (w * rv).sum(1) / c
        var = (w * (rv - mean[:, None]) ** 2).sum(1) / c
        columns.append(var.mean(0))
    return np.stack(columns, axis=1), names


def normalize_task_variance(tv: np.ndarray, method: str = "max",
                            active_threshold: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(normalized rows of the active units, their indices); active = Σ_task TV > threshold."""
    if method not in NORMALIZATIONS:
        raise NeurosheetError(f"unknown normalization {method!r}; use one of {', '.join(NORMALIZATIONS)}")
    active = np.flatnonzero(tv.sum(1) > active_threshold)
    x = tv[active]
    if method == "max":
        x = x / x.max(1, keepdims=True)
    elif method == "sum":
        x = x / x.sum(1, keepdims=True)
    return x, active


# ----------------------------------------------------------------------------- clustering
def silhouette_samples(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample silhouette (b - a) / max(a, b), Euclidean; 0 for members of singleton clusters."""
    x = np.asarray(x, dtype=np.float64)
    _, lab = np.unique(labels, return_inverse=True)
    k = lab.max() + 1
    if k < 2:
        raise NeurosheetError("the silhouette needs at least two clusters")
    sq = (x * x).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    np.fill_diagonal(d, 0.0)
    onehot = np.eye(k)[lab]
    sizes = onehot.sum(0)
    sums = d @ onehot  # [M, k] summed distance to each cluster
    own = sizes[lab]
    a = np.where(own > 1, sums[np.arange(lab.size), lab] / np.maximum(own - 1, 1), 0.0)
    others = np.where(onehot.astype(bool), np.inf, sums / sizes)
    b = others.min(1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return s


def silhouette_score(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette over samples (the score Yang 2019 maximizes to pick k)."""
    return float(silhouette_samples(x, labels).mean())


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 10,
           iters: int = 50) -> tuple[np.ndarray, float]:
    """Best of ``n_init`` seeded k-means++ runs (scipy kmeans2): (labels, inertia)."""
    best: tuple[np.ndarray, float] | None = None
    for _ in range(n_init):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "one of the clusters is empty"
            centers, labels = kmeans2(x, k, iter=iters, minit="++", rng=rng)
        inertia = float(((x - centers[labels]) ** 2).sum())
        if best is None or inertia < best[1] - 1e-12:
            best = (labels, inertia)
    return best  # type: ignore[return-value]


@dataclass(frozen=True)
class FunctionalClusters:
    """Yang-2019 clusters: raw task variance of all units, the active units and their labels."""

    tasks: list[str]
    variance: np.ndarray       # [N, n_tasks]
    active: np.ndarray         # unit indices (sheet slots) that were clustered
    normalized: np.ndarray     # [len(active), n_tasks]
    labels: np.ndarray         # cluster of each active unit, ordered by preferred task
    k: int
    silhouette: dict[int, float]

    def unit_labels(self, n: int) -> np.ndarray:
        """Label per unit of the sheet, -1 for inactive units."""
        out = np.full(n, -1)
        out[self.active] = self.labels
        return out

    def summary(self) -> dict[str, Any]:
        sizes = np.bincount(self.labels, minlength=self.k)
        return {"k": self.k, "active_units": int(self.active.size), "cluster_sizes": sizes.tolist(),
                "silhouette": {str(k): v for k, v in self.silhouette.items()},
                "best_silhouette": self.silhouette.get(self.k, float("nan")),
                "preferred_task": [self.tasks[int(np.argmax(self.normalized[self.labels == c].sum(0)))]
                                   for c in range(self.k)]}


def _order_by_preferred_task(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    present = np.unique(labels)
    pref = [int(np.argmax(x[labels == c].sum(0))) for c in present]
    order = present[np.lexsort((present, pref))]
    remap = np.empty(labels.max() + 1, dtype=np.int64)
    remap[order] = np.arange(order.size)
    return remap[labels]


def cluster_units(x: np.ndarray, k_max: int = 29, seed: int = 0, n_init: int = 10
                  ) -> tuple[np.ndarray, int, dict[int, float]]:
    """k-means for k = 2..k_max (capped below the number of rows); keep the best silhouette."""
    m = x.shape[0]
    if m < 3:
        raise NeurosheetError(f"only {m} active unit(s): too few to cluster")
    rng = np.random.default_rng(seed)
    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, min(k_max, m - 1) + 1):
        labels, _ = kmeans(x, k, rng, n_init)
        if np.unique(labels).size < 2:
            continue
        scores[k] = silhouette_score(x, labels)
        if best is None or scores[k] > best[0]:
            best = (scores[k], labels)
    if best is None:
        raise NeurosheetError("k-means found no split of the active units (all identical?)")
    labels = _order_by_preferred_task(x, best[1])
    return labels, int(labels.max() + 1), scores


def functional_clusters(rates: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None = None,
                        *, normalization: str = "max", active_threshold: float = 1e-3,
                        k_max: int = 29, seed: int = 0, n_init: int = 10) -> FunctionalClusters:
    """Yang 2019: task variance -> active units -> normalization -> k-means + silhouette."""
    tv, names = task_variance(rates, masks)
    x, active = normalize_task_variance(tv, normalization, active_threshold)
    labels, k, scores = cluster_units(x, k_max, seed, n_init)
    return FunctionalClusters(names, tv, active, x, labels, k, scores)


# ----------------------------------------------------------------------------- anatomy
def newman_q(adjacency: np.ndarray, labels: np.ndarray) -> float:
    """Newman modularity Q = Σ_c [A_cc / 2m - (k_c / 2m)^2] of a symmetric weighted adjacency."""
    a = np.asarray(adjacency, dtype=np.float64)
    total = a.sum()
    if total <= 0:
        return 0.0
    _, lab = np.unique(labels, return_inverse=True)
    onehot = np.eye(lab.max() + 1)[lab]
    block = onehot.T @ a @ onehot
    degree = block.sum(1)
    return float(np.trace(block) / total - ((degree / total) ** 2).sum())


def within_fraction(weights_abs: np.ndarray, labels: np.ndarray) -> float:
    """Share of Σ|W| (off-diagonal) between units of the same cluster."""
    w = np.asarray(weights_abs, dtype=np.float64).copy()
    np.fill_diagonal(w, 0.0)
    total = w.sum()
    same = labels[:, None] == labels[None, :]
    return float(w[same].sum() / total) if total > 0 else float("nan")


def spatial_compactness(distances: np.ndarray, labels: np.ndarray, n_perm: int = 200,
                        seed: int = 0) -> dict[str, Any]:
    """Mean within-cluster pairwise distance vs a label-permutation null (seeded).

    Returns per-cluster and pooled ``observed``, ``null_mean``, ``null_std``, ``ratio`` =
    observed / null_mean and ``z`` = (null_mean - observed) / null_std (z > 0: compact).
    """
    _, lab = np.unique(labels, return_inverse=True)
    k = lab.max() + 1
    d = np.asarray(distances, dtype=np.float64)
    sizes = np.bincount(lab, minlength=k)
    pairs = sizes * (sizes - 1.0)

    def stats(lb: np.ndarray) -> tuple[np.ndarray, float]:
        onehot = np.eye(k)[lb]
        sums = np.einsum("ik,ij,jk->k", onehot, d, onehot)  # diagonal of d is 0
        per = np.divide(sums, pairs, out=np.full(k, np.nan), where=pairs > 0)
        return per, float(sums.sum() / max(pairs.sum(), 1.0))

    obs, pooled = stats(lab)
    rng = np.random.default_rng(seed)
    null = [stats(rng.permutation(lab)) for _ in range(n_perm)]
    null_per = np.array([n[0] for n in null])
    null_pooled = np.array([n[1] for n in null])

    def summarize(o: Any, nl: np.ndarray) -> dict[str, Any]:
        mu, sd = np.nanmean(nl, 0), np.nanstd(nl, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = o / mu
            z = (mu - o) / np.where(sd > 0, sd, np.nan)
        return {"observed": o, "null_mean": mu, "null_std": sd, "ratio": ratio, "z": z}

    per = summarize(obs, null_per)
    return {"pooled": {k_: float(v) for k_, v in summarize(pooled, null_pooled).items()},
            "per_cluster": {k_: [float(x) for x in v] for k_, v in per.items()},
            "n_perm": n_perm, "seed": seed}


def anatomical_modularity(circuit: Circuit, clusters: FunctionalClusters, metric: str = "euclidean",
                          n_perm: int = 200, seed: int = 0) -> dict[str, Any]:
    """Spatial compactness, Newman Q and within-cluster weight share of the functional clusters."""
    units = clusters.active
    if units.max(initial=-1) >= circuit.n:
        raise NeurosheetError(f"cluster units go up to {units.max()}, the circuit has {circuit.n}")
    pos = circuit.graph.sheet.positions[units]
    d = pairwise_distances(pos, pos, metric, circuit.graph.sheet.period)
    w = np.abs(circuit.rec_matrix().toarray())[np.ix_(units, units)]
    sym = (w + w.T) / 2
    np.fill_diagonal(sym, 0.0)
    return {"spatial": spatial_compactness(d, clusters.labels, n_perm, seed),
            "newman_q": newman_q(sym, clusters.labels),
            "within_fraction": within_fraction(w, clusters.labels),
            "metric": metric}


def structure_metrics(circuit: Circuit, metric: str = "euclidean") -> dict[str, Any]:
    """Synapses with nonzero weight, wiring length Σ|w|·d (sheet units) and diagonal fraction."""
    g = circuit.graph
    sheet = g.sheet
    post, pre = g.edges()
    w = np.abs(circuit.w_rec.astype(np.float64))
    d_rec = sheet.distance(pre, post, metric)
    diag = post == pre
    out: dict[str, Any] = {"n": g.n, "metric": metric}
    for name, vals, dist in (("rec", w, d_rec),
                             ("inp", np.abs(circuit.w_in), _proj_lengths(circuit, "inp", metric)),
                             ("out", np.abs(circuit.w_out), _proj_lengths(circuit, "out", metric))):
        nz = vals > 0
        out[name] = {"graph_synapses": int(vals.size), "nonzero": int(nz.sum()),
                     "sum_abs": float(vals.sum()), "wiring_length": float((vals * dist).sum()),
                     "mean_length_nonzero": float(dist[nz].mean()) if nz.any() else 0.0}
    out["rec"]["density_nonzero"] = out["rec"]["nonzero"] / g.n ** 2
    total = w.sum()
    out["diagonal_fraction"] = float(w[diag].sum() / total) if total > 0 else 0.0
    connected = np.zeros(g.n, bool)
    off = ~diag & (w > 0)
    connected[post[off]] = True
    connected[pre[off]] = True
    out["connected_units"] = int(connected.sum())
    out["total_nonzero"] = out["rec"]["nonzero"] + out["inp"]["nonzero"] + out["out"]["nonzero"]
    out["total_wiring_length"] = sum(out[k]["wiring_length"] for k in ("rec", "inp", "out"))
    return out


def _proj_lengths(circuit: Circuit, which: str, metric: str) -> np.ndarray:
    g = circuit.graph
    proj = g.inputs if which == "inp" else g.readout
    post, pre = proj.edges()  # type: ignore[union-attr]
    pos = g.sheet.positions
    if which == "inp":
        a, b = pos[post], proj.positions[pre]  # type: ignore[union-attr]
    else:
        a, b = proj.positions[post], pos[pre]  # type: ignore[union-attr]
    return distance(a, b, metric, g.sheet.period)


def analyze_circuit(circuit: Circuit, clusters: FunctionalClusters | None = None,
                    metric: str = "euclidean", n_perm: int = 200, seed: int = 0) -> dict[str, Any]:
    """One JSON-ready report: structure, plus functional and anatomical modularity if clustered."""
    report: dict[str, Any] = {"structure": structure_metrics(circuit, metric)}
    if clusters is not None:
        report["functional"] = clusters.summary()
        report["anatomical"] = anatomical_modularity(circuit, clusters, metric, n_perm, seed)
    return report


# ----------------------------------------------------------------------------- inputs
def load_rates(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Rates saved as ``.npz`` with ``rates/<task>`` ``[T, B, N]`` and optional ``mask/<task>``."""
    path = Path(path)
    arrays = load_npz_arrays(path, "rates")
    rates = {k[6:]: v for k, v in arrays.items() if k.startswith("rates/")}
    masks = {k[5:]: v for k, v in arrays.items() if k.startswith("mask/")}
    if not rates:
        raise NeurosheetError(f"{path}: no 'rates/<task>' arrays")
    return rates, masks


def task_rates(circuit: Circuit, batch: int = 64, seed: int = 0
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Rates ``[T, B, N]`` of the circuit's rate network on ``batch`` noise-free trials per task.

    Masks keep each trial's own steps after its initial fixation period (as Yang 2019 drops
    'fix1'); padding is dropped. Input and recurrent noise are off.
    """
    import torch

    from neurosheet.rate.model import RateRNN

    try:
        from neurosheet.tasks.dataset import TrialSampler
    except ImportError:
        raise NeurosheetError("running the tasks needs neurosheet.tasks; pass rates instead") from None
    if not circuit.tasks:
        raise NeurosheetError("the circuit lists no tasks; give rates of its tasks instead")
    sampler = TrialSampler(list(circuit.tasks), seed=seed, noise=False)
    if sampler.n_inputs != circuit.n_inputs:
        raise NeurosheetError(f"the tasks give {sampler.n_inputs} inputs, the circuit takes "
                              f"{circuit.n_inputs}")
    model = RateRNN.from_circuit(circuit).eval()
    rates, masks = {}, {}
    for task in sampler.tasks:
        b = sampler.sample_task(task, batch)
        with torch.no_grad():
            rates[task] = model(torch.as_tensor(b.inputs)).rates.numpy()
        t = np.arange(b.inputs.shape[0])[:, None]
        start = b.info["durations"][:, 0][None, :] if "durations" in b.info else 0
        masks[task] = (t < b.lengths[None, :]) & (t >= start)
    return rates, masks
