"""``neurosheet tasks``: list the Mod-Cog tasks or a suite; show one task's trial (and plot it)."""

from __future__ import annotations

import argparse
from typing import Any

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json, seed_int


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser("tasks", help="list the Mod-Cog tasks and suites; show a trial",
                        description="The Mod-Cog battery: 126 tasks (names, suites, trials).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                               parser_class=type(p))
    ls = actions.add_parser("list", help="list the tasks (of a suite), or the suites")
    O.add(ls, "--suite")
    ls.add_argument("--suites", action="store_true", help="list the suites instead")
    O.add(ls, "--json")
    sh = actions.add_parser("show", help="describe a task and draw one trial")
    sh.add_argument("name", help="task name or reference alias (e.g. dlygo-intr, dlygointr)")
    sh.add_argument("--trial-seed", type=seed_int, default=0, help="seed of the trial drawn "
                    "(default %(default)s)")
    sh.add_argument("--noise", action="store_true", help="include the input noise")
    sh.add_argument("--reference", action="store_true",
                    help="draw the trial as the reference code does (its quirks included)")
    O.add(sh, "--plot")
    O.add(sh, "--json")
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    return _show(args)


def _task_row(name: str) -> dict[str, Any]:
    from neurosheet.tasks import task_spec

    s = task_spec(name)
    lo, hi = s.length_range()
    return {"name": s.name, "group": s.group, "base": s.base.name, "family": s.family,
            "int": {1: "r", -1: "l", 0: ""}[s.int_dir], "seq": {1: "r", -1: "l", 0: ""}[s.seq_dir],
            "decision_steps": s.decision_steps, "min_steps": lo, "max_steps": hi,
            "reference_name": s.reference_name}


def _list(args: argparse.Namespace) -> int:
    from neurosheet.tasks import TASKS, list_suites, load_suite

    if args.suites:
        suites = [load_suite(n) for n in list_suites()]
        if args.json:
            print_json({"suites": [{"name": s.name, "n_tasks": len(s.tasks),
                                    "description": s.description} for s in suites]})
        else:
            for s in suites:
                print(f"{s.name:<14} {len(s.tasks):>4} tasks  {s.description}")
        return 0
    suite = load_suite(args.suite) if args.suite else None
    names = suite.tasks if suite else TASKS
    rows = [_task_row(n) for n in names]
    if args.json:
        print_json({"suite": suite.name if suite else None, "n_tasks": len(rows),
                    "tasks": rows})
        return 0
    title = f"suite {suite.name}: {suite.description}" if suite else "all Mod-Cog tasks"
    print(f"{title} ({len(rows)} tasks; rule index = #)")
    print(f"{'#':>3}  {'name':<22}{'group':<9}{'family':<7}{'steps':<8}{'decision':<9}reference")
    for i, r in enumerate(rows):
        steps = f"{r['min_steps']}-{r['max_steps']}" if r["min_steps"] != r["max_steps"] \
            else str(r["min_steps"])
        print(f"{i:>3}  {r['name']:<22}{r['group']:<9}{r['family']:<7}{steps:<8}"
              f"{r['decision_steps']:<9}{r['reference_name'] or '-'}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from neurosheet.tasks import TrialSampler, resolve_task
    from neurosheet.tasks.trials import PERIOD_LABELS, PERIODS

    name = resolve_task(args.name)
    row = _task_row(name)
    mode = "reference" if args.reference else "fixed"
    batch = TrialSampler([name], seed=args.trial_seed, noise=args.noise, mode=mode).sample(1)
    info = {k: v[0].tolist() for k, v in batch.info.items()}
    n = int(batch.lengths[0])
    durations = batch.info["durations"][0].tolist()
    labels = PERIOD_LABELS[row["family"]]
    if row["family"] == "dm" and durations[3] == 0:  # DM without delay: one stimulus period
        labels = ("fixation", "stimulus", "delay", "stim2", "decision")
    periods = [(labels[i] or PERIODS[i], int(d)) for i, d in enumerate(durations) if d > 0]
    trial = {"seed": args.trial_seed, "mode": mode, "steps": n, "periods": dict(periods),
             "modality": info["modality"], "answer": info["answer"],
             "delay_steps": info["delay_steps"], "respond": info["respond"],
             "decision_targets": batch.targets[batch.decision[:, 0], 0].tolist()}
    out = {**row, "trial": trial}
    if args.plot:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.tasks import trial_figure

        title = f"{name} (seed {args.trial_seed}{', reference mode' if args.reference else ''})"
        save_figure(trial_figure(batch.inputs[:n, 0], batch.targets[:n, 0], periods, title),
                    args.plot)
        out["plot"] = args.plot
    if args.json:
        print_json(out)
        return 0
    print(f"task       {name}  ({row['group']}; base {row['base']}, family {row['family']})")
    print(f"reference  {row['reference_name'] or '- (not in the reference code)'}")
    print(f"length     {row['min_steps']}-{row['max_steps']} steps of 100 ms, decision "
          f"{row['decision_steps']} steps")
    print(f"trial      seed {args.trial_seed} ({mode} mode): " + ", ".join(f"{p} {d}" for p, d in periods)
          + f" = {n} steps")
    who = "fixate (no-go trial)" if not info["respond"] else f"ring unit {info['answer']}"
    print(f"answer     {who}; delay {info['delay_steps']} steps; modality {info['modality']}")
    print(f"targets    decision period: {trial['decision_targets']}")
    if args.plot:
        print(f"plot       {args.plot}")
    return 0
