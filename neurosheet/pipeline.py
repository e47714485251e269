"""The one-command pipeline: an ordered list of stage calls into one folder a person can open.

    train -> plot the sheet -> convert (and fine-tune when the spiking circuit falls short)
          -> evaluate (every registered backend, same trials) -> rasters -> spike counts
          -> hardware budgets -> index

Each step is a call into :mod:`neurosheet.stages`; this module only orders them, times them,
records a stage's refusal (e.g. the conversion gate) as a result rather than a crash, and writes::

    OUT/index.md          what was run, the numbers, links to everything below
    OUT/index.json        the same as data (:class:`~neurosheet.core.results.PipelineSummary`)
    OUT/run/              the training run directory (graph, circuit, checkpoint, metrics, plots)
    OUT/sheet.png         the sheet and its wiring
    OUT/raster-*.png      spike rasters with the decoded output
    OUT/budget/           budget-<target>.{md,json,png} and the comparison budget-all.*

Re-running on the same OUT resumes training from its last checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neurosheet import stages
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json, write_text
from neurosheet.core.results import PipelineSummary, StageRecord
from neurosheet.core.rundir import RunDir, exclusive_dir
from neurosheet.core.seeds import SeedPlan
from neurosheet.graph.circuit import task_mode_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline runs; the defaults are the README's embedded default."""

    preset: str = "demo"
    suite: str = "demo"
    seed: int = 0
    steps: int | None = None  # None: the preset's own step count
    trials: int = 64  # held-out trials per task, the same trials for every backend
    spike_trials: int = 64  # mixed trials whose spike counts feed the synaptic-op budget
    backends: tuple[str, ...] = ("rate", "snntorch", "brian2")  # names in the registry
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    spike_backend: str = "snntorch"  # which simulator counts spikes for the budget
    targets: tuple[str, ...] = ()  # () = every profile in deploy/
    gate: str = "error"  # what a failed "rate model works at K sub-steps" check does
    finetune: bool = True  # fine-tune the spiking circuit when its fidelity falls short
    finetune_below: float = 0.95  # ... validation trial success < this x the rate model's
    finetune_steps: int | None = None  # None: FinetuneConfig's default
    progress: bool = True

    def conversion(self) -> Any:
        """The conversion knobs every spiking stage shares (so they reuse one saved conversion)."""
        from neurosheet.spiking.conversion import ConversionConfig

        return ConversionConfig(gate=self.gate)

    def spiking_backends(self) -> tuple[str, ...]:
        from neurosheet.spiking.registry import get_spec

        return tuple(b for b in self.backends if get_spec(b).kind == "spiking")


def check_config(cfg: PipelineConfig, out_dir: str | Path | None = None) -> None:
    """Refuse a configuration before anything is written: names, every target profile (all of
    ``deploy/`` when none are named), backends, the model's size, the output folder."""
    from neurosheet.core.paths import check_writable_dir
    from neurosheet.core.seeds import check_seed
    from neurosheet.hardware.targets import list_targets, load_target
    from neurosheet.rate.config import load_model_preset, with_overrides
    from neurosheet.rate.training import check_training_fits
    from neurosheet.spiking.registry import get_spec
    from neurosheet.tasks import load_suite

    check_seed(cfg.seed, "seed")
    preset, _ = load_model_preset(cfg.preset)
    if cfg.steps is not None:
        preset = with_overrides(preset, {"training": {"steps": cfg.steps}}, "steps")
    check_training_fits(preset)
    load_suite(cfg.suite)
    for b in cfg.backends:
        get_spec(b)
    if "rate" not in cfg.backends:
        raise NeurosheetError("backends must include 'rate' (the reference of every fidelity)")
    for t in cfg.targets or tuple(list_targets()):
        load_target(t)
    if out_dir is not None:
        check_writable_dir(out_dir, "out", "pipeline folder")
        check_writable_dir(Path(out_dir) / "run", "out", "run directory",
                           files=("metrics.jsonl",))


