"""The stage layer: every step of the data path as one call on a run directory.

Both front ends call these functions: each ``neurosheet`` subcommand parses its flags, calls one
stage and renders the typed result; :mod:`neurosheet.pipeline` is an ordered list of stage calls.
A stage takes a run directory (or its circuit) and typed options and returns a typed result
(:mod:`neurosheet.core.results`); the seeds of every draw come from one
:class:`~neurosheet.core.seeds.SeedPlan`, so two stages that must see the same trials do.

    train -> evaluate (any registered backend) -> convert -> simulate / raster / count_spikes
          -> budget -> export_nir
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import IncompleteRunWarning, NeurosheetError
from neurosheet.core.io import write_npz
from neurosheet.core.results import Evaluation, Refusal, SpikeCountSummary, TrainSummary
from neurosheet.core.rundir import RunDir
from neurosheet.core.seeds import SeedPlan

RunLike = str | Path | RunDir
log = logging.getLogger(__name__)
DEFAULT_SEEDS = SeedPlan()  # frozen: safe as a default


# --------------------------------------------------------------------- rate
def train(run: RunLike, preset: Any = "demo", suite: Any = "demo", *, seed: int = 0,
          steps: int | None = None, device: str = "auto", progress: bool = True,
          resume: bool = True, overrides: dict[str, Any] | None = None) -> TrainSummary:
    """Train (or resume) a rate network into ``run`` and plot its learning curves.

    ``preset`` and ``suite`` are names, paths, or loaded objects (``ModelPreset``, a suite name).
    """
    from neurosheet.rate.config import ModelPreset, load_model_preset, with_overrides
    from neurosheet.rate.model import resolve_device
    from neurosheet.rate.training import train as train_rate

    run = RunDir(run)
    preset_name = "custom"
    if isinstance(preset, ModelPreset):
        model, source = preset, "object"
    else:
        preset_name = str(preset)
        model, path = load_model_preset(preset)
        source = str(path)
    if overrides:
        model = with_overrides(model, overrides, "overrides")
    result = train_rate(run.path, model, suite, seed=seed, preset_name=preset_name, steps=steps,
                        device=resolve_device(device), progress=progress, resume=resume)
    plot_learning_curves(run)
    return TrainSummary(run_dir=str(run), preset=source, steps=result.steps,
                        final=result.final["mean"], steps_to_criterion=result.steps_to_criterion,
                        resumed_from=result.resumed_from, init_spectrum=result.init_spectrum)


def plot_learning_curves(run: RunLike) -> Path | None:
    """``plots/learning_curves.png`` from the run's metrics (None when there is nothing to plot)."""
    from neurosheet.reports.plots import save_figure
    from neurosheet.reports.plots.training import learning_curves_figure

    run = RunDir(run)
    records = run.read_metrics()
    if not any(r.get("kind") == "eval" for r in records):
        return None
    metric = run.read_config().get("training", {}).get("criterion_metric", "step_accuracy")
    try:
        return save_figure(learning_curves_figure(records, metric), run.curves_plot)
    except ValueError:  # a plot must never cost a trained run
        return None


def load_circuit(run: RunLike) -> Any:
    """The trained circuit of a run directory (an :class:`IncompleteRunWarning` when the run
    did not finish training: its weights are partly trained)."""
    from neurosheet.graph.circuit import load_run_circuit

    run = RunDir(run).require()
    circuit = load_run_circuit(run.path)
    warn_if_unfinished(run)
    return circuit


def warn_if_unfinished(run: RunLike) -> str | None:
    """Warn (:class:`IncompleteRunWarning`) when ``run`` is a training run that did not finish."""
    note = RunDir(run).unfinished()
    if note:
        warnings.warn(note, IncompleteRunWarning, stacklevel=3)
    return note


