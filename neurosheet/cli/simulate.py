"""``neurosheet simulate``: run a trained circuit as a spiking network (snntorch or Brian2)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from neurosheet.cli.common import positive_int, print_json
from neurosheet.spiking.backends.base import BACKENDS


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.spiking.rundir import add_backend_args, add_conversion_args

    p = subs.add_parser(
        "simulate", help="simulate a trained circuit as spiking neurons on the same graph",
        description="Convert a run directory's rate circuit to IF neurons on exactly its sparse "
        "graph and simulate trials of one task with snntorch or Brian2.")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    p.add_argument("--backend", choices=BACKENDS, default="snntorch", help="spiking simulator")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", help="Mod-Cog task to simulate (one of the circuit's tasks)")
    src.add_argument("--inputs", metavar="FILE",
                     help="input array [T, B, n_in] (.npy) instead of task trials")
    p.add_argument("--trials", type=positive_int, default=16, help="trials (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trials")
    p.add_argument("--raster", metavar="PATH", help="save raster + decoded output of trial 0")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_conversion_args(p)
    add_backend_args(p)
    return p


def _accuracy(logits: np.ndarray, batch: Any, tasks: tuple[str, ...]) -> dict[str, float]:
    from neurosheet.tasks import score

    return score(logits.astype(np.float32), batch, tasks)["mean"]


def run(args: argparse.Namespace) -> int:
    from neurosheet.graph.circuit import load_run_circuit
    from neurosheet.spiking.conversion import decisions, rate_logits
    from neurosheet.spiking.rundir import (
        backend_from_args,
        config_from_args,
        load_inputs,
        sampler,
        spiking_for_run,
    )

    circuit = load_run_circuit(args.run_dir)
    config = config_from_args(args)
    batch = None
    if args.task:
        batch = sampler(circuit, args.seed).sample_task(args.task, args.trials)
        inputs, mask = batch.inputs, batch.decision
        sc = spiking_for_run(args.run_dir, circuit, config, args.calibration_trials, args.seed,
                             tuned=not args.converted)
    else:
        inputs = load_inputs(args.inputs, circuit.n_inputs)[:, : args.trials]
        mask = None
        sc = spiking_for_run(args.run_dir, circuit, config, args.calibration_trials, args.seed,
                             inputs=inputs)
    backend = backend_from_args(args, args.run_dir)
    result = backend.run(sc, inputs, record=1 if args.raster else 0, progress=not args.json)
    y_rate, _ = rate_logits(circuit, inputs)
    agree = float((decisions(y_rate, mask) == decisions(result.logits, mask)).mean())
    summary = {
        "run_dir": str(args.run_dir),
        "task": args.task,
        **result.summary(circuit.graph.fan_out),
        "real_time_factor": result.run_s / (result.biological_s * result.counts.shape[1]),
        "decision_agreement_with_rate": agree,
        "conversion": sc.summary(),
    }
    if batch is not None:
        summary["spiking_accuracy"] = _accuracy(result.logits, batch, circuit.tasks)
        summary["rate_accuracy"] = _accuracy(y_rate, batch, circuit.tasks)
    if args.raster:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.spikes import spike_figure

        steps, neurons = result.rasters[0]
        length = int(batch.lengths[0]) if batch is not None else inputs.shape[0]
        fig = spike_figure(
            steps, neurons, sc.n, sc.sim_dt_ms, sc.substeps, result.logits[:length, 0],
            rate_logits=y_rate[:length, 0],
            targets=None if batch is None else batch.targets[:length, 0],
            title=f"{args.task or args.inputs}: trial 0, {result.backend}")
        summary["raster"] = str(save_figure(fig, args.raster))
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
    if "raster" in s:
        print(f"  raster: {s['raster']}")
