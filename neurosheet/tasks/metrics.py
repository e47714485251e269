"""Task performance of network outputs, per task and averaged over tasks, every number named.

- ``step_accuracy``: argmax output == target, pooled over the decision steps of a task's trials.
- ``trial_success``: the fraction of trials with argmax 0 (fixate) on every step before the
  decision period AND the right class on every decision step (seq tasks need every step).
- ``yang_success``: Yang et al. 2019's rule at the trial's last step: if the target is to
  fixate, argmax must be 0; otherwise argmax must not be 0 and the population-vector direction
  of the ring outputs (softmax over classes 1..16; the argmax class if classes are given) must
  lie within 36 degrees (0.2 pi) of the target direction.
``mean`` averages each metric over the tasks present in the batch (each task counts once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks.registry import N_OUT, N_RING

METRICS = ("step_accuracy", "trial_success", "yang_success")
YANG_TOLERANCE = 0.2 * np.pi


def _angles(classes: np.ndarray) -> np.ndarray:
    return (np.asarray(classes) - 1) * (2 * np.pi / N_RING)


def _popvec_angle(logits: np.ndarray) -> np.ndarray:
    """Direction decoded from the ring outputs' softmax by population vector."""
    ring = logits[..., 1:].astype(np.float64)
    p = np.exp(ring - ring.max(axis=-1, keepdims=True))
    theta = _angles(np.arange(1, N_RING + 1))
    return np.arctan2(p @ np.sin(theta), p @ np.cos(theta))


def trial_scores(outputs: np.ndarray, batch: Any) -> dict[str, np.ndarray]:
    """Per-trial metrics: ``step_correct``/``step_count`` on decision steps, ``trial_success``
    and ``yang_success`` (arrays of length B)."""
    out = np.asarray(outputs)
    t_max, n = batch.targets.shape
    if out.ndim == 3:
        if out.shape != (t_max, n, N_OUT):
            raise NeurosheetError(f"logits have shape {out.shape}, expected {(t_max, n, N_OUT)}")
        pred = out.argmax(axis=-1)
    elif out.shape == (t_max, n):
        pred = out.astype(np.int64)
    else:
        raise NeurosheetError(f"outputs have shape {out.shape}, expected [T, B] or [T, B, 17]")
    valid = np.arange(t_max)[:, None] < batch.lengths
    dec = batch.decision
    pre = valid & ~dec
    correct = pred == batch.targets
    step_correct = (correct & dec).sum(axis=0)
    step_count = dec.sum(axis=0)
    success = np.all(~pre | (pred == 0), axis=0) & np.all(~dec | correct, axis=0)

    cols = np.arange(n)
    last = batch.lengths - 1
    target_last = batch.targets[last, cols]
    pred_last = pred[last, cols]
    fixating = pred_last == 0
    angle = _popvec_angle(out[last, cols]) if out.ndim == 3 else _angles(pred_last)
    diff = np.abs(angle - _angles(target_last)) % (2 * np.pi)
    near = np.minimum(diff, 2 * np.pi - diff) < YANG_TOLERANCE
    yang = np.where(target_last == 0, fixating, ~fixating & near)
    return {"step_correct": step_correct, "step_count": step_count,
            "trial_success": success, "yang_success": yang}


def score(outputs: np.ndarray, batch: Any, tasks: Sequence[str]) -> dict[str, dict]:
    """Metrics per task (``batch.task_ids`` index ``tasks``) and their mean over tasks.

    ``outputs`` are logits [T, B, 17] or predicted classes [T, B].
    """
    s = trial_scores(outputs, batch)
    per_task: dict[str, dict[str, float]] = {}
    for i, name in enumerate(tasks):
        sel = batch.task_ids == i
        k = int(sel.sum())
        if k == 0:
            continue
        count = int(s["step_count"][sel].sum())
        per_task[name] = {
            "step_accuracy": float(s["step_correct"][sel].sum() / count) if count else float("nan"),
            "trial_success": float(s["trial_success"][sel].mean()),
            "yang_success": float(s["yang_success"][sel].mean()),
            "n_trials": k,
        }
    mean = {m: float(np.nanmean([v[m] for v in per_task.values()])) if per_task else float("nan")
            for m in METRICS}
    return {"per_task": per_task, "mean": mean}
