"""``neurosheet evaluate``: per-task held-out accuracy of a run directory's circuit."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import positive_int, print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from neurosheet.rate.evaluation import backends
    from neurosheet.spiking.evaluate import add_evaluate_args, register

    register()  # offers --backend snntorch|brian2

    p = subs.add_parser(
        "evaluate", help="per-task accuracy of a trained run on held-out trials",
        description="Evaluate the circuit of a run directory on fresh trials of its tasks "
        "(or of --suite) with a simulation backend; prints a per-task table or JSON.",
    )
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `neurosheet train`")
    p.add_argument("--suite", help="evaluate on this suite's tasks (default: the run's tasks)")
    p.add_argument("--trials", type=positive_int, default=128, help="trials per task (default 128)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation trials")
    p.add_argument("--backend", default="rate", choices=backends(),
                   help="simulator used to run the circuit (default: rate)")
    p.add_argument("--substeps", type=positive_int,
                   help="rate backend: Euler sub-steps per task step (default: as trained); "
                   "spiking backends: simulation steps per task step (default 100)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_evaluate_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    from neurosheet.rate.evaluation import evaluate_run

    tasks = None
    if args.suite:
        from neurosheet.tasks import load_suite

        tasks = tuple(load_suite(args.suite).tasks)
    options = {"substeps": args.substeps} if args.substeps else {}
    if args.backend != "rate":  # spiking: print its accuracy next to the rate network's
        from neurosheet.spiking.evaluate import compare, format_comparison, spiking_options

        result = evaluate_run(args.run_dir, tasks, args.trials, args.seed, args.backend,
                              **options, **spiking_options(args))
        rate = evaluate_run(args.run_dir, tasks, args.trials, args.seed, "rate")
        cmp = compare(result, rate)
        if args.json:
            print_json({**result, "rate": rate, "comparison": cmp})
        else:
            print(format_comparison(args.backend, cmp, args.trials))
        return 0
    result = evaluate_run(args.run_dir, tasks, args.trials, args.seed, args.backend, **options)
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
    return 0


def format_table(result: dict) -> str:
    """Per-task table: trial success (95% Wilson interval), step accuracy, Yang, trials."""
    def ci(m: dict) -> str:
        c = m.get("ci", {}).get("trial_success") if "ci" in m else None
        return f"[{c[0]:.3f}, {c[1]:.3f}]" if c else ""

    head = f"{'task':<22}{'trial':>8}{'95% interval':>17}{'step acc':>10}{'yang':>8}{'trials':>8}"
    lines = [f"backend {result['backend']}, {result['trials']} trials per task", head,
             "-" * len(head)]
    for name, m in result["per_task"].items():
        lines.append(f"{name:<22}{m['trial_success']:>8.3f}{ci(m):>17}"
                     f"{m['step_accuracy']:>10.3f}{m['yang_success']:>8.3f}{m['n_trials']:>8}")
    mean = result["mean"]
    c = result.get("ci", {}).get("trial_success")
    lines.append("-" * len(head))
    lines.append(f"{'mean over tasks':<22}{mean['trial_success']:>8.3f}"
                 f"{(f'[{c[0]:.3f}, {c[1]:.3f}]' if c else ''):>17}"
                 f"{mean['step_accuracy']:>10.3f}{mean['yang_success']:>8.3f}")
    lines.append("trial success: fixation held and the right unit on every decision step; "
                 "step acc: decision steps right (pooled); yang: last step within 36 deg")
    return "\n".join(lines)
