"""``neurosheet budget``: does a trained circuit fit a neuromorphic chip, and at what cost."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.cli.common import positive_int
from neurosheet.core.errors import NeurosheetError


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "budget", help="synapse budget of a circuit on a hardware target",
        description="Check a run directory's circuit against a hardware target profile "
        "(deploy/<name>.toml or a path): neurons, synapses, fan-in/out, cores and chips, "
        "sheet-tiling vs random partition, quantized weights, synaptic ops and energy.")
    p.add_argument("dir", metavar="DIR",
                   help="run directory (graph.npz + circuit.npz) or a graph file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--target", metavar="NAME|PATH", help="target profile name or .toml path")
    which.add_argument("--all-targets", action="store_true",
                       help="compare every profile in deploy/")
    p.add_argument("--out", metavar="REPORT_DIR", help="write Markdown + JSON + chart here")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--spikes", metavar="FILE",
                   help="per-neuron spike counts per trial (.npy, or .npz with 'spike_counts'), "
                   "[N] or [trials, N]; default: DIR/spike_counts.npz when present")
    p.add_argument("--seed", type=int, default=0, help="seed of the random partition")
    p.add_argument("--evaluate", action="store_true",
                   help="evaluate task accuracy before and after weight quantization (rate "
                   "model on held-out trials of the circuit's tasks)")
    p.add_argument("--trials", type=positive_int, default=64,
                   help="--evaluate: held-out trials per task (default 64)")
    p.add_argument("--eval-seed", type=int, default=12345,
                   help="--evaluate: seed of the held-out trials (default 12345, as evaluate)")
    p.add_argument("--metric", default="trial_success",
                   choices=("trial_success", "step_accuracy", "yang_success"),
                   help="--evaluate: accuracy metric, mean over tasks (default trial_success: "
                   "fixation held and the right answer on every decision step)")
    p.add_argument("--simulate", dest="backend", choices=("snntorch", "brian2"),
                   help="count spikes with this spiking backend on --spike-trials held-out "
                   "trials mixed over the circuit's tasks (instead of --spikes)")
    p.add_argument("--spike-trials", type=positive_int, default=64,
                   help="--simulate: number of trials (default 64)")
    from neurosheet.spiking.rundir import add_backend_args, add_conversion_args

    add_conversion_args(p)
    add_backend_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.hardware.budget import SpikeCounts, budget_report, compare_targets, load_source
    from neurosheet.hardware.targets import list_targets, load_target

    source = load_source(args.dir)
    graph = getattr(source, "graph", source)
    spikes = None
    if args.backend:
        if args.spikes:
            raise NeurosheetError("give either --simulate or --spikes, not both")
        spikes = _simulate(source, args)
    elif (spike_file := _spike_file(args.spikes, args.dir)) is not None:
        spikes = SpikeCounts.from_array(_read_counts(spike_file), graph.n, str(spike_file))
    kwargs: dict[str, Any] = {"spikes": spikes, "seed": args.seed, "source": str(args.dir)}
    if args.evaluate:
        kwargs.update(_accuracy(source, args))
    if args.all_targets:
        reports = compare_targets(source, [load_target(t) for t in list_targets()], **kwargs)
        return _emit_all(reports, args)
    report = budget_report(source, load_target(args.target), **kwargs)
    return _emit_one(report, args)


def _accuracy(source: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``accuracy_fn`` evaluating a circuit on held-out trials of its own tasks (rate model)."""
    from neurosheet.graph.circuit import Circuit
    from neurosheet.rate.evaluation import evaluate_circuit

    if not isinstance(source, Circuit):
        raise NeurosheetError("--evaluate needs a run directory with trained weights "
                              "(circuit.npz), not a bare graph")
    if not source.tasks:
        raise NeurosheetError("--evaluate: the circuit records no tasks to evaluate on")

    def accuracy(circuit: Circuit) -> float:
        result = evaluate_circuit(circuit, circuit.tasks, args.trials, args.eval_seed)
        return float(result["mean"][args.metric])

    label = (f"{args.metric}, mean over {len(source.tasks)} task(s), {args.trials} held-out "
             f"trials each (seed {args.eval_seed}), rate model")
    return {"accuracy_fn": accuracy, "accuracy_label": label}


def _simulate(source: Any, args: argparse.Namespace) -> Any:
    """Spikes per neuron per trial from the spiking backend (steps inside each trial only)."""
    from neurosheet.graph.circuit import Circuit
    from neurosheet.hardware.budget import SpikeCounts
    from neurosheet.spiking.rundir import (
        backend_from_args,
        config_from_args,
        sampler,
        spiking_for_run,
        valid_steps,
    )

    if not isinstance(source, Circuit):
        raise NeurosheetError("--simulate needs a run directory with trained weights "
                              "(circuit.npz), not a bare graph")
    sc = spiking_for_run(args.dir, source, config_from_args(args), args.calibration_trials,
                         args.eval_seed, tuned=not args.converted)
    batch = sampler(source, args.eval_seed + 1).sample(args.spike_trials)
    result = backend_from_args(args, args.dir).run(sc, batch.inputs, progress=not args.json)
    counts = (result.counts * valid_steps(batch)[:, :, None]).sum(0)  # [trials, N]
    return SpikeCounts.from_array(counts, source.n, f"{result.backend}, {args.spike_trials} "
                                  f"held-out trials mixed over {len(source.tasks)} task(s)")


def _spike_file(arg: str | None, run_dir: str) -> Path | None:
    if arg is not None:
        path = Path(arg)
        if not path.is_file():
            raise NeurosheetError(f"spike-count file not found: {path}")
        return path
    default = Path(run_dir) / "spike_counts.npz"
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
