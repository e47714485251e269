"""``neurosheet train``: train a rate RNN from a model preset on a task suite into a run dir."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import positive_int, print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "train", help="train a rate RNN on a task suite (resumes an interrupted run)",
        description="Train a rate RNN from a model preset (models/*.toml or a path) on a task "
        "suite. Re-running the same command on the same --out resumes from the last checkpoint.",
    )
    p.add_argument("--preset", required=True, help="model preset name (see models/) or .toml path")
    p.add_argument("--suite", required=True, help="task suite name (see `neurosheet tasks`)")
    p.add_argument("--out", required=True,
                   help="run directory (created; resumed if it holds a run)")
    p.add_argument("--steps", type=positive_int, help="total training steps (default: preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of wiring, init, trials and noise")
    p.add_argument("--density", type=float, help="override the preset's sheet density")
    p.add_argument("--n", type=positive_int, help="override the preset's number of neurons")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (cuda when available, else cpu), cpu, cuda[:N]")
    p.add_argument("--restart", action="store_true",
                   help="ignore an existing checkpoint in --out and start over")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.rate.config import load_model_preset, with_overrides
    from neurosheet.rate.training import train

    preset, path = load_model_preset(args.preset)
    sheet = {k: v for k, v in (("density", args.density), ("n", args.n)) if v is not None}
    if sheet:
        preset = with_overrides(preset, {"sheet": sheet}, "command-line overrides")
    result = train(args.out, preset, args.suite, seed=args.seed, preset_name=args.preset,
                   steps=args.steps, device=_device(args.device),
                   progress=not args.no_progress, resume=not args.restart)
    summary = {"run_dir": str(result.run_dir), "steps": result.steps,
               "resumed_from": result.resumed_from, "mean": result.final["mean"],
               "steps_to_criterion": result.steps_to_criterion, "preset_file": str(path)}
    if args.json:
        print_json(summary)
        return 0
    m = result.final["mean"]
    resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
    print(f"trained {result.steps} steps{resumed} -> {result.run_dir}")
    print(f"held-out mean over {len(result.final['per_task'])} tasks: step accuracy "
          f"{m['step_accuracy']:.3f}, trial success {m['trial_success']:.3f}, "
          f"yang success {m['yang_success']:.3f}")
    crit = result.steps_to_criterion
    print(f"steps to criterion: {crit if crit is not None else 'not reached'}")
    return 0


def _device(name: str) -> str:
    from neurosheet.rate.model import resolve_device

    return resolve_device(name)
