"""What each conversion knob buys, measured on validation trials (issue 11, step 2).

Converts a trained run with one knob changed at a time from a base recipe and simulates the
spiking circuit (snntorch, float32) on the same validation trials (their own seed, not the
evaluation seed), printing trial success per task, mean trial success, step accuracy, Yang's
rule and the mean firing rate. The rate model at its trained sub-steps is the first row.

    PYTHONPATH=. python benchmarks/conversion_sweep.py RUN_DIR [--trials 32] [--seed 777]
        [--set tau_mem_ms=20,50 --set readout=count,li ...] [--json out.json]

Without ``--set`` it runs the default sweep (one knob at a time, listed in ``SWEEP``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import torch

from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.evaluation import RateBackend, heldout_batches, score_batches
from neurosheet.spiking.backends.snntorch import SnntorchBackend
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.persist import calibration_batch, valid_steps

BASE = {"gate": "off"}
SWEEP: list[dict] = [
    {},
    {"readout": "li", "tau_out_ms": 10.0},
    {"readout": "li", "tau_out_ms": 20.0},
    {"calibration": "neuron"},
    {"offset": False},
    {"reset": "subtract"},
    {"tau_mem_ms": 10.0},
    {"tau_mem_ms": 50.0},
    {"tau_mem_ms": 200.0},
    {"tau_mem_ms": 1e5},
    {"rate_hz": 100.0},
    {"rate_hz": 400.0},
    {"substeps": 20},
    {"substeps": 50},
    {"substeps": 1000},
]


def parse_value(text: str) -> object:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def run_one(circuit, cal, batches, knobs: dict) -> dict:
    cfg = ConversionConfig(**{**BASE, **knobs})
    sc = convert(circuit, cal.inputs, cfg, mask=cal.decision, valid=valid_steps(cal))
    backend = SnntorchBackend(device="cpu")
    rates = []

    def logits_fn(inputs: np.ndarray) -> np.ndarray:
        res = backend.run(sc, inputs)
        rates.append(res.mean_rate_hz())
        return res.logits

    t0 = time.perf_counter()
    res = score_batches(logits_fn, batches, tuple(batches))
    res["seconds"] = time.perf_counter() - t0
    res["mean_rate_hz"] = float(np.mean(rates))
    res["knobs"] = knobs
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--trials", type=int, default=32, help="validation trials per task")
    ap.add_argument("--seed", type=int, default=777, help="validation trial seed")
    ap.add_argument("--set", action="append", default=[], metavar="KNOB=V1,V2",
                    help="sweep these values of a knob (one row each) instead of SWEEP")
    ap.add_argument("--base", action="append", default=[], metavar="KNOB=V",
                    help="change the base recipe")
    ap.add_argument("--json", help="write all rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for item in args.base:
        k, v = item.split("=", 1)
        BASE[k] = parse_value(v)
    rows = SWEEP
    if args.set:
        rows = []
        for item in args.set:
            k, vals = item.split("=", 1)
            rows += [{k: parse_value(v)} for v in vals.split(",")]
    circuit = load_run_circuit(args.run_dir)
    cal = calibration_batch(circuit, 64, 0)
    batches = heldout_batches(circuit.tasks, args.trials, args.seed, rule_inputs=circuit.tasks)
    base = {**dataclasses.asdict(ConversionConfig()), **BASE}
    print(f"base recipe: {base}; {args.trials} validation trials per task, seed {args.seed}")
    rate = score_batches(RateBackend().logits_fn(circuit), batches, tuple(batches))
    names = list(batches)
    head = (f"{'variant':<28}" + "".join(f"{n[:10]:>11}" for n in names)
            + f"{'trial':>8}{'step':>8}{'yang':>8}{'Hz':>7}{'s':>6}")
    print(head)

    def show(label: str, res: dict) -> None:
        m = res["mean"]
        print(f"{label:<28}" + "".join(f"{res['per_task'][n]['trial_success']:>11.3f}"
                                       for n in names)
              + f"{m['trial_success']:>8.3f}{m['step_accuracy']:>8.3f}{m['yang_success']:>8.3f}"
              + f"{res.get('mean_rate_hz', float('nan')):>7.1f}{res.get('seconds', 0):>6.0f}",
              flush=True)

    show("rate (trained sub-steps)", rate)
    out = {"base": base, "trials": args.trials, "seed": args.seed, "rate": rate, "rows": []}
    for knobs in rows:
        label = ",".join(f"{k}={v}" for k, v in knobs.items()) or "base"
        res = run_one(circuit, cal, batches, knobs)
        out["rows"].append(res)
        show(label, res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
