"""Do the field's NIR readers reproduce neurosheet's decisions on the exported file? (issue 11)

Exports a run's spiking circuit (the fine-tuned one when the run has it, as ``neurosheet
export`` does) with ``neurosheet.spiking.nir.write_nir``, then on the same held-out trials
(``--trials`` per task, seed ``--seed``) gets logits from:
- ``neurosheet``: its own snntorch backend at the circuit's K, and ``neurosheet@file-dt`` at
  the file's step (0.1 ms: K = task step / 0.1 ms), the step the readers run at;
- ``nir-reference``: a plain Euler simulation of the file as NIR states it (no reader package);
- each reader in ``--readers``: ``snntorch.import_from_nir`` (fixed 0.1 ms step) and norse's
  ``from_nir(dt=0.1 ms)``, importing the file unedited. The harness only holds each task input
  for its task step and averages the output over each task step (the file's stated rules).
  ``norse-sim-dt`` reads a second file stated at neurosheet's own simulation step with norse
  at that step (exact when the map is right; snntorch cannot run another step).
Prints, per reader and against both neurosheet references, step accuracy, trial success and
the fraction of decision steps (pooled over all trials) with the same argmax.

The readers need packages neurosheet does not depend on (norse 1.1 and nirtorch's legacy
loader); one command creates an environment with both::

    python3 -m venv .venv-nir && .venv-nir/bin/pip install torch==2.13.0 && \
        .venv-nir/bin/pip install -e . norse==1.1.0 nirtorch==2.6

    OMP_NUM_THREADS=1 .venv-nir/bin/python benchmarks/nir_readers.py RUN_DIR \
        [--trials 32] [--seed 12345] [--readers snntorch,norse] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def spiking_circuit(run_dir: Path, substeps: int | None) -> tuple[Any, Any]:
    """The run's circuit and its spiking circuit as ``neurosheet export`` would write it."""
    from neurosheet import stages
    from neurosheet.spiking.conversion import ConversionConfig

    circuit = stages.load_circuit(run_dir)
    config = ConversionConfig(substeps=substeps) if substeps else None
    return circuit, stages.convert(run_dir, config, circuit=circuit)


def neurosheet_logits(spiking: Any, inputs: np.ndarray) -> np.ndarray:
    from neurosheet.spiking.registry import create_backend

    return create_backend("snntorch", device="cpu").run(spiking, inputs).logits


def pooled_agreement(ref: dict[str, np.ndarray], other: dict[str, np.ndarray],
                     batches: dict[str, Any]) -> float:
    """Fraction of decision steps, pooled over every trial, where the argmax is the same."""
    same = [(ref[t].argmax(-1) == other[t].argmax(-1))[b.decision] for t, b in batches.items()]
    return float(np.concatenate(same).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--trials", type=int, default=32, help="held-out trials per task")
    p.add_argument("--seed", type=int, default=12345, help="seed of the held-out trials")
    p.add_argument("--readers", default="snntorch,norse")
    p.add_argument("--substeps", type=int, help="K of neurosheet's own simulation")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nir", type=Path, help="keep the exported file here")
    p.add_argument("--rescale-time", action="store_true",
                   help="write the file with one neurosheet step per 0.1 ms file step")
    p.add_argument("--json", type=Path, help="write the numbers to this file")
    args = p.parse_args(argv)

    from neurosheet.rate.evaluation import heldout_batches
    from neurosheet.spiking.nir import read_nir, simulate, write_nir
    from neurosheet.spiking.nir_readers import compare, run_reader

    circuit, spiking = spiking_circuit(args.run_dir, args.substeps)
    if args.substeps:
        spiking = spiking.at_substeps(args.substeps)
    tasks = tuple(circuit.tasks)
    batches = heldout_batches(tasks, args.trials, args.seed)
    tmp = tempfile.TemporaryDirectory()
    path = args.nir or Path(tmp.name) / "circuit.nir"
    t0 = time.perf_counter()
    write_nir(spiking, path, rescale_time=args.rescale_time)
    export_s = time.perf_counter() - t0
    net = read_nir(path).network
    fine = spiking.at_substeps(net.steps_per_task_step)
    readers = [r for r in args.readers.split(",") if r]
    sim_path = Path(tmp.name) / "circuit-sim-dt.nir"
    if "norse-sim-dt" in readers:
        write_nir(spiking, sim_path, dt_s=spiking.sim_dt_ms / 1e3)
    refs = ["neurosheet", "neurosheet@file-dt"]
    names = [*refs, "nir-reference", *readers]
    logits: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    timing = dict.fromkeys(names, 0.0)
    for task, batch in batches.items():
        for name in names:
            t0 = time.perf_counter()
            if name == "neurosheet":
                y = neurosheet_logits(spiking, batch.inputs)
            elif name == "neurosheet@file-dt":
                y = neurosheet_logits(fine, batch.inputs)
            elif name == "nir-reference":
                y = simulate(net, batch.inputs, dtype="float32")[0]
            elif name == "norse-sim-dt":
                y = run_reader("norse", sim_path, batch.inputs, net.task_dt_s,
                               dt_s=spiking.sim_dt_ms / 1e3, batch_size=args.batch_size)
            else:
                y = run_reader(name, path, batch.inputs, net.task_dt_s,
                               batch_size=args.batch_size)
            timing[name] += time.perf_counter() - t0
            logits[name][task] = y
        print(f"{task}: done", file=sys.stderr, flush=True)

    result: dict[str, Any] = {
        "run_dir": str(args.run_dir), "tasks": list(tasks), "trials_per_task": args.trials,
        "seed": args.seed, "source": spiking.meta.get("source", "conversion"),
        "time_scale": net.meta.get("time_scale", 1.0),
        "substeps": spiking.substeps, "file_substeps": fine.substeps, "neurons": int(net.n),
        "synapses": int(net.post.size), "file_dt_s": net.dt_s, "export_s": export_s,
        "file_bytes": Path(path).stat().st_size, "seconds": timing, "against": {}}
    head = (f"{'simulation':<20}{'step acc':>10}{'trial succ':>12}"
            f"{'same decisions as':>20}{'':>14}{'seconds':>9}")
    print(f"{args.run_dir} ({result['source']}): N = {net.n}, {net.post.size:,} synapses, K = "
          f"{spiking.substeps}; file step {net.dt_s * 1e3:g} ms (K = {fine.substeps}, time "
          f"scale {result['time_scale']:g}); export "
          f"{export_s:.2f} s; {len(tasks)} tasks x {args.trials} trials (seed {args.seed})")
    print(head)
    print(f"{'':<42}{'neurosheet':>20}{'@file-dt':>14}")
    print("-" * len(head))
    for name in names:
        rows = {ref: {t: compare(logits[ref][t], logits[name][t], batches[t], tasks)
                      for t in tasks} for ref in refs}
        row = {}
        for ref in refs:
            mean = {k: float(np.mean([r[k] for r in rows[ref].values()]))
                    for k in next(iter(rows[ref].values())) if k != "trials"}
            mean["decision_agreement_pooled"] = pooled_agreement(logits[ref], logits[name],
                                                                 batches)
            row[ref] = {"per_task": rows[ref], "mean": mean}
        result["against"][name] = row
        m0, m1 = row[refs[0]]["mean"], row[refs[1]]["mean"]
        print(f"{name:<20}{m0['step_accuracy']:>10.3f}{m0['trial_success']:>12.3f}"
              f"{m0['decision_agreement_pooled']:>20.3f}{m1['decision_agreement_pooled']:>14.3f}"
              f"{timing[name]:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
