"""``neurosheet finetune``: train a run's converted spiking circuit with surrogate gradients."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.spiking.finetune import FinetuneConfig

    d = FinetuneConfig()
    p = subs.add_parser(
        "finetune", help="fine-tune the converted spiking circuit on the task loss",
        description="Train a run's converted spiking circuit (same edges: masked synapses stay "
        "exactly zero) with surrogate gradients on the rate training's loss, starting from the "
        "converted weights (--from-tuned: from the run's fine-tuned circuit, e.g. to continue "
        "at a finer --substeps). The best circuit on validation trials becomes DIR/spiking/"
        "circuit.npz, which simulate, evaluate, export, budget and the pipeline then use "
        "(--converted: the plain conversion). Re-running the same command resumes from the "
        "last checkpoint (in --out, default DIR/spiking/finetune).")
    p.add_argument("run_dir", metavar="DIR", help="run directory (graph.npz + circuit.npz)")
    O.add(p, "--finetune-steps", default=d.steps)
    O.add(p, "--train-substeps", default=",".join(map(str, d.substeps)))
    O.add(p, "--batch", default=d.batch)
    O.add(p, "--rate-cap-hz", default=d.rate_cap_hz)
    O.add(p, "--rate-cap-l2", default=d.rate_cap_l2)
    O.add(p, "--lr", default=d.lr)
    O.add(p, "--distill", default=d.distill)
    O.add(p, "--from-tuned")
    O.add(p, "--out")
    O.add(p, "--seed", default=0)
    p.add_argument("--restart", action="store_true",
                   help="ignore an existing checkpoint in --out and start over")
    O.add(p, "--no-progress")
    O.add(p, "--json")
    O.add_conversion(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages
    from neurosheet.core.errors import NeurosheetError
    from neurosheet.spiking.finetune import FinetuneConfig

    try:
        train_k = tuple(int(k) for k in O.comma_list(args.train_substeps))
    except ValueError:
        raise NeurosheetError(f"substeps must be comma-separated integers, got "
                              f"{args.train_substeps!r}", "train_substeps") from None
    cfg = FinetuneConfig(steps=args.finetune_steps, batch=args.batch, lr=args.lr,
                         substeps=train_k, seed=args.seed, rate_cap_hz=args.rate_cap_hz,
                         rate_cap_l2=args.rate_cap_l2, distill=args.distill)
    if O.progress(args):
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
    s = stages.finetune(args.run_dir, cfg, O.conversion_from_args(args),
                        seeds=O.seeds_from_args(args), calibration_trials=args.calibration_trials,
                        out=args.out, resume=not args.restart, progress=O.progress(args),
                        start="tuned" if args.from_tuned else "converted")
    if args.json:
        print_json(s)
        return 0
    b, i = s["best"], s["initial"]
    print(f"fine-tuned {s['steps']} steps -> {s['circuit']} (best at step {s['best_step']}, "
          f"{s['seconds']:.0f} s)")
    print(f"validation trial success {i['trial_success']:.3f} -> {b['trial_success']:.3f} "
          f"(step accuracy {i['step_accuracy']:.3f} -> {b['step_accuracy']:.3f}; "
          f"{s['validation_trials_per_task']} trials per task at K = {s['substeps']})")
    return 0
