"""Synapse-budget report: does a circuit fit a neuromorphic target, and what does it cost?

The report is plain data (a JSON-ready dict) built from counts on the circuit's graph and
the target's limits, never from estimates:

- neurons; synapses (recurrent / input / readout); per-neuron fan-in (recurrent + input)
  and fan-out (recurrent + readout) against the target's limits;
- cores and chips needed: the fewest sheet tiles that meet every per-core limit, with the
  limit that set the number (*binding*), next to a random partition of the same core sizes,
  with the fraction of recurrent edges that cross cores in each;
- weights quantized to the target's bits; the task accuracy before and after comes from an
  injected ``accuracy_fn(circuit) -> float`` (e.g. the evaluation on a task suite). Without
  one the report says "not evaluated": accuracy is never estimated;
- synaptic operations per trial = sum over neurons of spikes x actual fan-out (edges, not a
  dense matrix), from per-neuron spike counts the caller passes in (a spiking simulation);
  energy = synops x the target's energy per synaptic op where it publishes one;
- a verdict: fits / does not fit, naming the first limit broken.

Readout units are counted as synapse targets (fan-out, synops) but not placed on cores:
per-core storage counts the recurrent and input synapses onto each core's neurons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import Circuit
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.hardware.partition import (
    PER_CORE_LIMITS,
    CoreLoads,
    core_loads,
    fit_tiling,
    random_partition,
)
from neurosheet.hardware.quantize import quantize_circuit
from neurosheet.hardware.targets import Target, ceil_div

AccuracyFn = Callable[[Circuit], float]
NOT_EVALUATED = "not evaluated"


@dataclass(frozen=True)
class SpikeCounts:
    """Spikes per neuron per trial (mean over ``trials``) from a spiking simulation."""

    per_neuron: np.ndarray
    trials: int = 1
    source: str = ""

    @classmethod
    def from_array(cls, counts: Any, n: int, source: str = "") -> SpikeCounts:
        """Accept ``[N]`` (per trial) or ``[trials, N]`` counts; checks shape and values."""
        arr = np.asarray(counts, dtype=np.float64)
        if arr.ndim == 1:
            trials = 1
        elif arr.ndim == 2:
            trials, arr = arr.shape[0], arr.mean(axis=0)
        else:
            raise NeurosheetError(f"spike counts must be [N] or [trials, N], got shape {arr.shape}")
        if arr.shape != (n,):
            raise NeurosheetError(
                f"spike counts are for {arr.shape[0]} neurons, the circuit has {n}")
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise NeurosheetError("spike counts must be finite and non-negative")
        return cls(arr, int(trials), source)


def graph_counts(graph: SheetGraph) -> dict[str, Any]:
    """Neurons, synapses and hardware fan-in/fan-out (projections included) of a graph."""
    n_in = graph.inputs.shape[1] if graph.inputs is not None else 0
    n_out = graph.readout.shape[0] if graph.readout is not None else 0
    in_syn = graph.inputs.synapses if graph.inputs is not None else 0
    out_syn = graph.readout.synapses if graph.readout is not None else 0
    fan_in = graph.fan_in + (np.diff(graph.inputs.mask.indptr) if graph.inputs is not None else 0)
    fan_out = graph.fan_out + readout_fan_out(graph)
    return {
        "neurons": graph.n,
        "inputs": n_in,
        "outputs": n_out,
        "synapses": {"recurrent": graph.synapses, "input": in_syn, "readout": out_syn,
                     "total": graph.synapses + in_syn + out_syn,
                     "stored_on_cores": graph.synapses + in_syn},
        "fan_in": {"max": int(fan_in.max(initial=0)), "mean": float(np.mean(fan_in)),
                   "max_recurrent": int(graph.fan_in.max(initial=0))},
        "fan_out": {"max": int(fan_out.max(initial=0)), "mean": float(np.mean(fan_out)),
                    "max_recurrent": int(graph.fan_out.max(initial=0))},
    }


def readout_fan_out(graph: SheetGraph) -> np.ndarray:
    """Readout units each neuron feeds (column counts of the readout mask)."""
    if graph.readout is None:
        return np.zeros(graph.n, dtype=np.int64)
    return np.bincount(graph.readout.mask.indices, minlength=graph.n)


def synaptic_ops(graph: SheetGraph, spikes: SpikeCounts) -> dict[str, float]:
    """Synaptic events per trial: spikes_j x fan-out_j over the actual edges (rec., readout)."""
    rec = float(spikes.per_neuron @ graph.fan_out)
    out = float(spikes.per_neuron @ readout_fan_out(graph))
    return {"spikes": float(spikes.per_neuron.sum()), "recurrent": rec, "readout": out,
            "total": rec + out}


def budget_report(
    circuit: Circuit | SheetGraph,
    target: Target,
    *,
    spikes: SpikeCounts | None = None,
    accuracy_fn: AccuracyFn | None = None,
    accuracy_cache: dict | None = None,
    accuracy_label: str = "",
    seed: int = 0,
    source: str = "",
    probe_cores: int = 4,
) -> dict[str, Any]:
    """The full budget of ``circuit`` on ``target`` (see the module docstring) as a dict.

    ``accuracy_cache`` (optional, shared across targets) keys accuracies by quantization
    level so a comparison evaluates each precision once. When the circuit fits on one core,
    crossing fractions are also measured with the sheet cut into ``probe_cores`` tiles (vs
    random), so the locality of the wiring is still reported.
    """
    graph = circuit.graph if isinstance(circuit, Circuit) else circuit
    counts = graph_counts(graph)
    checks: list[dict[str, Any]] = []

    def check(name: str, used: Any, field: str | None, limit: Any, ok: bool | None = None,
              note: str = "") -> None:
        if limit is None and ok is None:
            return
        ok = bool(used <= limit) if ok is None else ok
        entry = {"name": name, "used": used, "limit": limit, "ok": ok, "note": note}
        if field is not None:
            fig = target.figures()[field]
            entry.update(field=field, status=fig.status, source=target.citation(field))
        checks.append(entry)

    check("recurrent sheet supported", "recurrent", None, "recurrent" if target.recurrent
          else "layer-structured", ok=target.recurrent, note=target.recurrent_note)
    check("input channels", counts["inputs"], "max_inputs", target.limit("max_inputs"))
    check("output channels", counts["outputs"], "max_outputs", target.limit("max_outputs"))
    check("max fan-in per neuron", counts["fan_in"]["max"], "max_fan_in",
          target.limit("max_fan_in"), note="recurrent + input synapses")
    check("max fan-out per neuron", counts["fan_out"]["max"], "max_fan_out",
          target.limit("max_fan_out"), note="recurrent + readout synapses")

    cores = partitions = None
    loads: dict[str, CoreLoads] = {}
    if target.recurrent:
        cores, partitions, loads = _placement(graph, target, seed, check)
        if cores is not None and cores["needed"] < 2 <= min(probe_cores, graph.n):
            partitions["probe"] = locality_probe(graph, probe_cores, seed)

    report: dict[str, Any] = {
        "target": {"name": target.name, "title": target.title, "kind": target.kind},
        "source": source,
        **counts,
        "cores": cores,
        "partitions": partitions,
        "quantization": _quantization(circuit, target,
                                      accuracy_fn if target.recurrent else None, accuracy_cache,
                                      accuracy_label),
        "activity": _activity(graph, target, spikes, loads),
        "checks": checks,
        "uncertain_figures": {k: target.citation(k)
                              for k, f in target.figures().items() if f.uncertain},
        "notes": list(target.notes),
    }
    report["verdict"] = _verdict(checks)
    return report


def _placement(graph: SheetGraph, target: Target, seed: int,
               check: Callable[..., None]) -> tuple[dict | None, dict | None, dict]:
    """Fit sheet tiles to the per-core limits, compare with random, record the checks."""
    fit = fit_tiling(graph, target)
    if fit.partition is None:
        field, used, limit = fit.broken  # type: ignore[misc]
        check(f"per-core {_label(field)} (one neuron per core)", used, _fig_field(field), limit,
              ok=False, note="no partition meets this limit, even one neuron per core")
        return None, None, {}
    loads = fit.loads
    assert loads is not None
    for attr, field in PER_CORE_LIMITS:
        limit = _per_core_limit(target, field)
        if limit is not None and getattr(loads, attr) is not None:
            check(f"{_label(field)} per core (worst core)", loads.max(attr), _fig_field(field),
                  limit)
    check("cores a neuron's targets span", int(loads.fan_out_cores.max(initial=0)),
          "max_fan_out_cores", target.limit("max_fan_out_cores"),
          note=f"{int((loads.fan_out_cores - 1).clip(0).sum())} extra axons/splitters needed "
          "under sheet tiling")
    check("chips a neuron's targets span", int(loads.fan_out_chips.max(initial=0)),
          "max_fan_out_chips", target.limit("max_fan_out_chips"))
    n_cores = fit.partition.n_cores
    chips = ceil_div(n_cores, int(target.cores_per_chip.value))  # type: ignore[arg-type]
    check("chips", chips, "max_chips", target.limit("max_chips"))
    rand = random_partition(fit.partition, np.random.default_rng(seed))
    rand_loads = core_loads(graph, rand, target)
    cores = {"needed": n_cores, "chips": chips, "binding": _label(fit.binding),
             "binding_field": fit.binding, "lower_bounds": fit.lower_bounds,
             "cores_per_chip": int(target.cores_per_chip.value)}  # type: ignore[arg-type]
    partitions = {"tiling": _partition_summary(loads, target),
                  "random": {**_partition_summary(rand_loads, target), "seed": seed}}
    return cores, partitions, {"tiling": loads, "random": rand_loads}


def locality_probe(graph: SheetGraph, n_cores: int, seed: int = 0) -> dict[str, Any]:
    """Crossing-edge fractions of ``n_cores`` sheet tiles vs a random partition of equal sizes."""
    from neurosheet.hardware.partition import crossing_edges, tile_partition

    tiles = tile_partition(graph, n_cores)
    rand = random_partition(tiles, np.random.default_rng(seed))
    edges = max(graph.synapses, 1)
    return {"cores": n_cores, "seed": seed,
            "tiling_crossing_fraction": crossing_edges(graph, tiles.core) / edges,
            "random_crossing_fraction": crossing_edges(graph, rand.core) / edges,
            "note": f"the circuit fits one core; the sheet is cut into {n_cores} tiles only "
            "to measure how local its wiring is"}


def _partition_summary(loads: CoreLoads, target: Target) -> dict[str, Any]:
    from neurosheet.hardware.partition import violations

    bad = violations(loads, target)
    return {
        "cores": int(loads.neurons.size),
        "crossing_edges": loads.crossing_edges,
        "edges": loads.edges,
        "crossing_fraction": loads.crossing_fraction,
        "max_neurons": loads.max("neurons"),
        "max_synapses": loads.max("synapses"),
        "max_in_axons": loads.max("in_axons"),
        "max_out_axons": loads.max("out_axons"),
        "max_memory_bits": loads.max("memory_bits") if loads.memory_bits is not None else None,
        "max_fan_out_cores": int(loads.fan_out_cores.max(initial=0)),
        "meets_per_core_limits": not bad,
        "first_per_core_limit_broken": _label(bad[0][0]) if bad else None,
    }


def _quantization(circuit: Circuit | SheetGraph, target: Target, accuracy_fn: AccuracyFn | None,
                  cache: dict | None, label: str) -> dict[str, Any]:
    bits = target.weight_bits.value
    out: dict[str, Any] = {"bits": bits, "sign_extra": target.weight_sign_extra,
                           "accuracy": {"status": NOT_EVALUATED, "float": None,
                                        "quantized": None, "delta": None}}
    if bits is None or not isinstance(circuit, Circuit):
        out["status"] = "no weights" if bits is not None else "target publishes no weight precision"
        return out
    quantized, stats = quantize_circuit(circuit, int(bits), target.weight_sign_extra)
    out.update(stats, status="quantized")
    if accuracy_fn is None:
        return out
    cache = {} if cache is None else cache
    if "float" not in cache:
        cache["float"] = float(accuracy_fn(circuit))
    key = ("q", stats["qmax"], int(bits) == 1 and not target.weight_sign_extra)
    if key not in cache:
        cache[key] = float(accuracy_fn(quantized))
    acc_f, acc_q = cache["float"], cache[key]
    out["accuracy"] = {"status": "evaluated", "float": acc_f, "quantized": acc_q,
                       "delta": acc_q - acc_f, "metric": label}
    return out


def _activity(graph: SheetGraph, target: Target, spikes: SpikeCounts | None,
              loads: dict[str, CoreLoads]) -> dict[str, Any]:
    if spikes is None:
        return {"status": "not simulated",
                "note": "pass per-neuron spike counts from a spiking run"}
    ops = synaptic_ops(graph, spikes)
    out: dict[str, Any] = {"status": "from spike counts", "source": spikes.source,
                           "trials": spikes.trials, "spikes_per_trial": ops["spikes"],
                           "synops_per_trial": {k: ops[k] for k in ("recurrent", "readout",
                                                                   "total")}}
    # Spike packets leaving a neuron's core (chip): one per remote destination core (chip).
    out["packets_per_trial"] = {
        name: {"inter_core": float(spikes.per_neuron @ ld.remote_cores),
               "inter_chip": float(spikes.per_neuron @ ld.remote_chips)}
        for name, ld in loads.items()
    }
    fig = target.energy_per_synop_pj
    if fig is not None and fig.value is not None:
        out["energy_per_trial_uj"] = ops["total"] * float(fig.value) * 1e-6
        out["energy_per_synop_pj"] = float(fig.value)
        out["energy_source"] = target.citation("energy_per_synop_pj")
        out["energy_note"] = "synaptic events only (no neuron updates, routing or static power)"
    else:
        out["energy_per_trial_uj"] = None
        out["energy_note"] = "target publishes no energy per synaptic operation"
    return out


def _verdict(checks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    broken = next((c for c in checks if not c["ok"]), None)
    if broken is None:
        return {"fits": True, "first_broken": None, "text": "fits"}
    text = f"does not fit: {broken['name']} ({broken['used']} > {broken['limit']})"
    if broken["name"] == "recurrent sheet supported":
        text = ("does not fit: the architecture is layer-structured and cannot host a "
                "recurrent sheet")
    return {"fits": False, "first_broken": broken["name"], "text": text}


_LABELS = {
    "neurons_per_core": "neurons", "synapses_per_core": "synapses",
    "synapse_memory": "synapse memory bits", "max_in_axons_per_core": "input axons",
    "max_out_axons_per_core": "output axons",
}


def _label(field: str) -> str:
    return _LABELS.get(field, field)


def _fig_field(field: str) -> str:
    return "synapse_memory.bits_per_core" if field == "synapse_memory" else field


def _per_core_limit(target: Target, field: str) -> int | None:
    if field == "synapse_memory":
        mem = target.synapse_memory
        return None if mem is None else mem.bits_per_core.value
    return target.limit(field)  # type: ignore[return-value]


def compare_targets(circuit: Circuit | SheetGraph, targets: Sequence[Target],
                    **kwargs: Any) -> list[dict[str, Any]]:
    """Budget reports of one circuit on several targets (accuracy evaluated once per precision)."""
    cache: dict = {}
    return [budget_report(circuit, t, accuracy_cache=cache, **kwargs) for t in targets]


def load_source(path: str | Path) -> Circuit | SheetGraph:
    """A run directory's circuit, or a bare graph file (structure-only budget)."""
    from neurosheet.core.rundir import RunDir
    from neurosheet.graph.circuit import load_run_circuit

    path = Path(path)
    if path.is_file():
        return SheetGraph.load(path)
    run = RunDir(path)
    if path.is_dir() and not run.circuit.exists() and run.graph.exists():
        return SheetGraph.load(run.graph)
    return load_run_circuit(path)
