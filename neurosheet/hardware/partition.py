"""Assign the sheet's neurons to hardware cores and count what each core must hold.

Two partitions are compared: *sheet tiling* (balanced rectangular tiles of the sheet, so the
short-range edges of a locality-masked graph stay inside a core) and a seeded *random*
partition with exactly the same core sizes (the control without locality). For a partition
we count, per core: neurons, stored synapses (recurrent + input synapses onto its neurons),
input axons (distinct presynaptic sources feeding it, input channels included), output axon
slots (distinct (neuron, destination core) pairs) and synapse memory bits under the
target's encoding; per neuron: how many distinct cores and chips its recurrent targets span,
and how many of those are not its own (each spike is one packet to each of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.hardware.targets import Target, ceil_div

PER_CORE_LIMITS = (
    ("neurons", "neurons_per_core"),
    ("synapses", "synapses_per_core"),
    ("memory_bits", "synapse_memory"),
    ("in_axons", "max_in_axons_per_core"),
    ("out_axons", "max_out_axons_per_core"),
)


@dataclass(frozen=True, eq=False)
class Partition:
    """``core[i]`` is the core of neuron ``i`` (cores numbered 0..n_cores-1)."""

    core: np.ndarray
    n_cores: int
    method: str

    def sizes(self) -> np.ndarray:
        return np.bincount(self.core, minlength=self.n_cores)


@dataclass(frozen=True)
class CoreLoads:
    """Per-core usage of one partition (arrays of length n_cores) and per-neuron spread."""

    neurons: np.ndarray
    synapses: np.ndarray
    in_axons: np.ndarray
    out_axons: np.ndarray
    memory_bits: np.ndarray | None
    fan_out_cores: np.ndarray
    fan_out_chips: np.ndarray
    crossing_edges: int
    edges: int
    remote_cores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    remote_chips: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def crossing_fraction(self) -> float:
        return self.crossing_edges / self.edges if self.edges else 0.0

    def max(self, name: str) -> int:
        arr = getattr(self, name)
        return int(arr.max(initial=0)) if arr is not None else 0


def tile_partition(graph: SheetGraph, n_cores: int) -> Partition:
    """Balanced rectangular tiles: ``kx`` vertical bands (by x rank), each cut by y rank.

    ``kx`` follows the sheet's aspect ratio so tiles are close to square; bands get a number
    of tiles proportional to their neuron count, so every tile holds ``N / n_cores`` neurons
    (+-1) even on random layouts.
    """
    n = graph.n
    if not 1 <= n_cores <= n:
        raise NeurosheetError(f"number of cores must be in 1..{n}, got {n_cores}")
    sheet = graph.sheet
    kx = int(np.clip(round(np.sqrt(n_cores * sheet.width / sheet.height)), 1, n_cores))
    tiles_per_band = np.full(kx, n_cores // kx)
    tiles_per_band[: n_cores % kx] += 1
    x, y = sheet.positions[:, 0], sheet.positions[:, 1]
    order = np.lexsort((y, x))  # by x, then y
    band_ends = np.rint(np.cumsum(tiles_per_band) * n / n_cores).astype(np.int64)
    core = np.empty(n, dtype=np.int64)
    start, next_core = 0, 0
    for band, end in enumerate(band_ends):
        members = order[start:end]
        members = members[np.lexsort((x[members], y[members]))]  # by y, then x
        for piece in np.array_split(members, tiles_per_band[band]):
            core[piece] = next_core
            next_core += 1
        start = end
    return Partition(core, n_cores, "sheet tiling")


def random_partition(like: Partition, rng: np.random.Generator) -> Partition:
    """A random partition with the same core sizes as ``like`` (no locality)."""
    return Partition(rng.permutation(like.core), like.n_cores, "random")


def crossing_edges(graph: SheetGraph, core: np.ndarray) -> int:
    """Number of recurrent edges whose two ends sit on different cores."""
    post, pre = graph.edges()
    return int(np.count_nonzero(core[post] != core[pre]))


def core_loads(graph: SheetGraph, part: Partition, target: Target | None = None) -> CoreLoads:
    """Count per-core neurons, synapses, axons and memory, and per-neuron core/chip spread."""
    n_cores = part.n_cores
    core = part.core
    post, pre = graph.edges()
    cpost = core[post]
    # Sources feeding each core: recurrent neurons (ids 0..N-1) and input channels (N..).
    src_core = [cpost]
    src_id = [pre]
    if graph.inputs is not None:
        ipost, ipre = graph.inputs.edges()
        src_core.append(core[ipost])
        src_id.append(ipre + graph.n)
    all_core = np.concatenate(src_core)
    all_src = np.concatenate(src_id)
    n_src = graph.n + (graph.inputs.shape[1] if graph.inputs is not None else 0)
    pair, axon_syn = np.unique(all_core * n_src + all_src, return_counts=True)
    axon_core = pair // n_src
    neurons = np.bincount(core, minlength=n_cores)
    synapses = np.bincount(all_core, minlength=n_cores)
    in_axons = np.bincount(axon_core, minlength=n_cores)
    # Output slots: distinct (neuron, destination core) pairs of recurrent edges.
    dest = np.unique(pre * n_cores + cpost)
    dest_pre = dest // n_cores
    out_axons = np.bincount(core[dest_pre], minlength=n_cores)
    fan_out_cores = np.bincount(dest_pre, minlength=graph.n)
    per_chip = 1
    if target is not None and target.cores_per_chip.value:
        per_chip = int(target.cores_per_chip.value)
    dest_core = dest % n_cores
    remote_cores = np.bincount(dest_pre[dest_core != core[dest_pre]], minlength=graph.n)
    chips = np.unique(pre * n_cores + cpost // per_chip)
    chip_pre, chip_dest = chips // n_cores, chips % n_cores
    fan_out_chips = np.bincount(chip_pre, minlength=graph.n)
    remote_chips = np.bincount(chip_pre[chip_dest != core[chip_pre] // per_chip],
                               minlength=graph.n)
    memory = None
    if target is not None and target.synapse_memory is not None:
        memory = _memory_bits(target, neurons, axon_core, axon_syn, n_cores)
    return CoreLoads(
        neurons=neurons, synapses=synapses, in_axons=in_axons, out_axons=out_axons,
        memory_bits=memory, fan_out_cores=fan_out_cores, fan_out_chips=fan_out_chips,
        crossing_edges=int(np.count_nonzero(cpost != core[pre])), edges=int(post.size),
        remote_cores=remote_cores, remote_chips=remote_chips,
    )


def _memory_bits(target: Target, neurons: np.ndarray, axon_core: np.ndarray,
                 axon_syn: np.ndarray, n_cores: int) -> np.ndarray:
    mem = target.synapse_memory
    assert mem is not None
    if mem.bits_per_synapse is not None and mem.bits_per_synapse.value is not None:
        syn_bits = np.full(n_cores, int(mem.bits_per_synapse.value))
    else:
        weight = int(target.weight_bits.value or 0) + int(target.weight_sign_extra)
        syn_bits = weight + mem.index_bits(neurons)
    bits = mem.axon_bits(axon_syn, syn_bits[axon_core])
    return np.bincount(axon_core, weights=bits, minlength=n_cores).astype(np.int64)


def violations(loads: CoreLoads, target: Target) -> list[tuple[str, int, int]]:
    """Per-core limits the loads break, as (limit field, worst usage, limit), in check order."""
    out = []
    for attr, field_name in PER_CORE_LIMITS:
        fig = getattr(target, field_name)
        if field_name == "synapse_memory":
            fig = None if fig is None else fig.bits_per_core
        if fig is None or fig.value is None or getattr(loads, attr) is None:
            continue
        worst = loads.max(attr)
        if worst > fig.value:
            out.append((field_name, worst, int(fig.value)))
    return out


@dataclass(frozen=True)
class TilingFit:
    """Outcome of sizing sheet tiles to a target's per-core limits."""

    partition: Partition | None
    loads: CoreLoads | None
    lower_bounds: dict[str, int]
    binding: str
    broken: tuple[str, int, int] | None


