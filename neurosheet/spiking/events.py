"""Event-driven recurrent propagation: only the out-edges of the neurons that spiked.

A spiking sheet at 10-30 Hz and 1 ms steps has 1-3% of its neurons spiking per step, yet a
sparse product ``W @ s`` streams every synapse every step (DRAM-bound at N = 8,192). Here the
recurrent current of one step is a scatter of the spikes' out-edges, batched over trials::

    (pre, trial) of every spike  ->  out-edges of pre (pre-major copy of the edge list)
    rec[post * B + trial] += w      (``index_add_`` on a flattened [N, B] view)

The out-edges are stored pre-major, padded to the largest fan-out (ELL: ``[N, F]`` targets and
values, padding points at a dummy row N with weight 0) when that costs at most
:data:`ELL_MAX_PADDING` x the edges, else as a ragged CSC (column pointers + targets) gathered
with ``repeat_interleave``. For every post-synaptic neuron the contributions are added in
increasing pre order, as Brian2 does (its synapses are created in the graph's CSR order), so in
float64 the spikes are those of the products and of Brian2 (on CPU; CUDA's ``index_add_`` adds
in any order).

When it pays is a measured cost model, :data:`EVENT_COSTS` (per step, 1 torch thread,
float32, fitted to ``benchmarks/bench_spiking_scale.py --fit`` on the 2-core AMD EPYC machine:
N = 256-8,192 at density 0.05, batch 1/4/16, spike fractions 0.1-10%; it puts the crossover
within 1.5x of the measured one)::

    scatter   8 us (+ 27 us when B > 1) + 3.5 ns x f x gathered edges (spikes x fan-out)
    CSR       10 us + synapses x (0.9 ns + 0.06 ns x B)
    dense     5 us + N^2 x (0.1 ns + 0.03 ns x B)

where ``f = max(1, N B x 4 bytes / 512 KiB) ** 0.4`` is the scatter's cache penalty once the
``[N, B]`` current it writes into outgrows the cache (whole simulations, CPU time: 4.4 ns per
edge at N B = 131,072, 5.9 at 524,288, 8.6 at 1,048,576; without it the model picked the
scatter at N = 65,536, 16 trials, where the CSR product was 1.4x faster).

:func:`use_events` applies it to the spikes of every step. The fraction of (neuron, trial)
pairs spiking in a step below which the scatter is taken, for 1 / 16 / 256 trials: N = 1,024
at 5% (51 synapses per neuron) 29% / 2.5% / 1.3%; N = 8,192 at 5% (406) 27% / 3.3% / 0.6%;
N = 65,536 at 439 synapses per neuron 27% / 1.5% / 0.3%; N = 256 at 10% (dense) 24% / 2.2% /
8%. A realistic 10-30 Hz at 1 ms steps is 1-3% (at 5 ms steps 5-15%, where batches of trials
take the product).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

ELL_MAX_PADDING = 2.0  # pad to the largest fan-out only while that at most doubles the edges

# per step: (overhead s, extra overhead s when batch > 1, s per unit, s per unit and trial);
# unit = a gathered edge (events), a synapse (csr), an N^2 entry (dense). See the docstring.
EVENT_COSTS: dict[str, tuple[float, float, float, float]] = {
    "events": (8e-6, 27e-6, 3.5e-9, 0.0),
    "csr": (10e-6, 0.0, 0.9e-9, 0.06e-9),
    "dense": (5e-6, 0.0, 0.1e-9, 0.03e-9),
}


SCATTER_CACHE_BYTES = 512 * 1024  # the scatter's per-edge cost grows once [N, B] outgrows this
SCATTER_GROWTH = 0.4              # ... as (bytes / SCATTER_CACHE_BYTES) ** 0.4 (measured)


def scatter_factor(n: int, batch: int, itemsize: int = 4) -> float:
    """How much dearer a scattered edge is when the ``[N, B]`` current outgrows the cache."""
    return max(1.0, n * batch * itemsize / SCATTER_CACHE_BYTES) ** SCATTER_GROWTH


def step_cost(kind: str, units: float, batch: int, n: int = 0, itemsize: int = 4) -> float:
    """Modelled seconds of one step's recurrent input by ``kind`` over ``units`` (see above);
    ``n`` sizes the current the scatter writes into (0: assume it fits the cache)."""
    overhead, batched, per, per_trial = EVENT_COSTS[kind]
    if kind == "events":
        per *= scatter_factor(n, batch, itemsize)
    return overhead + (batched if batch > 1 else 0.0) + units * (per + per_trial * batch)


def max_event_edges(kernel: str, n: int, nnz: int, batch: int, itemsize: int = 4) -> float:
    """Most gathered edges per step for which the scatter is modelled cheaper than ``kernel``."""
    product = step_cost(kernel, n * n if kernel == "dense" else nnz, batch)
    zero = step_cost("events", 0, batch)
    per = EVENT_COSTS["events"][2] * scatter_factor(n, batch, itemsize)
    return max(0.0, (product - zero) / per)


def use_events(spikes: int, mean_fan_out: float, limit: float) -> bool:
    """The rule: scatter when ``spikes`` (pre, trial) pairs gather at most ``limit`` edges."""
    return spikes * mean_fan_out <= limit


class EventStructure:
    """The graph's out-edges, pre-major, laid out for the scatter (built once per module)."""

    def __init__(self, adjacency: sp.csr_array) -> None:
        n = adjacency.shape[0]
        csc = sp.csr_array((np.arange(1, adjacency.nnz + 1, dtype=np.int64), adjacency.indices,
                            adjacency.indptr), shape=adjacency.shape).tocsc()
        csc.sort_indices()  # per pre, targets in increasing post order (Brian2's order)
        post = csc.indices.astype(np.int64)
        fan_out = np.diff(csc.indptr)
        self.n, self.nnz = n, int(adjacency.nnz)
        self.mean_fan_out = float(fan_out.mean()) if n else 0.0
        width = int(fan_out.max()) if n else 0
        self.width = width
        self.perm = torch.as_tensor(csc.data.astype(np.int64) - 1)  # CSC edge k = CSR edge perm[k]
        self.ell = n * width <= ELL_MAX_PADDING * max(self.nnz, 1) + n
        idx = np.int32 if n < 2**31 else np.int64
        if self.ell:
            slot = np.arange(post.size) - np.repeat(csc.indptr[:-1], fan_out)
            col = np.repeat(np.arange(n), fan_out)
            targets = np.full((n, width), n, dtype=idx)  # padding -> a dummy row n
            targets[col, slot] = post
            self.targets = torch.as_tensor(targets)
            self.position = torch.as_tensor(col * width + slot)  # ELL slot of CSC edge k
        else:
            self.colptr = torch.as_tensor(csc.indptr.astype(np.int64))
            self.fan_out = torch.as_tensor(fan_out.astype(np.int64))
            self.targets = torch.as_tensor(post.astype(idx))

    def to(self, device: torch.device | str) -> EventStructure:
        """This structure with its tensors on ``device`` (in place; returns self)."""
        for name in ("perm", "targets", "position", "colptr", "fan_out"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).to(device))
        return self

    def propagator(self, values: torch.Tensor, batch: int) -> EventPropagator:
        """The scatter for one forward pass: edge ``values`` (CSR order), ``batch`` trials."""
        return EventPropagator(self, values, batch)