def run_pipeline(out_dir: str | Path, cfg: PipelineConfig = PipelineConfig(),
                 say: Callable[[str], None] = print) -> PipelineSummary:
    """Run every stage into ``out_dir``; returns the summary written to ``index.json``.

    Every input is checked first (:func:`check_config`); the folder is then held by one
    writer (a second pipeline on it is refused at once).
    """
    check_config(cfg, out_dir)
    with exclusive_dir(out_dir, "out", "pipeline folder") as out:
        return _run(out, cfg, say)


def _run(out: Path, cfg: PipelineConfig, say: Callable[[str], None]) -> PipelineSummary:
    """The stages of :func:`run_pipeline`, in order, into ``out`` (inputs checked, locked)."""
    run = RunDir(out / "run")
    seeds = SeedPlan(cfg.seed)
    conversion = cfg.conversion()
    spiking = cfg.spiking_backends()
    summary = PipelineSummary(config=asdict(cfg), out=str(out))
    t_start = time.perf_counter()
    plan: list[tuple[str, Callable[[], Any], bool]] = []

    def step(name: str, fn: Callable[[], Any], optional: bool = False) -> None:
        plan.append((name, fn, optional))

    def train() -> None:
        summary.training = stages.train(run, cfg.preset, cfg.suite, seed=cfg.seed,
                                        steps=cfg.steps, progress=cfg.progress)
        summary.graph = stages.load_circuit(run).graph.summary()

    def sheet() -> None:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.sheet import sheet_figure

        save_figure(sheet_figure(stages.load_circuit(run).graph), out / "sheet.png")

    def finetune() -> None:
        summary.finetune = _finetune(run, cfg, seeds, conversion, say)

    def evaluate() -> None:
        results = stages.evaluate_backends(run, cfg.backends, trials=cfg.trials, seeds=seeds,
                                           conversion=conversion, options=cfg.backend_options)
        summary.evaluation = {k: v.to_json() for k, v in results.items()}
        rate = summary.evaluation["rate"]
        for name, r in summary.evaluation.items():
            if "refused" in r:
                say(f"      {name:<8} refused: {r['refused']}")
                continue
            if name != "rate" and "mean" in rate:
                _fidelity(r, rate)
            lo, hi = r["ci"]["trial_success"]
            say(f"      {name:<8} trial success {r['mean']['trial_success']:.3f} [{lo:.3f}, "
                f"{hi:.3f}], step accuracy {r['mean']['step_accuracy']:.3f}, Yang 36 deg "
                f"{r['mean']['yang_success']:.3f} ({cfg.trials} trials/task)")

    def rasters() -> None:
        for name in spiking:
            path = stages.raster(run, name, out / f"raster-{name}.png", seeds=seeds,
                                 conversion=conversion, **cfg.backend_options.get(name, {}))
            summary.rasters[name] = str(path)

    def spikes() -> None:
        summary.spikes = stages.count_spikes(
            run, cfg.spike_backend, trials=cfg.spike_trials, seeds=seeds, conversion=conversion,
            **cfg.backend_options.get(cfg.spike_backend, {}))

    def budgets() -> None:
        from neurosheet.hardware.targets import list_targets
        from neurosheet.reports.budget import comparison_rows, write_comparison
        from neurosheet.reports.index import locality_summary

        circuit = stages.load_circuit(run)
        reports = stages.budget(
            circuit, cfg.targets or tuple(list_targets()),
            spikes=stages.load_spike_counts(run, circuit.n) if summary.spikes else None,
            accuracy_trials=cfg.trials, seeds=seeds, label=str(run))
        written = write_comparison(reports, out / "budget")
        summary.budget = {"rows": comparison_rows(reports), "locality": locality_summary(reports),
                          "markdown": str(written["markdown"]), "chart": str(written["chart"])}

    step("train the rate network", train)
    step("plot the sheet", sheet)
    if spiking:
        step("convert (and fine-tune) the spiking circuit", finetune, optional=True)
    step("evaluate " + ", ".join(cfg.backends) + " on the same trials", evaluate)
    if spiking:
        step("spike rasters", rasters, optional=True)
        step("spike counts for synaptic operations", spikes, optional=True)
    step("hardware budgets", budgets)

    for i, (name, fn, optional) in enumerate(plan, 1):
        say(f"[{i}/{len(plan)}] {name} ...")
        rec = StageRecord(name=name)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            fn()
        except NeurosheetError as exc:
            if not optional:
                raise
            rec.status, rec.detail = "refused", str(exc)
            say(f"      {name}: {exc}")
        rec.seconds, rec.cpu_s = time.perf_counter() - t0, time.process_time() - c0
        summary.stages.append(rec)
    summary.total_s = time.perf_counter() - t_start
    from neurosheet.reports.index import index_markdown

    data = summary.to_json()
    write_json(out / "index.json", data)
    write_text(out / "index.md", index_markdown(data))
    return summary


