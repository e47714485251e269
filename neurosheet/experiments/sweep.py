"""Sweeps over presets x densities x seeds: one training run per point, run in parallel.

Each point trains into its own run directory under the sweep folder (so an interrupted
sweep resumes every run from its checkpoint when restarted). Jobs run in a local process
pool by default, or as Ray tasks (``backend="ray"``) on a local or remote Ray cluster.
Results are collected into ``results.json``, ``results.csv`` and a plot of held-out
accuracy against training step per density.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError

BACKENDS = ("process", "ray")
NO_DENSITY_RULES = ("full", "autapse")


@dataclass(frozen=True)
class SweepJob:
    """One training run of a sweep."""

    preset: str
    density: float | None  # None: the preset's own (or a rule without density)
    seed: int
    suite: str
    run_dir: str
    steps: int | None = None
    n: int | None = None
    threads: int = 1


def plan_jobs(presets: Iterable[str], densities: Iterable[float | None], seeds: Iterable[int],
              suite: str, out_dir: str | Path, steps: int | None = None, n: int | None = None,
              threads: int = 1) -> list[SweepJob]:
    """The grid of jobs; presets whose rule has no density (full, autapse) run once per seed."""
    from neurosheet.rate.config import load_model_preset

    out_dir = Path(out_dir)
    densities = list(densities) or [None]
    for d in densities:
        if d is not None and not 0.0 < d <= 1.0:
            raise NeurosheetError(f"sweep density must be in (0, 1], got {d}")
    jobs = []
    for preset in presets:
        cfg, _ = load_model_preset(preset)
        stem = Path(preset).stem
        own = [None] if cfg.sheet.rule in NO_DENSITY_RULES else densities
        for d in own:
            for seed in seeds:
                tag = f"{stem}-s{seed}" if d is None else f"{stem}-d{d:g}-s{seed}"
                jobs.append(SweepJob(preset, d, int(seed), suite, str(out_dir / tag), steps, n,
                                     threads))
    if not jobs:
        raise NeurosheetError("the sweep is empty: give at least one preset and one seed")
    return jobs


def run_job(job: SweepJob) -> dict[str, Any]:
    """Train one sweep point (resuming its run directory) and return its result row."""
    from neurosheet.core import rundir
    from neurosheet.rate.config import load_model_preset, with_overrides
    from neurosheet.rate.training import train

    preset, _ = load_model_preset(job.preset)
    sheet: dict[str, Any] = {}
    if job.density is not None:
        sheet.update(density=job.density, radius=None)
    if job.n is not None:
        sheet["n"] = job.n
    preset = with_overrides(preset, {"sheet": sheet, "training": {"threads": job.threads}},
                            f"sweep point {Path(job.run_dir).name}")
    result = train(job.run_dir, preset, job.suite, seed=job.seed, preset_name=job.preset,
                   steps=job.steps, progress=False)
    summary = rundir.read_json(rundir.RunDir(Path(job.run_dir)).summary)
    metric = summary["criterion_metric"]
    evals = [r for r in rundir.read_metrics(Path(job.run_dir)) if r["kind"] == "eval"]
    return {
        **asdict(job),
        "target_density": job.density,
        "density": summary["density"],
        "synapses": summary["synapses"],
        "steps_done": result.steps,
        "final": result.final["mean"],
        "steps_to_criterion": result.steps_to_criterion,
        "criterion": summary["criterion"],
        "metric": metric,
        "curve": {"steps": [r["step"] for r in evals], "acc": [r["mean"][metric] for r in evals]},
    }


def _safe(job: SweepJob) -> dict[str, Any]:
    """``run_job`` whose user errors become a row (one bad point must not stop a sweep)."""
    try:
        return run_job(job)
    except NeurosheetError as exc:
        return {**asdict(job), "error": str(exc)}


def run_sweep(jobs: list[SweepJob], backend: str = "process", workers: int = 2,
              ray_address: str | None = None,
              on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` with ``backend``; rows come back in job order."""
    if backend not in BACKENDS:
        raise NeurosheetError(f"unknown sweep backend {backend!r}; use {' or '.join(BACKENDS)}")
    if workers < 1:
        raise NeurosheetError(f"workers must be >= 1, got {workers}")
    if backend == "ray":
        return _run_ray(jobs, workers, ray_address, on_done)
    return _run_pool(jobs, workers, on_done)


