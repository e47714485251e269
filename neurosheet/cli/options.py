"""Every flag of every subcommand, defined once: one name, one meaning, one help text.

Subcommands add flags with :func:`add` by name; a flag's type, help and metavar live here only,
so ``--trials`` or ``--seed`` cannot mean one thing in ``evaluate`` and another in ``budget``
(a test walks every parser and fails on a flag with two meanings). Library errors name their
parameter (``trials``, ``seed``); :data:`PARAMETER_FLAGS` maps it back to the flag.
"""

from __future__ import annotations

import argparse
from typing import Any

from neurosheet.cli.common import fraction, non_negative, positive_int, seed_int

#: flag -> argparse keywords (help uses %(default)s so defaults may differ per command)
FLAGS: dict[str, dict[str, Any]] = {
    "--out": {"metavar": "DIR", "help": "output directory (created; resumed or updated when it "
              "exists)"},
    "--json": {"action": "store_true", "help": "print one JSON object on stdout"},
    "--no-progress": {"action": "store_true", "help": "no progress bars (for log files)"},
    "--seed": {"type": seed_int, "help": "the run's seed: every stream (wiring, init, training, "
               "held-out, calibration, spike-count trials) derives from it (default %(default)s)"},
    "--trials": {"type": positive_int, "help": "held-out trials per task (default %(default)s)"},
    "--spike-trials": {"type": positive_int, "help": "trials mixed over the circuit's tasks "
                       "whose spikes are counted (default %(default)s)"},
    "--plot": {"metavar": "PATH", "help": "save the figure here (.png, .pdf, .svg)"},
    "--preset": {"metavar": "NAME|PATH", "help": "model preset name (see models/) or .toml path"},
    "--suite": {"metavar": "NAME|PATH", "help": "task suite name (see `neurosheet tasks list "
                "--suites`) or .toml path"},
    "--steps": {"type": positive_int, "help": "training steps (default: the preset's)"},
    "--n": {"type": int, "help": "number of neurons (checked by the library: a positive "
            "integer whose graph fits in memory)"},
    "--density": {"type": fraction, "help": "connection density in (0, 1]: the fraction of "
                  "possible recurrent synapses"},
    "--device": {"help": "torch device: cuda when available, else cpu (or cpu, cuda[:N])"},
    "--backend": {"help": "simulation backend: %s"},  # filled from the registry
    "--backends": {"help": "comma-separated simulation backends (default %(default)s)"},
    "--targets": {"metavar": "NAME,...|all", "help": "hardware target profiles: names in "
                  "deploy/, .toml paths, or 'all' (default %(default)s)"},
    "--inputs": {"metavar": "FILE.npy", "help": "input array [T, B, n_in] (.npy) instead of "
                 "task trials"},
    "--task": {"help": "Mod-Cog task to simulate (one of the circuit's tasks)"},
    "--accuracy-metric": {"choices": ("trial_success", "step_accuracy", "yang_success"),
                          "help": "accuracy reported: trial_success (fixation held, every "
                          "decision step right), step_accuracy (forgives a wrong step) or "
                          "yang_success (forgives one ring unit off) (default %(default)s)"},
    "--distance": {"choices": ("euclidean", "manhattan"),
                   "help": "distance on the sheet (default %(default)s)"},
    "--executor": {"choices": ("process", "ray"),
                   "help": "where sweep runs execute: local processes or a Ray cluster "
                   "(default %(default)s)"},
    # conversion knobs (rate -> spiking)
    "--substeps": {"type": positive_int, "help": "spiking simulation steps per task step "
                   "(default %(default)s)"},
    "--rate-hz": {"type": float, "help": "firing rate given to the calibration percentile "
                  "rate (default %(default)s)"},
    "--percentile": {"type": float, "help": "rate percentile that sets the spike scale "
                     "(default %(default)s)"},
    "--calibration": {"choices": ("global", "neuron"), "help": "one scale for all neurons or "
                      "one per neuron (default %(default)s)"},
    "--tau-mem": {"type": float, "dest": "tau_mem_ms", "help": "membrane time constant of the "
                  "LIF neurons, ms (default %(default)s)"},
    "--reset": {"choices": ("zero", "subtract"), "help": "after a spike: v = 0 (NIR) or "
                "v - threshold (default %(default)s)"},
    "--readout": {"choices": ("count", "li"), "help": "readout of the spikes: counts per task "
                  "step or an LI trace at its end (default %(default)s)"},
    "--converted": {"action": "store_true", "help": "use the plain conversion even when the run "
                    "has a fine-tuned spiking circuit"},
    "--gate": {"choices": ("error", "warn", "off"), "help": "what a failed 'rate model works at "
               "the spiking time step' check does (default %(default)s)"},
    "--dtype": {"choices": ("float32", "float64"), "help": "spiking precision (default %(default)s)"},
    "--calibration-trials": {"type": positive_int, "help": "trials mixed over the circuit's "
                             "tasks that calibrate the conversion (default %(default)s)"},
    # spike-aware fine-tuning
    "--finetune-steps": {"type": positive_int, "help": "fine-tuning steps of the spiking "
                         "circuit (default %(default)s)"},
    "--train-substeps": {"metavar": "K,...", "help": "spiking simulation steps per task step "
                         "while fine-tuning, one drawn per batch (default %(default)s)"},
    "--rate-cap-hz": {"type": float, "help": "firing rate (Hz) above which --rate-cap-l2 "
                      "penalizes a neuron's rate per task step (default %(default)s)"},
    "--rate-cap-l2": {"type": float, "help": "weight of the hinge penalty mean(relu(rate_hz - "
                      "cap)^2) (per Hz^2) while fine-tuning: keeps rates far below 1/dt so the "
                      "circuit does not rely on the step's rate ceiling (default %(default)s: off)"},
    "--batch": {"type": positive_int, "help": "trials per optimizer step (default %(default)s)"},
    "--distill": {"type": float, "help": "weight of the distillation term that pulls each "
                  "neuron's spike count toward the rate network's rate mapped by the conversion "
                  "(the rate network as teacher on the same trials; 0: off; default %(default)s)"},
    "--lr": {"type": float, "help": "Adam step size, relative to each weight array's RMS "
             "(default %(default)s)"},
    "--from-tuned": {"action": "store_true", "help": "continue from the run's fine-tuned "
                     "circuit (DIR/spiking/circuit.npz) instead of the conversion, e.g. at another "
                     "--substeps; checkpoints in DIR/spiking/finetune-from-tuned-kK unless --out"},
    "--finetune-below": {"type": fraction, "help": "fine-tune the spiking circuit when its "
                         "validation trial success is below this fraction of the rate "
                         "network's (default %(default)s)"},
    "--no-finetune": {"action": "store_true", "help": "never fine-tune the spiking circuit"},
    "--k-max": {"type": positive_int, "help": "largest number of clusters tried (default %(default)s)"},
    "--threads": {"type": positive_int, "help": "torch threads per process (default %(default)s)"},
    "--workers": {"type": positive_int, "help": "parallel runs (default %(default)s)"},
    "--size": {"metavar": "NAME", "help": "which of the experiment design's scales to run: "
               "small (this machine) or paper (N = 1024, >= 5 seeds, full length: a GPU or a "
               "Ray cluster) (default %(default)s)"},
    "--ray-address": {"help": "Ray cluster address (default: start a local Ray)"},
    "--scale": {"type": non_negative, "help": "wiring kernel sigma/lambda (gaussian/exponential)"},
    # E/I populations (Dale's law)
    "--inhibitory": {"type": float, "help": "fraction of inhibitory neurons in [0, 1): E/I "
                     "types, every outgoing weight keeps its neuron's sign (default: none)"},
    "--placement": {"choices": ("interleaved", "random"), "help": "where the inhibitory neurons "
                    "sit: spread evenly, or random from the seed (default %(default)s)"},
    "--pair-scales": {"metavar": "EE,EI,IE,II", "help": "radius rule with --inhibitory: radius "
                      "of each pair type (pre->post) as a multiple of the base radius, e.g. "
                      "1,1,0.75,0.75 for more local inhibitory axons (default 1,1,1,1)"},
}

