"""The pipeline's ``index.md``: what ran, the headline numbers, links to everything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def locality_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Crossing-edge fraction of sheet tiling vs random partition, from the first target
    that partitions the circuit (or the one-core locality probe)."""
    for r in reports:
        parts = r.get("partitions") or {}
        if "probe" in parts:
            p = parts["probe"]
            return {"target": r["target"]["name"], "cores": p["cores"],
                    "tiling": p["tiling_crossing_fraction"],
                    "random": p["random_crossing_fraction"], "probe": True}
        if "tiling" in parts and parts["tiling"]["cores"] > 1:
            return {"target": r["target"]["name"], "cores": parts["tiling"]["cores"],
                    "tiling": parts["tiling"]["crossing_fraction"],
                    "random": parts["random"]["crossing_fraction"], "probe": False}
    return {}


def index_markdown(s: dict[str, Any]) -> str:
    """The report a person opens first: what ran, the headline numbers, links to the rest."""
    g, t, ev = s["graph"], s["training"], s["evaluation"]
    cfg = s["config"]
    lines = [
        "# neurosheet pipeline report",
        "",
        f"Preset `{cfg['preset']}` on suite `{cfg['suite']}`, seed {cfg['seed']}.",
        "",
        "## The circuit",
        "",
        f"- {g['n']} neurons on a {g['sheet']['width']:g} x {g['sheet']['height']:g} sheet "
        f"({g['sheet']['layout']}{', torus' if g['sheet']['periodic'] else ''}), "
        f"wiring rule `{g.get('rule')}`",
        f"- {g['synapses']:,} recurrent synapses (density {g['density']:.2%}), "
        f"{g['input_synapses']:,} input and {g['readout_synapses']:,} readout synapses",
        f"- fan-in mean {g['mean_fan_in']:.1f} / max {g['max_fan_in']}, mean connection "
        f"length {g['mean_length']:.2f} sheet units",
        "",
        "![sheet](sheet.png)",
        "",
        "## Training",
        "",
        f"- {t['steps']} steps" + (f" (resumed from step {t['resumed_from']})"
                                   if t["resumed_from"] else "")
        + "; criterion " + (f"reached at step {t['steps_to_criterion']}"
                            if t["steps_to_criterion"] is not None else "not reached"),
        "",
        "![learning curves](run/plots/learning_curves.png)",
        "",
        "## Accuracy: rate vs spiking (held-out trials, the same trials for every backend)",
        "",
        "Headline: **trial success** — fixation held on every step before the decision and "
        "the right ring unit on every decision step (Yang et al.'s performance; forgives "
        "nothing), with its 95% Wilson interval. Beside it: *step accuracy* (decision steps "
        "right, pooled; forgives a wrong step inside an otherwise right trial) / *Yang 36°* "
        "(the last step only, within 36° of the target; forgives an answer one ring unit off "
        "and every earlier step).",
        "",
        "| task | " + " | ".join(f"{b} trial success" for b in ev) + " | "
        + " | ".join(f"{b} step / Yang" for b in ev) + " |",
        "|---|" + "---|" * (2 * len(ev)),
    ]

    def ci(c: Any) -> str:
        return f" [{c[0]:.3f}, {c[1]:.3f}]" if c else ""

    def row(label: str, scores: Any, strong: bool) -> str:
        """One table row: every backend's trial success (interval), then step / Yang."""
        cells, more = [], []
        for b in ev:
            sc = scores(ev[b])
            if sc is None:
                cells.append("refused")
                more.append("—")
                continue
            ts = f"{sc['trial_success']:.3f}"
            cells.append((f"**{ts}**" if strong else ts)
                         + ci((sc.get("ci") or {}).get("trial_success")))
            more.append(f"{sc['step_accuracy']:.3f} / {sc['yang_success']:.3f}")
        return f"| {label} | " + " | ".join(cells + more) + " |"

    for name in ev["rate"]["per_task"]:
        lines.append(row(name, lambda r, t=name: None if "refused" in r else r["per_task"][t],
                         False))
    lines += [row("mean", lambda r: None if "refused" in r else
                  {**r["mean"], "ci": r.get("ci")}, True), ""]
    ft = s.get("finetune") or {}
    if ft.get("status") == "fine-tuned":
        lines.append(
            f"- spiking circuit: converted (validation trial success "
            f"{ft['converted_trial_success']:.3f} vs rate {ft['rate_trial_success']:.3f}: below "
            f"{ft['threshold']} x rate), then fine-tuned with surrogate gradients for "
            f"{ft['steps']} steps in {ft['seconds']:.0f} s (best validation trial success "
            f"{ft['tuned_trial_success']:.3f}, {ft['validation_trials_per_task']} trials per "
            "task); simulated below with the same circuit in every spiking backend")
    elif ft.get("status"):
        lines.append(f"- spiking circuit: fine-tuning {ft['status']}")
    for b, r in ev.items():
        if b == "rate":
            continue
        if "refused" in r:
            lines.append(f"- {b}: conversion refused — {r['refused']}")
        elif r.get("fidelity") is not None:
            worst = r.get("worst_task_ratio")
            lines.append(f"- {b}: {r['trials']} trials per task; spiking / rate mean trial "
                         f"success = **{r['fidelity']:.3f}**"
                         + (f" (worst task {worst:.3f})" if worst is not None else ""))
    lines.append("")
    for name, path in (s.get("rasters") or {}).items():
        lines += [f"![raster {name}]({Path(path).name})", ""]
    sp = s.get("spikes")
    if sp:
        lines += [f"Spike counts for the budget: {sp['trials']} mixed trials, "
                  f"{sp['spikes_per_trial']:,.0f} spikes per trial, mean rate "
                  f"{sp['mean_rate_hz']:.1f} Hz (`run/spike_counts.npz`).", ""]
    b = s["budget"]
    lines += ["## Hardware budgets", "",
              "Full comparison: [budget/budget-all.md](budget/budget-all.md); one report per "
              "target in `budget/`.", ""]
    lines += ["| target | verdict | cores | chips | weight bits | accuracy quantized (change) "
              "| synaptic ops / trial | energy / trial (uJ) |", "|---|---|---|---|---|---|---|---|"]
    for row in b["rows"]:
        lines.append(
            f"| {row['target']} | {row['verdict']} | {_fmt(row['cores'])} | {_fmt(row['chips'])} "
            f"| {_fmt(row['weight_bits'])} | {_fmt_acc(row)} | {_fmt(row['synops_per_trial'])} "
            f"| {_fmt(row['energy_per_trial_uj'])} |")
    loc = b.get("locality") or {}
    if loc:
        kind = "locality probe" if loc["probe"] else "placement"
        lines += ["", f"Partition of the sheet onto {loc['cores']} cores ({loc['target']}, "
                  f"{kind}): edges crossing cores **{loc['tiling']:.1%}** with sheet tiles vs "
                  f"**{loc['random']:.1%}** with a random partition."]
    lines += ["", "![budgets](budget/budget-all.png)", "", "## Stages", "",
              "| stage | status | wall s | CPU s |", "|---|---|---|---|"]
    for st in s["stages"]:
        status = st["status"] + (f": {st['detail']}" if st["detail"] else "")
        cpu = st.get("cpu_s")
        lines.append(f"| {st['name']} | {status} | {st['seconds']:.1f} | "
                     f"{'—' if cpu is None else f'{cpu:.1f}'} |")
    total = s.get("total_s")
    if total is not None:
        cpu_total = sum(st.get("cpu_s") or 0.0 for st in s["stages"])
        lines.append(f"| **total** | | **{total:.1f}** | **{cpu_total:.1f}** |")
    return "\n".join(lines) + "\n"


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1e3 else f"{x:.3g}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _fmt_acc(row: dict[str, Any]) -> str:
    acc, delta = row.get("accuracy_quantized"), row.get("accuracy_delta")
    if not isinstance(acc, float):
        return str(acc) if acc is not None else "—"
    return f"{acc:.3f} ({delta:+.3f})" if isinstance(delta, float) else f"{acc:.3f}"
