"""Run a design: one training run per (condition, seed), resumable, each summarized to JSON.

Layout of an experiment folder ``OUT``::

    OUT/design.toml                  the design as run (the report reads it from here)
    OUT/experiment.json              design name, scale, the resolved plan
    OUT/runs/<condition>/s<seed>/    the training run directory (checkpointed, resumable)
    OUT/results/<condition>/s<seed>.json   the finished run's numbers (its presence = done)

A job whose result file exists is skipped; one with a checkpoint resumes from it (the
training layer's exact resume); the rest start. Every number in a result is measured here:
validation curve (the 'validation' seed stream, used for choices), test accuracy (the 'test'
stream, the reported figure), pruning frontier and modularity where the condition asks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json
from neurosheet.experiments.design import Condition, Design, Scale, load_design

EXECUTORS = ("process", "ray")


@dataclass(frozen=True)
class Job:
    """One (condition, seed) of a design at a scale: everything a worker process needs."""

    design_path: str
    scale: str
    condition: str
    seed: int
    run_dir: str
    result: str


def job_settings(design: Design, scale: Scale, cond: Condition) -> dict[str, Any]:
    """The preset overrides, suite and trial counts of a condition at a scale (recorded)."""
    sheet: dict[str, Any] = {}
    if scale.n is not None:
        sheet["n"] = scale.n
    if cond.density is not None:
        sheet.update(density=cond.density, radius=None)
    training: dict[str, Any] = {
        "steps": scale.steps, "eval_every": scale.eval_every, "eval_trials": scale.eval_trials,
        "checkpoint_every": scale.eval_every, "criterion": design.criterion,
        "criterion_metric": design.metric, "threads": design.threads,
        "task_mode": design.task_mode}
    if cond.lr is not None:
        training["lr"] = cond.lr
    if scale.batch is not None:
        training["batch"] = scale.batch
    overrides: dict[str, Any] = {"sheet": sheet, "training": training}
    if scale.substeps is not None:
        overrides["dynamics"] = {"substeps": scale.substeps, "train_substeps": None}
    if cond.bimt:
        overrides["bimt"] = dict(cond.bimt)
    return {"preset": cond.preset, "suite": cond.suite or design.suite, "overrides": overrides,
            "test_trials": scale.test_trials, "prune_cuts": cond.prune_cuts,
            "modularity": cond.modularity}


def plan(design: Design, design_path: Path, out: Path, scale: str) -> list[Job]:
    """Every job of ``design`` at ``scale``: conditions in the scale's order, then seeds."""
    sc = design.scale(scale)
    return [Job(str(design_path), scale, c.name, int(s),
                str(out / "runs" / c.name / f"s{s}"), str(out / "results" / c.name / f"s{s}.json"))
            for c in design.conditions_at(scale) for s in sc.seeds]


def job_state(job: Job) -> str:
    """``done`` (result written), ``partial`` (checkpoint, no result) or ``new``."""
    if Path(job.result).is_file():
        return "done"
    if (Path(job.run_dir) / "checkpoint.pt").is_file():
        return "partial"
    return "new"


def run_job(job: Job) -> dict[str, Any]:
    """Train (or resume) one job, evaluate it and write its result file; returns the result.

    Several runners may share one folder: a job is locked (``<run_dir>.lock``, the pid) while
    trained, and a runner skips jobs another live runner holds.
    """
    design, _ = load_design(job.design_path)
    scale = design.scale(job.scale)
    cond = design.condition(job.condition)
    settings = job_settings(design, scale, cond)
    state = job_state(job)
    if state == "done":
        return _finished(job, settings)
    lock = _acquire(Path(job.run_dir + ".lock"))
    if lock is None:  # another runner on the same folder trains it now
        return {**asdict(job), "status": "busy"}
    try:
        if job_state(job) == "done":  # finished by another runner meanwhile
            return _finished(job, settings)
        return _run_locked(job, design, scale, cond, settings, state)
    finally:
        lock.unlink(missing_ok=True)


def _finished(job: Job, settings: dict[str, Any]) -> dict[str, Any]:
    """A finished job's result; one made with other settings is an error, never reused."""
    result = json.loads(Path(job.result).read_text())
    same = json.dumps(result.get("settings"), sort_keys=True) == json.dumps(
        json.loads(json.dumps(settings)), sort_keys=True)
    if not same:
        raise NeurosheetError(
            f"{job.result} was made with other settings than the design now gives "
            f"{job.condition} at this scale; use another output folder", "out")
    return {**result, "status": "skipped"}


