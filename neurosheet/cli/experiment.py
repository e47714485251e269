"""``neurosheet experiment run|report``: a design file's runs, then its table, figure and verdicts."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "experiment", help="run a design file (experiments/) and report its claims",
        description="`run` trains every (condition, seed) of a design at one of its scales into "
        "OUT/runs, writes each finished run's numbers to OUT/results, skips finished runs and "
        "resumes interrupted ones. `report` writes OUT/report.md, report.json and the figures, "
        "with a verdict per claim decided by its 95% interval.",
    )
    O.add(p, "--json")  # also accepted before the action
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = actions.add_parser("run", help="train the design's runs (resumable)")
    r.add_argument("design", metavar="NAME|PATH", help="design name (see experiments/) or .toml")
    O.add(r, "--out", required=True)
    O.add(r, "--size", default="small")
    O.add(r, "--executor", default="process")
    O.add(r, "--workers", default=1)
    O.add(r, "--ray-address")
    O.add(r, "--json", default=argparse.SUPPRESS)
    rep = actions.add_parser("report", help="table, figures and verdicts of an experiment folder")
    rep.add_argument("dir", metavar="DIR", help="the folder `experiment run --out` wrote")
    O.add(rep, "--json", default=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "run":
        return _run(args)
    return _report(args)


def _run(args: argparse.Namespace) -> int:
    from neurosheet.experiments.runner import run_experiment

    def line(row: dict) -> None:
        if not args.json:
            extra = (f" test {row['final_test']:.3f} ({row.get('wall_s', 0):.0f} s)"
                     if "final_test" in row and row.get("status") != "skipped" else "")
            err = f": {row['error']}" if "error" in row else ""
            print(f"{row['status']:>8} {row['condition']} seed {row['seed']}{extra}{err}",
                  flush=True)

    rows = run_experiment(args.design, args.out, args.size, args.executor, args.workers,
                          args.ray_address, on_done=line)
    failed = [r for r in rows if r.get("status") == "failed"]
    busy = [r for r in rows if r.get("status") == "busy"]
    if args.json:
        print_json({"runs": [{k: r.get(k) for k in ("condition", "seed", "status", "final_test",
                                                      "error")} for r in rows]})
    else:
        held = f" ({len(busy)} held by another runner)" if busy else ""
        print(f"{len(rows) - len(failed) - len(busy)}/{len(rows)} runs finished in {args.out}"
              f"{held}; next: neurosheet experiment report {args.out}")
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from neurosheet.experiments.report import write_report

    paths, report = write_report(args.dir)
    if args.json:
        print_json({"files": {k: str(v) for k, v in paths.items()}, "claims": report["claims"]})
        return 0
    for c in report["claims"]:
        print(f"{c['verdict']:>14}  {c['name']}: {c['summary']}")
    print("written: " + ", ".join(str(v) for v in paths.values()))
    return 0