#: library parameter name -> CLI flag (errors raised with the parameter are reported as flags)
PARAMETER_FLAGS: dict[str, str] = {
    "seed": "--seed", "trials": "--trials", "n": "--n", "density": "--density",
    "radius": "--radius", "substeps": "--substeps", "rate_hz": "--rate-hz",
    "tau_mem_ms": "--tau-mem", "calibration": "--calibration", "reset": "--reset",
    "readout": "--readout", "percentile": "--percentile", "lr": "--lr", "batch": "--batch",
    "finetune_below": "--finetune-below", "steps": "--steps", "preset": "--preset", "suite": "--suite",
    "targets": "--targets", "backend": "--backend", "inputs": "--inputs", "out": "--out",
    "gate": "--gate", "target": "--brian2-target", "plot": "--plot", "save": "--save",
    "nir": "--nir", "size": "--size", "executor": "--executor",
    "inhibitory": "--inhibitory", "placement": "--placement", "pair_scales": "--pair-scales",
    "train_substeps": "--train-substeps", "rate_cap_hz": "--rate-cap-hz",
    "rate_cap_l2": "--rate-cap-l2", "distill": "--distill",
}


def add(p: argparse.ArgumentParser | Any, flag: str, **kwargs: Any) -> argparse.Action:
    """Add the canonical ``flag`` to parser/group ``p``; ``kwargs`` may set default/required."""
    spec = dict(FLAGS[flag])
    unknown = set(kwargs) - {"default", "required", "dest", "metavar"}
    if unknown:
        raise ValueError(f"{flag}: only default/required/dest/metavar may vary, not {unknown}")
    spec.update(kwargs)
    return p.add_argument(flag, **spec)