def _fidelity(r: dict[str, Any], rate: dict[str, Any]) -> None:
    """Spiking / rate mean trial success and the worst task's ratio (None without a rate
    reference)."""
    mr = rate["mean"]["trial_success"]
    r["fidelity"] = r["mean"]["trial_success"] / mr if mr else None
    ratios = [v["trial_success"] / rate["per_task"][k]["trial_success"]
              for k, v in r["per_task"].items() if rate["per_task"][k]["trial_success"]]
    r["worst_task_ratio"] = min(ratios) if ratios else None


def _finetune(run: RunDir, cfg: PipelineConfig, seeds: SeedPlan, conversion: Any,
              say: Callable[[str], None]) -> dict[str, Any]:
    """Convert; fine-tune when the converted circuit's validation trial success is below
    ``finetune_below`` x the rate network's on the same validation trials (the run's
    'finetune_validation' stream)."""
    from dataclasses import replace

    from neurosheet.rate.evaluation import RateBackend, heldout_batches, score_batches
    from neurosheet.spiking.finetune import FinetuneConfig, validate
    from neurosheet.spiking.persist import load_tuned

    ft = FinetuneConfig(seed=cfg.seed)
    if cfg.finetune_steps is not None:
        ft = replace(ft, steps=cfg.finetune_steps)
    circuit = stages.load_circuit(run)
    existing = load_tuned(run.path, circuit, conversion)
    if existing is not None and existing.meta.get("finetune", {}).get("steps_done") == ft.steps:
        meta = existing.meta["finetune"]
        say(f"      reusing the run's fine-tuned circuit ({meta['steps_done']} steps)")
        return {"status": "reused", "steps": meta["steps_done"],
                "tuned_trial_success": meta.get("best_trial_success"),
                "validation_trials_per_task": meta.get("validation_trials")}
    sc = stages.convert(run, conversion, seeds=seeds, circuit=circuit)
    val = heldout_batches(circuit.tasks, ft.eval_trials, seeds.finetune_validation,
                          rule_inputs=circuit.tasks, mode=task_mode_of(circuit))
    rate = score_batches(RateBackend().logits_fn(circuit), val, tuple(val))["mean"]["trial_success"]
    spk = validate(sc, val)["mean"]["trial_success"]
    ratio = spk / rate if rate > 0 else None  # None: the rate network fails validation too
    info: dict[str, Any] = {"validation_trials_per_task": ft.eval_trials,
                            "rate_trial_success": rate, "converted_trial_success": spk,
                            "converted_ratio": ratio, "threshold": cfg.finetune_below}
    say(f"      converted: validation trial success {spk:.3f} vs rate {rate:.3f} "
        f"(fine-tune below {cfg.finetune_below} x rate)")
    if not cfg.finetune or (ratio is not None and ratio >= cfg.finetune_below):
        info["status"] = "not needed" if cfg.finetune else "off"
        return info
    res = stages.finetune(run, ft, conversion, seeds=seeds)
    info.update(status="fine-tuned", steps=res["steps"], best_step=res["best_step"],
                tuned_trial_success=res["best"]["trial_success"], seconds=res["seconds"],
                train_substeps=res["train_substeps"], substeps=res["substeps"])
    say(f"      fine-tuned {res['steps']} steps in {res['seconds']:.0f} s: validation trial "
        f"success {spk:.3f} -> {res['best']['trial_success']:.3f}")
    return info
