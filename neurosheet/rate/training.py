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
import json
import logging
import math
import pickle
import platform
import signal
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from neurosheet.core import rundir
from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import read_torch, write_json, write_text, write_torch
from neurosheet.core.paths import check_writable_dir
from neurosheet.core.presets import format_validation_error
from neurosheet.core.seeds import SeedPlan, check_seed
from neurosheet.graph.circuit import RateParams, save_run_circuit
from neurosheet.graph.populations import PairScales, assign_types
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
    init_spectrum: dict[str, Any] | None = None


# --------------------------------------------------------------------- building
def make_graph(cfg: SheetConfig, n_inputs: int, n_outputs: int, seed: int) -> SheetGraph:
    """The sheet, its wiring and the I/O projections described by ``cfg``."""
    sheet = make_sheet(cfg.n, cfg.layout, periodic=cfg.periodic, seed=seed)
    uses_density = cfg.rule in ("radius", "gaussian", "exponential", "random")
    types = (assign_types(sheet, cfg.inhibitory, cfg.placement, SeedPlan(seed).model)
             if cfg.inhibitory > 0 else None)
    graph = build_graph(
        sheet, cfg.rule,
        density=cfg.density if uses_density and cfg.radius is None else None,
        radius=cfg.radius if cfg.rule == "radius" else None,
        self_connections=cfg.self_connections, fixed_fan_in=cfg.fixed_fan_in, seed=seed,
        types=types, pair_scales=PairScales(cfg.ee_scale, cfg.ei_scale, cfg.ie_scale,
                                            cfg.ii_scale),
    )
    return attach_projections(graph, n_inputs, n_outputs, cfg.input_region, cfg.readout_region,
                              cfg.excitatory_readout)