# --------------------------------------------------------------------- evaluation
def evaluate(run: RunLike, backend: str = "rate", *, tasks: Sequence[str] | None = None,
             trials: int = 64, seeds: SeedPlan = DEFAULT_SEEDS, conversion: Any = None,
             calibration_trials: int = 64, progress: bool = False,
             circuit: Any = None, task_mode: str | None = None, **options: Any) -> Evaluation:
    """Held-out accuracy of the run's circuit simulated by ``backend`` (the 'test' seed stream).

    Every backend evaluated with the same ``trials`` and ``seeds`` sees the same trials.
    ``task_mode`` (fixed/reference) defaults to the mode the run was trained with.
    """
    from neurosheet.spiking.evaluate import evaluate_backend

    run = RunDir(run)
    circuit = circuit if circuit is not None else load_circuit(run)
    if task_mode is None:
        config = run.read_config() if run.config_json.is_file() else {}
        task_mode = config.get("training", {}).get("task_mode", "fixed")
    result = evaluate_backend(circuit, backend, tuple(tasks) if tasks else None, trials,
                              seeds.test, task_mode=task_mode, run=run.path, conversion=conversion,
                              calibration_trials=calibration_trials, seed=seeds.model,
                              progress=progress, **options)
    return Evaluation.model_validate(result)


def evaluate_backends(run: RunLike, backends: Sequence[str], *, trials: int = 64,
                      seeds: SeedPlan = DEFAULT_SEEDS, conversion: Any = None,
                      options: dict[str, dict[str, Any]] | None = None,
                      circuit: Any = None) -> dict[str, Evaluation | Refusal]:
    """:func:`evaluate` for several backends on the same trials; a refusal is a result."""
    out: dict[str, Evaluation | Refusal] = {}
    for name in backends:
        try:
            out[name] = evaluate(run, name, trials=trials, seeds=seeds, conversion=conversion,
                                 circuit=circuit, **(options or {}).get(name, {}))
        except NeurosheetError as exc:  # e.g. the conversion gate refused this circuit
            out[name] = Refusal(refused=str(exc), trials=trials)
    return out


# --------------------------------------------------------------------- spiking
def convert(run: RunLike, conversion: Any = None, *, seeds: SeedPlan = DEFAULT_SEEDS,
            calibration_trials: int = 64, inputs: np.ndarray | None = None,
            circuit: Any = None) -> Any:
    """The run's spiking circuit for these knobs (saved conversion reused, else calibrated)."""
    from neurosheet.spiking.conversion import ConversionConfig
    from neurosheet.spiking.persist import spiking_for_run

    run = RunDir(run)
    circuit = circuit if circuit is not None else load_circuit(run)
    return spiking_for_run(run.path, circuit, conversion or ConversionConfig(),
                           calibration_trials, seeds.model, inputs=inputs)


def finetune(run: RunLike, config: Any = None, conversion: Any = None, *,
             seeds: SeedPlan = DEFAULT_SEEDS, calibration_trials: int = 64,
             out: str | Path | None = None, resume: bool = True, progress: bool = False,
             stop_after: int | None = None, start: str = "converted") -> dict[str, Any]:
    """Fine-tune the run's converted spiking circuit with surrogate gradients (the run's
    'finetune' and 'finetune_validation' seed streams); the best circuit on validation trials
    becomes the run's ``spiking/circuit.npz``, which every spiking stage then uses.
    ``start="tuned"`` continues from that fine-tuned circuit instead (e.g. at a finer step)."""
    from neurosheet.spiking.conversion import ConversionConfig
    from neurosheet.spiking.finetune import FinetuneConfig, finetune_run

    run = RunDir(run).require()
    cfg = config or FinetuneConfig()
    log_fn = log.info if progress else None
    result = finetune_run(run.path, cfg, conversion or ConversionConfig(), out_dir=out,
                          calibration_trials=calibration_trials, seeds=seeds, resume=resume,
                          stop_after=stop_after, log=log_fn, start=start)
    return {"run_dir": str(run), "steps": result.steps, "resumed_from": result.resumed_from,
            "best_step": result.best_step, "initial": result.initial["mean"],
            "best": result.best["mean"], "validation_trials_per_task": cfg.eval_trials,
            "train_substeps": list(cfg.substeps), "substeps": result.circuit.substeps,
            "seconds": result.seconds, "complete": result.steps >= cfg.steps,
            "circuit": str(run.spiking_circuit)}


