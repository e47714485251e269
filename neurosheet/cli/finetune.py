"""``neurosheet finetune``: train a run's converted spiking circuit with surrogate gradients."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import positive_int, print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.spiking.finetune import FinetuneConfig
    from neurosheet.spiking.rundir import add_conversion_args

    d = FinetuneConfig()
    p = subs.add_parser(
        "finetune", help="fine-tune the converted spiking circuit on the task loss",
        description="Train a run's converted spiking circuit (same edges, masked synapses stay "
        "exactly zero) with surrogate gradients on the rate training's loss, from the "
        "converted weights. The best circuit on validation trials becomes DIR/spiking/"
        "circuit.npz, which simulate, evaluate, export and budget then use. Re-running the "
        "same command resumes from the last checkpoint.")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    p.add_argument("--steps", type=positive_int, default=d.steps,
                   help=f"total optimizer steps (default {d.steps})")
    p.add_argument("--out", metavar="DIR2",
                   help="checkpoint, metrics and best circuit folder (default DIR/spiking/"
                   "finetune)")
    p.add_argument("--train-substeps", default=",".join(map(str, d.substeps)),
                   help="simulation steps per task step while training, one drawn per batch "
                   f"(default {','.join(map(str, d.substeps))})")
    p.add_argument("--batch", type=positive_int, default=d.batch, help=f"trials per step "
                   f"(default {d.batch})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate, relative to each "
                   f"weight array's size (default {d.lr:g})")
    p.add_argument("--seed", type=int, default=0, help="seed of the training trials")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_conversion_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.core.errors import NeurosheetError
    from neurosheet.spiking.finetune import FinetuneConfig, finetune_run
    from neurosheet.spiking.rundir import config_from_args

    try:
        train_k = tuple(int(k) for k in args.train_substeps.split(","))
    except ValueError:
        raise NeurosheetError(f"train_substeps must be comma-separated integers, got "
                              f"{args.train_substeps!r}") from None
    cfg = FinetuneConfig(steps=args.steps, batch=args.batch, lr=args.lr, substeps=train_k,
                         seed=args.seed)
    quiet = args.json or args.no_progress
    result = finetune_run(args.run_dir, cfg, config_from_args(args), out_dir=args.out,
                          calibration_trials=args.calibration_trials, seed=args.seed,
                          resume=not args.restart, log=None if quiet else print)
    summary = {"run_dir": str(args.run_dir), "steps": result.steps,
               "resumed_from": result.resumed_from, "best_step": result.best_step,
               "initial": result.initial["mean"], "best": result.best["mean"],
               "validation_trials_per_task": cfg.eval_trials,
               "substeps": result.circuit.substeps, "seconds": result.seconds}
    if args.json:
        print_json(summary)
        return 0
    b, i = result.best["mean"], result.initial["mean"]
    print(f"fine-tuned {result.steps} steps -> {args.run_dir}/spiking/circuit.npz "
          f"(best at step {result.best_step}, {result.seconds:.0f} s)")
    print(f"validation trial success {i['trial_success']:.3f} -> {b['trial_success']:.3f} "
          f"(step accuracy {i['step_accuracy']:.3f} -> {b['step_accuracy']:.3f}; "
          f"{cfg.eval_trials} trials per task at K = {result.circuit.substeps})")
    return 0