def _acquire(lock: Path) -> Path | None:
    """Create ``lock`` holding our pid; None when a live process holds it (stale ones are taken)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
                return None  # alive
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:
                return None
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return lock
    return None


def _run_locked(job: Job, design: Design, scale: Scale, cond: Condition,
                settings: dict[str, Any], state: str) -> dict[str, Any]:
    """The body of :func:`run_job` once this process holds the job's lock."""
    from neurosheet import stages
    from neurosheet.core.seeds import SeedPlan
    from neurosheet.rate.config import load_model_preset, with_overrides

    t0 = time.perf_counter()
    preset, _ = load_model_preset(cond.preset)
    preset = with_overrides(preset, settings["overrides"], f"condition {cond.name}")
    summary = stages.train(job.run_dir, preset, settings["suite"], seed=job.seed, progress=False,
                           resume=True, device="cpu")
    seeds = SeedPlan(job.seed)
    circuit = stages.load_circuit(job.run_dir)
    test = stages.evaluate(job.run_dir, "rate", trials=scale.test_trials, seeds=seeds,
                           circuit=circuit)
    from neurosheet.core.rundir import RunDir

    run = RunDir(job.run_dir)
    records = [r for r in run.read_metrics() if r.get("kind") == "eval"]
    curve = {"steps": [int(r["step"]) for r in records],
             "val": [float(r["mean"][design.metric]) for r in records]}
    result: dict[str, Any] = {
        "design": design.name, "scale": job.scale, "condition": cond.name, "seed": job.seed,
        "settings": settings, "metric": design.metric, "task_mode": design.task_mode,
        "steps": summary.steps, "n": circuit.n, "synapses": circuit.graph.synapses,
        "density": circuit.graph.density, "curve": curve,
        "final_val": curve["val"][-1] if curve["val"] else None,
        "final_test": test.mean.model_dump()[design.metric],
        "test_per_task": {k: v.model_dump()[design.metric] for k, v in test.per_task.items()},
        "auc": curve_auc(curve["steps"], curve["val"]),
        "steps_to_criterion": steps_to(curve, design.criterion),
        "criterion": design.criterion,
        "test_trials": scale.test_trials, "val_trials": scale.eval_trials,
        "resumed_from": summary.resumed_from,
    }
    result["untrained_test"] = untrained_test(preset, circuit.tasks, job.seed, scale.test_trials,
                                              seeds, design.metric, design.task_mode)
    result["gain_test"] = result["final_test"] - result["untrained_test"]
    if cond.prune_cuts is not None:
        result["frontier"] = frontier(circuit, cond.prune_cuts, scale.test_trials, seeds,
                                      design.metric, design.task_mode)
    if cond.modularity:
        result["modularity"] = modularity(circuit, seeds)
    result["wall_s"] = time.perf_counter() - t0
    write_json(Path(job.result), result)
    return {**result, "status": "resumed" if state == "partial" else "trained"}


# --------------------------------------------------------------------- measures
def curve_auc(steps: list[int], acc: list[float]) -> float | None:
    """Area under the validation curve over [0, last step], divided by its length (0..1)."""
    if len(steps) < 2:
        return None
    s, a = np.asarray(steps, float), np.asarray(acc, float)
    return float(np.sum((a[1:] + a[:-1]) / 2 * np.diff(s)) / (s[-1] - s[0]))


def steps_to(curve: dict[str, list], criterion: float) -> int | None:
    """First evaluated step whose validation accuracy reaches ``criterion`` (None: never)."""
    return next((s for s, a in zip(curve["steps"], curve["val"], strict=True) if a >= criterion),
                None)


def untrained_test(preset: Any, tasks: tuple[str, ...], seed: int, trials: int, seeds: Any,
                   metric: str, mode: str) -> float:
    """Test accuracy of the same network before training (the trainer's seeded initialization)."""
    from neurosheet.rate.evaluation import evaluate_circuit
    from neurosheet.rate.training import make_graph, make_model
    from neurosheet.tasks import N_OBS, N_OUT

    graph = make_graph(preset.sheet, N_OBS + len(tasks), N_OUT, seed)
    circuit = make_model(preset, graph, seed).to_circuit(tasks)
    return float(evaluate_circuit(circuit, tasks, trials, seeds.test, mode=mode)["mean"][metric])


def _total_synapses(circuit: Any) -> int:
    g = circuit.graph
    return int(g.synapses + g.inputs.synapses + g.readout.synapses)


def frontier(circuit: Any, cuts: list[float], trials: int, seeds: Any, metric: str,
             mode: str) -> list[dict[str, Any]]:
    """Accuracy vs synapses after relative pruning at each cut (0 = unpruned).

    Each point is scored on validation trials (for choosing) and test trials (for reporting);
    ``fraction`` is its synapses over a fully connected network's (recurrent + input + readout).
    """
    from neurosheet.rate.bimt.prune import prune_circuit
    from neurosheet.rate.evaluation import evaluate_circuit

    n = circuit.n
    full = n * n + n * circuit.n_inputs + circuit.n_outputs * n
    points = []
    for cut in sorted({0.0, *cuts}):
        c = circuit if cut == 0 else prune_circuit(circuit, cut, relative=True)
        val = evaluate_circuit(c, c.tasks, trials, seeds.validation, mode=mode)["mean"][metric]
        test = evaluate_circuit(c, c.tasks, trials, seeds.test, mode=mode)["mean"][metric]
        syn = _total_synapses(c)
        points.append({"cut": cut, "synapses": syn, "fraction": syn / full,
                       "recurrent": int(c.graph.synapses), "val": float(val),
                       "test": float(test)})
    return points