def simulate(run: RunLike, backend: str = "snntorch", *, task: str | None = None,
             inputs: np.ndarray | None = None, trials: int = 16, trial_seed: int = 0,
             conversion: Any = None, seeds: SeedPlan = DEFAULT_SEEDS, calibration_trials: int = 64,
             record: int = 0, progress: bool = False, **options: Any) -> dict[str, Any]:
    """Simulate ``trials`` trials of ``task`` (or a user's ``inputs``) with a spiking backend.

    Returns the summary (spikes, rates, times, agreement with the rate network, accuracy on task
    trials) with the raw :class:`SpikeResult` under ``"result"`` and the trials under ``"batch"``.
    """
    from neurosheet.spiking.conversion import decisions, rate_logits
    from neurosheet.spiking.persist import sampler
    from neurosheet.spiking.registry import get_spec
    from neurosheet.tasks import score

    spec = get_spec(backend)
    if spec.kind != "spiking":
        raise NeurosheetError(f"backend {backend!r} is not a spiking simulator")
    if (task is None) == (inputs is None):
        raise NeurosheetError("give exactly one of task or inputs")
    run = RunDir(run)
    circuit = load_circuit(run)
    batch = None
    if task is not None:
        batch = sampler(circuit, trial_seed).sample_task(task, trials)
        inputs, mask = batch.inputs, batch.decision
        sc = convert(run, conversion, seeds=seeds, calibration_trials=calibration_trials,
                     circuit=circuit)
    else:
        inputs, mask = inputs[:, :trials], None
        sc = convert(run, conversion, seeds=seeds, inputs=inputs, circuit=circuit)
    sim = spec.create(run.path, **options)
    result = sim.run(sc, inputs, record=record, progress=progress)
    y_rate, _ = rate_logits(circuit, inputs)
    agree = float((decisions(y_rate, mask) == decisions(result.logits, mask)).mean())
    summary: dict[str, Any] = {
        "run_dir": str(run), "task": task, **result.summary(circuit.graph.fan_out),
        "real_time_factor": result.run_s / (result.biological_s * result.counts.shape[1]),
        "decision_agreement_with_rate": agree, "conversion": sc.summary(),
    }
    if batch is not None:
        summary["spiking_accuracy"] = score(result.logits.astype(np.float32), batch,
                                            circuit.tasks)["mean"]
        summary["rate_accuracy"] = score(y_rate.astype(np.float32), batch, circuit.tasks)["mean"]
    summary.update(result=result, batch=batch, spiking=sc, rate_logits=y_rate, inputs=inputs)
    return summary


def raster(run: RunLike, backend: str, path: str | Path, *, task: str | None = None,
           inputs: np.ndarray | None = None, trial_seed: int | None = None,
           seeds: SeedPlan = DEFAULT_SEEDS, conversion: Any = None, **options: Any) -> Path:
    """Raster plot of one trial (the 'raster' seed stream unless ``trial_seed``) with its readout."""
    from neurosheet.reports.plots import check_figure_path, save_figure
    from neurosheet.reports.plots.spikes import spike_figure

    check_figure_path(path, "plot")  # before the simulation, not after
    if task is None and inputs is None:
        task = load_circuit(run).tasks[-1]  # the last task of a suite is its hardest (int/seq)
    sim = simulate(run, backend, task=task, inputs=inputs, trials=1,
                   trial_seed=seeds.raster if trial_seed is None else trial_seed,
                   conversion=conversion, seeds=seeds, record=1, **options)
    result, batch, sc = sim["result"], sim["batch"], sim["spiking"]
    length = int(batch.lengths[0]) if batch is not None else sim["inputs"].shape[0]
    steps, neurons = result.rasters[0]
    fig = spike_figure(steps, neurons, sc.n, sc.sim_dt_ms, sc.substeps, result.logits[:length, 0],
                       rate_logits=sim["rate_logits"][:length, 0],
                       targets=None if batch is None else batch.targets[:length, 0],
                       title=f"{task or 'inputs'}: trial 0, {result.backend}")
    return save_figure(fig, path)


