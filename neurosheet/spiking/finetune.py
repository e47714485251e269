"""Spike-aware fine-tuning: train the converted spiking circuit itself, on the same task loss.

Starts from a :class:`~neurosheet.spiking.model.SpikingCircuit` (normally the conversion of a
run's rate circuit) and trains its edge values (recurrent, input, readout) and biases with
surrogate gradients (snntorch's ``fast_sigmoid`` through ``snn.Synaptic``) on the rate
training's loss: masked cross-entropy of the readout at every task step (decision steps x5),
on fresh trials of the circuit's tasks, plus (``distill``) a pull of every neuron's spike count
toward the rate network's unit rate mapped by the conversion. Only the graph's edges are
parameters, so a synapse that is not an edge is exactly zero throughout. Each batch draws its
number of simulation steps per task step from ``substeps`` (a coarse step is cheap; mixing
steps makes the circuit robust to the step it is later simulated with, e.g. a NIR reader's
0.1 ms). The neuron model is not changed. Batches and validations run on the fused engine
(:mod:`neurosheet.spiking.fused`: the module's map and gradient in two compiled calls) where it
is compiled, else on the module.

Everything random is a function of the seed and the step (trial sampler state in the
checkpoint, K drawn from ``(seed, step)``), so a resumed run reproduces an uninterrupted one.
The circuit with the best validation trial success (at the circuit's own K) is written to
``DIR/spiking/circuit.npz``, which every spiking command then uses.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.io import read_torch, write_json, write_torch
from neurosheet.graph.circuit import task_mode_of
from neurosheet.spiking.model import SpikingCircuit

CHECKPOINT_FORMAT = "neurosheet.finetune_checkpoint"
FINETUNE_DIR = "finetune"
VALIDATION_SEED_OFFSET = 424_243  # validation trials: apart from training and evaluation seeds


@dataclass(frozen=True)
class FinetuneConfig:
    """Knobs of spike-aware fine-tuning (defaults: the measured demo recipe, docs/spiking.md).

    ``lr``: Adam's step *relative to each weight array's RMS* (the converted arrays differ by
    orders of magnitude: input currents vs per-spike jumps vs readout); ``substeps``:
    simulation steps per task step, one drawn per batch; ``slope``: steepness of the
    fast-sigmoid surrogate (per unit of threshold); ``surrogate_dt_ms``: scale the surrogate
    derivative by ``min(1, dt / surrogate_dt_ms)`` so finer steps do not multiply the
    gradient; ``rate_l2``: penalty on the mean squared spike rate (spikes per ms), to keep
    rates (and synaptic events) low; ``rate_cap_hz``/``rate_cap_l2``: hinge penalty
    ``rate_cap_l2 * mean(relu(rate_hz - rate_cap_hz)^2)`` on rates above a cap well below
    1/dt, so the circuit stays where the discrete and continuous LIF agree (off when
    ``rate_cap_l2`` is 0); ``eval_every``: steps between validations
    (``eval_trials`` per task, at ``eval_substeps``, default the circuit's own K);
    ``schedule``: ``cosine`` decays every step size to 5% of ``lr`` at ``steps`` (a function
    of the step, so resuming needs no scheduler state), ``constant`` keeps it; ``noise``:
    membrane noise while training (stationary std in thresholds; none at evaluation), which
    keeps the circuit from relying on the exact spike times of one step size; ``engine``:
    ``fused`` simulates each batch (forward and backward) and each validation in one compiled
    call (:mod:`neurosheet.spiking.fused`), ``eager`` with the torch module, ``auto`` fused
    when the kernel is available here (same spikes, gradients equal to rounding);
    ``distill``: weight of a distillation term that pulls each neuron's spike count per task
    step toward what the conversion maps the rate network's unit rate to (the rate network as
    teacher, on the same trials: N targets per step instead of one label; 0: off; default
    1000, measured in docs/spiking.md).
    """

    steps: int = 1200
    batch: int = 32
    lr: float = 1e-2
    substeps: tuple[int, ...] = (20,)
    slope: float = 5.0
    rate_l2: float = 0.0
    rate_cap_hz: float = 80.0
    rate_cap_l2: float = 0.0
    surrogate_dt_ms: float | None = 5.0
    schedule: str = "cosine"
    noise: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_trials: int = 16
    eval_substeps: int | None = None
    checkpoint_every: int = 100
    seed: int = 0
    threads: int | None = 1
    engine: str = "auto"
    distill: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "eval_every", "eval_trials", "checkpoint_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise NeurosheetError(f"{name} must be an integer >= 1, got {v!r}")
        object.__setattr__(self, "substeps", tuple(int(k) for k in self.substeps))
        if not self.substeps or min(self.substeps) < 1:
            raise NeurosheetError(f"substeps must be integers >= 1, got {self.substeps}")
        for name in ("lr", "slope", "grad_clip"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise NeurosheetError(f"{name} must be a positive number, got {v!r}")
        for name in ("rate_l2", "noise", "rate_cap_hz", "rate_cap_l2", "distill"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise NeurosheetError(f"{name} must be >= 0, got {v!r}", name)
        if self.schedule not in ("cosine", "constant"):
            raise NeurosheetError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.eval_substeps is not None and self.eval_substeps < 1:
            raise NeurosheetError(f"eval_substeps must be >= 1, got {self.eval_substeps}")
        if self.engine not in ("auto", "fused", "eager"):
            raise NeurosheetError(f"engine must be auto, fused or eager, got {self.engine!r}",
                                  "engine")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise NeurosheetError(f"seed must be an integer in [0, 2^63), got {self.seed!r}")


def valid_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [T, B, N]`` over the neuron-steps of valid task steps (``valid [T, B]``)."""
    mask = valid.to(values.dtype).unsqueeze(-1)
    return (values * mask).sum() / (mask.sum() * values.shape[-1]).clamp_min(1.0)