class EventPropagator:
    """Adds ``W @ s`` into a flat ``[(N + 1) * B]`` current from the indices of the spikes."""

    def __init__(self, structure: EventStructure, values: torch.Tensor, batch: int) -> None:
        s = structure
        self.s, self.batch = s, batch
        w = values.detach()[s.perm]
        if s.ell:
            self.weights = w.new_zeros(s.n * s.width)
            self.weights[s.position] = w
            self.weights = self.weights.view(s.n, s.width)
        else:
            self.weights = w
        itype = s.targets.dtype if (s.n + 1) * batch < 2**31 else torch.int64
        self.itype = itype
        # targets as flat [(N + 1), B] indices of trial 0 (padding -> the dummy row)
        self.targets = s.targets if batch == 1 else s.targets.to(itype) * batch

    def scratch(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A zeroed flat current with the dummy padding row: ``[(N + 1) * B]``."""
        return torch.zeros((self.s.n + 1) * self.batch, dtype=dtype, device=device)

    def add(self, out: torch.Tensor, flat: torch.Tensor) -> None:
        """``out[post * B + b] += w`` for every out-edge of every spike at ``flat = pre * B + b``."""
        b, s = self.batch, self.s
        pre = flat if b == 1 else torch.div(flat, b, rounding_mode="floor")
        if s.ell:
            tgt = self.targets.index_select(0, pre)
            if b > 1:
                tgt += (flat - pre * b).to(self.itype).unsqueeze(1)
            out.index_add_(0, tgt.view(-1), self.weights.index_select(0, pre).view(-1))
            return
        cnt = s.fan_out.index_select(0, pre)
        total = int(cnt.sum())
        if not total:
            return
        ends = torch.cumsum(cnt, 0)
        edge = torch.arange(total, device=flat.device) + torch.repeat_interleave(
            s.colptr.index_select(0, pre) - (ends - cnt), cnt, output_size=total)
        tgt = self.targets.index_select(0, edge)
        if b > 1:
            tgt += torch.repeat_interleave((flat - pre * b).to(self.itype), cnt,
                                           output_size=total)
        out.index_add_(0, tgt, self.weights.index_select(0, edge))
