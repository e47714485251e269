"""``neurosheet pipeline``: the README's main command, train -> convert -> simulate -> budgets."""

from __future__ import annotations

import argparse

from neurosheet.cli.common import positive_int


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser(
        "pipeline", help="train a small LM-RNN, convert it to spikes, report hardware budgets",
        description="Train a small LM-RNN on the demo Mod-Cog suite, evaluate it, convert it to "
        "spiking networks (snntorch and Brian2) on the same sparse graph, and write budget "
        "reports for every hardware target into one folder with an index.md. Re-running "
        "on the same --out resumes training from its last checkpoint.")
    p.add_argument("--out", default="neurosheet-report", help="output folder (default %(default)s)")
    p.add_argument("--preset", default="demo", help="model preset name or path (default demo)")
    p.add_argument("--suite", default="demo", help="task suite name or path (default demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of sheet, wiring, trials, training")
    p.add_argument("--steps", type=positive_int, help="training steps (default: the preset's)")
    p.add_argument("--trials", type=positive_int, default=64,
                   help="held-out trials per task, the same trials for every backend "
                   "(default 64)")
    p.add_argument("--brian2-trials", type=positive_int,
                   help="fewer trials per task when Brian2 is too slow: then every backend "
                   "gets these fewer trials (default: --trials)")
    p.add_argument("--no-brian2", action="store_true", help="skip the Brian2 backend")
    p.add_argument("--brian2-target", default="auto",
                   choices=("auto", "cython", "cpp_standalone", "numpy"),
                   help="Brian2 code generation (default auto: cython when a compiler exists)")
    p.add_argument("--gate", default="error", choices=("error", "warn", "off"),
                   help="what a failed 'rate model works at the spiking time step' check does "
                   "(default error: report the conversion as refused)")
    p.add_argument("--no-finetune", action="store_true",
                   help="never fine-tune the converted spiking circuit")
    p.add_argument("--finetune-below", type=float, default=0.95,
                   help="fine-tune when the converted circuit's validation trial success is "
                   "below this fraction of the rate model's (default 0.95)")
    p.add_argument("--finetune-steps", type=positive_int,
                   help="fine-tuning steps (default: neurosheet finetune's)")
    p.add_argument("--targets", help="comma-separated hardware targets (default: all in deploy/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurosheet.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig(
        preset=args.preset, suite=args.suite, seed=args.seed, steps=args.steps,
        eval_trials=args.trials, brian2_trials=args.brian2_trials, spike_trials=args.trials,
        targets=tuple(t.strip() for t in args.targets.split(",")) if args.targets else (),
        brian2=not args.no_brian2, brian2_target=args.brian2_target, gate=args.gate,
        finetune=not args.no_finetune, finetune_below=args.finetune_below,
        finetune_steps=args.finetune_steps, progress=not args.quiet,
    )
    summary = run_pipeline(args.out, cfg)
    ev = summary["evaluation"]
    print()
    for backend, r in ev.items():
        if "refused" in r:
            print(f"{backend:<9} refused: {r['refused']}")
        else:
            lo, hi = r["ci"]["trial_success"]
            fid = r.get("fidelity")
            extra = f"  (spiking/rate {fid:.3f})" if fid is not None else ""
            print(f"{backend:<9} trial success {r['mean']['trial_success']:.3f} "
                  f"[{lo:.3f}, {hi:.3f}]{extra}; step accuracy "
                  f"{r['mean']['step_accuracy']:.3f}, Yang 36 deg "
                  f"{r['mean']['yang_success']:.3f}")
    loc = summary["budget"].get("locality") or {}
    if loc:
        print(f"crossing edges on {loc['cores']} cores: sheet tiling {loc['tiling']:.1%}, "
              f"random partition {loc['random']:.1%}")
    fits = [r["target"] for r in summary["budget"]["rows"] if r["fits"]]
    print(f"fits: {', '.join(fits) if fits else 'no target'}")
    print(f"report: {Path(args.out) / 'index.md'}")
    return 0
