"""Train several rate networks in one process as one batched model (a sweep made cheap).

K networks whose batches have the same size run their recurrent loops as the blocks of one
block-diagonal matrix in a single fused call (:mod:`neurosheet.rate.fused`); everything that
belongs to one network stays its own: graph, weights, optimizer, task sampler, noise generator,
sub-step draw, loss, clipping, run directory, checkpoints, metrics and evaluations. The blocks
never interact and each keeps its own arithmetic, so each network trains as it would alone
(tested against :func:`neurosheet.rate.training.train`).

:func:`train_many` drives one :func:`~neurosheet.rate.training.train_session` per run and
computes the optimizer steps of all runs still going together; a run that finishes, or fails
(e.g. a non-finite loss), leaves the batch and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.rate.config import ModelPreset
from neurosheet.rate.fused import Blocks, fused_rates
from neurosheet.rate.model import RateOutput, RateRNN
from neurosheet.rate.training import (
    StepRequest,
    TrainingInterrupted,
    TrainResult,
    _stop_signals,
    apply_update,
    batch_loss,
    checked_value,
    next_batch,
    train_session,
)


@dataclass(frozen=True)
class RunSpec:
    """One run of :func:`train_many` (the arguments :func:`~neurosheet.rate.training.train`
    takes for it)."""

    run_dir: str | Path
    preset: ModelPreset | str | Path
    suite: str
    seed: int = 0
    preset_name: str = "custom"
    steps: int | None = None
    resume: bool = True
    stop_after: int | None = None


class _Pack(torch.autograd.Function):
    """Per-network ``[T_q, N_q, B]`` tensors into one zero-padded ``[T_max, rows, B]`` buffer;
    the backward hands each network its slice of the gradient (no full-size zero tensors)."""

    @staticmethod
    def forward(ctx, blocks, tmax, *parts):  # type: ignore[override]
        out = blocks.workspace.take((tmax, blocks.rows, parts[0].shape[2]))
        for p, r0, r1 in zip(parts, blocks.row0, blocks.row1, strict=True):
            out[: p.shape[0], r0:r1].copy_(p)
            out[p.shape[0]:, r0:r1].zero_()
        ctx.spans = [(p.shape[0], r0, r1) for p, r0, r1 in zip(parts, blocks.row0, blocks.row1,
                                                               strict=True)]
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return (None, None, *(grad[:t, r0:r1] for t, r0, r1 in ctx.spans))


class _Unpack(torch.autograd.Function):
    """The inverse of :class:`_Pack`: each network's rates as its own contiguous tensor."""

    @staticmethod
    def forward(ctx, blocks, steps, rates):  # type: ignore[override]
        ctx.shape, ctx.blocks = rates.shape, blocks
        ctx.set_materialize_grads(False)
        return tuple(rates[:t, r0:r1].clone() for t, r0, r1
                     in zip(steps, blocks.row0, blocks.row1, strict=True))

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        blocks = ctx.blocks
        out = blocks.workspace.take(tuple(ctx.shape), zero=True)
        for g, r0, r1 in zip(grads, blocks.row0, blocks.row1, strict=True):
            if g is not None:
                out[: g.shape[0], r0:r1].copy_(g)
        return None, None, out


def forward_many(models: Sequence[RateRNN], inputs: Sequence[torch.Tensor],
                 generators: Sequence[torch.Generator | None],
                 substeps: Sequence[int | None], blocks: Blocks | None = None
                 ) -> list[RateOutput]:
    """``models[q](inputs[q], generator=generators[q], substeps=substeps[q])`` for every q, the
    recurrent loops of all in one fused call.

    The models need the fused engine, one activation and one batch size; ``blocks`` is their
    block-diagonal structure (:func:`block_structure`, built when not given).
    """
    if not models:
        return []
    act = models[0].params.activation
    for m in models:
        if not m.uses_fused(m.rec.values) or m.params.activation != act:
            raise NeurosheetError("forward_many needs fused-engine models with one activation",
                                  "models")
    preps = [m.prepare(x, None, g, k) for m, x, g, k in zip(models, inputs, generators, substeps,
                                                             strict=True)]
    if len({p.drive.shape[2] for p in preps}) != 1:
        raise NeurosheetError("forward_many needs one batch size for all models", "inputs")
    blocks = blocks or block_structure(models)
    tmax = max(p.steps for p in preps)
    smax = max(p.steps * p.substeps for p in preps)
    drive = _Pack.apply(blocks, tmax, *(p.drive for p in preps))
    x0 = _Pack.apply(blocks, 1, *(p.x0[None] for p in preps))[0]
    noise = None
    if any(p.noise is not None for p in preps):
        noise = blocks.workspace.take((smax, blocks.rows, preps[0].drive.shape[2]))
        for p, r0, r1 in zip(preps, blocks.row0, blocks.row1, strict=True):
            done = 0
            if p.noise is not None:
                done = p.noise.shape[0]
                noise[:done, r0:r1].copy_(p.noise)
            noise[done:, r0:r1].zero_()
    values = torch.cat([m.rec.values for m in models])
    rates = fused_rates(blocks, values, drive, noise, x0, [p.substeps for p in preps],
                        [p.steps for p in preps], [p.alpha for p in preps], act)
    parts = _Unpack.apply(blocks, tuple(p.steps for p in preps), rates)
    return [m.readout(r) for m, r in zip(models, parts, strict=True)]


