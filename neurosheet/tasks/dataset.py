"""Batched multitask training data: padded trials with a one-hot rule input, each fixed by its index.

A batch holds whole trials (not neurogym's back-to-back stream), aligned at t = 0 and padded
with zeros after each trial's end; ``mask`` weights the loss: 1 on steps before the decision
period, ``DECISION_WEIGHT`` = 5 on decision steps (Yang et al. 2019 weight the response
period x5), 0 on padding. A loss is then ``sum(mask * CE) / sum(mask)``.

Every trial is fixed by ``(seed, stream, index)``: trial i of a sampler's mixed stream (its
``sample`` calls, in order) or of one task's stream (its ``sample_task`` calls) is the same
whatever batch sizes were asked for. Trials are drawn in chunks of ``CHUNK`` = 128 (vectorized),
chunk c of a stream from ``SeedSequence(seed, spawn_key=(*stream, c))``; the trials of a chunk
that a call does not use are kept for the next call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.seeds import check_seed
from neurosheet.tasks.registry import N_OBS, TASK_INDEX, TASKS, resolve_task, resolve_tasks
from neurosheet.tasks.trials import (
    MODES,
    ReferenceQuirks,
    Trials,
    draw_noise,
    draw_params,
    render,
)

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


CHUNK = 128  # trials drawn at once per stream; part of the definition of the trial streams
MIXED_STREAM = (0,)  # spawn key of the mixed stream (``sample``); task streams: (1, task index)
_TASK_ROOT, _QUIRKS_ROOT = 1, 2
STATE_FORMAT = 1


@dataclass
class _Chunk:
    """CHUNK drawn trials of one stream, not yet rendered."""

    ids: np.ndarray  # int64 [CHUNK]: index into the sampler's tasks
    params: dict[str, np.ndarray]
    noise: np.ndarray | None
    start_modality: np.ndarray | None  # reference mode: alternation state before this chunk


@dataclass
class _Stream:
    """An indexed stream of trials; ``served`` trials have been handed out."""

    key: tuple[int, ...]
    quirks: ReferenceQuirks | None
    served: int = 0
    chunk: _Chunk | None = None


class TrialSampler:
    """Draws batches of whole trials from a set of tasks; every trial is fixed by the seed and
    its index (module docstring), never by the batch sizes asked for.

    ``sample(n)`` hands out the next n trials of the mixed stream (tasks drawn uniformly or by
    ``weights``); ``sample_task(task, n)`` the next n trials of that task's own stream, which
    depends on the seed and the task only (not on the other tasks, weights or rule inputs).
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
        self.seed = _check_seed(seed)
        self.weights = _probabilities(weights, len(self.tasks))
        self._registry_ids = np.array([TASK_INDEX[t] for t in self.tasks], dtype=np.int64)
        self._rule_channel = np.array([N_OBS + self.rule_inputs.index(t) for t in self.tasks],
                                      dtype=np.int64)
        self._quirks = (ReferenceQuirks.draw(self._rng((_QUIRKS_ROOT,)))
                        if mode == "reference" else None)
        self._streams: dict[tuple[int, ...], _Stream] = {}

    def sample(self, batch_size: int) -> TaskBatch:
        """The next ``batch_size`` trials of the mixed stream, tasks drawn uniformly (or by
        ``weights``)."""
        _check_batch(batch_size)
        return self._batch(self._take(MIXED_STREAM, batch_size))

    def sample_task(self, task: str, batch_size: int) -> TaskBatch:
        """The next ``batch_size`` trials of one task's stream (a task of ``tasks``)."""
        _check_batch(batch_size)
        name = resolve_task(task)
        if name not in self.tasks:
            raise NeurosheetError(f"task {name!r} is not one of this sampler's "
                                  f"{len(self.tasks)} tasks")
        return self._batch(self._take((_TASK_ROOT, TASK_INDEX[name]), batch_size))

    def get_state(self) -> dict[str, Any]:
        """How far every stream has been drawn (a small dict, for checkpoints)."""
        streams = []
        for st in self._streams.values():
            start = None
            if st.quirks is not None:
                open_chunk = st.chunk is not None and st.served % CHUNK
                start = (st.chunk.start_modality if open_chunk else st.quirks.next_modality)
                start = start.tolist()
            streams.append({"key": list(st.key), "served": st.served, "start_modality": start})
        return {"format": STATE_FORMAT, "seed": self.seed, "tasks": list(self.tasks),
                "mode": self.mode, "noise": self.noise, "streams": streams}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue every stream where ``state`` (from :meth:`get_state`) left it."""
        if state.get("format") != STATE_FORMAT:
            raise NeurosheetError(f"sampler state format {state.get('format')!r} is not "
                                  f"{STATE_FORMAT}")
        mine = {"seed": self.seed, "tasks": list(self.tasks), "mode": self.mode,
                "noise": self.noise}
        diff = [k for k, v in mine.items() if state.get(k) != v]
        if diff:
            raise NeurosheetError(f"sampler state belongs to a sampler with other "
                                  f"{', '.join(diff)}")
        self._streams = {}
        for saved in state["streams"]:
            st = self._stream(tuple(int(k) for k in saved["key"]))
            if st.quirks is not None:
                st.quirks.next_modality = np.asarray(saved["start_modality"], dtype=np.int64)
            served = int(saved["served"])
            st.served = served - served % CHUNK
            if served % CHUNK:
                self._take(st.key, served % CHUNK)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_streams" not in state:
            raise NeurosheetError(
                "this trial sampler was saved by an older neurosheet that drew all trials from "
                "one stream; its trials cannot be continued: start the run in a new directory")
        self.__dict__.update(state)

    def _rng(self, key: tuple[int, ...]) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _stream(self, key: tuple[int, ...]) -> _Stream:
        if key not in self._streams:
            quirks = self._quirks.fork() if self._quirks is not None else None
            self._streams[key] = _Stream(key, quirks)
        return self._streams[key]

    def _draw_chunk(self, st: _Stream) -> _Chunk:
        """Chunk ``served // CHUNK`` of a stream: task choices, then parameters, then noise."""
        rng = self._rng((*st.key, st.served // CHUNK))
        if st.key != MIXED_STREAM:
            ids = np.full(CHUNK, self.tasks.index(TASKS[st.key[1]]), dtype=np.int64)
        elif self.weights is None:
            ids = rng.integers(0, len(self.tasks), CHUNK)
        else:
            ids = rng.choice(len(self.tasks), size=CHUNK, p=self.weights)
        start = st.quirks.next_modality.copy() if st.quirks is not None else None
        params = draw_params(self._registry_ids[ids], rng, st.quirks)
        noise = draw_noise(params, rng) if self.noise else None
        return _Chunk(ids.astype(np.int64), params, noise, start)

    def _take(self, key: tuple[int, ...], n: int) -> tuple[np.ndarray, Trials]:
        """The next ``n`` trials of stream ``key``, rendered together."""
        st = self._stream(key)
        parts: list[tuple[_Chunk, int, int]] = []
        while n > 0:
            at = st.served % CHUNK
            if at == 0 or st.chunk is None:
                st.chunk = self._draw_chunk(st)
            k = min(n, CHUNK - at)
            parts.append((st.chunk, at, at + k))
            st.served += k
            n -= k
        ids = np.concatenate([c.ids[a:b] for c, a, b in parts])
        params = {name: np.concatenate([c.params[name][a:b] for c, a, b in parts])
                  for name in parts[0][0].params}
        noise = (None if parts[0][0].noise is None
                 else np.concatenate([c.noise[a:b] for c, a, b in parts]))
        return ids, render(params, noise)

    def _batch(self, drawn: tuple[np.ndarray, Trials]) -> TaskBatch:
        ids, trials = drawn
        return assemble(trials, ids, self._rule_channel[ids], self.n_inputs)


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


def _check_seed(seed: int) -> int:
    """The one seed rule of the package (numpy integers accepted too)."""
    return check_seed(int(seed) if isinstance(seed, np.integer) else seed, "seed")


def _check_batch(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size <= 0:
        raise NeurosheetError(f"batch size must be a positive integer, got {batch_size}")
