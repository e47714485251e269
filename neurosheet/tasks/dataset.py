"""Batched multitask training data: padded trials with a one-hot rule input, from one seed.

A batch holds whole trials (not neurogym's back-to-back stream), aligned at t = 0 and padded
with zeros after each trial's end; ``mask`` weights the loss: 1 on steps before the decision
period, ``DECISION_WEIGHT`` = 5 on decision steps (Yang et al. 2019 weight the response
period x5), 0 on padding. A loss is then ``sum(mask * CE) / sum(mask)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.seeds import MAX_STREAM_SEED, check_seed
from neurosheet.tasks.registry import N_OBS, TASK_INDEX, resolve_task, resolve_tasks
from neurosheet.tasks.trials import MODES, ReferenceQuirks, Trials, generate

DECISION_WEIGHT = 5.0


@dataclass
class TaskBatch:
    """One training batch, time-major."""

    inputs: np.ndarray  # float32 [T, B, n_inputs]: 33 observation channels + rule one-hot
    targets: np.ndarray  # int64 [T, B]: 0 fixate, 1..16 ring direction
    mask: np.ndarray  # float32 [T, B]: loss weights (1 pre-decision, 5 decision, 0 padding)
    decision: np.ndarray  # bool [T, B]: decision-period steps
    task_ids: np.ndarray  # int64 [B]: index into the sampler's ``tasks``
    lengths: np.ndarray  # int64 [B]: steps of each trial
    info: dict[str, np.ndarray] = field(default_factory=dict)  # drawn trial parameters

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])


class TrialSampler:
    """Draws batches of whole trials from a set of tasks; every draw comes from ``seed``.

    ``rule_inputs`` fixes the one-hot rule channels (default: ``tasks`` in order), so a
    network trained on one suite can be fed a subset of it with the same channel layout.
    ``mode="reference"`` reproduces the reference code's quirks (label wrap, Go-int stimulus
    turn, fixed DM-int remap, frozen DMS delays, alternating modality; docs/modcog.md) for
    comparison with published work; the default ``"fixed"`` corrects them.
    """

    def __init__(self, tasks: Sequence[str], *, seed: int, weights: Sequence[float] | None = None,
                 rule_inputs: Sequence[str] | None = None, noise: bool = True,
                 mode: str = "fixed") -> None:
        if mode not in MODES:
            raise NeurosheetError(f"unknown task mode {mode!r}; use one of {', '.join(MODES)}")
        self.mode = mode
        self.tasks: tuple[str, ...] = resolve_tasks(list(tasks))
        self.rule_inputs: tuple[str, ...] = (self.tasks if rule_inputs is None
                                             else resolve_tasks(list(rule_inputs)))
        missing = [t for t in self.tasks if t not in self.rule_inputs]
        if missing:
            raise NeurosheetError(f"tasks without a rule input: {', '.join(missing)}")
        self.n_inputs = N_OBS + len(self.rule_inputs)
        self.noise = noise
        self.seed = check_seed(seed, "trial sampler seed", maximum=MAX_STREAM_SEED)
        self.weights = _probabilities(weights, len(self.tasks))
        self._registry_ids = np.array([TASK_INDEX[t] for t in self.tasks], dtype=np.int64)
        self._rule_channel = np.array([N_OBS + self.rule_inputs.index(t) for t in self.tasks],
                                      dtype=np.int64)
        self.rng = np.random.default_rng(seed)
        self._quirks = ReferenceQuirks.draw(self.rng) if mode == "reference" else None

    def sample(self, batch_size: int) -> TaskBatch:
        """``batch_size`` trials, tasks drawn uniformly (or by ``weights``)."""
        _check_batch(batch_size)
        if self.weights is None:
            ids = self.rng.integers(0, len(self.tasks), batch_size)
        else:
            ids = self.rng.choice(len(self.tasks), size=batch_size, p=self.weights)
        return self._batch(ids)

    def sample_task(self, task: str, batch_size: int) -> TaskBatch:
        """``batch_size`` trials of one task (which must be one of ``tasks``)."""
        _check_batch(batch_size)
        name = resolve_task(task)
        if name not in self.tasks:
            raise NeurosheetError(f"task {name!r} is not one of this sampler's "
                                  f"{len(self.tasks)} tasks")
        return self._batch(np.full(batch_size, self.tasks.index(name), dtype=np.int64))

    def _batch(self, ids: np.ndarray) -> TaskBatch:
        trials = generate(self._registry_ids[ids], self.rng, noise=self.noise,
                          quirks=self._quirks)
        return assemble(trials, ids.astype(np.int64), self._rule_channel[ids], self.n_inputs)


def assemble(trials: Trials, task_ids: np.ndarray, rule_channel: np.ndarray,
             n_inputs: int) -> TaskBatch:
    """Pack rendered trials into a :class:`TaskBatch` with rule one-hots and loss weights."""
    t_max, batch = trials.targets.shape
    valid = np.arange(t_max)[:, None] < trials.lengths
    inputs = np.zeros((t_max, batch, n_inputs), dtype=np.float32)
    inputs[:, :, :N_OBS] = trials.obs
    inputs[:, np.arange(batch), rule_channel] = valid
    mask = np.where(trials.decision, np.float32(DECISION_WEIGHT), valid.astype(np.float32))
    return TaskBatch(inputs, trials.targets, mask.astype(np.float32), trials.decision,
                     task_ids, trials.lengths, trials.info)


def _probabilities(weights: Sequence[float] | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(list(weights), dtype=np.float64)
    if w.shape != (n,):
        raise NeurosheetError(f"got {w.size} task weights for {n} tasks")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise NeurosheetError("task weights must be finite, >= 0 and not all 0")
    return w / w.sum()


def _check_batch(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size <= 0:
        raise NeurosheetError(f"batch size must be a positive integer, got {batch_size}")