def add_backend(p: argparse.ArgumentParser, kind: str | None = None, **kwargs: Any) -> None:
    """``--backend`` with the registry's names (of ``kind``) as choices."""
    from neurosheet.spiking.registry import REGISTRY, backend_names

    names = backend_names(kind)  # type: ignore[arg-type]
    spec = dict(FLAGS["--backend"])
    spec["help"] = "simulation backend: " + "; ".join(
        f"{n} = {REGISTRY[n].summary}" for n in backend_names()) + " (default %(default)s)"
    spec.update(choices=names, **kwargs)
    p.add_argument("--backend", **spec)


def backend_flag(backend: str, option: str) -> str:
    """The flag of a backend's option: shared options bare (``--device``), others prefixed."""
    from neurosheet.spiking.registry import REGISTRY

    owners = [s for s in REGISTRY.values() for o in s.options if o.name == option]
    shared = len({id(o) for s in owners for o in s.options if o.name == option}) == 1
    name = option.replace("_", "-")
    return f"--{name}" if shared and len(owners) > 1 else f"--{backend}-{name}"


def add_backend_options(p: argparse.ArgumentParser, backends: tuple[str, ...] | None = None) -> None:
    """Every registered backend's declared options as flags (one group per backend)."""
    from neurosheet.spiking.registry import REGISTRY

    seen: set[str] = set()
    for name, spec in REGISTRY.items():
        if backends is not None and name not in backends:
            continue
        g = p.add_argument_group(f"{name} backend options")
        for o in spec.options:
            flag = backend_flag(name, o.name)
            if flag in seen:
                continue
            seen.add(flag)
            if flag in FLAGS:  # a flag with a house-wide meaning (e.g. --device)
                add(g, flag, default=None)
                continue
            kw: dict[str, Any] = {"dest": flag[2:].replace("-", "_"), "default": None,
                                  "help": o.help}
            if o.choices:
                kw["choices"] = o.choices
            elif o.type is not str:
                kw["type"] = positive_int if o.type is int else o.type
            g.add_argument(flag, **kw)


def backend_options(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """The options of ``backend`` given on the command line (unset ones left to the backend)."""
    from neurosheet.spiking.registry import get_spec

    out = {}
    for o in get_spec(backend).options:
        value = getattr(args, backend_flag(backend, o.name)[2:].replace("-", "_"), None)
        if value is not None:
            out[o.name] = value
    return out


def add_conversion(p: argparse.ArgumentParser) -> None:
    """The conversion knobs shared by simulate / evaluate / export / budget / pipeline."""
    from neurosheet.spiking.conversion import ConversionConfig

    d = ConversionConfig()
    g = p.add_argument_group("conversion (accuracy vs speed)")
    add(g, "--substeps", default=d.substeps)
    add(g, "--rate-hz", default=d.rate_hz)
    add(g, "--percentile", default=d.percentile)
    add(g, "--calibration", default=d.calibration)
    add(g, "--tau-mem", default=d.tau_mem_ms)
    add(g, "--reset", default=d.reset)
    add(g, "--readout", default=d.readout)
    add(g, "--gate", default=d.gate)
    add(g, "--dtype", default=d.dtype)
    add(g, "--calibration-trials", default=64)
    add(g, "--converted")


def conversion_from_args(args: argparse.Namespace) -> Any:
    """The :class:`ConversionConfig` the conversion flags describe."""
    from neurosheet.spiking.conversion import ConversionConfig

    return ConversionConfig(substeps=args.substeps, rate_hz=args.rate_hz,
                            percentile=args.percentile, calibration=args.calibration,
                            tau_mem_ms=args.tau_mem_ms, reset=args.reset, readout=args.readout,
                            gate=args.gate, dtype=args.dtype,
                            finetuned=not getattr(args, "converted", False))


def seeds_from_args(args: argparse.Namespace) -> Any:
    """The run's :class:`SeedPlan` from ``--seed``."""
    from neurosheet.core.seeds import SeedPlan

    return SeedPlan(args.seed)


def comma_list(text: str) -> tuple[str, ...]:
    """``a,b,c`` -> ``("a", "b", "c")`` (blank items dropped)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def spiking_backend_names() -> tuple[str, ...]:
    """Names of the registered spiking simulators (for flag choices and option groups)."""
    from neurosheet.spiking.registry import backend_names

    return backend_names("spiking")


def progress(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--no-progress`` or ``--json`` (JSON output stays machine-clean)."""
    return not (getattr(args, "no_progress", False) or getattr(args, "json", False))
