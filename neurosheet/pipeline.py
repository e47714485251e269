"""The one-command pipeline: train -> convert -> fine-tune -> simulate (snntorch, Brian2) -> budgets.

Every stage is a plain call into the library on the run directory that training writes, so
this module only orders the stages, catches a stage's refusal (e.g. a conversion gate) as a
reported result rather than a crash, and writes one folder a person can open::

    OUT/index.md          what was run, the numbers, links to everything below
    OUT/run/              the training run directory (graph, circuit, checkpoint, metrics, plots)
    OUT/sheet.png         the sheet and its wiring
    OUT/raster-*.png      spike rasters with the decoded output
    OUT/evaluation.json   rate vs spiking accuracy per task (same trials for every backend)
    OUT/budget/           budget-<target>.{md,json,png} and the comparison budget-all.*

Re-running on the same OUT resumes training from its last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json, write_npz, write_text

SPIKE_COUNTS_FILE = "spike_counts.npz"
N_STAGES = 7


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline runs; the defaults are the README's embedded default."""

    preset: str = "demo"
    suite: str = "demo"
    seed: int = 0
    steps: int | None = None  # None: the preset's own step count
    eval_trials: int = 64  # held-out trials per task, the same trials for every backend
    brian2_trials: int | None = None  # None: eval_trials (fewer: every backend gets fewer)
    spike_trials: int = 64  # mixed trials whose spike counts feed the synaptic-op budget
    targets: tuple[str, ...] = ()  # () = every profile in deploy/
    brian2: bool = True
    brian2_target: str = "auto"  # auto: cython when a compiler exists, else numpy
    gate: str = "error"  # what a failed "rate model works at K sub-steps" check does
    finetune: bool = True  # fine-tune the spiking circuit when its fidelity falls short
    finetune_below: float = 0.95  # ... i.e. validation trial success < this x the rate model's
    finetune_steps: int | None = None  # None: FinetuneConfig's default
    progress: bool = True

    def conversion(self) -> Any:
        """The conversion knobs every spiking stage shares (so they reuse one saved conversion)."""
        from neurosheet.spiking.conversion import ConversionConfig

        return ConversionConfig(gate=self.gate)

    @property
    def trials(self) -> int:
        """Held-out trials per task for every backend (Brian2's count caps them all)."""
        return min(self.eval_trials, self.brian2_trials or self.eval_trials)


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    status: str = "ok"
    detail: str = ""


