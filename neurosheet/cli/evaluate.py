"""``neurosheet evaluate``: per-task held-out accuracy of a run with any registered backend."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "evaluate", help="per-task accuracy of a trained run on held-out trials",
        description="Evaluate the circuit of a run directory on held-out trials of its tasks "
        "(or of --suite) with a simulation backend; a spiking backend is printed next to the "
        "rate network on the same trials.",
    )
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `neurosheet train`")
    O.add(p, "--suite")
    O.add(p, "--trials", default=128)
    O.add(p, "--seed", default=0)
    O.add_backend(p, default="rate")
    O.add(p, "--json")
    O.add(p, "--no-progress")
    O.add_conversion(p)
    O.add_backend_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet import stages
    from neurosheet.spiking.registry import get_spec

    tasks = None
    if args.suite:
        from neurosheet.tasks import load_suite

        tasks = tuple(load_suite(args.suite).tasks)
    seeds = O.seeds_from_args(args)
    common = {"tasks": tasks, "trials": args.trials, "seeds": seeds}
    result = stages.evaluate(args.run_dir, args.backend, conversion=O.conversion_from_args(args),
                             calibration_trials=args.calibration_trials,
                             progress=O.progress(args), **common,
                             **O.backend_options(args, args.backend)).to_json()
    if get_spec(args.backend).kind == "spiking":  # next to the rate network, same trials
        from neurosheet.spiking.evaluate import compare, format_comparison

        rate = stages.evaluate(args.run_dir, "rate", **common).to_json()
        cmp = compare(result, rate)
        if args.json:
            print_json({**result, "rate": rate, "comparison": cmp})
        else:
            print(format_comparison(args.backend, cmp, args.trials))
        return 0
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
    return 0


def format_table(result: dict) -> str:
    """Per-task table: trial success (headline, 95% Wilson interval), step accuracy, Yang
    success, trials."""
    def ci(c: object) -> str:
        return f"[{c[0]:.3f}, {c[1]:.3f}]" if c else ""  # type: ignore[index]

    head = f"{'task':<22}{'trial':>8}{'95% interval':>17}{'step acc':>10}{'yang':>8}{'trials':>8}"
    lines = [f"backend {result['backend']}, {result['trials']} trials per task (seed "
             f"{result['seed']})", head, "-" * len(head)]
    for name, m in result["per_task"].items():
        lines.append(f"{name:<22}{m['trial_success']:>8.3f}"
                     f"{ci((m.get('ci') or {}).get('trial_success')):>17}"
                     f"{m['step_accuracy']:>10.3f}{m['yang_success']:>8.3f}{m['n_trials']:>8}")
    mean = result["mean"]
    lines.append("-" * len(head))
    lines.append(f"{'mean over tasks':<22}{mean['trial_success']:>8.3f}"
                 f"{ci((result.get('ci') or {}).get('trial_success')):>17}"
                 f"{mean['step_accuracy']:>10.3f}{mean['yang_success']:>8.3f}")
    lines.append("trial: fixation held and every decision step right; step acc: forgives a "
                 "wrong step; yang: forgives one ring unit off")
    return "\n".join(lines)