def lower_bounds(graph: SheetGraph, target: Target) -> dict[str, int]:
    """Cores needed by counting alone (neurons, stored synapses), before any partition."""
    stored = graph.synapses + (graph.inputs.synapses if graph.inputs is not None else 0)
    out = {"neurons_per_core": ceil_div(graph.n, int(target.neurons_per_core.value))}  # type: ignore[arg-type]
    if target.synapses_per_core is not None and target.synapses_per_core.value:
        out["synapses_per_core"] = ceil_div(stored, int(target.synapses_per_core.value))
    return out


def fit_tiling(graph: SheetGraph, target: Target) -> TilingFit:
    """Fewest sheet tiles whose every core meets the target's per-core limits.

    Starts from the counting lower bound, grows the core count geometrically until the
    tiling fits, then bisects back down. ``binding`` names the limit that set the count
    (the counting bound, or the per-core limit that forced more tiles). When even one
    neuron per core breaks a limit, ``partition`` is None and ``broken`` says which.
    """
    bounds = lower_bounds(graph, target)
    lo = max(bounds.values())
    lo = min(lo, graph.n)

    def attempt(c: int) -> tuple[Partition, CoreLoads, list]:
        part = tile_partition(graph, c)
        loads = core_loads(graph, part, target)
        return part, loads, violations(loads, target)

    part, loads, bad = attempt(lo)
    if not bad:
        binding = max(bounds, key=lambda k: bounds[k])
        return TilingFit(part, loads, bounds, binding, None)
    first_bad = bad[0][0]
    fail, hi = lo, lo
    best = None
    while best is None:
        if hi >= graph.n:
            return TilingFit(None, loads, bounds, bad[0][0], bad[0])
        hi = min(graph.n, max(hi + 1, int(hi * 1.5)))
        part, loads, bad = attempt(hi)
        if bad:
            fail, first_bad = hi, bad[0][0]
        else:
            best = (part, loads)
    while hi - fail > 1:
        mid = (fail + hi) // 2
        part, loads, bad = attempt(mid)
        if bad:
            fail, first_bad = mid, bad[0][0]
        else:
            hi, best = mid, (part, loads)
    return TilingFit(best[0], best[1], bounds, first_bad, None)
