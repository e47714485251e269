"""BIMT vs L1 vs none vs a fixed LM-RNN on one suite: accuracy, surviving synapses, wiring, modularity.

Trains each model preset (resuming runs already in ``--out``), prunes every trained circuit at
each relative cut (|w| <= cut * max|W| per matrix) and evaluates it on held-out trials, then
clusters units by task variance and measures anatomical modularity. Prints a markdown table
and writes ``compare.json``. Example (the run recorded in docs/results.md)::

    PYTHONPATH=. python benchmarks/compare_bimt.py --suite demo --steps 1000 --out runs/compare \
        --lams 0.01,1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from neurosheet.core.io import write_json
from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.analysis import analyze_circuit, functional_clusters, task_rates
from neurosheet.rate.bimt.prune import prune_circuit
from neurosheet.rate.config import load_model_preset, with_overrides
from neurosheet.rate.evaluation import evaluate_circuit
from neurosheet.rate.training import train


def run_one(name: str, args: argparse.Namespace, lam: float | None = None) -> dict[str, Any]:
    preset, _ = load_model_preset(name)
    if lam is not None:
        preset = with_overrides(preset, {"bimt": {"lam": lam}}, f"lambda {lam}")
        name = f"{name}-lam{lam:g}"
    out = Path(args.out) / name
    t0 = time.perf_counter()
    train(out, preset, args.suite, seed=args.seed, preset_name=name, steps=args.steps,
          progress=False)
    circuit = load_run_circuit(out)
    tasks = circuit.tasks
    row: dict[str, Any] = {"preset": name, "lam": preset.bimt.lam if preset.bimt else None,
                           "train_s": time.perf_counter() - t0,
                           "mode": preset.bimt.mode if preset.bimt else "fixed mask",
                           "graph_synapses": circuit.graph.synapses}
    acc = evaluate_circuit(circuit, tasks, args.trials, args.eval_seed)["mean"]
    row["accuracy"] = acc["step_accuracy"]
    row["yang_success"] = acc["yang_success"]
    row["pruned"] = []
    for cut in args.cuts:
        pruned = prune_circuit(circuit, cut, relative=True)
        m = evaluate_circuit(pruned, tasks, args.trials, args.eval_seed)["mean"]
        row["pruned"].append({"cut": cut, "synapses": pruned.graph.synapses,
                              "input_synapses": pruned.graph.inputs.synapses,
                              "readout_synapses": pruned.graph.readout.synapses,
                              "accuracy": m["step_accuracy"], "yang_success": m["yang_success"],
                              "structure": analyze_circuit(pruned)["structure"]})
    rates, masks = task_rates(circuit, args.batch, args.seed)
    clusters = functional_clusters(rates, masks, seed=args.seed)
    row["analysis"] = analyze_circuit(circuit, clusters, n_perm=args.perm, seed=args.seed)
    return row


def table(rows: list[dict[str, Any]], cuts: list[float]) -> str:
    head = ("| preset | mode | acc | " + " | ".join(f"syn / acc @ {c:g}" for c in cuts)
            + " | wiring (rec) | autapse share | k | compact z | Q | within |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        a = r["analysis"]
        an, fu, st = a["anatomical"], a["functional"], a["structure"]
        pr = " | ".join(f"{p['synapses']} / {p['accuracy']:.3f}" for p in r["pruned"])
        lines.append(
            f"| {r['preset']} | {r['mode']} | {r['accuracy']:.3f} | {pr} | "
            f"{st['rec']['wiring_length']:.0f} | {st['diagonal_fraction']:.3f} | {fu['k']} | "
            f"{an['spatial']['pooled']['z']:.2f} | {an['newman_q']:.3f} | "
            f"{an['within_fraction']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="demo")
    p.add_argument("--presets", default="bimt,l1,none,demo")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: presets')")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cuts", default="0.01,0.05,0.1", help="relative prune cuts")
    p.add_argument("--trials", type=int, default=128, help="held-out trials per task")
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--batch", type=int, default=64, help="trials per task for task variance")
    p.add_argument("--perm", type=int, default=200)
    p.add_argument("--lams", default="", help="extra base lambdas for the regularized presets")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.cuts = [float(c) for c in args.cuts.split(",")]
    jobs: list[tuple[str, float | None]] = [(n, None) for n in args.presets.split(",")]
    for lam in (float(x) for x in args.lams.split(",") if x):
        jobs += [(n, lam) for n in args.presets.split(",") if n in ("bimt", "l1")]
    rows = []
    for name, lam in jobs:
        rows.append(run_one(name, args, lam))
        write_json(Path(args.out) / "compare.json", {"args": vars(args), "rows": rows})
        print(f"done {rows[-1]['preset']} in {rows[-1]['train_s']:.0f} s", flush=True)
    print(table(rows, args.cuts))


if __name__ == "__main__":
    main()
