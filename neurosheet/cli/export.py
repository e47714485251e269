"""``neurosheet export``: write a run's spiking circuit as a NIR graph (keeps the sparse edges)."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "export", help="export the spiking circuit as a NIR graph",
        description="Convert a run's rate circuit to spiking neurons (reusing the conversion "
        "saved by simulate/evaluate when the knobs match) and write it as NIR (HDF5).")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    p.add_argument("--nir", metavar="PATH", required=True, help="output NIR file (.nir / .h5)")
    p.add_argument("--rescale-time", action="store_true",
                   help="state one simulation step per 0.1 ms file step (time compressed by "
                   "sim step / 0.1 ms): snntorch's fixed-step importer then runs neurosheet's "
                   "own step; default: true time, exact for readers at the circuit's own step")
    O.add(p, "--inputs")
    O.add(p, "--seed", default=0)
    O.add(p, "--json")
    O.add_conversion(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages

    inputs = None
    if args.inputs is not None:
        from neurosheet.graph.circuit import load_run_circuit
        from neurosheet.spiking.persist import load_inputs

        inputs = load_inputs(args.inputs, load_run_circuit(args.run_dir).n_inputs)
    info = stages.export_nir(args.run_dir, args.nir, conversion=O.conversion_from_args(args),
                             seeds=O.seeds_from_args(args),
                             calibration_trials=args.calibration_trials, inputs=inputs,
                             rescale_time=args.rescale_time)
    if args.json:
        print_json(info)
    else:
        print(f"wrote {info['nir']}: {info['neurons']} CubaLIF neurons ({info['source']}), "
              f"{info['synapses']:,} recurrent synapses (dense w_rec, edge list kept), "
              f"{info['bytes']:,} bytes; spike weights per {info['file_dt_ms']:g} ms step "
              f"(neurosheet simulates at {info['sim_dt_ms']:g} ms; file time scale "
              f"{info['time_scale']:g})")
    return 0