def make_model(preset: ModelPreset, graph: SheetGraph, seed: int) -> RateRNN:
    """The rate model of ``preset`` on ``graph`` with freshly initialized weights."""
    d = preset.dynamics
    params = RateParams(d.activation, d.tau_ms, d.dt_ms, d.substeps)
    return RateRNN(graph, params, gain=d.gain, rec_noise=d.rec_noise, in_noise=d.in_noise,
                   seed=seed, kernel=d.kernel, ei_balance=d.ei_balance)


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
    write_torch(rundir.RunDir(run_dir).checkpoint, payload)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated or foreign file raises one clear error."""
    if not path.is_file():
        raise NeurosheetError(f"checkpoint not found: {path}")
    payload = read_torch(path, CHECKPOINT_FORMAT, "checkpoint")
    for key, kind in _PAYLOAD.items():
        if key not in payload:
            raise NeurosheetError(f"{path}: damaged checkpoint (no '{key}' entry)")
        value = payload[key]
        if not isinstance(value, kind) or isinstance(value, bool) or \
                (isinstance(value, int) and value < 0):
            raise NeurosheetError(f"{path}: damaged checkpoint ('{key}' is "
                                  f"{type(value).__name__})")
    if payload.get("bimt") is not None and not isinstance(payload["bimt"], dict):
        raise NeurosheetError(f"{path}: damaged checkpoint ('bimt' is "
                              f"{type(payload['bimt']).__name__})")
    return payload


#: entries of a checkpoint and their types (ints must be >= 0)
_PAYLOAD: dict[str, type | tuple[type, ...]] = {
    "step": int, "graph_fingerprint": str, "model": dict, "optimizer": dict, "sampler": dict,
    "noise": torch.Tensor, "metrics_bytes": int,
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _check_tensors(path: Path, what: str, saved: dict[str, Any],
                   expected: dict[str, torch.Tensor]) -> None:
    """The checkpoint's tensors have the names and shapes of the model built from the config."""
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing or extra:
        raise NeurosheetError(f"{path}: damaged checkpoint ({what} tensors missing "
                              f"{missing[:3]}, unexpected {extra[:3]})")
    for name, ref in expected.items():
        got = saved[name]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(ref.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise NeurosheetError(f"{path}: damaged checkpoint ({what} tensor '{name}' is "
                                  f"{shape}, the run's graph needs {tuple(ref.shape)})")


def _check_optimizer(path: Path, saved: dict[str, Any], params: list[torch.Tensor]) -> None:
    """Adam's saved moments match the model's parameters one to one, shape for shape."""
    groups, state = saved.get("param_groups"), saved.get("state")
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(state, dict) or \
            len(groups[0].get("params", ())) != len(params):
        raise NeurosheetError(f"{path}: damaged checkpoint (optimizer state does not match "
                              "the model's parameters)")
    for i, ids in enumerate(groups[0]["params"]):
        entry = state.get(ids, {})
        for key in ("exp_avg", "exp_avg_sq"):
            t = entry.get(key) if isinstance(entry, dict) else None
            if t is not None and (not isinstance(t, torch.Tensor) or t.shape != params[i].shape):
                raise NeurosheetError(f"{path}: damaged checkpoint (optimizer '{key}' of "
                                      f"parameter {i} does not match its shape)")


def check_saved_config(old: dict[str, Any], path: Path) -> None:
    """A run directory's ``config.json`` has the tables of a resolved preset, well typed."""
    for key in ("sheet", "dynamics", "training"):
        if not isinstance(old.get(key), dict):
            raise NeurosheetError(f"{path}: damaged config (table '{key}' is "
                                  f"{type(old.get(key)).__name__}, expected an object)")
    data = {k: old[k] for k in ("description", "sheet", "dynamics", "training", "bimt")
            if k in old and old[k] is not None}
    try:
        ModelPreset.model_validate(data)
    except ValidationError as exc:
        raise NeurosheetError(f"{path}: damaged config ({format_validation_error(exc)})") from None
    if not isinstance(old.get("tasks"), list) or not isinstance(old.get("suite"), str):
        raise NeurosheetError(f"{path}: damaged config (no 'suite' name or 'tasks' list)")


def check_saved_metrics(path: Path, size: int, metric: str) -> None:
    """The records a checkpoint vouches for (its first ``size`` bytes) are whole and readable."""
    if size == 0:
        return
    try:
        with open(path, "rb") as fh:
            data = fh.read(size)
    except OSError as exc:
        raise NeurosheetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) < size:
        raise NeurosheetError(f"{path}: damaged metrics ({len(data)} bytes, the checkpoint "
                              f"records {size})")
    for i, line in enumerate(data.split(b"\n")[:-1], 1):
        try:
            rec = json.loads(line.decode("utf-8"))
            ok = isinstance(rec, dict) and rec.get("kind") in ("train", "eval") and \
                isinstance(rec.get("step"), int) and (
                    rec["kind"] != "eval" or (isinstance(rec.get("mean"), dict)
                                              and isinstance(rec["mean"].get(metric), float | int)))
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise NeurosheetError(f"{path}: damaged metrics (line {i} is not a neurosheet "
                                  "record)")
    if not data.endswith(b"\n"):
        raise NeurosheetError(f"{path}: damaged metrics (the checkpoint's last record is torn)")


def check_training_fits(preset: ModelPreset) -> None:
    """Refuse at once a model whose graph, weights and optimizer cannot fit in memory."""
    from neurosheet.core.memory import check_fits
    from neurosheet.graph.wiring import estimate_graph

    c = preset.sheet
    est = estimate_graph(c.n, c.rule, density=c.density, radius=c.radius,
                         self_connections=c.self_connections)
    # weights, gradients, Adam's two moments (float32), edge indices and the CSR transpose
    model = MODEL_BYTES_PER_EDGE * est.synapses
    if preset.dynamics.kernel == "dense":
        model += 16.0 * float(c.n) ** 2
    # activations kept for the backward pass: batch x steps x sub-steps x neurons
    acts = 16.0 * preset.training.batch * TYPICAL_TRIAL_STEPS * preset.dynamics.substeps * c.n
    check_fits(est.bytes + model + acts, f"training a sheet of {c.n:,} neurons with "
               f"~{est.synapses:.3g} synapses", "n")


MODEL_BYTES_PER_EDGE = 64
TYPICAL_TRIAL_STEPS = 60  # Mod-Cog trials are 20-60 steps of 100 ms


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