def block_structure(models: Sequence[RateRNN]) -> Blocks:
    """The block-diagonal recurrent structure of ``models``, one block each, in order."""
    return Blocks.from_csr([m.graph.adjacency for m in models])


def train_many(runs: Sequence[RunSpec], *, device: str = "cpu",
               progress: bool = False) -> list[TrainResult | NeurosheetError]:
    """Train (or resume) every run, their optimizer steps computed together.

    Returns one entry per run, in order: its :class:`TrainResult`, or the
    :class:`NeurosheetError` that stopped it (the other runs go on). Each run directory ends as
    :func:`~neurosheet.rate.training.train` would leave it.
    """
    with _stop_signals() as stop:  # one flag for all sessions: each checkpoints, then stops
        sessions = [train_session(r.run_dir, r.preset, r.suite, seed=r.seed,
                                  preset_name=r.preset_name, steps=r.steps, device=device,
                                  progress=progress, resume=r.resume, stop_after=r.stop_after,
                                  stop=stop)
                    for r in runs]
        return _drive(sessions)


def _drive(sessions: list[Any]) -> list[TrainResult | NeurosheetError]:
    """Advance every session, one joint step per round, until all have ended."""
    results: list[Any] = [None] * len(sessions)
    pending: dict[int, StepRequest] = {}
    interrupted: list[TrainingInterrupted] = []

    def advance(i: int, step: Any) -> None:
        try:
            pending[i] = step()
        except StopIteration as stop:
            pending.pop(i, None)
            results[i] = stop.value
        except NeurosheetError as exc:
            pending.pop(i, None)
            results[i] = exc
        except TrainingInterrupted as exc:  # this run has checkpointed; let the others too
            pending.pop(i, None)
            interrupted.append(exc)

    try:
        for i, s in enumerate(sessions):
            advance(i, s.__next__)
        structures: dict[tuple[int, ...], Blocks] = {}
        while pending and not interrupted:
            order = sorted(pending)
            outcomes = joint_step([pending[i] for i in order], structures)
            for i, o in zip(order, outcomes, strict=True):
                if isinstance(o, BaseException):
                    advance(i, lambda s=sessions[i], o=o: s.throw(o))
                else:
                    advance(i, lambda s=sessions[i], o=o: s.send(o))
    finally:
        for s in sessions:  # an error or interrupt: every unfinished run closes its files
            s.close()
    if interrupted:
        raise TrainingInterrupted("; ".join(str(e) for e in interrupted))
    return results


def joint_step(requests: Sequence[StepRequest],
               structures: dict[tuple[int, ...], Blocks] | None = None
               ) -> list[float | NeurosheetError]:
    """One optimizer step of every request; the loss of each, or the error that stopped it.

    Requests whose models share the fused engine, activation and batch size run as one batched
    model; any other runs alone, as in :func:`~neurosheet.rate.training.train`.
    """
    structures = {} if structures is None else structures
    data = [next_batch(r.state, r.config, r.device) for r in requests]
    groups: dict[Any, list[int]] = {}
    for i, (r, (x, _, _, _)) in enumerate(zip(requests, data, strict=True)):
        m = r.state.model
        key = ("fused", m.params.activation, x.shape[1]) if m.uses_fused(x) else ("alone", i)
        groups.setdefault(key, []).append(i)
    outs: list[Any] = [None] * len(requests)
    for key, members in groups.items():
        models = [requests[i].state.model for i in members]
        if key[0] == "alone":
            i = members[0]
            st = requests[i].state
            outs[i] = st.model(data[i][0], generator=st.noise, substeps=data[i][3])
            continue
        ids = tuple(id(m) for m in models)
        if ids not in structures:
            structures[ids] = block_structure(models)
        got = forward_many(models, [data[i][0] for i in members],
                           [requests[i].state.noise for i in members],
                           [data[i][3] for i in members], structures[ids])
        for i, o in zip(members, got, strict=True):
            outs[i] = o
    results: list[float | NeurosheetError] = []
    finite = []
    for r, out, (_, targets, mask, _) in zip(requests, outs, data, strict=True):
        loss = batch_loss(r.state, r.config, out, targets, mask)
        try:
            results.append(checked_value(r.state, r.config, loss))
            finite.append((r, loss))
        except NeurosheetError as exc:
            results.append(exc)
    for r, _ in finite:
        r.state.optimizer.zero_grad(set_to_none=True)
    if finite:
        torch.autograd.backward([loss for _, loss in finite])
    for r, _ in finite:
        apply_update(r.state, r.config)
    return results

