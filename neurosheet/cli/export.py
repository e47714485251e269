"""``neurosheet export``: write a run's spiking circuit as a NIR graph (keeps the sparse edges)."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.spiking.rundir import add_conversion_args

    p = subs.add_parser(
        "export", help="export the spiking circuit as a NIR graph",
        description="Convert a run's rate circuit to spiking neurons (reusing the conversion "
        "saved by simulate/evaluate when the knobs match) and write it as NIR (HDF5).")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    p.add_argument("--nir", metavar="PATH", required=True, help="output NIR file (.nir / .h5)")
    p.add_argument("--inputs", metavar="FILE",
                   help="calibration inputs [T, B, n_in] (.npy) instead of task trials")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration trials")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_conversion_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.graph.circuit import load_run_circuit
    from neurosheet.spiking.nir import read_nir, write_nir
    from neurosheet.spiking.rundir import config_from_args, load_inputs, spiking_for_run

    circuit = load_run_circuit(args.run_dir)
    inputs = None if args.inputs is None else load_inputs(args.inputs, circuit.n_inputs)
    sc = spiking_for_run(args.run_dir, circuit, config_from_args(args),
                         args.calibration_trials, args.seed, inputs=inputs,
                         tuned=not args.converted)
    path = write_nir(sc, args.nir)
    back = read_nir(path)  # verify the file before reporting success
    info = {"nir": str(path), "neurons": sc.n, "synapses": back.synapses,
            "bytes": path.stat().st_size, "substeps": sc.substeps,
            "sim_dt_ms": sc.sim_dt_ms, "source": sc.meta.get("source", "conversion")}
    if args.json:
        print_json(info)
    else:
        print(f"wrote {path}: {sc.n} neurons, {back.synapses:,} recurrent synapses (edge list "
              f"kept), {info['bytes']:,} bytes; dt {sc.sim_dt_ms:g} ms ({info['source']})")
    return 0