def _with_new_defaults(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with settings added since it was written taking their defaults (E/I fields), so
    a run directory from before them still resumes."""
    from neurosheet.rate.config import DynamicsConfig, SheetConfig

    out = dict(old)
    for key, cls in (("sheet", SheetConfig), ("dynamics", DynamicsConfig)):
        if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            added = {f: cls.model_fields[f].default for f in new[key]
                     if f not in old[key] and f in cls.model_fields}
            # keep the new order of keys so the JSON comparison is order-independent
            out[key] = {f: {**old[key], **added}.get(f) for f in new[key]} | {
                f: v for f, v in old[key].items() if f not in new[key]}
    return out


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings that differ between a run directory and a request (steps may grow)."""
    keys = ("suite", "tasks", "seed", "sheet", "dynamics", "bimt")
    old = _with_new_defaults(old, new)
    diff = [k for k in keys if json.dumps(old.get(k)) != json.dumps(new.get(k))]
    free = {"steps", "checkpoint_every", "checkpoint_seconds"}  # bookkeeping, not the result
    ot = {"task_mode": "fixed",  # runs written before the field existed used the fixed mode
          **{k: v for k, v in old.get("training", {}).items() if k not in free}}
    nt = {"task_mode": "fixed", **{k: v for k, v in new.get("training", {}).items() if k not in free}}
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
    return run_session(train_session(run_dir, preset, suite_name, seed=seed,
                                     preset_name=preset_name, steps=steps, device=device,
                                     progress=progress, resume=resume, stop_after=stop_after))


@dataclass(frozen=True)
class StepRequest:
    """What a training session needs computed next: one optimizer step of ``state``."""

    state: _State
    config: Any  # TrainingConfig
    device: str


def run_session(session: Generator[StepRequest, float, TrainResult]) -> TrainResult:
    """Drive one :func:`train_session`, computing each step alone (:func:`_train_step`)."""
    try:
        request = next(session)
        while True:
            try:
                loss = _train_step(request.state, request.config, request.device)
            except BaseException as exc:  # into the session: it closes its files, re-raises
                request = session.throw(exc)
                continue
            request = session.send(loss)
    except StopIteration as stop:
        return stop.value


def train_session(run_dir: str | Path, preset: ModelPreset | str | Path, suite_name: str, *,
                  seed: int = 0, preset_name: str = "custom", steps: int | None = None,
                  device: str = "cpu", progress: bool = True, resume: bool = True,
                  stop_after: int | None = None, stop: list[int] | None = None
                  ) -> Generator[StepRequest, float, TrainResult]:
    """:func:`train` as a generator: yields a :class:`StepRequest` before each optimizer step
    and takes the step's loss back, so a driver can compute the steps of several runs together
    (:func:`neurosheet.rate.batched.train_many`); everything else (resume, metrics, evaluation,
    checkpoints, summary) is this one loop.

    ``stop``: a driver's own SIGINT/SIGTERM flag list (one for all its sessions); by default the
    session catches the signals itself.
    """
    from neurosheet.tasks import TrialSampler, load_suite

    check_seed(seed)
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
    sampler = TrialSampler(suite.tasks, seed=seed, weights=suite.weights, mode=tc.task_mode)
    tasks = sampler.tasks  # canonical names (aliases resolved): the circuit's rule inputs
    config = resolved_config(preset, preset_name, suite_name, tasks, seed)
    check_training_fits(preset)
    # Every input is checked before the run directory is touched; under its lock the saved
    # run is checked whole (checkpoint, config.json, metrics.jsonl) before anything is written.
    check_writable_dir(run_dir, "out", "run directory", files=("metrics.jsonl",))
    with rundir.RunDir(run_dir).writer("out"):
        ckpt_path = rundir.RunDir(run_dir).checkpoint
        payload = None
        if resume and ckpt_path.exists():
            payload = load_checkpoint(ckpt_path)
            old = rundir.read_config(run_dir)
            check_saved_config(old, rundir.RunDir(run_dir).config_json)
            diff = _same_run(old, config)
            if diff:
                raise NeurosheetError(
                    f"{run_dir} holds a run with different {', '.join(diff)}; "
                    "use another run directory (or delete it) to start a new run", "out"
                )
            check_saved_metrics(rundir.RunDir(run_dir).metrics, payload["metrics_bytes"],
                                tc.criterion_metric)
        if tc.threads:
            torch.set_num_threads(tc.threads)
        return (yield from _train(run_dir, preset, tc, sampler, tasks, config, payload, seed,
                                  device, progress, stop_after, stop))


def _train(run_dir: Path, preset: ModelPreset, tc: Any, sampler: Any, tasks: tuple[str, ...],
           config: dict[str, Any], payload: dict[str, Any] | None, seed: int, device: str,
           progress: bool, stop_after: int | None, stop: list[int] | None
           ) -> Generator[StepRequest, float, TrainResult]:
    """The training loop of :func:`train_session`, under the run directory's lock, inputs
    checked: yields each step's request and takes its loss back."""
    from neurosheet.tasks import N_OUT

    ckpt_path = rundir.RunDir(run_dir).checkpoint
    graph = make_graph(preset.sheet, sampler.n_inputs, N_OUT, seed)
    model = make_model(preset, graph, seed)
    init_spectrum = _init_spectrum(model)  # of the seed's init, also when resuming
    noise = torch.Generator(device=device).manual_seed(seed)
    if payload is not None:
        if payload["graph_fingerprint"] != graph.fingerprint():
            raise NeurosheetError(f"{ckpt_path}: checkpoint belongs to another graph")
        _check_tensors(ckpt_path, "model", payload["model"], model.state_dict())
        model.load_state_dict(payload["model"])
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    bimt = BimtRegularizer(model, preset.bimt, tc.steps) if preset.bimt is not None else None
    st = _State(model, optimizer, sampler, noise, 0, 0, seed=seed,
                substep_choices=tuple(preset.dynamics.train_substeps or ()), bimt=bimt)
    if payload is not None:
        try:  # a damaged state is refused here, before any file is written
            if bimt is not None and payload.get("bimt") is not None:
                bimt.load_state_dict(payload["bimt"])
            _check_optimizer(ckpt_path, payload["optimizer"], list(model.parameters()))
            optimizer.load_state_dict(payload["optimizer"])
            st.sampler = _restore_sampler(sampler, payload["sampler"])
            noise.set_state(payload["noise"].to(noise.get_state().device))
        except NeurosheetError:
            raise
        except Exception as exc:  # torch/pickle raise many types for bad state
            raise NeurosheetError(f"{ckpt_path}: damaged checkpoint ({type(exc).__name__}: "
                                  f"{_first_line(exc)})") from None
        st.step, st.metrics_bytes = int(payload["step"]), int(payload["metrics_bytes"])
        _trim_metrics(rundir.RunDir(run_dir).metrics, st.metrics_bytes)
    else:
        _write_config(run_dir, config)
        save_run_circuit(run_dir, model.to_circuit(tasks, _circuit_meta(config, 0, bimt)))
        write_text(rundir.RunDir(run_dir).metrics, "")
    if st.step < tc.steps and payload is not None:
        _write_config(run_dir, config)  # records the (possibly larger) step count
    if st.step < tc.steps:  # until _finish, the directory says it is not finished
        write_json(rundir.RunDir(run_dir).summary, {"complete": False, "steps": st.step,
                                                    "target_steps": tc.steps})
    resumed_from = st.step

    heldout = _heldout(tasks, tc.eval_trials, seed, tc.task_mode)
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
        with _stop_signals() if stop is None else nullcontext(stop) as stop:
            if st.step == 0 and st.metrics_bytes == 0:  # accuracy before training, for the curves
                log.info("evaluating the untrained network (step 0) on %d held-out trials per task",
                         tc.eval_trials)
                _append(metrics, st, {"kind": "eval", "step": 0,
                                      **_evaluate(model, heldout, tasks, device)})
            while st.step < end:
                loss = yield StepRequest(st, tc, device)
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
                   time.perf_counter() - t0, st.bimt, init_spectrum)


