"""``experiment report``: the table, the figures and a verdict per claim from an experiment folder.

Reads only ``OUT/design.toml`` and ``OUT/results/*/*.json`` (the committed raw results), so a
report can be rebuilt anywhere without the run directories. Writes ``OUT/report.md``,
``OUT/report.json`` and ``OUT/plots/{curves,density,synapses}.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json, write_text
from neurosheet.experiments.design import Arm, Design, load_design
from neurosheet.experiments.stats import interval, sample_sd, verdict

Results = dict[str, dict[int, dict[str, Any]]]  # condition -> seed -> result
MODULARITY = ("compactness_z", "compactness_gap", "q_z", "within_fraction")


def load_results(out: str | Path) -> tuple[Design, Results, dict[str, Any]]:
    """The design as run, every finished result, and ``experiment.json`` (may be empty)."""
    out = Path(out)
    if not (out / "design.toml").is_file():
        raise NeurosheetError(f"{out} is not an experiment folder (no design.toml): run "
                              "`neurosheet experiment run` first", "dir")
    design, _ = load_design(out / "design.toml")
    results: Results = {}
    for f in sorted((out / "results").glob("*/s*.json")):
        r = json.loads(f.read_text())
        results.setdefault(r["condition"], {})[int(r["seed"])] = r
    meta = json.loads((out / "experiment.json").read_text()) if (out / "experiment.json").is_file() else {}
    sc = design.scales.get(meta.get("scale", ""))
    if sc is not None and sc.synapse_budget is not None:  # the scale's own budget governs
        design = design.model_copy(update={"synapse_budget": sc.synapse_budget})
    if sc is not None and sc.conditions is not None:  # an arm holds only the scale's conditions
        keep = set(sc.conditions)
        arms = [a.model_copy(update={"conditions": [c for c in a.conditions if c in keep]
                                     or a.conditions}) for a in design.arms]
        design = design.model_copy(update={"arms": arms})
    return design, results, meta


# --------------------------------------------------------------------- per-run numbers
def metric_value(r: dict[str, Any], metric: str, budget: float) -> float | None:
    """One run's number for ``metric`` (steps to criterion: censored at the last step + 1)."""
    if metric in ("final_test", "final_val", "auc", "gain_test"):
        return r.get(metric)
    if metric == "steps_to_criterion":
        s = r.get("steps_to_criterion")
        return float(s) if s is not None else float(r["steps"] + 1)
    if metric in MODULARITY:
        return (r.get("modularity") or {}).get(metric)
    if metric in ("budget_test", "budget_val"):
        best = best_within(r.get("frontier") or [], budget)
        return None if best is None else best["test" if metric == "budget_test" else "val"]
    raise NeurosheetError(f"unknown metric {metric!r}", "metric")


