"""``neurosheet analyze DIR``: functional clusters of a trained run and how anatomical they are."""

from __future__ import annotations

import argparse
from typing import Any

from neurosheet.cli import options as O
from neurosheet.cli.common import non_negative, positive_int, print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.rate.analysis import NORMALIZATIONS

    p = subs.add_parser(
        "analyze", help="modularity of a run: task-variance clusters, compactness, Q, wiring",
        description="Cluster the units of a trained run by task variance (Yang et al. 2019) and "
        "measure how compact the clusters are on the sheet, Newman's Q of |W_rec| with the "
        "clusters as partition, wiring length, sparsity and the autapse share.")
    p.add_argument("run_dir", metavar="DIR", help="run directory with graph.npz and circuit.npz")
    O.add(p, "--plot")
    O.add(p, "--json")
    p.add_argument("--rates", metavar="FILE",
                   help="npz with rates/<task> [T,B,N] (and mask/<task>) instead of running tasks")
    p.add_argument("--structure-only", action="store_true",
                   help="only synapses, wiring length and autapse share (no rates needed)")
    O.add(p, "--trials", default=64)
    O.add(p, "--seed", default=0)
    p.add_argument("--k-max", type=positive_int, default=29, help="largest k tried (default 29)")
    O.add(p, "--distance", default="euclidean")
    p.add_argument("--perm", type=positive_int, default=200, help="null relabellings (default 200)")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default="max",
                   help="task-variance normalization per unit (default max)")
    p.add_argument("--active-threshold", type=non_negative, default=1e-3,
                   help="units with summed task variance above this are clustered")
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.core.errors import NeurosheetError
    from neurosheet.graph.circuit import load_run_circuit
    from neurosheet.rate.analysis import analyze_circuit, functional_clusters, load_rates, task_rates

    circuit = load_run_circuit(args.run_dir)
    clusters = None
    if args.structure_only:
        if args.plot:
            raise NeurosheetError("--plot needs the clusters; drop --structure-only")
    else:
        if args.rates:
            rates, masks = load_rates(args.rates)
        else:
            rates, masks = task_rates(circuit, args.trials, args.seed)
        clusters = functional_clusters(rates, masks, normalization=args.normalization,
                                       active_threshold=args.active_threshold, k_max=args.k_max,
                                       seed=args.seed)
        if clusters.variance.shape[0] != circuit.n:
            raise NeurosheetError(f"rates have {clusters.variance.shape[0]} units, the circuit "
                                  f"{circuit.n}")
    report = analyze_circuit(circuit, clusters, args.distance, args.perm, args.seed)
    if args.plot:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.analysis import analysis_figure

        save_figure(analysis_figure(circuit, clusters, report), args.plot)  # type: ignore[arg-type]
    if args.json:
        print_json(report)
    else:
        print(_text(report))
        if args.plot:
            print(f"figure: {args.plot}")
    return 0


def _text(report: dict[str, Any]) -> str:
    s = report["structure"]
    lines = [
        f"units {s['n']}, connected {s['connected_units']}; nonzero synapses: recurrent "
        f"{s['rec']['nonzero']} (density {s['rec']['density_nonzero']:.2%}), input "
        f"{s['inp']['nonzero']}, readout {s['out']['nonzero']}",
        f"wiring length ({s['metric']}, sheet units): recurrent {s['rec']['wiring_length']:.4g}, "
        f"input {s['inp']['wiring_length']:.4g}, readout {s['out']['wiring_length']:.4g}; "
        f"autapse share of |W_rec| {s['diagonal_fraction']:.3f}",
    ]
    if "functional" in report:
        f, a = report["functional"], report["anatomical"]
        sp = a["spatial"]["pooled"]
        lines += [
            f"functional clusters: k = {f['k']} (silhouette {f['best_silhouette']:.3f}) over "
            f"{f['active_units']} active units, sizes {f['cluster_sizes']}",
            f"spatial compactness: within-cluster distance {sp['observed']:.3g} vs null "
            f"{sp['null_mean']:.3g} (ratio {sp['ratio']:.3f}, z = {sp['z']:.2f})",
            f"Newman Q = {a['newman_q']:.3f}; within-cluster share of |W_rec| "
            f"{a['within_fraction']:.3f}",
        ]
    return "\n".join(lines)