def _init_spectrum(model: RateRNN) -> dict[str, Any]:
    """The recurrent spectrum of the initial weights (Dale inits must be checked on it)."""
    from neurosheet.rate.dale import spectrum

    return spectrum(model.graph, model.rec.values.detach().cpu().numpy())


def _train_step(st: _State, tc: Any, device: str) -> float:
    """One optimizer step; a non-finite loss stops training before touching the weights."""
    inputs, targets, mask, k = next_batch(st, tc, device)
    out = st.model(inputs, generator=st.noise, substeps=k)
    loss = batch_loss(st, tc, out, targets, mask)
    value = checked_value(st, tc, loss)
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    apply_update(st, tc)
    return value


def next_batch(st: _State, tc: Any, device: str
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int | None]:
    """The step's trials (inputs, targets, mask) and its sub-step count (None: the preset's)."""
    batch = st.sampler.sample(tc.batch)
    inputs = torch.as_tensor(batch.inputs, device=device)
    targets = torch.as_tensor(batch.targets, device=device)
    mask = torch.as_tensor(batch.mask, device=device)
    st.model.train()
    k = None
    if st.substep_choices:  # a function of (seed, step): exact resume needs no extra state
        pick = np.random.default_rng([st.seed, st.step]).integers(len(st.substep_choices))
        k = st.substep_choices[int(pick)]
    return inputs, targets, mask, k