def best_within(points: list[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The frontier point with the best validation accuracy within the synapse budget."""
    ok = [p for p in points if p["fraction"] <= budget]
    return max(ok, key=lambda p: (p["val"], -p["synapses"])) if ok else None


def arm_values(design: Design, arm: Arm, metric: str, results: Results) -> dict[int, dict[str, Any]]:
    """Per seed: the arm's value of ``metric`` and what was chosen (on validation) to get it.

    A seed counts only when every condition of the arm finished for it.
    """
    seeds = set.intersection(*[set(results.get(c, {})) for c in arm.conditions])
    out: dict[int, dict[str, Any]] = {}
    for seed in sorted(seeds):
        runs = [results[c][seed] for c in arm.conditions]
        if metric.startswith("budget_"):
            pts = [(r["condition"], p) for r in runs for p in r.get("frontier") or []]
            ok = [(c, p) for c, p in pts if p["fraction"] <= design.synapse_budget]
            if not ok:
                out[seed] = {"value": None, "chosen": "nothing within the budget"}
                continue
            c, p = max(ok, key=lambda cp: (cp[1]["val"], -cp[1]["synapses"]))
            out[seed] = {"value": p["test" if metric == "budget_test" else "val"],
                         "chosen": f"{c} cut {p['cut']:g} ({p['fraction']:.1%} synapses)"}
            continue
        if len(runs) == 1:
            chosen = runs[0]
        else:
            scored = [(metric_value(r, arm.select, design.synapse_budget), r) for r in runs]
            scored = [(v, r) for v, r in scored if v is not None]
            if not scored:
                out[seed] = {"value": None, "chosen": "no validation value"}
                continue
            chosen = max(scored, key=lambda vr: vr[0])[1]
        out[seed] = {"value": metric_value(chosen, metric, design.synapse_budget),
                     "chosen": chosen["condition"]}
    return out


def fixation_floor(suite: str, mode: str, trials: int, seeds: list[int], metric: str) -> float:
    """Mean score of a network that always fixates (class 0 at every step) on the test trials.

    The floor a learning curve starts its climb from: non-match DMS-family trials are answered
    by fixating, and in reference mode so are answers at ring unit 15 (the label wrap).
    """
    from neurosheet.core.seeds import SeedPlan
    from neurosheet.rate.evaluation import heldout_batches, score_batches
    from neurosheet.tasks import N_OUT, load_suite

    tasks = load_suite(suite).tasks

    def fixate(x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], x.shape[1], N_OUT), np.float32)
        out[..., 0] = 1.0
        return out

    return float(np.mean([score_batches(fixate, heldout_batches(tasks, trials,
                                                                SeedPlan(s).test, mode=mode),
                                        tasks)["mean"][metric] for s in seeds]))


# --------------------------------------------------------------------- claims
def judge(design: Design, results: Results) -> list[dict[str, Any]]:
    """Every claim: per-seed values and differences, intervals, and the verdict."""
    out = []
    for i, claim in enumerate(design.claims):
        a = arm_values(design, design.arm(claim.a), claim.metric, results)
        b = arm_values(design, design.arm(claim.b), claim.metric, results) if claim.b else None
        rows, dropped = [], []
        for seed in sorted(a):
            va = a[seed]["value"]
            vb = None if b is None else b.get(seed, {}).get("value")
            if va is None or (b is not None and vb is None):
                why = a[seed]["chosen"] if va is None else (b or {}).get(seed, {}).get(
                    "chosen", "not finished")
                dropped.append({"seed": seed, "why": why})
                continue
            d = va if b is None else (vb - va if claim.lower_is_better else va - vb)
            rows.append({"seed": seed, "a": va, "b": vb, "diff": d, "a_chosen": a[seed]["chosen"],
                         "b_chosen": None if b is None else b[seed]["chosen"]})
        iv = interval([r["diff"] for r in rows], design.confidence, design.bootstrap, seed=i)
        v = verdict(iv, claim.margin, design.interval) if iv.n else "not run"
        lo, hi = iv.bounds(design.interval)
        what = (f"{claim.a}" if claim.b is None else
                (f"{claim.b} - {claim.a}" if claim.lower_is_better else f"{claim.a} - {claim.b}"))
        pct = f"{design.confidence:.0%}"
        summary = (f"{what} ({claim.metric}) = {_f(iv.mean)} [{_f(lo)}, {_f(hi)}] ({pct} "
                   f"{design.interval} interval, {iv.n} seeds{', paired by seed' if claim.b else ''}); "
                   f"margin {claim.margin:g}"
                   if iv.n else "no finished seeds")
        out.append({"name": claim.name, "statement": claim.statement, "a": claim.a,
                    "b": claim.b, "metric": claim.metric, "margin": claim.margin,
                    "per_seed": rows, "dropped": dropped, "interval": iv.as_dict(),
                    "decided_by": design.interval, "verdict": v, "summary": summary})
    return out


# --------------------------------------------------------------------- tables
def condition_table(design: Design, results: Results) -> list[dict[str, Any]]:
    """One row per condition: seeds, density, synapses and the metrics with spread and CI."""
    rows = []
    for cond in design.conditions:
        runs = list(results.get(cond.name, {}).values())
        if not runs:
            continue
        row: dict[str, Any] = {
            "condition": cond.name, "preset": cond.preset, "suite": cond.suite or design.suite,
            "seeds": sorted(r["seed"] for r in runs), "n": runs[0]["n"],
            "density": float(np.mean([r["density"] for r in runs])),
            "synapses": float(np.mean([r["synapses"] for r in runs])),
            "steps": runs[0]["steps"],
        }
        for m in ("final_test", "final_val", "auc"):
            vals = [r[m] for r in runs if r.get(m) is not None]
            iv = interval(vals, design.confidence, design.bootstrap)
            row[m] = {"mean": iv.mean, "sd": iv.sd, "low": iv.t_low, "high": iv.t_high,
                      "values": vals}
        reached = [r["steps_to_criterion"] for r in runs]
        hit = [s for s in reached if s is not None]
        row["steps_to_criterion"] = reached
        row["reached"] = f"{len(hit)}/{len(runs)}"
        if any("modularity" in r for r in runs):
            row["modularity"] = {m: _mean_sd([(r.get("modularity") or {}).get(m) for r in runs])
                                 for m in (*MODULARITY, "clusters")}
        if any("frontier" in r for r in runs):
            row["frontier"] = _frontier_mean(runs)
        rows.append(row)
    return rows


def _mean_sd(values: list[float | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    return {"mean": float(np.mean(v)) if v else None, "sd": sample_sd(v), "n": len(v)}


def _frontier_mean(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cuts = sorted({p["cut"] for r in runs for p in r.get("frontier") or []})
    out = []
    for cut in cuts:
        pts = [p for r in runs for p in r.get("frontier") or [] if p["cut"] == cut]
        out.append({"cut": cut, "fraction": float(np.mean([p["fraction"] for p in pts])),
                    "synapses": float(np.mean([p["synapses"] for p in pts])),
                    "val": _mean_sd([p["val"] for p in pts]),
                    "test": _mean_sd([p["test"] for p in pts])})
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}" if x < 0 else f"{x:.{digits}f}"


def _ms(d: dict[str, Any]) -> str:
    if d.get("mean") is None:
        return "-"
    sd = f" ± {d['sd']:.3f}" if d.get("sd") is not None else ""
    ci = f" [{_f(d['low'])}, {_f(d['high'])}]" if d.get("low") is not None else ""
    return f"{d['mean']:.3f}{sd}{ci}"


def markdown(design: Design, table: list[dict[str, Any]], claims: list[dict[str, Any]],
             meta: dict[str, Any], figures: dict[str, Path]) -> str:
    """The report as Markdown: how it ran, the condition table, frontier, modularity, claims."""
    scale = meta.get("scale", "?")
    sc = design.scales.get(scale)
    pct = f"{design.confidence:.0%}"
    lines = [f"# Experiment {design.name} (scale {scale})", ""]
    if sc is not None:
        lines += [f"Scale: {sc.description or scale}. Steps {sc.steps}, seeds "
                  f"{', '.join(map(str, sc.seeds))}, validation {sc.eval_trials} trials/task every "
                  f"{sc.eval_every} steps, test {sc.test_trials} trials/task.", ""]
    lines += [f"Suite {design.suite} ({design.task_mode} task mode), metric {design.metric}, "
              f"criterion {design.criterion:g} (mean validation {design.metric}). Spread: sample "
              f"sd (ddof = 1) over seeds; [..] = {pct} t interval of the mean.", ""]
    if meta.get("floors"):
        floors = ", ".join(f"{k} {v:.3f}" for k, v in meta["floors"].items())
        lines += [f"Floor (a network that always fixates, same test trials): {floors}.", ""]
    if meta.get("command"):
        lines += ["Command:", "", "```bash", meta["command"],
                  f"neurosheet experiment report {meta.get('out', 'OUT')}", "```", ""]
    lines += ["## Conditions", "",
              f"| condition | suite | seeds | N | density | synapses | final test {design.metric} "
              f"| AUC (validation) | final validation | reached {design.criterion:g} | steps to it |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        steps = ", ".join("-" if s is None else str(s) for s in r["steps_to_criterion"])
        lines.append(f"| {r['condition']} | {r['suite']} | {len(r['seeds'])} | {r['n']} | "
                     f"{r['density']:.1%} | {r['synapses']:.0f} | {_ms(r['final_test'])} | "
                     f"{_ms(r['auc'])} | {_ms(r['final_val'])} | {r['reached']} | {steps} |")
    front = [r for r in table if "frontier" in r]
    if front:
        lines += ["", "## Accuracy vs synapses (relative pruning cuts)", "",
                  f"Budget: {design.synapse_budget:.0%} of a fully connected network's synapses "
                  "(recurrent + input + readout).", "",
                  "| condition | cut | synapses (fraction) | validation | test ± sd |",
                  "|---|---|---|---|---|"]
        for r in front:
            for p in r["frontier"]:
                t = p["test"]
                sd = f" ± {t['sd']:.3f}" if t["sd"] is not None else ""
                lines.append(f"| {r['condition']} | {p['cut']:g} | {p['synapses']:.0f} "
                             f"({p['fraction']:.1%}) | {p['val']['mean']:.3f} | "
                             f"{t['mean']:.3f}{sd} |")
    mod = [r for r in table if "modularity" in r]
    if mod:
        lines += ["", "## Modularity against permutation nulls", "",
                  "| condition | clusters | compactness z | 1 - compactness ratio | Newman Q z | "
                  "within-cluster weight share |", "|---|---|---|---|---|---|"]
        for r in mod:
            m = r["modularity"]
            cell = {k: (f"{m[k]['mean']:.2f}" + (f" ± {m[k]['sd']:.2f}" if m[k]["sd"] is not None
                                                  else "")) if m[k]["mean"] is not None else "-"
                    for k in m}
            lines.append(f"| {r['condition']} | {cell['clusters']} | {cell['compactness_z']} | "
                         f"{cell['compactness_gap']} | {cell['q_z']} | {cell['within_fraction']} |")
    lines += ["", "## Claims", "",
              f"Verdict: supported when the {pct} interval of the per-seed difference lies above "
              "the margin, not supported when it lies at or below it, inconclusive otherwise.", ""]
    for c in claims:
        lines += [f"### {c['name']}: **{c['verdict']}**", "", c["statement"] + ".", "",
                  f"{c['summary']}; bootstrap {pct}: [{_f(c['interval']['boot_low'])}, "
                  f"{_f(c['interval']['boot_high'])}].", ""]
        if c["per_seed"]:
            lines += ["| seed | a | b | difference | a chosen | b chosen |", "|---|---|---|---|---|---|"]
            for s in c["per_seed"]:
                lines.append(f"| {s['seed']} | {_f(s['a'])} | {_f(s['b'])} | {_f(s['diff'])} | "
                             f"{s['a_chosen']} | {s['b_chosen'] or '-'} |")
            lines.append("")
        for d in c.get("dropped", []):
            lines.append(f"Seed {d['seed']} has no value and is left out: {d['why']}.")
        if c.get("dropped"):
            lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{k}](plots/{Path(v).name})" for k, v in figures.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- figures
def figures(design: Design, results: Results, table: list[dict[str, Any]],
            out: Path) -> dict[str, Path]:
    """Learning curves with bands; accuracy vs density; accuracy vs synapses."""
    import matplotlib.pyplot as plt

    from neurosheet.reports.plots import save_figure

    paths: dict[str, Path] = {}
    suites = sorted({r["suite"] for r in table}, key=lambda s: s != design.suite)
    if not table:
        return paths
    fig, axes = plt.subplots(1, len(suites), figsize=(6.5 * len(suites), 4.2), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        for r in table:
            if r["suite"] != suite:
                continue
            runs = list(results[r["condition"]].values())
            steps = runs[0]["curve"]["steps"]
            curves = np.array([x["curve"]["val"] for x in runs
                               if x["curve"]["steps"] == steps], float)
            mean = curves.mean(0)
            line = ax.plot(steps, mean, label=f"{r['condition']} ({len(curves)})")[0]
            if len(curves) > 1:
                sd = curves.std(0, ddof=1)
                ax.fill_between(steps, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
        ax.axhline(design.criterion, color="grey", lw=0.8, ls=":")
        ax.set(title=f"{suite}: validation {design.metric} (band: ± 1 sample sd over seeds)",
               xlabel="training step", ylabel=design.metric)
        ax.legend(fontsize=7)
    paths["curves"] = save_figure(fig, out / "plots" / "curves.png")

    main = [r for r in table if r["suite"] == design.suite]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for x_key, ax, xlabel in (("density", axes[0], "recurrent density"),
                              ("synapses", axes[1], "recurrent synapses")):
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in main:  # a density sweep is one line; a fixed-density condition one point
            swept = design.condition(r["condition"]).density is not None
            groups.setdefault(r["preset"] if swept else r["condition"], []).append(r)
        for preset, rows in groups.items():
            rows = sorted(rows, key=lambda r: r[x_key])
            xs = [r[x_key] for r in rows]
            ys = [r["final_test"]["mean"] for r in rows]
            es = [r["final_test"]["sd"] or 0.0 for r in rows]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=preset)
        ax.set(xscale="log", xlabel=xlabel, ylabel=f"test {design.metric} (± sample sd)",
               title=f"{design.suite}: accuracy vs {xlabel}")
        ax.legend(fontsize=7)
    paths["density"] = save_figure(fig, out / "plots" / "density.png")

    front = [r for r in table if "frontier" in r]
    if front:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for r in front:
            xs = [p["fraction"] for p in r["frontier"]]
            ys = [p["test"]["mean"] for p in r["frontier"]]
            es = [p["test"]["sd"] or 0.0 for p in r["frontier"]]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=r["condition"])
        ax.axvline(design.synapse_budget, color="grey", ls=":", lw=0.8,
                   label=f"budget {design.synapse_budget:.0%}")
        ticks = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set(xscale="log", xlabel="synapses kept (fraction of fully connected)",
               ylabel=f"test {design.metric} (± sample sd)",
               title="accuracy vs synapses over pruning cuts")
        ax.legend(fontsize=7)
        paths["synapses"] = save_figure(fig, out / "plots" / "synapses.png")
    return paths


def write_report(out: str | Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write ``report.md``, ``report.json`` and the figures of an experiment folder."""
    out = Path(out)
    design, results, meta = load_results(out)
    if not results:
        raise NeurosheetError(f"{out} has no finished runs yet (results/ is empty)", "dir")
    table = condition_table(design, results)
    claims = judge(design, results)
    meta = {**meta, "out": str(out)}
    sc = design.scales.get(meta.get("scale", ""))
    if sc is not None:
        meta["floors"] = {suite: fixation_floor(suite, design.task_mode, sc.test_trials,
                                                sc.seeds, design.metric)
                          for suite in sorted({r["suite"] for r in table})}
    figs = figures(design, results, table, out)
    report = {"design": design.name, "scale": meta.get("scale"), "task_mode": design.task_mode,
              "metric": design.metric, "criterion": design.criterion,
              "confidence": design.confidence, "interval": design.interval,
              "command": meta.get("command"), "fixation_floor": meta.get("floors"),
              "conditions": table, "claims": claims,
              "missing": [{"condition": j["condition"], "seed": j["seed"]}
                          for j in meta.get("jobs", [])
                          if j["seed"] not in results.get(j["condition"], {})]}
    paths = {"markdown": write_text(out / "report.md", markdown(design, table, claims, meta, figs)),
             "json": write_json(out / "report.json", report), **figs}
    return paths, report
