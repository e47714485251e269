"""``neurosheet train``: train a rate RNN from a model preset on a task suite into a run dir."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "train", help="train a rate RNN on a task suite (resumes an interrupted run)",
        description="Train a rate RNN from a model preset (models/*.toml or a path) on a task "
        "suite. Re-running the same command on the same --out resumes from the last checkpoint.",
    )
    O.add(p, "--preset", required=True)
    O.add(p, "--suite", required=True)
    O.add(p, "--out", required=True)
    O.add(p, "--steps")
    O.add(p, "--seed", default=0)
    O.add(p, "--density")
    O.add(p, "--n")
    O.add(p, "--device", default="auto")
    p.add_argument("--restart", action="store_true",
                   help="ignore an existing checkpoint in --out and start over")
    O.add(p, "--no-progress")
    O.add(p, "--json")
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages

    sheet = {k: v for k, v in (("density", args.density), ("n", args.n)) if v is not None}
    result = stages.train(args.out, args.preset, args.suite, seed=args.seed, steps=args.steps,
                          device=args.device, progress=O.progress(args),
                          resume=not args.restart, overrides={"sheet": sheet} if sheet else None)
    if args.json:
        print_json(result.to_json())
        return 0
    m = result.final
    resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
    print(f"trained {result.steps} steps{resumed} -> {result.run_dir}")
    print(f"held-out mean over tasks: trial success {m['trial_success']:.3f}, step accuracy "
          f"{m['step_accuracy']:.3f}, yang success {m['yang_success']:.3f}")
    crit = result.steps_to_criterion
    print(f"steps to criterion: {crit if crit is not None else 'not reached'}")
    return 0