def batch_loss(st: _State, tc: Any, out: Any, targets: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    """Masked cross-entropy plus the configured penalties (rates, weights, BIMT)."""
    loss = masked_loss(out.logits, targets, mask)
    if tc.rate_l2:
        valid = (mask > 0).unsqueeze(-1)
        norm = valid.sum() * out.rates.shape[-1]
        loss = loss + tc.rate_l2 * (out.rates.square() * valid).sum() / norm
    if tc.weight_l2:
        loss = loss + tc.weight_l2 * st.model.rec.values.square().mean()
    if st.bimt is not None:
        loss = loss + st.bimt.penalty(st.step)
    return loss


def checked_value(st: _State, tc: Any, loss: torch.Tensor) -> float:
    """The loss as a float; a non-finite one raises before anything is updated."""
    value = float(loss.detach())
    if not math.isfinite(value):
        last = _last_ckpt_step(st, tc)
        kept = (f"the last checkpoint (step {last}) is kept" if last > 0 else
                "no checkpoint was written yet (the run directory holds untrained weights)")
        raise NeurosheetError(
            f"loss became {value} at step {st.step + 1}; {kept}: lower training.lr or set "
            "training.grad_clip"
        )
    return value


def apply_update(st: _State, tc: Any) -> None:
    """After ``backward``: clip, Adam step, BIMT's swaps."""
    if tc.grad_clip:
        torch.nn.utils.clip_grad_norm_(st.model.parameters(), tc.grad_clip)
    st.optimizer.step()
    if st.bimt is not None:
        st.bimt.after_step(st.step, st.optimizer)  # neuron swaps carry the Adam moments along


def _last_ckpt_step(st: _State, tc: Any) -> int:
    return st.last_checkpoint


def _heldout(tasks: tuple[str, ...], trials: int, seed: int,
             mode: str = "fixed") -> dict[str, Any]:
    from neurosheet.rate.evaluation import heldout_batches

    return heldout_batches(tasks, trials, SeedPlan(seed).validation, mode=mode)


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
            "step": step, "task_mode": config.get("training", {}).get("task_mode", "fixed")}
    return {**meta, **bimt.meta()} if bimt is not None else meta


def _progress(enabled: bool, start: int, total: int, name: str) -> Any:
    from neurosheet.core.progress import bar

    return bar(total, initial=start, desc=f"train {name}", unit="step", enabled=enabled)


def _finish(run_dir: Path, model: RateRNN, heldout: dict[str, Any], tasks: tuple[str, ...],
            tc: Any, step: int, resumed_from: int, device: str,
            wall_s: float, bimt: BimtRegularizer | None = None,
            init_spectrum: dict[str, Any] | None = None) -> TrainResult:
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
        "init_spectrum": init_spectrum,
        **({"populations": model.graph.population_summary()} if model.graph.signed else {}),
        **({"bimt_mode": bimt.config.mode, "swap_passes": len(bimt.history)} if bimt else {}),
        **({"pruned": pruned} if pruned else {}),
    })
    return TrainResult(run_dir, step, final, reached, resumed_from, init_spectrum)


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
