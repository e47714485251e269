"""``neurosheet budget``: does a trained circuit fit a neuromorphic chip, and at what cost."""

from __future__ import annotations

import argparse
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurosheet.cli import options as O
from neurosheet.core.errors import NeurosheetError


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "budget", help="synapse budget of a circuit on hardware targets",
        description="Check a run directory's circuit against hardware target profiles "
        "(deploy/<name>.toml or paths): neurons, synapses, fan-in/out, cores and chips, "
        "sheet-tiling vs random partition, quantized weights, synaptic ops and energy.")
    p.add_argument("dir", metavar="DIR",
                   help="run directory (graph.npz + circuit.npz) or a graph file")
    O.add(p, "--targets", required=True)
    O.add(p, "--out")
    O.add(p, "--json")
    O.add(p, "--no-progress")
    p.add_argument("--spikes", metavar="FILE",
                   help="per-neuron spike counts per trial (.npy, or .npz with 'spike_counts'), "
                   "[N] or [trials, N]; default: DIR/spike_counts.npz when present")
    O.add(p, "--seed", default=0)
    p.add_argument("--evaluate", action="store_true",
                   help="evaluate task accuracy before and after weight quantization (rate "
                   "model on held-out trials of the circuit's tasks)")
    O.add(p, "--trials", default=64)
    O.add(p, "--accuracy-metric", default="trial_success")
    O.add_backend(p, kind="spiking", default=None)
    O.add(p, "--spike-trials", default=64)
    O.add_conversion(p)
    O.add_backend_options(p, O.spiking_backend_names())
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages
    from neurosheet.hardware.budget import SpikeCounts, load_source
    from neurosheet.hardware.targets import list_targets, load_target

    names = O.comma_list(args.targets)
    names = tuple(list_targets()) if names == ("all",) else names
    profiles = [load_target(t) for t in names]  # every profile checked before any work
    source = load_source(args.dir)
    graph = getattr(source, "graph", source)
    seeds = O.seeds_from_args(args)
    spikes = None
    if args.backend:
        if args.spikes:
            raise NeurosheetError("give either --backend (count spikes) or --spikes, not both")
        if not hasattr(source, "graph"):
            raise NeurosheetError("--backend needs a run directory with trained weights "
                                  "(circuit.npz), not a bare graph")
        counted = stages.count_spikes(args.dir, args.backend, trials=args.spike_trials,
                                      seeds=seeds, conversion=O.conversion_from_args(args),
                                      calibration_trials=args.calibration_trials,
                                      progress=O.progress(args),
                                      **O.backend_options(args, args.backend))
        spikes = replace(stages.load_spike_counts(args.dir, graph.n),
                         source=f"{counted.backend}, {counted.trials} held-out trials mixed "
                         f"over the circuit's tasks (seed {counted.seed})")
    elif (spike_file := _spike_file(args.spikes, args.dir)) is not None:
        spikes = SpikeCounts.from_array(_read_counts(spike_file), graph.n, str(spike_file))
    reports = stages.budget(source, profiles, spikes=spikes,
                            accuracy_trials=args.trials if args.evaluate else None,
                            metric=args.accuracy_metric, seeds=seeds, label=str(args.dir))
    if len(reports) > 1:
        return _emit_all(reports, args)
    return _emit_one(reports[0], args)


def _spike_file(arg: str | None, run_dir: str) -> Path | None:
    if arg is not None:
        path = Path(arg)
        if not path.is_file():
            raise NeurosheetError(f"spike-count file not found: {path}")
        return path
    from neurosheet.core.rundir import RunDir

    default = RunDir(run_dir).spike_counts
    return default if default.is_file() else None


def _read_counts(path: Path) -> np.ndarray:
    """Spike counts from ``.npy`` or ``.npz`` (key ``spike_counts``, or its only array)."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data
        with data:
            keys = list(data.files)
            key = "spike_counts" if "spike_counts" in keys else None
            if key is None and len(keys) == 1:
                key = keys[0]
            if key is None:
                raise NeurosheetError(
                    f"{path}: no 'spike_counts' array (found {', '.join(keys[:5])}...)")
            return data[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise NeurosheetError(f"{path}: cannot read spike counts ({exc})") from None


def _emit_one(report: dict, args: argparse.Namespace) -> int:
    from neurosheet.cli.common import print_json

    written = None
    if args.out:
        from neurosheet.reports.budget import write_budget

        written = write_budget(report, args.out)
    if args.json:
        print_json(report if written is None else {**report, "written": written})
        return 0
    print(_summary(report))
    if written:
        print(f"report: {written['markdown']}")
    return 0


def _emit_all(reports: list[dict], args: argparse.Namespace) -> int:
    from neurosheet.cli.common import print_json
    from neurosheet.reports.budget import comparison_markdown, comparison_rows, write_comparison

    written = write_comparison(reports, args.out) if args.out else None
    if args.json:
        print_json({"rows": comparison_rows(reports), **({"written": written} if written else {})})
        return 0
    print(comparison_markdown(reports))
    if written:
        print(f"report: {written['markdown']}")
    return 0


def _summary(r: dict) -> str:
    syn = r["synapses"]
    lines = [
        f"target             {r['target']['title']} ({r['target']['name']})",
        f"verdict            {r['verdict']['text']}",
        f"neurons            {r['neurons']}",
        f"synapses           {syn['recurrent']} recurrent, {syn['input']} input, "
        f"{syn['readout']} readout",
        f"fan-in / fan-out   max {r['fan_in']['max']} / max {r['fan_out']['max']}",
    ]
    if r.get("cores"):
        c, p = r["cores"], r["partitions"]
        lines += [
            f"cores / chips      {c['needed']} / {c['chips']} (binding: {c['binding']})",
            f"crossing edges     sheet tiling {p['tiling']['crossing_fraction']:.2%}, "
            f"random {p['random']['crossing_fraction']:.2%}",
        ]
        if "probe" in p:
            pr = p["probe"]
            lines.append(f"locality probe     {pr['cores']} tiles: sheet tiling "
                         f"{pr['tiling_crossing_fraction']:.2%}, random "
                         f"{pr['random_crossing_fraction']:.2%} (fits one core)")
    q = r["quantization"]
    acc = q["accuracy"]
    if q.get("status") != "quantized":
        lines.append(f"weights            {q['bits']} bits; not quantized ({q.get('status')})")
    else:
        lines.append(f"weights            {q['bits']} bits; accuracy "
                     + (f"{acc['float']:.3f} -> {acc['quantized']:.3f}"
                        if acc["status"] == "evaluated" else acc["status"]))
    a = r["activity"]
    if a["status"] == "from spike counts":
        e = a.get("energy_per_trial_uj")
        lines.append(f"synops per trial   {a['synops_per_trial']['total']:.4g}"
                     + (f", energy {e:.4g} uJ" if e is not None else ", energy not published"))
    else:
        lines.append(f"synops per trial   {a['status']}")
    return "\n".join(lines)