def _run_pool(jobs: list[SweepJob], workers: int,
              on_done: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    if workers == 1:
        for i, job in enumerate(jobs):
            rows[i] = _safe(job)
            if on_done:
                on_done(rows[i])
        return [rows[i] for i in range(len(jobs))]
    # spawn: a forked torch process can deadlock in its thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(_safe, job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                rows[i] = fut.result()
                if on_done:
                    on_done(rows[i])
    return [rows[i] for i in range(len(jobs))]


def _run_ray(jobs: list[SweepJob], workers: int, address: str | None,
             on_done: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise NeurosheetError(
            "the ray executor needs Ray: pip install 'neurosheet[ray]' (or 'ray[default]')"
        ) from None
    import neurosheet

    started = False
    if not ray.is_initialized():
        # Workers import the same neurosheet as this driver (a checkout or an install).
        root = str(Path(neurosheet.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        kwargs: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": path}},
                                  "include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_safe)
        refs = {remote.remote(job): i for i, job in enumerate(jobs)}
        rows: dict[int, dict[str, Any]] = {}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                i = refs.pop(ref)
                rows[i] = ray.get(ref)
                if on_done:
                    on_done(rows[i])
        return [rows[i] for i in range(len(jobs))]
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------- results
def first_step_at(curve: dict[str, list], criterion: float) -> int | None:
    """First evaluated step whose accuracy reaches ``criterion`` (None if never)."""
    return next((s for s, a in zip(curve["steps"], curve["acc"], strict=True) if a >= criterion),
                None)


def aggregate(rows: list[dict[str, Any]], criterion: float | None = None) -> list[dict[str, Any]]:
    """One line per (preset, target density): mean final accuracy, steps to criterion per seed.

    ``criterion`` recomputes steps to criterion from the curves (default: each run's own).
    ``auc`` is the mean held-out accuracy over all evaluation points: a speed measure that
    needs no threshold.
    """
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault((r["preset"], r["target_density"]), []).append(r)
    table = []
    for (preset, target), group in groups.items():
        metric = group[0]["metric"]
        reached = [r["steps_to_criterion"] if criterion is None
                   else first_step_at(r["curve"], criterion) for r in group]
        hit = [s for s in reached if s is not None]
        table.append({
            "preset": preset, "target_density": target,
            "density": float(np.mean([r["density"] for r in group])),
            "seeds": [r["seed"] for r in group], "metric": metric,
            "final_mean": float(np.mean([r["final"][metric] for r in group])),
            "final_std": float(np.std([r["final"][metric] for r in group])),
            "auc": float(np.mean([np.mean(r["curve"]["acc"]) for r in group])),
            "steps_to_criterion": reached,
            "reached": f"{len(hit)}/{len(group)}",
            "median_steps_to_criterion": float(np.median(hit)) if hit else None,
        })
    return table


def format_table(table: list[dict[str, Any]], criterion: float | None = None) -> str:
    """Plain-text results table."""
    crit = f" (criterion {criterion:g})" if criterion is not None else ""
    head = (f"{'preset':<16}{'density':>9}{'seeds':>6}{'final acc':>12}{'± sd':>7}{'auc':>7}"
            f"{'reached':>9}  steps to criterion{crit}")
    lines = [head, "-" * len(head)]
    for t in table:
        steps = ", ".join("-" if s is None else str(s) for s in t["steps_to_criterion"])
        lines.append(f"{Path(t['preset']).stem:<16}{t['density']:>9.2%}{len(t['seeds']):>6}"
                     f"{t['final_mean']:>12.3f}{t['final_std']:>7.3f}{t['auc']:>7.3f}"
                     f"{t['reached']:>9}  {steps}")
    return "\n".join(lines)


def write_results(out_dir: str | Path, rows: list[dict[str, Any]],
                  criterion: float | None = None) -> dict[str, Path]:
    """``results.json`` (rows + table), ``results.csv`` (table) and the accuracy-vs-step plot."""
    from neurosheet.core.io import write_json, write_text

    out_dir = Path(out_dir)
    table = aggregate(rows, criterion)
    paths = {"json": write_json(out_dir / "results.json", {"runs": rows, "table": table})}
    buf = io.StringIO()
    fields = ["preset", "target_density", "density", "seeds", "metric", "final_mean",
              "final_std", "auc", "reached", "median_steps_to_criterion", "steps_to_criterion"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for t in table:
        writer.writerow({k: t[k] for k in fields})
    paths["csv"] = write_text(out_dir / "results.csv", buf.getvalue())
    curves = [{"preset": Path(r["preset"]).stem, "density": r["density"], "seed": r["seed"],
               "steps": r["curve"]["steps"], "acc": r["curve"]["acc"]}
              for r in rows if "error" not in r]
    if curves:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.training import sweep_figure

        paths["plot"] = save_figure(sweep_figure(curves, rows[0].get("metric", "step_accuracy")),
                                    out_dir / "plots" / "sweep_accuracy.png")
    return paths
