"""``neurosheet simulate``: run a trained circuit as a spiking network (snntorch or Brian2)."""

from __future__ import annotations

import argparse
from typing import Any

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json
from neurosheet.spiking.registry import backend_names


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "simulate", help="simulate a trained circuit as spiking neurons on the same graph",
        description="Convert a run directory's rate circuit to spiking neurons on exactly its "
        "sparse graph and simulate held-out trials of one task with a spiking backend.")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    O.add_backend(p, kind="spiking", default="snntorch")
    src = p.add_mutually_exclusive_group(required=True)
    O.add(src, "--task")
    O.add(src, "--inputs")
    O.add(p, "--trials", default=16)
    O.add(p, "--seed", default=0)
    O.add(p, "--plot")
    O.add(p, "--json")
    O.add(p, "--no-progress")
    O.add_conversion(p)
    O.add_backend_options(p, backend_names("spiking"))
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages

    if args.plot:  # before the simulation, not after
        from neurosheet.reports.plots import check_figure_path

        check_figure_path(args.plot, "plot")
    inputs = None
    if args.inputs:
        from neurosheet.graph.circuit import load_run_circuit
        from neurosheet.spiking.persist import load_inputs

        inputs = load_inputs(args.inputs, load_run_circuit(args.run_dir).n_inputs)
    seeds = O.seeds_from_args(args)
    common = {"conversion": O.conversion_from_args(args), "seeds": seeds,
              **O.backend_options(args, args.backend)}
    summary = stages.simulate(args.run_dir, args.backend, task=args.task, inputs=inputs,
                              trials=args.trials, trial_seed=seeds.test,
                              calibration_trials=args.calibration_trials,
                              progress=O.progress(args), **common)
    for key in ("result", "batch", "spiking", "rate_logits", "inputs"):
        summary.pop(key)
    if args.plot:
        summary["plot"] = str(stages.raster(args.run_dir, args.backend, args.plot, task=args.task,
                                            inputs=inputs, trial_seed=seeds.test, **common))
    if args.json:
        print_json(summary)
        return 0
    _print(summary)
    return 0


def _print(s: dict[str, Any]) -> None:
    c = s["conversion"]
    nm = c["neuron"]
    print(f"{s['backend']} ({s.get('target') or s.get('device')}): {s['trials']} trials x "
          f"{s['biological_s_per_trial']:.2f} s, K = {c['substeps']} steps of "
          f"{s['sim_dt_ms']:g} ms; CubaLIF tau_syn {nm['tau_syn_ms']:.1f} ms, tau_mem "
          f"{nm['tau_mem_ms']:g} ms, reset {nm['reset']}, readout {nm['readout']} "
          f"({c['meta'].get('source', 'conversion')})")
    print(f"  spikes {s['spikes']:,}  mean rate {s['mean_rate_hz']:.1f} Hz  "
          f"synaptic events {s['synaptic_events']:,}")
    print(f"  build {s['build_s']:.2f} s  run {s['run_s']:.2f} s  "
          f"real-time factor {s['real_time_factor']:.3f} (wall s per biological s per trial)")
    print(f"  decisions agree with the rate network on {s['decision_agreement_with_rate']:.1%} "
          "of trials")
    if "spiking_accuracy" in s:
        sa, ra = s["spiking_accuracy"], s["rate_accuracy"]
        for m in sa:
            print(f"  {m:<15} spiking {sa[m]:.3f}  rate {ra[m]:.3f}")
    gate = c["meta"].get("gate")
    if gate:
        print(f"  gate: rate model at K sub-steps agrees on {gate['agreement']:.1%} of decisions "
              f"({'passed' if gate['passed'] else 'FAILED'})")
    for note in c["meta"].get("notes", []):
        print(f"  note: {note}")
    if "plot" in s:
        print(f"  raster: {s['plot']}")
