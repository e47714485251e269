"""Render budget reports as Markdown and write them (Markdown + JSON + chart) atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurosheet.core.io import write_json, write_text


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def budget_markdown(r: dict[str, Any], chart: str | None = None) -> str:
    """One target's budget report as Markdown (verdict first, then the numbers and sources)."""
    t = r["target"]
    syn = r["synapses"]
    lines = [
        f"# Synapse budget: {t['title']} (`{t['name']}`)",
        "",
        f"**Verdict: {r['verdict']['text']}**",
        "",
    ]
    if r.get("source"):
        lines += [f"Circuit: `{r['source']}`", ""]
    lines += [
        "## Circuit",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| neurons | {_fmt(r['neurons'])} |",
        f"| input / output channels | {_fmt(r['inputs'])} / {_fmt(r['outputs'])} |",
        f"| synapses: recurrent | {_fmt(syn['recurrent'])} |",
        f"| synapses: input | {_fmt(syn['input'])} |",
        f"| synapses: readout | {_fmt(syn['readout'])} |",
        f"| synapses: total | {_fmt(syn['total'])} |",
        f"| fan-in (recurrent + input): max / mean | {_fmt(r['fan_in']['max'])} / "
        f"{r['fan_in']['mean']:.1f} |",
        f"| fan-out (recurrent + readout): max / mean | {_fmt(r['fan_out']['max'])} / "
        f"{r['fan_out']['mean']:.1f} |",
        "",
        "## Checks (in verdict order)",
        "",
        "| check | used | limit | ok | figure status |",
        "|---|---|---|---|---|",
    ]
    for c in r["checks"]:
        lines.append(f"| {c['name']} | {_fmt(c['used'])} | {_fmt(c['limit'])} | "
                     f"{'yes' if c['ok'] else '**NO**'} | {c.get('status', '')} |")
    lines.append("")
    cores = r.get("cores")
    if cores:
        lines += [
            "## Cores and partition",
            "",
            f"Cores needed: **{cores['needed']}** on **{cores['chips']}** chip(s) "
            f"({_fmt(cores['cores_per_chip'])} cores per chip); binding constraint: "
            f"**{cores['binding']}** (counting lower bounds: "
            + ", ".join(f"{k} {v}" for k, v in cores["lower_bounds"].items()) + ").",
            "",
            "| partition | cores | crossing edges | crossing fraction | max in-axons | "
            "max out-axons | max memory bits | meets per-core limits |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in ("tiling", "random"):
            p = r["partitions"][name]
            label = "sheet tiling" if name == "tiling" else f"random (seed {p['seed']})"
            lines.append(
                f"| {label} | {p['cores']} | {_fmt(p['crossing_edges'])} / {_fmt(p['edges'])} | "
                f"{_pct(p['crossing_fraction'])} | {_fmt(p['max_in_axons'])} | "
                f"{_fmt(p['max_out_axons'])} | {_fmt(p['max_memory_bits'])} | "
                f"{_fmt(p['meets_per_core_limits'])} |")
        lines.append("")
        probe = r["partitions"].get("probe")
        if probe:
            lines += [f"Locality probe ({probe['note']}): edges crossing tiles "
                      f"{_pct(probe['tiling_crossing_fraction'])} with {probe['cores']} sheet "
                      f"tiles vs {_pct(probe['random_crossing_fraction'])} with a random "
                      f"partition of the same sizes (seed {probe['seed']}).", ""]
    elif r["verdict"]["first_broken"] == "recurrent sheet supported":
        lines += ["## Cores and partition", "", "Not computed: the target cannot host a "
                  "recurrent sheet.", ""]
    q = r["quantization"]
    acc = q["accuracy"]
    lines += ["## Weight quantization", ""]
    if q.get("status") == "quantized":
        sign = " + separate sign" if q["sign_extra"] else " (sign included)"
        lines += [f"{q['bits']} bits{sign}: integer levels ±{q['qmax']}, symmetric, one scale "
                  "per matrix; biases left in floating point.", "",
                  "| matrix | scale | relative RMS error | nonzero weights rounded to 0 |",
                  "|---|---|---|---|"]
        for m, s in q["matrices"].items():
            lines.append(f"| {m} | {s['scale']:.4g} | {_pct(s['rel_rms_error'])} | "
                         f"{_pct(s['zeroed_fraction'])} |")
        lines.append("")
    else:
        lines += [f"Not quantized: {q.get('status')}.", ""]
    if acc["status"] == "evaluated":
        lines += [f"Task accuracy: {_pct(acc['float'])} (float) -> {_pct(acc['quantized'])} "
                  f"(quantized), change {100 * acc['delta']:+.1f} points"
                  + (f" ({acc['metric']})." if acc.get("metric") else "."), ""]
    else:
        lines += [f"Task accuracy after quantization: {acc['status']}.", ""]
    a = r["activity"]
    lines += ["## Activity and energy per trial", ""]
    if a["status"] == "from spike counts":
        ops = a["synops_per_trial"]
        src = f" ({a['source']})" if a.get("source") else ""
        lines += [f"From spike counts of {a['trials']} trial(s){src}: "
                  f"{_fmt(a['spikes_per_trial'])} spikes; synaptic operations (spikes x actual "
                  f"fan-out) {_fmt(ops['total'])} = {_fmt(ops['recurrent'])} recurrent + "
                  f"{_fmt(ops['readout'])} readout.", ""]
        packets = a.get("packets_per_trial") or {}
        if packets:
            lines += ["| partition | spike packets to other cores | to other chips |",
                      "|---|---|---|"]
            lines += [f"| {'sheet tiling' if k == 'tiling' else 'random'} | "
                      f"{_fmt(v['inter_core'])} | {_fmt(v['inter_chip'])} |"
                      for k, v in packets.items()]
            lines.append("")
        if a.get("energy_per_trial_uj") is not None:
            lines += [f"Energy: {a['energy_per_trial_uj']:.4g} µJ per trial at "
                      f"{a['energy_per_synop_pj']} pJ per synaptic op; {a['energy_note']}. "
                      f"Source: {a['energy_source']}.", ""]
        else:
            lines += [f"Energy: {a['energy_note']}.", ""]
    else:
        lines += [f"Not computed: {a['status']} ({a.get('note', '')}).", ""]
    if r["uncertain_figures"]:
        lines += ["## Uncertain figures used", ""]
        lines += [f"- `{k}`: {v}" for k, v in r["uncertain_figures"].items()]
        lines.append("")
    notes = [c["note"] for c in r["checks"]
             if c.get("note") and (not c["ok"] or c["name"] == "recurrent sheet supported")]
    notes += r["notes"]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if chart:
        lines += [f"![usage vs limits]({chart})", ""]
    return "\n".join(lines)


def comparison_rows(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per target (the comparison of several targets)."""
    rows = []
    for r in reports:
        cores, parts = r.get("cores") or {}, r.get("partitions") or {}
        acc = r["quantization"]["accuracy"]
        act = r["activity"]
        rows.append({
            "target": r["target"]["name"], "title": r["target"]["title"],
            "fits": r["verdict"]["fits"], "verdict": r["verdict"]["text"],
            "cores": cores.get("needed"), "chips": cores.get("chips"),
            "binding": cores.get("binding"),
            "tiling_crossing": parts.get("tiling", {}).get("crossing_fraction"),
            "random_crossing": parts.get("random", {}).get("crossing_fraction"),
            "probe": parts.get("probe"),
            "weight_bits": r["quantization"]["bits"],
            "accuracy_quantized": acc["quantized"], "accuracy_delta": acc["delta"],
            "synops_per_trial": (act.get("synops_per_trial") or {}).get("total"),
            "energy_per_trial_uj": act.get("energy_per_trial_uj"),
        })
    return rows


def comparison_markdown(reports: Sequence[dict[str, Any]], chart: str | None = None) -> str:
    """The cross-target comparison table as Markdown."""
    rows = comparison_rows(reports)
    lines = ["# Synapse budget across targets", ""]
    if reports:
        r0 = reports[0]
        lines += [f"Circuit: {_fmt(r0['neurons'])} neurons, {_fmt(r0['synapses']['recurrent'])} "
                  f"recurrent + {_fmt(r0['synapses']['input'])} input + "
                  f"{_fmt(r0['synapses']['readout'])} readout synapses.", ""]
    lines += ["| target | verdict | cores | chips | binding | crossing: tiling / random | "
              "weight bits | quantized accuracy (change) | synops/trial | energy/trial |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for w in rows:
        acc = ("not evaluated" if w["accuracy_quantized"] is None else
               f"{_pct(w['accuracy_quantized'])} ({100 * w['accuracy_delta']:+.1f})")
        energy = "—" if w["energy_per_trial_uj"] is None else f"{w['energy_per_trial_uj']:.3g} µJ"
        crossing = f"{_pct(w['tiling_crossing'])} / {_pct(w['random_crossing'])}"
        if w["probe"]:
            p = w["probe"]
            crossing = (f"{_pct(p['tiling_crossing_fraction'])} / "
                        f"{_pct(p['random_crossing_fraction'])} ({p['cores']}-tile probe)")
        lines.append(
            f"| {w['target']} | {w['verdict']} | {_fmt(w['cores'])} | {_fmt(w['chips'])} | "
            f"{_fmt(w['binding'])} | {crossing} | {_fmt(w['weight_bits'])} | {acc} | "
            f"{_fmt(w['synops_per_trial'])} | {energy} |")
    lines.append("")
    if chart:
        lines += [f"![comparison]({chart})", ""]
    return "\n".join(lines)


def write_budget(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``budget-<target>.{md,json,png}`` into ``out_dir`` (each file atomically)."""
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.budget import usage_figure

    out = Path(out_dir)
    stem = f"budget-{report['target']['name']}"
    png = save_figure(usage_figure(report), out / f"{stem}.png")
    md = write_text(out / f"{stem}.md", budget_markdown(report, png.name))
    js = write_json(out / f"{stem}.json", report)
    return {"markdown": md, "json": js, "chart": png}


def write_comparison(reports: Sequence[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """Write ``budget-all.{md,json,png}`` plus each target's own report into ``out_dir``."""
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.budget import comparison_figure

    out = Path(out_dir)
    for r in reports:
        write_budget(r, out)
    png = save_figure(comparison_figure(reports), out / "budget-all.png")
    md = write_text(out / "budget-all.md", comparison_markdown(reports, png.name))
    js = write_json(out / "budget-all.json", {"rows": comparison_rows(reports),
                                              "reports": list(reports)})
    return {"markdown": md, "json": js, "chart": png}
