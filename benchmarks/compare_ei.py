"""E/I (Dale's law) LM-RNNs vs unconstrained ones at (nearly) equal density, over seeds.

Arms (each a model preset plus sheet overrides, trained per seed into ``--out/<arm>-s<seed>``,
resuming runs already there):

    free      models/demo (unconstrained), radius mask at ``--density``
    ei-same   models/demo-ei with every pair type at one radius: the free arm's exact graph
    ei-local  models/demo-ei: 20% inhibitory, I axons 0.75x as long, base radius at ``--density``

Per run: held-out step accuracy / trial success on ``--trials`` test trials per task (the
'test' stream of seed 0, so every run is scored on the same trials), steps to criterion from
the learning curve, the initial spectrum and the sign violations of the saved circuit. Prints a
markdown table (mean +- sd over seeds, Welch t vs free) and writes ``compare_ei.json``. The run
recorded in docs/results.md::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/compare_ei.py --suite demo --steps 1500 \
        --seeds 0 1 2 --out runs/compare-ei
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.io import write_json
from neurosheet.core.seeds import SeedPlan
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.graph.populations import sign_violations
from neurosheet.rate.config import load_model_preset, with_overrides
from neurosheet.rate.evaluation import evaluate_circuit
from neurosheet.rate.training import train

ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "free": ("demo", {}),
    "ei-same": ("demo-ei", {"ie_scale": 1.0, "ii_scale": 1.0}),
    "ei-local": ("demo-ei", {}),
}


def run_one(arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) one arm at one seed and score it."""
    name, sheet = ARMS[arm]
    preset, _ = load_model_preset(name)
    preset = with_overrides(preset, {"sheet": {**sheet, "density": args.density}}, arm)
    out = Path(args.out) / f"{arm}-s{seed}"
    t0 = time.perf_counter()
    res = train(out, preset, args.suite, seed=seed, preset_name=name, steps=args.steps,
                progress=False)
    circuit = load_run_circuit(out)
    test = evaluate_circuit(circuit, circuit.tasks, args.trials, SeedPlan(0).test)
    summary = json.loads((out / "summary.json").read_text())
    row: dict[str, Any] = {
        "arm": arm, "seed": seed, "preset": name, "overrides": sheet,
        "synapses": circuit.graph.synapses, "density": circuit.graph.density,
        "steps": res.steps, "steps_to_criterion": res.steps_to_criterion,
        "step_accuracy": test["mean"]["step_accuracy"],
        "trial_success": test["mean"]["trial_success"],
        "per_task_trial_success": {t: v["trial_success"] for t, v in test["per_task"].items()},
        "test_trials_per_task": args.trials,
        "init_spectrum": summary.get("init_spectrum"),
        "train_s": time.perf_counter() - t0,
    }
    g = circuit.graph
    if g.types is not None:
        _, pre = g.edges()
        _, rpre = g.readout.edges()  # type: ignore[union-attr]
        row["sign_violations"] = (sign_violations(g.types, pre, circuit.w_rec)
                                  + sign_violations(g.types, rpre, circuit.w_out))
    return row


def _welch(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value (None when undefined)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def table(rows: list[dict[str, Any]], steps: int) -> str:
    """Markdown: per arm mean +- sd of accuracy, trial success, steps to criterion."""
    lines = ["| arm | seeds | synapses | step accuracy | trial success | steps to criterion "
             "(not reached counts as the budget) | reached | p (Welch, step acc. vs free) |",
             "|---|---|---|---|---|---|---|---|"]
    free = [r["step_accuracy"] for r in rows if r["arm"] == "free"]
    for arm in ARMS:
        rs = [r for r in rows if r["arm"] == arm]
        if not rs:
            continue
        acc = [r["step_accuracy"] for r in rs]
        ts = [r["trial_success"] for r in rs]
        stc = [r["steps_to_criterion"] if r["steps_to_criterion"] is not None else steps
               for r in rs]
        reached = sum(r["steps_to_criterion"] is not None for r in rs)
        p = _welch(acc, free) if arm != "free" else None
        syn = sorted({r["synapses"] for r in rs})
        lines.append(
            f"| {arm} | {len(rs)} | {'/'.join(map(str, syn))} | {np.mean(acc):.3f} ± "
            f"{np.std(acc, ddof=1) if len(acc) > 1 else 0:.3f} | {np.mean(ts):.3f} ± "
            f"{np.std(ts, ddof=1) if len(ts) > 1 else 0:.3f} | {np.mean(stc):.0f} ± "
            f"{np.std(stc, ddof=1) if len(stc) > 1 else 0:.0f} | {reached}/{len(rs)} | "
            f"{'' if p is None else f'{p:.3f}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default="demo")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--density", type=float, default=0.140625,
                    help="target density of every arm (demo's radius-3 mask: 0.140625)")
    ap.add_argument("--trials", type=int, default=256, help="test trials per task")
    ap.add_argument("--out", default="runs/compare-ei")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for arm in args.arms:  # arms outer: every arm gets all its seeds before the next starts
        for seed in args.seeds:
            row = run_one(arm, seed, args)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("arm", "seed", "synapses", "step_accuracy",
                                                  "trial_success", "steps_to_criterion")}),
                  flush=True)
            write_json(out / "compare_ei.json", {"args": vars(args), "rows": rows})
    print(table(rows, args.steps))


if __name__ == "__main__":
    main()
