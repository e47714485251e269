"""Train a rate RNN on a task suite into a run directory, with exact resume.

One call of :func:`train` builds the graph and model from a :class:`ModelPreset` (or picks
up a run directory's checkpoint), then loops: sample a batch, masked cross-entropy, Adam
step; logs the loss, evaluates held-out trials per task, checkpoints atomically. Everything
random comes from generators whose states live in the checkpoint (model init and graph
from the seed, the task sampler, the noise generator), so a resumed run reproduces the
losses of an uninterrupted one bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import pickle
import platform
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosheet.core import rundir
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import write_json, write_text, write_with
from neurosheet.core.seeds import SeedPlan
from neurosheet.graph.circuit import RateParams, save_run_circuit
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.sheetgraph import SheetGraph
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.bimt.prune import prune_circuit
from neurosheet.rate.bimt.regularizer import BimtRegularizer
from neurosheet.rate.config import ModelPreset, SheetConfig, to_toml, with_overrides
from neurosheet.rate.evaluation import score_batches
from neurosheet.rate.model import RateRNN

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "neurosheet.checkpoint"


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or extended) run reports."""

    run_dir: Path
    steps: int
    final: dict[str, Any]
    steps_to_criterion: int | None
    resumed_from: int


# --------------------------------------------------------------------- building
def make_graph(cfg: SheetConfig, n_inputs: int, n_outputs: int, seed: int) -> SheetGraph:
    """The sheet, its wiring and the I/O projections described by ``cfg``."""
    sheet = make_sheet(cfg.n, cfg.layout, periodic=cfg.periodic, seed=seed)
    uses_density = cfg.rule in ("radius", "gaussian", "exponential", "random")
    graph = build_graph(
        sheet, cfg.rule,
        density=cfg.density if uses_density and cfg.radius is None else None,
        radius=cfg.radius if cfg.rule == "radius" else None,
        self_connections=cfg.self_connections, fixed_fan_in=cfg.fixed_fan_in, seed=seed,
    )
    return attach_projections(graph, n_inputs, n_outputs, cfg.input_region, cfg.readout_region)


def make_model(preset: ModelPreset, graph: SheetGraph, seed: int) -> RateRNN:
    """The rate model of ``preset`` on ``graph`` with freshly initialized weights."""
    d = preset.dynamics
    params = RateParams(d.activation, d.tau_ms, d.dt_ms, d.substeps)
    return RateRNN(graph, params, gain=d.gain, rec_noise=d.rec_noise, in_noise=d.in_noise,
                   seed=seed, kernel=d.kernel)


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per time step, weighted by the task's loss mask (0 on padding)."""
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                           reduction="none")
    return (ce * mask.flatten()).sum() / mask.sum().clamp_min(1e-8)


# --------------------------------------------------------------------- state
@dataclass
class _State:
    model: RateRNN
    optimizer: torch.optim.Optimizer
    sampler: Any
    noise: torch.Generator
    step: int
    metrics_bytes: int
    seed: int = 0
    substep_choices: tuple[int, ...] = ()
    bimt: BimtRegularizer | None = None
    last_checkpoint: int = 0


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training: a checkpoint was written, the same call resumes."""


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """SIGINT/SIGTERM set a flag the training loop checks after each step (main thread only),
    so an interruption lands between steps and is followed by a checkpoint, never mid-write."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _sampler_state(sampler: Any) -> Any:
    if hasattr(sampler, "get_state"):
        return {"how": "get_state", "state": sampler.get_state()}
    return {"how": "pickle", "state": pickle.dumps(sampler)}


def _restore_sampler(sampler: Any, saved: dict[str, Any]) -> Any:
    if saved["how"] == "get_state":
        sampler.set_state(saved["state"])
        return sampler
    return pickle.loads(saved["state"])


