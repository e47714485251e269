"""``neurosheet sweep``: train presets x densities x seeds in parallel and tabulate the results."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import positive_int, print_json


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
    from neurosheet.experiments.sweep import BACKENDS

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
    p.add_argument("--suite", required=True, help="task suite name")
    p.add_argument("--steps", type=positive_int, help="training steps per run (default: preset's)")
    p.add_argument("--n", type=positive_int, help="override the number of neurons of every preset")
    p.add_argument("--out", required=True, help="sweep folder")
    p.add_argument("--backend", choices=BACKENDS, default="process",
                   help="process (local pool, default) or ray")
    p.add_argument("--workers", type=positive_int, default=2, help="parallel runs (default 2)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads per run")
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--criterion", type=float,
                   help="accuracy for steps-to-criterion in the table (default: presets' own)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from neurosheet.experiments.sweep import aggregate, format_table, plan_jobs, run_sweep, write_results

    presets = [p for p in args.presets.split(",") if p.strip()]
    jobs = plan_jobs(presets, args.densities, args.seeds, args.suite, args.out, args.steps,
                     args.n, args.threads)
    with tqdm(total=len(jobs), desc="sweep", unit="run", disable=args.json) as bar:
        rows = run_sweep(jobs, args.backend, args.workers, args.ray_address,
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