def rate_cap_penalty(counts: torch.Tensor, valid: torch.Tensor, task_dt_ms: float,
                     cap_hz: float) -> torch.Tensor:
    """Mean of ``relu(rate_hz - cap_hz)^2`` over valid neuron-steps: keeps rates off the 1/dt cap."""
    return valid_mean(torch.relu(counts * (1000.0 / task_dt_ms) - cap_hz).square(), valid)


@dataclass(frozen=True)
class RateTeacher:
    """The rate network whose unit rates a fine-tuned spiking circuit is pulled toward.

    The conversion maps a unit rate ``r_i`` to ``r_i / r_p,i * rate_hz`` spikes per second
    (``r_p``: the calibration percentile, one for all neurons or one per neuron), so the
    teacher's target is that many spikes per task step; ``norm`` (the count at ``r_p``) makes
    the penalty unit-free.
    """

    circuit: Any  # the run's rate Circuit
    counts_per_rate: torch.Tensor  # [N] spikes per task step per unit of rate
    norm: float

    @classmethod
    def for_circuit(cls, rate_circuit: Any, spiking: SpikingCircuit) -> RateTeacher:
        """The teacher of ``spiking`` from its conversion record."""
        conv = spiking.meta.get("conversion") or {}
        per_neuron = conv.get("calibration", "global") != "global"
        r_p = spiking.meta.get("rate_percentiles" if per_neuron else "rate_percentile_global")
        if not r_p or not conv.get("rate_hz"):
            raise NeurosheetError("the spiking circuit records no calibration percentiles to "
                                  "distill with (convert it again, or pass --distill 0)",
                                  "distill")
        norm = float(conv["rate_hz"]) / 1000.0 * spiking.task_dt_ms
        per = torch.as_tensor(np.broadcast_to(np.asarray(r_p, dtype=np.float64), (spiking.n,)))
        return cls(rate_circuit, (norm / per).float(), norm)

    @cached_property
    def model(self) -> Any:
        """The rate network in evaluation mode (no noise), built once."""
        from neurosheet.rate.model import RateRNN

        return RateRNN.from_circuit(self.circuit).eval()

    def targets(self, inputs: np.ndarray) -> torch.Tensor:
        """Spikes per task step ``[T, B, N]`` the conversion maps the rate network's rates to."""
        with torch.no_grad():
            rates = self.model(torch.as_tensor(inputs, dtype=torch.float32)).rates
        return rates * self.counts_per_rate.to(rates.dtype)