def modularity(circuit: Any, seeds: Any, n_perm: int = 200) -> dict[str, Any]:
    """Functional clusters (Yang 2019) and their anatomical modularity against permutation nulls.

    ``compactness_z``: within-cluster sheet distance vs random relabellings (> 0: compact);
    ``q_z``: Newman Q of |W_rec| over the clusters vs the same relabellings (> 0: modular).
    """
    from neurosheet.rate.analysis import anatomical_modularity, functional_clusters, newman_q, task_rates

    rates, masks = task_rates(circuit, batch=32, seed=seeds.validation)
    clusters = functional_clusters(rates, masks, seed=seeds.model)
    if clusters.labels.size < 4 or len(set(clusters.labels.tolist())) < 2:
        return {"clusters": len(set(clusters.labels.tolist())), "active": int(clusters.labels.size),
                "compactness_z": None, "compactness_gap": None, "q_z": None,
                "within_fraction": None}
    report = anatomical_modularity(circuit, clusters, "manhattan", n_perm, seeds.model)
    units = clusters.active
    w = np.abs(circuit.rec_matrix().toarray())[np.ix_(units, units)]
    sym = (w + w.T) / 2
    np.fill_diagonal(sym, 0.0)
    rng = np.random.default_rng(seeds.model)
    null = np.array([newman_q(sym, rng.permutation(clusters.labels)) for _ in range(n_perm)])
    q = float(report["newman_q"])
    sd = float(null.std(ddof=1))
    pooled = report["spatial"]["pooled"]
    return {"clusters": len(set(clusters.labels.tolist())), "active": int(units.size),
            "compactness_ratio": pooled["ratio"], "compactness_z": pooled["z"],
            "compactness_gap": 1.0 - pooled["ratio"],
            "q": q, "q_null_mean": float(null.mean()), "q_null_std": sd,
            "q_z": (q - float(null.mean())) / sd if sd > 0 else None,
            "within_fraction": float(report["within_fraction"]), "n_perm": n_perm}


# --------------------------------------------------------------------- driver
def _safe(job: Job) -> dict[str, Any]:
    """``run_job`` whose user errors become a result row (one bad run must not stop the rest)."""
    try:
        return run_job(job)
    except NeurosheetError as exc:
        return {**asdict(job), "status": "failed", "error": str(exc)}


def prepare(design_ref: str | Path, out: str | Path, scale: str) -> tuple[Design, list[Job]]:
    """Copy the design into ``out`` (or check it matches the one there) and plan its jobs."""
    design, path = load_design(design_ref)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copy = out / "design.toml"
    if copy.is_file() and copy.read_text() != path.read_text():
        old = out / "experiment.json"
        if old.is_file() and json.loads(old.read_text()).get("design") != design.name:
            raise NeurosheetError(f"{out} holds experiment "
                                  f"{json.loads(old.read_text()).get('design')!r}; use another "
                                  "output directory", "out")
    if path.resolve() != copy.resolve():
        shutil.copyfile(path, copy)
    design.scale(scale)
    jobs = plan(design, copy, out, scale)
    write_json(out / "experiment.json", {
        "design": design.name, "source": str(path), "scale": scale,
        "command": "neurosheet " + " ".join(sys.argv[1:]) if sys.argv[1:] else None,
        "jobs": [{"condition": j.condition, "seed": j.seed} for j in jobs]})
    return design, jobs


def run_experiment(design_ref: str | Path, out: str | Path, scale: str = "small",
                   executor: str = "process", workers: int = 1, ray_address: str | None = None,
                   on_done: Callable[[dict[str, Any]], None] | None = None
                   ) -> list[dict[str, Any]]:
    """Run every unfinished job of a design at ``scale`` into ``out``; rows in job order."""
    from neurosheet.experiments.sweep import run_tasks

    if executor not in EXECUTORS:
        raise NeurosheetError(f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}",
                              "executor")
    _, jobs = prepare(design_ref, out, scale)
    todo = [j for j in jobs if job_state(j) != "done"]
    skipped = [_safe(j) for j in jobs if job_state(j) == "done"]  # checks their settings
    for row in skipped:
        if on_done:
            on_done(row)
    rows = run_tasks(_safe, todo, executor, workers, ray_address, on_done)
    done = {(r["condition"], r["seed"]): r for r in [*skipped, *rows]}
    return [done[(j.condition, j.seed)] for j in jobs]