def count_spikes(run: RunLike, backend: str = "snntorch", *, trials: int = 64,
                 seeds: SeedPlan = DEFAULT_SEEDS, conversion: Any = None,
                 calibration_trials: int = 64, progress: bool = False,
                 **options: Any) -> SpikeCountSummary:
    """Spikes per neuron per trial on ``trials`` held-out trials mixed over the circuit's tasks.

    The trials come from the 'spike_counts' seed stream, so the pipeline and ``budget
    --simulate`` count on the same trials. Saved to the run's ``spike_counts.npz``.
    """
    from neurosheet.spiking.persist import sampler, valid_steps
    from neurosheet.spiking.registry import get_spec

    spec = get_spec(backend)
    if spec.kind != "spiking":
        raise NeurosheetError(f"backend {backend!r} does not produce spikes")
    run = RunDir(run)
    circuit = load_circuit(run)
    sc = convert(run, conversion, seeds=seeds, calibration_trials=calibration_trials,
                 circuit=circuit)
    batch = sampler(circuit, seeds.spike_counts).sample(trials)
    result = spec.create(run.path, **options).run(sc, batch.inputs, progress=progress)
    counts = (result.counts * valid_steps(batch)[:, :, None]).sum(0)  # [B, N]
    path = write_npz(run.spike_counts, spike_counts=counts.astype(np.float32),
                     lengths=batch.lengths, task_ids=batch.task_ids)
    seconds = float(batch.lengths.mean()) * sc.substeps * sc.sim_dt_ms / 1000.0
    return SpikeCountSummary(
        file=str(path), backend=backend, trials=int(counts.shape[0]), seed=seeds.spike_counts,
        spikes_per_trial=float(counts.sum(1).mean()),
        mean_rate_hz=float(counts.sum(1).mean() / circuit.n / seconds) if seconds else 0.0)


def export_nir(run: RunLike, path: str | Path, *, conversion: Any = None,
               seeds: SeedPlan = DEFAULT_SEEDS, calibration_trials: int = 64,
               inputs: np.ndarray | None = None, rescale_time: bool = False) -> dict[str, Any]:
    """Write the run's spiking circuit as NIR, read it back to verify, and describe it.

    ``rescale_time``: one neurosheet step per 0.1 ms file step (see
    :func:`neurosheet.spiking.nir.network_from_spiking`)."""
    from neurosheet.core.paths import check_writable_file
    from neurosheet.spiking.nir import read_nir, write_nir

    check_writable_file(path, "nir", "NIR file")  # before the conversion, not after
    sc = convert(run, conversion, seeds=seeds, calibration_trials=calibration_trials,
                 inputs=inputs)
    out = write_nir(sc, path, rescale_time=rescale_time)
    back = read_nir(out)  # verify the file before reporting success
    return {"nir": str(out), "neurons": back.network.n, "synapses": back.synapses,
            "bytes": out.stat().st_size, "file_dt_ms": back.network.dt_s * 1e3,
            "substeps": sc.substeps, "sim_dt_ms": sc.sim_dt_ms,
            "source": sc.meta.get("source", "conversion"),
            "time_scale": back.meta["time_scale"],
            "graph_fingerprint": back.meta["graph_fingerprint"]}


# --------------------------------------------------------------------- hardware
def load_spike_counts(run: RunLike, n: int) -> Any:
    """The run's saved spike counts as :class:`SpikeCounts` (None when there are none)."""
    from neurosheet.hardware.budget import SpikeCounts

    path = RunDir(run).spike_counts
    if not path.is_file():
        return None
    with np.load(path) as f:
        return SpikeCounts.from_array(f["spike_counts"], n, str(path))


def budget(source: Any, targets: Sequence[Any], *, spikes: Any = None,
           accuracy_trials: int | None = None, metric: str = "trial_success",
           seeds: SeedPlan = DEFAULT_SEEDS, label: str = "") -> list[dict[str, Any]]:
    """Budget reports of a circuit (or bare graph) on ``targets`` (profiles or names).

    With ``accuracy_trials`` the rate model is re-evaluated after weight quantization on that
    many held-out trials per task (the 'test' stream) and ``metric`` is reported.
    """
    from neurosheet.graph.circuit import Circuit
    from neurosheet.hardware.budget import compare_targets
    from neurosheet.hardware.targets import load_target
    from neurosheet.rate.evaluation import evaluate_circuit

    profiles = [load_target(t) if isinstance(t, str | Path) else t for t in targets]
    kwargs: dict[str, Any] = {"spikes": spikes, "seed": seeds.partition, "source": label}
    if accuracy_trials:
        if not isinstance(source, Circuit) or not source.tasks:
            raise NeurosheetError("evaluating accuracy needs a run directory with trained weights "
                                  "(circuit.npz) and tasks, not a bare graph")

        def accuracy(c: Circuit) -> float:  # re-evaluated after quantization, never estimated
            return float(evaluate_circuit(c, c.tasks, accuracy_trials, seeds.test)["mean"][metric])

        kwargs["accuracy_fn"] = accuracy
        kwargs["accuracy_label"] = (
            f"{metric}, mean over {len(source.tasks)} task(s), {accuracy_trials} held-out "
            f"trials each (seed {seeds.test}), rate model")
    return compare_targets(source, profiles, **kwargs)