def distill_penalty(counts: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                    norm: float) -> torch.Tensor:
    """Mean of ``((counts - target) / norm)^2`` over valid neuron-steps (task steps that count)."""
    return valid_mean(((counts - target.to(counts.dtype)) / norm).square(), valid)


@dataclass(frozen=True)
class FinetuneResult:
    """What a finished (or extended) fine-tuning reports."""

    circuit: SpikingCircuit
    steps: int
    resumed_from: int
    best_step: int
    best: dict[str, Any]
    initial: dict[str, Any]
    seconds: float


def param_groups(net: Any, lr: float) -> list[dict[str, Any]]:
    """One Adam group per weight array, its step ``lr`` x the array's RMS at the start (biases
    use the RMS of the weights feeding the same units): every array moves by about the same
    fraction per step."""
    def rms(t: torch.Tensor) -> float:
        return float(t.detach().double().pow(2).mean().sqrt())

    ref = {"b": net.w_in, "b_out": net.w_out}
    groups = []
    for name, p in net.named_parameters():
        scale = rms(p) if name not in ref else max(rms(p), rms(ref[name]))
        groups.append({"params": [p], "lr": lr * max(scale, 1e-6), "name": name})
    return groups


def _lr_factor(cfg: FinetuneConfig, step: int) -> float:
    """Step-size factor at ``step`` (0-based): cosine from 1 down to 0.05, or 1."""
    if cfg.schedule == "constant":
        return 1.0
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


def _k_for_step(cfg: FinetuneConfig, step: int) -> int:
    """The K of one batch: a function of (seed, step), so resuming needs no extra state."""
    pick = np.random.default_rng([cfg.seed, step, 17]).integers(len(cfg.substeps))
    return cfg.substeps[int(pick)]