def _save_checkpoint(run_dir: Path, st: _State, fingerprint: str) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "step": st.step,
        "graph_fingerprint": fingerprint,
        "model": {k: v.detach().cpu() for k, v in st.model.state_dict().items()},
        "optimizer": st.optimizer.state_dict(),
        "sampler": _sampler_state(st.sampler),
        "noise": st.noise.get_state().cpu(),
        "metrics_bytes": st.metrics_bytes,
        "bimt": st.bimt.state_dict() if st.bimt is not None else None,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_with(rundir.RunDir(run_dir).checkpoint, lambda fh: fh.write(buf.getvalue()))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated or foreign file raises one clear error."""
    if not path.is_file():
        raise NeurosheetError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for damaged files
        raise NeurosheetError(f"{path}: corrupt checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise NeurosheetError(f"{path}: not a neurosheet checkpoint")
    return payload


# --------------------------------------------------------------------- config
def resolved_config(preset: ModelPreset, preset_name: str, suite: str, tasks: tuple[str, ...],
                    seed: int) -> dict[str, Any]:
    """Everything needed to rerun: the preset's values, the suite and its tasks, the seed."""
    return {
        "preset": preset_name,
        "suite": suite,
        "tasks": list(tasks),
        "seed": seed,
        **preset.model_dump(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def _write_config(run_dir: Path, config: dict[str, Any]) -> None:
    write_json(rundir.RunDir(run_dir).config_json, config)
    toml_data = {k: v for k, v in config.items() if k in ("description", "sheet", "dynamics",
                                                          "training", "bimt")}
    header = (f"# resolved model preset of this run: preset {config['preset']!r}, suite "
              f"{config['suite']!r}, seed {config['seed']}\n")
    write_text(rundir.RunDir(run_dir).config_toml, header + to_toml(toml_data))


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings that differ between a run directory and a request (steps may grow)."""
    keys = ("suite", "tasks", "seed", "sheet", "dynamics", "bimt")
    diff = [k for k in keys if json.dumps(old.get(k)) != json.dumps(new.get(k))]
    free = {"steps", "checkpoint_every", "checkpoint_seconds"}  # bookkeeping, not the result
    ot = {k: v for k, v in old.get("training", {}).items() if k not in free}
    nt = {k: v for k, v in new.get("training", {}).items() if k not in free}
    if json.dumps(ot, sort_keys=True) != json.dumps(nt, sort_keys=True):
        diff.append("training")
    return diff


# --------------------------------------------------------------------- training
def train(run_dir: str | Path, preset: ModelPreset | str | Path, suite_name: str, *, seed: int = 0,
          preset_name: str = "custom", steps: int | None = None, device: str = "cpu",
          progress: bool = True, resume: bool = True,
          stop_after: int | None = None) -> TrainResult:
    """Train (or resume) the run in ``run_dir``; see the module docstring.

    Args:
        steps: total optimizer steps (overrides the preset's ``training.steps``).
        resume: continue from ``run_dir/checkpoint.pt`` when present (same settings required).
        stop_after: stop once this step is reached, as if interrupted (for tests/drivers).
    """
    from neurosheet.tasks import N_OUT, TrialSampler, load_suite

    if not isinstance(preset, ModelPreset):  # a preset name or .toml path
        from neurosheet.rate.config import load_model_preset

        if preset_name == "custom":
            preset_name = str(preset)
        preset, _ = load_model_preset(preset)
    run_dir = Path(run_dir)
    if steps is not None:
        preset = with_overrides(preset, {"training": {"steps": steps}}, "steps")
    tc = preset.training
    suite = load_suite(suite_name)
    sampler = TrialSampler(suite.tasks, seed=seed, weights=suite.weights)
    tasks = sampler.tasks  # canonical names (aliases resolved): the circuit's rule inputs
    config = resolved_config(preset, preset_name, suite_name, tasks, seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)

    ckpt_path = rundir.RunDir(run_dir).checkpoint
    payload = None
    if resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path)
        old = rundir.read_config(run_dir)
        diff = _same_run(old, config)
        if diff:
            raise NeurosheetError(
                f"{run_dir} holds a run with different {', '.join(diff)}; "
                "use another run directory (or delete it) to start a new run", "out"
            )
    run_dir.mkdir(parents=True, exist_ok=True)

    graph = make_graph(preset.sheet, sampler.n_inputs, N_OUT, seed)
    model = make_model(preset, graph, seed)
    noise = torch.Generator(device=device).manual_seed(seed)
    if payload is not None:
        if payload["graph_fingerprint"] != graph.fingerprint():
            raise NeurosheetError(f"{ckpt_path}: checkpoint belongs to another graph")
        model.load_state_dict(payload["model"])
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    bimt = BimtRegularizer(model, preset.bimt, tc.steps) if preset.bimt is not None else None
    st = _State(model, optimizer, sampler, noise, 0, 0, seed=seed,
                substep_choices=tuple(preset.dynamics.train_substeps or ()), bimt=bimt)
    if payload is not None:
        if bimt is not None and payload.get("bimt") is not None:
            bimt.load_state_dict(payload["bimt"])
        optimizer.load_state_dict(payload["optimizer"])
        st.sampler = _restore_sampler(sampler, payload["sampler"])
        noise.set_state(payload["noise"].to(noise.get_state().device))
        st.step, st.metrics_bytes = int(payload["step"]), int(payload["metrics_bytes"])
        _trim_metrics(rundir.RunDir(run_dir).metrics, st.metrics_bytes)
    else:
        _write_config(run_dir, config)
        save_run_circuit(run_dir, model.to_circuit(tasks, _circuit_meta(config, 0, bimt)))
        write_text(rundir.RunDir(run_dir).metrics, "")
    if st.step < tc.steps and payload is not None:
        _write_config(run_dir, config)  # records the (possibly larger) step count
    resumed_from = st.step

    heldout = _heldout(tasks, tc.eval_trials, seed)
    end = tc.steps if stop_after is None else min(tc.steps, stop_after)
    t0 = time.perf_counter()
    bar = _progress(progress, st.step, tc.steps, run_dir.name)
    metrics = open(rundir.RunDir(run_dir).metrics, "a", encoding="utf-8")
    st.last_checkpoint = st.step
    last_save = time.monotonic()

    def checkpoint() -> None:
        nonlocal last_save
        metrics.flush()
        _save_checkpoint(run_dir, st, graph.fingerprint())
        save_run_circuit(run_dir, model.to_circuit(tasks, _circuit_meta(config, st.step, st.bimt)))
        st.last_checkpoint, last_save = st.step, time.monotonic()

    try:
        with _stop_signals() as stop:
            if st.step == 0 and st.metrics_bytes == 0:  # accuracy before training, for the curves
                log.info("evaluating the untrained network (step 0) on %d held-out trials per task",
                         tc.eval_trials)
                _append(metrics, st, {"kind": "eval", "step": 0,
                                      **_evaluate(model, heldout, tasks, device)})
            while st.step < end:
                loss = _train_step(st, tc, device)
                st.step += 1
                bar.update(1)
                if st.step % tc.log_every == 0 or st.step == end:
                    _append(metrics, st, {"kind": "train", "step": st.step, "loss": loss,
                                          "wall_s": time.perf_counter() - t0})
                    bar.set_postfix(loss=f"{loss:.3f}")
                if st.step % tc.eval_every == 0 or st.step == tc.steps:
                    ev = _evaluate(model, heldout, tasks, device)
                    _append(metrics, st, {"kind": "eval", "step": st.step, **ev})
                    log.info("step %d/%d: held-out %s %.3f", st.step, tc.steps,
                             tc.criterion_metric, ev["mean"][tc.criterion_metric])
                    bar.set_postfix(loss=f"{loss:.3f}", acc=f"{ev['mean'][tc.criterion_metric]:.2f}")
                if (st.step % tc.checkpoint_every == 0 or st.step == end
                        or time.monotonic() - last_save >= tc.checkpoint_seconds):
                    checkpoint()
                if stop:
                    if st.last_checkpoint != st.step:
                        checkpoint()
                    name = "SIGTERM" if stop[0] == signal.SIGTERM else "SIGINT"
                    raise TrainingInterrupted(f"{name} at step {st.step}: checkpoint written to "
                                              f"{run_dir}; run the same command again to resume")
    finally:
        metrics.close()
        bar.close()
    return _finish(run_dir, model, heldout, tasks, tc, st.step, resumed_from, device,
                   time.perf_counter() - t0, st.bimt)


def _train_step(st: _State, tc: Any, device: str) -> float:
    """One optimizer step; a non-finite loss stops training before touching the weights."""
    batch = st.sampler.sample(tc.batch)
    inputs = torch.as_tensor(batch.inputs, device=device)
    targets = torch.as_tensor(batch.targets, device=device)
    mask = torch.as_tensor(batch.mask, device=device)
    st.model.train()
    k = None
    if st.substep_choices:  # a function of (seed, step): exact resume needs no extra state
        pick = np.random.default_rng([st.seed, st.step]).integers(len(st.substep_choices))
        k = st.substep_choices[int(pick)]
    out = st.model(inputs, generator=st.noise, substeps=k)
    loss = masked_loss(out.logits, targets, mask)
    if tc.rate_l2:
        valid = (mask > 0).unsqueeze(-1)
        norm = valid.sum() * out.rates.shape[-1]
        loss = loss + tc.rate_l2 * (out.rates.square() * valid).sum() / norm
    if tc.weight_l2:
        loss = loss + tc.weight_l2 * st.model.rec.values.square().mean()
    if st.bimt is not None:
        loss = loss + st.bimt.penalty(st.step)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NeurosheetError(
            f"loss became {value} at step {st.step + 1}; the last checkpoint (step "
            f"{_last_ckpt_step(st, tc)}) is kept: lower training.lr or set training.grad_clip"
        )
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if tc.grad_clip:
        torch.nn.utils.clip_grad_norm_(st.model.parameters(), tc.grad_clip)
    st.optimizer.step()
    if st.bimt is not None:
        st.bimt.after_step(st.step, st.optimizer)  # neuron swaps carry the Adam moments along
    return value


def _last_ckpt_step(st: _State, tc: Any) -> int:
    return st.last_checkpoint


def _heldout(tasks: tuple[str, ...], trials: int, seed: int) -> dict[str, Any]:
    from neurosheet.rate.evaluation import heldout_batches

    return heldout_batches(tasks, trials, SeedPlan(seed).validation)


def _evaluate(model: RateRNN, heldout: dict[str, Any], tasks: tuple[str, ...],
              device: str) -> dict[str, Any]:
    model.eval()

    def logits_fn(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(inputs, device=device)).logits.cpu().numpy()

    return score_batches(logits_fn, heldout, tasks)


def _append(fh: Any, st: _State, record: dict[str, Any]) -> None:
    line = json.dumps(record) + "\n"
    fh.write(line)
    st.metrics_bytes += len(line.encode())


def _trim_metrics(path: Path, size: int) -> None:
    """Drop records written after the checkpoint we resume from (they will be redone)."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as fh:
            fh.truncate(size)


def _circuit_meta(config: dict[str, Any], step: int,
                  bimt: BimtRegularizer | None = None) -> dict[str, Any]:
    meta = {"preset": config["preset"], "suite": config["suite"], "seed": config["seed"],
            "step": step}
    return {**meta, **bimt.meta()} if bimt is not None else meta


def _progress(enabled: bool, start: int, total: int, name: str) -> Any:
    from neurosheet.core.progress import bar

    return bar(total, initial=start, desc=f"train {name}", unit="step", enabled=enabled)


def _finish(run_dir: Path, model: RateRNN, heldout: dict[str, Any], tasks: tuple[str, ...],
            tc: Any, step: int, resumed_from: int, device: str,
            wall_s: float, bimt: BimtRegularizer | None = None) -> TrainResult:
    """Final evaluation and summary (and the pruned circuit for BIMT); the stage plots the curves."""
    records = rundir.read_metrics(run_dir)
    final = _evaluate(model, heldout, tasks, device)
    pruned = _prune(run_dir, model, heldout, tasks, device, bimt) if step >= tc.steps else None
    reached = steps_to_criterion(records, tc.criterion, tc.criterion_metric)
    write_json(rundir.RunDir(run_dir).eval, {"step": step, "backend": "rate", **final})
    write_json(rundir.RunDir(run_dir).summary, {
        "steps": step, "target_steps": tc.steps, "complete": step >= tc.steps,
        "final_mean": final["mean"], "criterion": tc.criterion,
        "criterion_metric": tc.criterion_metric, "steps_to_criterion": reached,
        "synapses": model.graph.synapses, "density": model.graph.density,
        "kernel": model.rec.kernel,
        "resumed_from": resumed_from, "session_wall_s": wall_s,
        **({"bimt_mode": bimt.config.mode, "swap_passes": len(bimt.history)} if bimt else {}),
        **({"pruned": pruned} if pruned else {}),
    })
    return TrainResult(run_dir, step, final, reached, resumed_from)


def _prune(run_dir: Path, model: RateRNN, heldout: dict[str, Any], tasks: tuple[str, ...],
           device: str, bimt: BimtRegularizer | None) -> dict[str, Any] | None:
    """With ``bimt.prune`` set: prune into ``run_dir/pruned`` (a run directory) and evaluate it."""
    if bimt is None or bimt.config.prune is None:
        return None
    cfg = bimt.config
    circuit = model.to_circuit(tasks, bimt.meta())
    pruned = prune_circuit(circuit, cfg.prune, cfg.prune_relative)
    out = rundir.RunDir(run_dir).pruned.path
    save_run_circuit(out, pruned)
    evaluated = _evaluate(RateRNN.from_circuit(pruned).to(device), heldout, tasks, device)
    write_json(rundir.RunDir(out).eval, {"backend": "rate", **evaluated})
    write_json(out / "prune.json", pruned.meta["prune"])
    g = pruned.graph
    return {"dir": out.name, "threshold": cfg.prune, "relative": cfg.prune_relative,
            "synapses": g.synapses, "input_synapses": g.inputs.synapses,  # type: ignore[union-attr]
            "readout_synapses": g.readout.synapses,  # type: ignore[union-attr]
            "density": g.density, "final_mean": evaluated["mean"]}


def steps_to_criterion(records: list[dict[str, Any]], criterion: float,
                       metric: str = "step_accuracy") -> int | None:
    """First evaluated step whose mean ``metric`` over tasks reaches ``criterion`` (or None)."""
    for r in records:
        if r.get("kind") == "eval" and r["mean"][metric] >= criterion:
            return int(r["step"])
    return None
