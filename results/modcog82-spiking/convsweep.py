"""Conversion alone on the 82-task circuit: validation trial success per (tau_mem, reset, K, rate).

    PYTHONPATH=. python results/modcog82-spiking/convsweep.py 20:zero:20:400 1000:subtract:100:400
(run from the folder holding the run directory ``run82``; output: conversion-sweep.txt)
"""

import sys
import time

from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.evaluation import heldout_batches
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.finetune import validate
from neurosheet.spiking.persist import calibration_batch

rc = load_run_circuit("run82")
cal = calibration_batch(rc, 64, 0)
val = heldout_batches(rc.tasks, 8, 777, rule_inputs=rc.tasks, mode="reference")
for spec in sys.argv[1:]:
    tau, reset, k, rate = spec.split(":")
    cfg = ConversionConfig(substeps=int(k), tau_mem_ms=float(tau), reset=reset,
                           rate_hz=float(rate), gate="off")
    t = time.time()
    r = validate(convert(rc, cal.inputs, cfg), val, int(k))
    print(spec, round(r["mean"]["trial_success"], 3), round(r["mean"]["step_accuracy"], 3),
          round(time.time() - t, 1), flush=True)