def validate(circuit: SpikingCircuit, batches: dict[str, Any], substeps: int | None = None,
             dtype: torch.dtype = torch.float32, engine: str = "eager") -> dict[str, Any]:
    """Per-task metrics of ``circuit`` simulated (no gradients) on fixed validation batches.

    ``engine``: ``eager``, ``fused`` or ``auto``, as :func:`neurosheet.spiking.fused.run`.
    """
    from neurosheet.rate.evaluation import score_batches
    from neurosheet.spiking import fused
    from neurosheet.spiking.network import SpikingSheet

    net = SpikingSheet(circuit, dtype=dtype, trainable=False)

    def logits_fn(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = fused.run(net, torch.as_tensor(inputs), substeps=substeps, engine=engine)
        return circuit.decode(out.weighted.double().numpy(), substeps)

    return score_batches(logits_fn, batches, tuple(batches))


def finetune(circuit: SpikingCircuit, out_dir: str | Path, config: FinetuneConfig | None = None,
             *, progress: bool = False, resume: bool = True, stop_after: int | None = None,
             log: Any = None, train_seed: int | None = None,
             validation_seed: int | None = None,
             teacher: RateTeacher | None = None) -> FinetuneResult:
    """Fine-tune ``circuit`` with surrogate gradients; checkpoints and logs go to ``out_dir``.

    Training trials come from ``train_seed`` and the validation trials that pick the best
    circuit from ``validation_seed`` (defaults: the config's ``seed`` and that seed plus
    ``VALIDATION_SEED_OFFSET``); K, noise and the schedule are functions of the config's seed
    and the step.

    ``out_dir`` (e.g. ``RUN/spiking/finetune``) holds ``checkpoint.pt``, ``metrics.jsonl``,
    ``best.npz`` (the best circuit so far) and ``summary.json``; re-running with the same
    circuit and config resumes from the checkpoint. ``stop_after`` stops at that step as if
    interrupted (tests, drivers). ``teacher`` (needed when ``config.distill`` > 0) gives the
    distillation targets.
    """
    from neurosheet.rate.evaluation import heldout_batches
    from neurosheet.rate.training import masked_loss
    from neurosheet.spiking import fused
    from neurosheet.spiking.network import SpikingSheet
    from neurosheet.tasks import TrialSampler

    cfg = config or FinetuneConfig()
    fused.resolve_engine(cfg.engine)  # 'fused' without a compiler: a one-line error, now
    engine = cfg.engine
    if not circuit.tasks:
        raise NeurosheetError("the spiking circuit records no tasks to fine-tune on")
    if cfg.distill and teacher is None:
        raise NeurosheetError("distill > 0 needs the rate network as teacher (finetune_run "
                              "builds it from the run; or pass distill=0)", "distill")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.jsonl"
    source = circuit.fingerprint()
    eval_k = cfg.eval_substeps or circuit.substeps
    from snntorch import surrogate

    net = SpikingSheet(circuit, surrogate=surrogate.fast_sigmoid(slope=cfg.slope),
                       surrogate_dt_ms=cfg.surrogate_dt_ms)
    opt = torch.optim.Adam(param_groups(net, cfg.lr))
    dale = _dale_masks(circuit.graph)
    base_lr = [g["lr"] for g in opt.param_groups]
    mode = task_mode_of(circuit)  # the trials the rate network was trained on (fixed/reference)
    sampler = TrialSampler(circuit.tasks, seed=cfg.seed if train_seed is None else train_seed,
                           mode=mode)
    val_seed = cfg.seed + VALIDATION_SEED_OFFSET if validation_seed is None else validation_seed
    val = heldout_batches(circuit.tasks, cfg.eval_trials, val_seed, rule_inputs=circuit.tasks,
                          mode=mode)
    step, metrics_bytes, best_step, best, initial = 0, 0, 0, None, None
    if resume and ckpt_path.exists():
        payload = _load_checkpoint(ckpt_path)
        if (payload["source"] != source or payload["config"] != _config_json(cfg)
                or payload.get("task_mode", "fixed") != mode
                or payload.get("seeds") != [train_seed, validation_seed]):
            raise NeurosheetError(
                f"{out} holds a fine-tuning of another circuit or with other settings; "
                "delete it or use another directory")
        net.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        sampler.set_state(payload["sampler"])
        step, metrics_bytes = int(payload["step"]), int(payload["metrics_bytes"])
        best_step, best, initial = payload["best_step"], payload["best"], payload["initial"]
        _trim(metrics_path, metrics_bytes)
    else:
        metrics_path.write_text("")
    resumed_from = step
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    fh = open(metrics_path, "a", encoding="utf-8")

    def append(record: dict[str, Any]) -> None:
        nonlocal metrics_bytes
        line = json.dumps(record, default=float) + "\n"
        fh.write(line)
        metrics_bytes += len(line.encode())

    def evaluate_now() -> dict[str, Any]:
        current = net.to_circuit(circuit.meta)
        res = validate(current, val, eval_k, engine=engine)
        append({"kind": "eval", "step": step, "substeps": eval_k, **res})
        return res

    try:
        if initial is None:
            initial = evaluate_now()
            best, best_step = initial, 0
            _save_best(out, net.to_circuit(circuit.meta))
            say(f"      fine-tune step 0: validation trial success "
                f"{initial['mean']['trial_success']:.3f}")
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        while step < end:
            k = _k_for_step(cfg, step)
            factor = _lr_factor(cfg, step)
            for g, lr0 in zip(opt.param_groups, base_lr, strict=True):
                g["lr"] = lr0 * factor
            batch = sampler.sample(cfg.batch)
            net.train()
            gen = torch.Generator().manual_seed(int(np.random.default_rng(
                [cfg.seed, step, 29]).integers(2**62)))  # a function of the step: exact resume
            res = fused.run(net, torch.as_tensor(batch.inputs), substeps=k, noise=cfg.noise,
                            generator=gen, engine=engine)
            loss = masked_loss(res.logits, torch.as_tensor(batch.targets),
                               torch.as_tensor(batch.mask))
            valid = torch.as_tensor(batch.mask > 0)  # task steps inside each trial
            if cfg.rate_l2:  # mean squared rate in spikes per ms
                loss = loss + cfg.rate_l2 * valid_mean(
                    (res.counts / circuit.task_dt_ms).square(), valid)
            cap_term = None
            if cfg.rate_cap_l2:
                cap_term = cfg.rate_cap_l2 * rate_cap_penalty(
                    res.counts, valid, circuit.task_dt_ms, cfg.rate_cap_hz)
                loss = loss + cap_term
            distill_term = None
            if cfg.distill and teacher is not None:
                distill_term = cfg.distill * distill_penalty(
                    res.counts, teacher.targets(batch.inputs).clamp(max=float(k)), valid,
                    teacher.norm)
                loss = loss + distill_term
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NeurosheetError(f"fine-tuning loss became {value} at step {step + 1}; "
                                      "lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            if dale is not None:  # E/I circuits: a step never flips a synapse's sign
                _project_dale(net, *dale)
            step += 1
            append({"kind": "train", "step": step, "loss": value, "substeps": k,
                    "wall_s": time.perf_counter() - t0,
                    **({} if cap_term is None else {"rate_cap": float(cap_term.detach())}),
                    **({} if distill_term is None
                       else {"distill": float(distill_term.detach())})})
            if step % cfg.eval_every == 0 or step == cfg.steps:
                res_v = evaluate_now()
                if res_v["mean"]["trial_success"] > best["mean"]["trial_success"]:
                    best, best_step = res_v, step
                    _save_best(out, net.to_circuit(circuit.meta))
                say(f"      fine-tune step {step}: loss {value:.3f}, validation trial "
                    f"success {res_v['mean']['trial_success']:.3f} (best "
                    f"{best['mean']['trial_success']:.3f} at step {best_step})")
            if step % cfg.checkpoint_every == 0 or step == end:
                fh.flush()
                _save_checkpoint(ckpt_path, {
                    "format": CHECKPOINT_FORMAT, "step": step, "source": source,
                    "task_mode": mode,
                    "seeds": [train_seed, validation_seed],
                    "config": _config_json(cfg),
                    "model": {k2: v.detach().cpu() for k2, v in net.state_dict().items()},
                    "optimizer": opt.state_dict(), "sampler": sampler.get_state(),
                    "metrics_bytes": metrics_bytes, "best_step": best_step, "best": best,
                    "initial": initial})
    finally:
        fh.close()
    seconds = time.perf_counter() - t0
    tuned = _load_best(out, circuit)
    meta = {**circuit.meta, "source": "finetune", "converted": source,
            "finetune": {**asdict(cfg), "best_step": best_step, "steps_done": step,
                         "validation_trials": cfg.eval_trials,
                         "validation_substeps": eval_k,
                         "initial_trial_success": initial["mean"]["trial_success"],
                         "best_trial_success": best["mean"]["trial_success"]}}
    tuned = type(tuned)(**{**tuned.__dict__, "meta": meta})
    write_json(out / "summary.json", {"steps": step, "target_steps": cfg.steps,
                                      "complete": step >= cfg.steps, "best_step": best_step,
                                      "initial": initial["mean"], "best": best["mean"],
                                      "resumed_from": resumed_from, "session_s": seconds})
    return FinetuneResult(tuned, step, resumed_from, best_step, best, initial, seconds)


# --------------------------------------------------------------------- files
def _config_json(cfg: FinetuneConfig) -> str:
    d = asdict(cfg)
    for k in ("steps", "threads", "engine"):  # may change between sessions (steps extend a run)
        d.pop(k)
    if not cfg.rate_cap_l2:  # off: checkpoints written before the option still resume
        d.pop("rate_cap_hz"), d.pop("rate_cap_l2")
    if not cfg.distill:
        d.pop("distill")
    return json.dumps(d, sort_keys=True)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    write_torch(path, payload)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    return read_torch(path, CHECKPOINT_FORMAT, "fine-tuning checkpoint")


def _save_best(out: Path, circuit: SpikingCircuit) -> None:
    circuit.save(out / "best.npz")


def _load_best(out: Path, like: SpikingCircuit) -> SpikingCircuit:
    return SpikingCircuit.load(out / "best.npz", like.graph)


def _trim(path: Path, size: int) -> None:
    """Drop records written after the checkpoint we resume from (they will be redone)."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as fh:
            fh.truncate(size)


START_FILE = "start.npz"  # a continued fine-tuning's starting circuit, kept for exact resume


def finetune_run(run_dir: str | Path, config: FinetuneConfig | None = None,
                 conversion: Any = None, *, out_dir: str | Path | None = None,
                 calibration_trials: int = 64, seeds: Any = None, progress: bool = False,
                 resume: bool = True, stop_after: int | None = None,
                 log: Any = None, start: str = "converted") -> FinetuneResult:
    """Fine-tune a run's converted circuit; the result becomes ``DIR/spiking/circuit.npz``.

    ``start="converted"``: the starting point is the run's conversion for ``conversion`` (a
    :class:`~neurosheet.spiking.conversion.ConversionConfig`, default recipe; saved and reused
    as ``DIR/spiking/conversion.npz``), calibrated on the run's 'calibration' seed stream.
    ``start="tuned"``: continue from the run's fine-tuned circuit (a curriculum, e.g. K 20
    then K 1000), simulated at ``conversion.substeps``; it is copied to ``out_dir/start.npz``
    so that resuming starts from the same circuit after this run replaced it.
    Checkpoints, metrics and the best circuit go to ``out_dir`` (default
    ``DIR/spiking/finetune``; ``DIR/spiking/finetune-from-tuned-kK`` for ``tuned``); re-running
    resumes there. The circuit is written to the run only when the configured number of steps
    is done.
    """
    from neurosheet.core.rundir import RunDir
    from neurosheet.core.seeds import SeedPlan
    from neurosheet.graph.circuit import load_run_circuit
    from neurosheet.spiking import persist
    from neurosheet.spiking.conversion import ConversionConfig

    if start not in ("converted", "tuned"):
        raise NeurosheetError(f"start must be converted or tuned, got {start!r}", "start")
    run = RunDir(run_dir).require()
    seeds = seeds or SeedPlan()
    circuit = load_run_circuit(run.path)
    conv = conversion or ConversionConfig()
    cfg = config or FinetuneConfig()
    if start == "converted":
        out = Path(out_dir) if out_dir is not None else run.finetune
        first = persist.spiking_for_run(run.path, circuit, conv, calibration_trials,
                                        seeds.model, tuned=False)
    else:
        out = (Path(out_dir) if out_dir is not None
               else run.spiking / f"finetune-from-tuned-k{conv.substeps}")
        first = _continued_start(run.path, circuit, conv, out, resume)
    teacher = RateTeacher.for_circuit(circuit, first) if cfg.distill else None
    result = finetune(first, out, cfg, progress=progress, resume=resume, stop_after=stop_after,
                      log=log, train_seed=seeds.finetune,
                      validation_seed=seeds.finetune_validation, teacher=teacher)
    if start == "tuned":
        fine = result.circuit.meta["finetune"]
        meta = {**result.circuit.meta, "finetune": {**fine, "start": "tuned",
                "continued_from": first.meta.get("finetune")}}
        result = replace(result, circuit=replace(result.circuit, meta=meta))
    if result.steps >= cfg.steps:
        persist.save_tuned(run.path, result.circuit)
    return result


def _continued_start(run_dir: Path, circuit: Any, conv: Any, out: Path,
                     resume: bool) -> SpikingCircuit:
    """The starting circuit of a continued fine-tuning: the one kept in ``out`` when resuming
    (the run's circuit may since be this fine-tuning's result), else the run's tuned circuit."""
    from neurosheet.spiking import persist

    kept = out / START_FILE
    if resume and kept.is_file() and (out / "checkpoint.pt").is_file():
        found = persist.load_from(kept, circuit)
        if found is not None:
            return found.at_substeps(conv.substeps)
    found = persist.load_tuned(run_dir, circuit, conv)
    if found is None:
        raise NeurosheetError(
            f"{run_dir} has no fine-tuned circuit of its current weights and neuron model to "
            "continue from; run `neurosheet finetune` first", "start")
    out.mkdir(parents=True, exist_ok=True)
    found.save(kept)
    return found


def _dale_masks(graph: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each recurrent and readout synapse's required sign (+1/-1) on an E/I graph, else None."""
    if graph.types is None:
        return None
    _, pre = graph.edges()
    _, rpre = graph.readout.edges()
    return (torch.as_tensor(graph.types[pre], dtype=torch.float32),
            torch.as_tensor(graph.types[rpre], dtype=torch.float32))


def _project_dale(net: Any, rec_sign: torch.Tensor, out_sign: torch.Tensor) -> None:
    """Zero the weights that an optimizer step pushed across zero (Dale's law kept exactly)."""
    with torch.no_grad():
        for param, sign in ((net.w_rec, rec_sign), (net.w_out, out_sign)):
            param.mul_((param * sign.to(param.device, param.dtype) >= 0).to(param.dtype))
