"""Backends registered by name, imported only when used (gymnasium's lazy ``entry_point`` style).

A backend turns a circuit into readout logits for task inputs: ``rate`` runs the rate model,
``snntorch`` and ``brian2`` simulate the converted spiking network on the same graph. Each entry
declares its options (name, type, default, help) here, light enough for ``--help`` to list them
without importing torch or Brian2; the conformance tests check that every declared option is a
keyword of the implementation's constructor, so the two cannot drift apart. Nothing above this
module names a backend: the CLI and the pipeline iterate over :data:`REGISTRY`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.presets import unknown_name_message

Kind = Literal["rate", "spiking"]


@dataclass(frozen=True)
class Option:
    """One option of a backend (a constructor keyword), as a CLI or a config file shows it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: its name, kind, lazily imported implementation and options."""

    name: str
    kind: Kind
    entry: str  # "module:attribute"
    summary: str
    options: tuple[Option, ...] = ()

    def load(self) -> type:
        """The implementation class (imports its module now)."""
        module, _, attr = self.entry.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise NeurosheetError(f"backend {self.name!r} is not available here ({exc})") from None

    def create(self, run: Any = None, **options: Any) -> Any:
        """An instance with ``options`` (unknown ones refused), set up for run directory ``run``."""
        known = {o.name for o in self.options}
        unknown = sorted(set(options) - known)
        if unknown:
            raise NeurosheetError(f"backend {self.name!r} has no option {unknown[0]!r} "
                                  f"(options: {', '.join(sorted(known)) or 'none'})")
        cls = self.load()
        opts = {k: v for k, v in options.items() if v is not None}
        if run is not None and hasattr(cls, "from_run"):
            return cls.from_run(run, **opts)
        return cls(**opts)


_DEVICE = Option("device", str, None, "torch device (default: cuda when available, else cpu)")

REGISTRY: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "rate", "rate", "neurosheet.rate.evaluation:RateBackend",
            "the trained rate network (deterministic, no noise)",
            (Option("substeps", int, None, "Euler sub-steps per task step (default: as trained)"),
             _DEVICE)),
        BackendSpec(
            "snntorch", "spiking", "neurosheet.spiking.backends.snntorch:SnntorchBackend",
            "spiking network in torch (snntorch Synaptic neurons), batched over trials, CPU or GPU",
            (_DEVICE,
             Option("batch_size", int, None, "trials simulated together (default 256)"),
             Option("matmul", str, None, "recurrent propagation: auto (event-driven when "
                    "cheaper, measured rule), events, csr (the graph's edges) or dense",
                    ("auto", "events", "csr", "dense")),
             Option("dtype", str, None, "precision (default: the conversion's, float32)",
                    ("float32", "float64")))),
        BackendSpec(
            "brian2", "spiking", "neurosheet.spiking.backends.brian2:Brian2Backend",
            "spiking network in Brian2 (the reference simulator), explicit edge arrays",
            (Option("target", str, None, "code generation (default auto: cython with a "
                    "compiler, else numpy)", ("auto", "cython", "cpp_standalone", "numpy")),
             Option("batch_size", int, None, "trials per Brian2 network (default 32)"),
             Option("dtype", str, None, "precision (default float64: spike for spike "
                    "snntorch in float64)", ("float32", "float64")))),
    )
}


def backend_names(kind: Kind | None = None) -> tuple[str, ...]:
    """Registered backend names, optionally of one kind."""
    return tuple(n for n, s in REGISTRY.items() if kind is None or s.kind == kind)


def get_spec(name: str) -> BackendSpec:
    """The registered backend ``name`` (one clear error for an unknown name)."""
    if name not in REGISTRY:
        raise NeurosheetError(unknown_name_message("backend", name, REGISTRY))
    return REGISTRY[name]


def create_backend(name: str, run: Any = None, **options: Any) -> Any:
    """An instance of backend ``name`` with ``options``, set up for run directory ``run``."""
    return get_spec(name).create(run, **options)
