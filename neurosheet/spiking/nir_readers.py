"""Simulate an exported NIR file with the field's readers, as a user would, on task trials.

Each reader imports the file unedited (``snntorch.import_from_nir``, norse's ``from_nir``) and
runs at its own step: snntorch's importer is fixed to 0.1 ms, norse takes ``dt``. The harness
only does what the file's graph metadata says happens outside the graph, in continuous time:
hold each task input for its task step (:func:`neurosheet.spiking.nir.hold_inputs`) and average
the output over each task step (:func:`neurosheet.spiking.nir.average_outputs`).
:func:`compare` scores two sets of logits on the same trials.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.nir import average_outputs, hold_inputs

READERS = ("snntorch", "norse")
SNNTORCH_DT_S = 1e-4


def load_reader(name: str, path: str | Path, dt_s: float | None = None) -> tuple[Any, float]:
    """``(module, dt_s)``: the reader's torch module for the file and the step it runs at."""
    import nir

    graph = nir.read(Path(path))
    if name == "snntorch":
        from snntorch.import_nir import import_from_nir

        if dt_s not in (None, SNNTORCH_DT_S):
            raise NeurosheetError(f"snntorch's importer runs at dt = {SNNTORCH_DT_S} s only")
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight rescaling
            return import_from_nir(graph), SNNTORCH_DT_S
    if name == "norse":
        import norse.torch

        dt_s = SNNTORCH_DT_S if dt_s is None else dt_s
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch.load
            return norse.torch.from_nir(graph, dt=dt_s), dt_s
    raise NeurosheetError(f"reader must be one of {', '.join(READERS)}, got {name!r}")


def _reset_hidden(module: Any) -> None:
    """Zero the hidden state snntorch neurons keep inside the module (init_hidden=True)."""
    for m in module.modules():
        if getattr(m, "init_hidden", False) and hasattr(m, "reset_mem"):
            m.reset_mem()


def run_reader(name: str, path: str | Path, inputs: np.ndarray, task_dt_s: float, *,
               dt_s: float | None = None, batch_size: int = 256,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Task-step logits ``[T, B, n_out]`` of reader ``name`` simulating the file on ``inputs``."""
    import torch

    module, dt = load_reader(name, path, dt_s)
    u_all = np.asarray(inputs, dtype=np.float32)
    steps, trials, _ = u_all.shape
    outs: list[np.ndarray] = []
    logging.getLogger().setLevel(logging.ERROR)  # norse warns about r != 1 on every import
    with torch.no_grad():
        for lo in range(0, trials, batch_size):
            u = torch.as_tensor(hold_inputs(u_all[:, lo:lo + batch_size], task_dt_s, dt))
            _reset_hidden(module)
            state = None
            ys = []
            for t in range(u.shape[0]):
                y, state = module(u[t]) if state is None else module(u[t], state)
                ys.append(y.numpy().astype(np.float64))
            outs.append(average_outputs(np.stack(ys), task_dt_s, dt))
            if progress is not None:
                progress(min(lo + batch_size, trials), trials)
    return np.concatenate(outs, axis=1) if outs else np.zeros((steps, 0, 0))


def compare(reference: np.ndarray, other: np.ndarray, batch: Any,
            tasks: Any) -> dict[str, float]:
    """Accuracy of both on the same trials and how often ``other`` decides as ``reference``.

    ``decision_agreement``: fraction of decision steps (pooled over trials) with the same
    argmax; ``step_agreement``: same over every valid step; ``trial_agreement``: trials whose
    success flag is the same.
    """
    from neurosheet.tasks.metrics import score, trial_scores

    a, b = np.asarray(reference), np.asarray(other)
    if a.shape != b.shape:
        raise NeurosheetError(f"logits shapes differ: {a.shape} vs {b.shape}")
    sa, sb = score(a, batch, tasks)["mean"], score(b, batch, tasks)["mean"]
    valid = np.arange(a.shape[0])[:, None] < batch.lengths
    same = a.argmax(-1) == b.argmax(-1)
    ta, tb = trial_scores(a, batch), trial_scores(b, batch)
    return {
        "trials": int(a.shape[1]),
        "ref_step_accuracy": sa["step_accuracy"], "step_accuracy": sb["step_accuracy"],
        "ref_trial_success": sa["trial_success"], "trial_success": sb["trial_success"],
        "decision_agreement": float(same[batch.decision].mean()),
        "step_agreement": float(same[valid].mean()),
        "trial_agreement": float((ta["trial_success"] == tb["trial_success"]).mean()),
    }
