"""``neurosheet pipeline``: the README's main command, train -> convert -> simulate -> budgets."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import print_json


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "pipeline", help="train a small LM-RNN, convert it to spikes, report hardware budgets",
        description="Train a small LM-RNN on the demo Mod-Cog suite, evaluate it, convert it to "
        "spiking networks on the same sparse graph, evaluate every backend on the same "
        "held-out trials, and write budget reports for every hardware target into one folder "
        "with an index.md. Re-running on the same --out resumes training from its checkpoint.")
    O.add(p, "--out", default="neurosheet-report")
    O.add(p, "--preset", default="demo")
    O.add(p, "--suite", default="demo")
    O.add(p, "--seed", default=0)
    O.add(p, "--steps")
    O.add(p, "--trials", default=64)
    O.add(p, "--spike-trials", default=64)
    O.add(p, "--backends", default="rate,snntorch,brian2")
    O.add(p, "--targets", default="all")
    O.add(p, "--gate", default="error")
    O.add(p, "--no-finetune")
    O.add(p, "--finetune-below", default=0.95)
    O.add(p, "--finetune-steps")
    O.add(p, "--no-progress")
    O.add(p, "--json")
    O.add_backend_options(p, O.spiking_backend_names())
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurosheet.pipeline import PipelineConfig, run_pipeline

    backends = O.comma_list(args.backends)
    targets = O.comma_list(args.targets)
    cfg = PipelineConfig(
        preset=args.preset, suite=args.suite, seed=args.seed, steps=args.steps,
        trials=args.trials, spike_trials=args.spike_trials, backends=backends,
        backend_options={b: O.backend_options(args, b) for b in backends},
        targets=() if targets == ("all",) else targets, gate=args.gate,
        finetune=not args.no_finetune, finetune_below=args.finetune_below,
        finetune_steps=args.finetune_steps, progress=O.progress(args),
    )
    say = (lambda _msg: None) if args.json else print
    summary = run_pipeline(args.out, cfg, say=say).to_json()
    if args.json:
        print_json(summary)
        return 0
    print()
    for backend, r in summary["evaluation"].items():
        if "refused" in r:
            print(f"{backend:<9} refused: {r['refused']}")
        else:
            lo, hi = r["ci"]["trial_success"]
            fid = r.get("fidelity")
            extra = f"  (spiking/rate {fid:.3f})" if fid is not None else ""
            print(f"{backend:<9} mean trial success {r['mean']['trial_success']:.3f} "
                  f"[{lo:.3f}, {hi:.3f}]{extra}; step accuracy "
                  f"{r['mean']['step_accuracy']:.3f}, Yang 36 deg "
                  f"{r['mean']['yang_success']:.3f}")
    loc = summary["budget"].get("locality") or {}
    if loc and not loc.get("probe"):
        print(f"crossing edges on {loc['cores']} cores: sheet tiling {loc['tiling']:.1%}, "
              f"random partition {loc['random']:.1%}")
    fits = [r["target"] for r in summary["budget"]["rows"] if r["fits"]]
    print(f"fits: {', '.join(fits) if fits else 'no target'}")
    print(f"report: {Path(args.out) / 'index.md'}")
    return 0
