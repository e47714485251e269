"""Does a fine-tuned spiking circuit keep its decisions at other simulation steps? (NIR readers)

Continues fine-tuning a spiking circuit (a ``.npz`` saved by ``SpikingCircuit.save``, e.g. a
run's ``spiking/circuit.npz``) through a curriculum of steps (``--stages K:STEPS,...``, one
``finetune()`` per stage, each from the previous stage's best circuit, validated at its K),
then scores the result on held-out trials (``--trials`` per task, seed ``--seed``: the trials
of ``neurosheet evaluate --trials N``) at each K of ``--eval-k`` on the fused engine. Prints
CPU and wall seconds per stage and trial success per K; the numbers of docs/spiking.md's
"Fine-tuning for the readers' step" table. ``neurosheet finetune RUN --from-tuned --substeps K
--train-substeps K`` is the same continuation from the CLI (one stage per call).

    OMP_NUM_THREADS=1 python benchmarks/finetune_steps.py RUN START.npz OUT \
        --stages 25:50,32:50,40:50,50:50 [--lr 0.003] [--rate-l2 0] [--eval-k 20,100,1000]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    """Run the stages, then print trial success at each K of ``--eval-k``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("start", type=Path, help="the starting spiking circuit (.npz)")
    p.add_argument("out", type=Path, help="one checkpoint folder per stage goes here")
    p.add_argument("--stages", default="", help="K:STEPS,... (empty: only score START)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rate-l2", type=float, default=0.0)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-k", default="20,100,1000")
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args(argv)

    from neurosheet.graph.circuit import load_run_circuit
    from neurosheet.rate.evaluation import heldout_batches
    from neurosheet.spiking.finetune import FinetuneConfig, finetune, validate
    from neurosheet.spiking.model import SpikingCircuit

    torch.set_num_threads(1)
    sc = SpikingCircuit.load(args.start, load_run_circuit(args.run_dir).graph)
    for stage in filter(None, args.stages.split(",")):
        k, steps = (int(v) for v in stage.split(":"))
        cfg = FinetuneConfig(steps=steps, lr=args.lr, substeps=(k,), batch=args.batch,
                             rate_l2=args.rate_l2, eval_every=args.eval_every,
                             distill=0.0)  # a saved circuit, no rate network at hand
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        res = finetune(sc.at_substeps(k), args.out / f"k{k}", cfg)
        sc = res.circuit
        print(f"stage K {k}, {steps} steps: validation {res.initial['mean']['trial_success']:.3f}"
              f" -> {res.best['mean']['trial_success']:.3f} (step {res.best_step}); "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0:.0f} CPU s, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    if args.stages:
        sc.save(args.out / "tuned.npz")
    test = heldout_batches(sc.tasks, args.trials, args.seed, rule_inputs=sc.tasks)
    for k in (int(v) for v in args.eval_k.split(",")):
        m = validate(sc.at_substeps(k), test, k, engine="auto")
        print(f"test K {k}: trial success {m['mean']['trial_success']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