def run_pipeline(out_dir: str | Path, cfg: PipelineConfig = PipelineConfig(),
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage into ``out_dir``; returns the summary written to ``index.json``."""
    from neurosheet.spiking.evaluate import register

    register()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    summary: dict[str, Any] = {"config": asdict(cfg), "out": str(out), "stages": []}
    stages: list[Stage] = []

    def stage(name: str, fn: Callable[[], Any], optional: bool = False) -> Any:
        log(f"[{len(stages) + 1}/{N_STAGES}] {name} ...")
        st = Stage(name)
        t0 = time.perf_counter()
        try:
            result = fn()
        except NeurosheetError as exc:
            if not optional:
                raise
            st.status, st.detail, result = "refused", str(exc), None
            log(f"      {name}: {exc}")
        st.seconds = time.perf_counter() - t0
        stages.append(st)
        summary["stages"] = [asdict(s) for s in stages]
        return result

    trained = stage("train the rate network", lambda: _train(run_dir, cfg))
    summary["training"] = trained
    circuit = _load(run_dir)
    summary["graph"] = circuit.graph.summary()
    stage("plot the sheet", lambda: _plot_sheet(circuit, out / "sheet.png"))
    tuned = stage("convert and fine-tune the spiking circuit",
                  lambda: _finetune(circuit, run_dir, cfg, log), optional=True)
    summary["finetune"] = tuned
    evaluation = stage("evaluate rate, snntorch and Brian2",
                       lambda: _evaluate(circuit, run_dir, cfg, log))
    summary["evaluation"] = evaluation
    rasters = stage("spike rasters", lambda: _rasters(circuit, run_dir, out, cfg), optional=True)
    summary["rasters"] = rasters or {}
    spikes = stage("spike counts for synaptic operations",
                   lambda: _spike_counts(circuit, run_dir, cfg), optional=True)
    summary["spikes"] = spikes
    budget = stage("hardware budgets", lambda: _budgets(circuit, run_dir, out, cfg, spikes))
    summary["budget"] = budget
    summary["stages"] = [asdict(s) for s in stages]
    write_json(out / "index.json", summary)
    write_text(out / "index.md", index_markdown(summary))
    return summary


# --------------------------------------------------------------------- stages
def _train(run_dir: Path, cfg: PipelineConfig) -> dict[str, Any]:
    from neurosheet.rate.config import load_model_preset
    from neurosheet.rate.model import resolve_device
    from neurosheet.rate.training import train

    preset, path = load_model_preset(cfg.preset)
    result = train(run_dir, preset, cfg.suite, seed=cfg.seed, preset_name=cfg.preset,
                   steps=cfg.steps, device=resolve_device("auto"), progress=cfg.progress)
    return {"preset": str(path), "steps": result.steps, "final": result.final["mean"],
            "steps_to_criterion": result.steps_to_criterion,
            "resumed_from": result.resumed_from}


def _load(run_dir: Path) -> Any:
    from neurosheet.graph.circuit import load_run_circuit

    return load_run_circuit(run_dir)


def _plot_sheet(circuit: Any, path: Path) -> str:
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.sheet import sheet_figure

    return str(save_figure(sheet_figure(circuit.graph), path))


def _finetune(circuit: Any, run_dir: Path, cfg: PipelineConfig,
              log: Callable[[str], None]) -> dict[str, Any]:
    """Convert; fine-tune when the converted circuit's validation trial success is below
    ``finetune_below`` x the rate model's on the same validation trials."""
    from dataclasses import replace

    from neurosheet.rate.evaluation import heldout_batches, rate_backend, score_batches
    from neurosheet.spiking.finetune import (
        VALIDATION_SEED_OFFSET,
        FinetuneConfig,
        finetune_run,
        validate,
    )
    from neurosheet.spiking.rundir import load_tuned, spiking_for_run

    ft = FinetuneConfig(seed=cfg.seed)
    if cfg.finetune_steps is not None:
        ft = replace(ft, steps=cfg.finetune_steps)
    conv = cfg.conversion()
    existing = load_tuned(run_dir, circuit, conv)
    if existing is not None:
        meta = existing.meta.get("finetune", {})
        return {"status": "reused", "validation": meta, "steps": meta.get("steps_done")}
    sc = spiking_for_run(run_dir, circuit, conv, 64, cfg.seed, tuned=False)
    val = heldout_batches(circuit.tasks, ft.eval_trials, ft.seed + VALIDATION_SEED_OFFSET,
                          rule_inputs=circuit.tasks)
    rate = score_batches(rate_backend(circuit), val, tuple(val))["mean"]["trial_success"]
    spk = validate(sc, val)["mean"]["trial_success"]
    ratio = spk / rate if rate > 0 else None  # None: the rate model fails the validation too
    info: dict[str, Any] = {"validation_trials_per_task": ft.eval_trials,
                            "rate_trial_success": rate, "converted_trial_success": spk,
                            "converted_ratio": ratio, "threshold": cfg.finetune_below}
    log(f"      converted: validation trial success {spk:.3f} vs rate {rate:.3f} "
        f"(threshold {cfg.finetune_below} x rate)")
    if not cfg.finetune or (ratio is not None and ratio >= cfg.finetune_below):
        info["status"] = "not needed" if cfg.finetune else "off"
        return info
    t0 = time.perf_counter()
    res = finetune_run(run_dir, ft, conv, seed=cfg.seed, log=log)
    info.update(status="fine-tuned", steps=res.steps, best_step=res.best_step,
                tuned_trial_success=res.best["mean"]["trial_success"],
                seconds=time.perf_counter() - t0, train_substeps=list(ft.substeps),
                substeps=res.circuit.substeps)
    return info


def _evaluate(circuit: Any, run_dir: Path, cfg: PipelineConfig,
              log: Callable[[str], None]) -> dict[str, Any]:
    """Rate, snntorch and Brian2 on the same held-out trials (same seed, same count)."""
    from neurosheet.rate.evaluation import evaluate_circuit

    seed = cfg.seed + 12345  # held-out trials, never the training stream
    trials = cfg.trials
    results: dict[str, Any] = {}
    runs = ["rate", "snntorch"] + (["brian2"] if cfg.brian2 else [])
    for backend in runs:
        opts: dict[str, Any] = {}
        if backend != "rate":
            opts = {"run_directory": run_dir, "progress": False, "gate": cfg.gate,
                    "brian2_target": cfg.brian2_target}
        t0 = time.perf_counter()
        try:
            res = evaluate_circuit(circuit, circuit.tasks, trials, seed, backend, **opts)
        except NeurosheetError as exc:  # e.g. the conversion gate refused this circuit
            results[backend] = {"refused": str(exc), "trials": trials}
            log(f"      {backend}: {exc}")
            continue
        res["seconds"] = time.perf_counter() - t0
        results[backend] = res
        m, ci = res["mean"], res["ci"]["trial_success"]
        log(f"      {backend:<8} trial success {m['trial_success']:.3f} "
            f"[{ci[0]:.3f}, {ci[1]:.3f}], step accuracy {m['step_accuracy']:.3f}, "
            f"Yang 36 deg {m['yang_success']:.3f} ({trials} trials/task, "
            f"{res['seconds']:.0f} s)")
    rate = results["rate"]["mean"]["trial_success"]
    for backend in ("snntorch", "brian2"):
        r = results.get(backend, {})
        if "mean" in r:
            r["fidelity"] = r["mean"]["trial_success"] / rate if rate > 0 else None
            r["worst_task_ratio"] = min(
                (v["trial_success"] / results["rate"]["per_task"][k]["trial_success"]
                 for k, v in r["per_task"].items()
                 if results["rate"]["per_task"][k]["trial_success"] > 0), default=None)
    return results


def _rasters(circuit: Any, run_dir: Path, out: Path, cfg: PipelineConfig) -> dict[str, str]:
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.spikes import spike_figure
    from neurosheet.spiking import get_backend
    from neurosheet.spiking.conversion import rate_logits
    from neurosheet.spiking.rundir import brian2_build_dir, sampler, spiking_for_run

    sc = spiking_for_run(run_dir, circuit, cfg.conversion(), 64, cfg.seed)
    task = circuit.tasks[-1]  # the last task of a suite is its hardest in ours (int/seq)
    batch = sampler(circuit, cfg.seed + 1).sample_task(task, 1)
    y_rate, _ = rate_logits(circuit, batch.inputs)
    paths = {}
    backends = [("snntorch", {})]
    if cfg.brian2:
        backends.append(("brian2", {"build_dir": brian2_build_dir(run_dir),
                                    "target": cfg.brian2_target}))
    length = int(batch.lengths[0])
    for name, opts in backends:
        result = get_backend(name, **opts).run(sc, batch.inputs, record=1, progress=False)
        steps, neurons = result.rasters[0]
        fig = spike_figure(steps, neurons, sc.n, sc.sim_dt_ms, sc.substeps,
                           result.logits[:length, 0], rate_logits=y_rate[:length, 0],
                           targets=batch.targets[:length, 0], title=f"{task}: {name}")
        paths[name] = str(save_figure(fig, out / f"raster-{name}.png"))
    return paths


def _spike_counts(circuit: Any, run_dir: Path, cfg: PipelineConfig) -> dict[str, Any]:
    """Spikes per neuron per trial over mixed held-out trials (steps inside each trial only)."""
    from neurosheet.spiking import get_backend
    from neurosheet.spiking.rundir import sampler, spiking_for_run, valid_steps

    sc = spiking_for_run(run_dir, circuit, cfg.conversion(), 64, cfg.seed)
    batch = sampler(circuit, cfg.seed + 2).sample(cfg.spike_trials)
    result = get_backend("snntorch").run(sc, batch.inputs, progress=False)
    counts = (result.counts * valid_steps(batch)[:, :, None]).sum(0)  # [B, N]
    path = write_npz(run_dir / SPIKE_COUNTS_FILE, spike_counts=counts.astype(np.float32),
                     lengths=batch.lengths, task_ids=batch.task_ids)
    seconds = float(batch.lengths.mean()) * sc.substeps * sc.sim_dt_ms / 1000.0
    return {"file": str(path), "trials": int(counts.shape[0]),
            "spikes_per_trial": float(counts.sum(1).mean()),
            "mean_rate_hz": float(counts.sum(1).mean() / circuit.n / seconds)}


def _budgets(circuit: Any, run_dir: Path, out: Path, cfg: PipelineConfig,
             spikes: dict[str, Any] | None) -> dict[str, Any]:
    from neurosheet.hardware.budget import SpikeCounts, compare_targets
    from neurosheet.hardware.targets import list_targets, load_target
    from neurosheet.rate.evaluation import evaluate_circuit
    from neurosheet.reports.budget import comparison_rows, write_comparison

    counts = None
    if spikes is not None:
        with np.load(spikes["file"]) as f:
            counts = SpikeCounts.from_array(f["spike_counts"], circuit.n, spikes["file"])
    seed = cfg.seed + 12345

    def accuracy(c: Any) -> float:  # re-evaluated after quantization, never estimated
        return float(evaluate_circuit(c, c.tasks, cfg.trials, seed)["mean"]["trial_success"])

    names = cfg.targets or tuple(list_targets())
    reports = compare_targets(
        circuit, [load_target(t) for t in names], spikes=counts, accuracy_fn=accuracy,
        accuracy_label=f"trial_success (fixation held and the right answer on every decision "
        f"step), mean over {len(circuit.tasks)} tasks, {cfg.trials} held-out trials each, "
        "rate model",
        seed=cfg.seed, source=str(run_dir))
    written = write_comparison(reports, out / "budget")
    return {"rows": comparison_rows(reports), "locality": locality_summary(reports),
            "markdown": str(written["markdown"]), "chart": str(written["chart"])}


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


# --------------------------------------------------------------------- the index
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
        "- learning curves: [run/plots/learning_curves.png](run/plots/learning_curves.png)",
        "",
        "## Accuracy: rate vs spiking (held-out trials, the same trials for every backend)",
        "",
        "Headline: **trial success** — fixation held on every step before the decision and "
        "the right ring unit on every decision step; it forgives nothing. Beside it, "
        "*step accuracy* (decision steps right, pooled; forgives a wrong step inside an "
        "otherwise right trial) and *Yang 36°* (Yang et al. 2019: the last step only, within "
        "36° of the target; forgives an answer one ring unit off and every earlier step). "
        "Brackets: 95% intervals (Wilson for trial success).",
        "",
        "| task | " + " | ".join(f"{b} trial success" for b in ev) + " | "
        + " | ".join(f"{b} step / Yang" for b in ev) + " |",
        "|---|" + "---|" * (2 * len(ev)),
    ]
    tasks = list(ev["rate"]["per_task"])

    def trial_cell(row: dict[str, Any]) -> str:
        ci = row.get("ci", {}).get("trial_success")
        return f"{row['trial_success']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    for name in tasks:
        cells, more = [], []
        for b in ev:
            r = ev[b]
            if "refused" in r:
                cells.append("refused")
                more.append("—")
                continue
            row = r["per_task"][name]
            cells.append(trial_cell(row))
            more.append(f"{row['step_accuracy']:.3f} / {row['yang_success']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells + more) + " |")
    cells, more = [], []
    for b in ev:
        r = ev[b]
        if "refused" in r:
            cells.append("refused")
            more.append("—")
            continue
        lo, hi = r["ci"]["trial_success"]
        cells.append(f"**{r['mean']['trial_success']:.3f}** [{lo:.3f}, {hi:.3f}]")
        more.append(f"{r['mean']['step_accuracy']:.3f} / {r['mean']['yang_success']:.3f}")
    lines += ["| mean | " + " | ".join(cells + more) + " |", ""]
    ft = s.get("finetune") or {}
    if ft.get("status") == "fine-tuned":
        lines.append(
            f"- spiking circuit: converted (validation trial success "
            f"{ft['converted_trial_success']:.3f} vs rate {ft['rate_trial_success']:.3f}, "
            f"below {ft['threshold']} x rate), then fine-tuned with surrogate gradients for "
            f"{ft['steps']} steps ({ft['seconds']:.0f} s; best validation "
            f"{ft['tuned_trial_success']:.3f}, {ft['validation_trials_per_task']} trials "
            f"per task)")
    elif ft.get("status"):
        lines.append(f"- spiking circuit: fine-tuning {ft['status']}")
    for b in ("snntorch", "brian2"):
        r = ev.get(b)
        if r is None:
            continue
        if "refused" in r:
            lines.append(f"- {b}: conversion refused — {r['refused']}")
        else:
            worst, fid = r.get("worst_task_ratio"), r.get("fidelity")
            lines.append(f"- {b}: {r['trials']} trials per task; spiking / rate mean trial "
                         "success = " + (f"**{fid:.3f}**" if fid is not None else "— (the rate "
                                         "network fails every trial)")
                         + (f" (worst task {worst:.3f})" if worst is not None else ""))
    lines.append("")
    for name, path in (s.get("rasters") or {}).items():
        lines += [f"![raster {name}]({Path(path).name})", ""]
    sp = s.get("spikes")
    if sp:
        lines += [f"Spike counts for the budget: {sp['trials']} mixed trials, "
                  f"{sp['spikes_per_trial']:,.0f} spikes per trial, mean rate "
                  f"{sp['mean_rate_hz']:.1f} Hz (`run/{SPIKE_COUNTS_FILE}`).", ""]
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
              "| stage | status | seconds |", "|---|---|---|"]
    for st in s["stages"]:
        status = st["status"] + (f": {st['detail']}" if st["detail"] else "")
        lines.append(f"| {st['name']} | {status} | {st['seconds']:.1f} |")
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
