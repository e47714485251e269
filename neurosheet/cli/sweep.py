"""``neurosheet sweep``: train presets x densities x seeds in parallel and tabulate the results."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.02,0.04, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1, got {text!r}") from None


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:

    p = subs.add_parser(
        "sweep", help="train over presets x densities x seeds (process pool or Ray)",
        description="One training run per (preset, density, seed) in OUT/<preset>-d<density>-"
        "s<seed>; re-running resumes unfinished runs. Writes OUT/results.json, results.csv and "
        "plots/sweep_accuracy.png. Presets with rule full or autapse ignore --densities.",
    )
    p.add_argument("--presets", default="lmrnn", help="comma-separated preset names or paths")
    p.add_argument("--densities", type=_floats, default=[],
                   help="comma-separated densities, e.g. 0.02,0.04,0.08 (default: presets' own)")
    p.add_argument("--seeds", type=_ints, default=[0, 1], help="comma-separated seeds (0,1)")
    O.add(p, "--suite", required=True)
    O.add(p, "--steps")
    O.add(p, "--n")
    O.add(p, "--out", required=True)
    O.add(p, "--executor", default="process")
    O.add(p, "--workers", default=2)
    O.add(p, "--threads", default=1)
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--criterion", type=float,
                   help="accuracy for steps-to-criterion in the table (default: presets' own)")
    O.add(p, "--json")
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from neurosheet.experiments.sweep import aggregate, format_table, plan_jobs, run_sweep, write_results

    presets = [p for p in args.presets.split(",") if p.strip()]
    jobs = plan_jobs(presets, args.densities, args.seeds, args.suite, args.out, args.steps,
                     args.n, args.threads)
    with tqdm(total=len(jobs), desc="sweep", unit="run", disable=args.json) as bar:
        rows = run_sweep(jobs, args.executor, args.workers, args.ray_address,
                         on_done=lambda _row: bar.update(1))
    paths = write_results(args.out, rows, args.criterion)
    errors = [r for r in rows if "error" in r]
    if args.json:
        print_json({"table": aggregate(rows, args.criterion), "errors": errors,
                    "files": {k: str(v) for k, v in paths.items()}})
        return 1 if errors else 0
    crit = args.criterion or next((r["criterion"] for r in rows if "criterion" in r), None)
    print(format_table(aggregate(rows, args.criterion), crit))
    for r in errors:
        print(f"failed: {r['run_dir']}: {r['error']}")
    print(f"results: {paths['json']}, {paths['csv']}" +
          (f", {paths['plot']}" if "plot" in paths else ""))
    return 1 if errors else 0
