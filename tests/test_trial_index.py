"""Every sampled trial is fixed by (seed, stream, index): never by batch sizes or other draws."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks import N_OBS, TASKS, TrialSampler
from neurosheet.tasks.dataset import CHUNK

FIELDS = ("inputs", "targets", "mask", "decision")


def _trial(batch, i: int) -> dict[str, np.ndarray]:
    """Trial ``i`` of a batch, cut to its own length."""
    n = int(batch.lengths[i])
    out = {f: getattr(batch, f)[:n, i] for f in FIELDS}
    out["task"] = batch.task_ids[i]
    out.update({k: v[i] for k, v in batch.info.items()})
    return out


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _concat_trials(batches) -> list[dict[str, np.ndarray]]:
    return [_trial(b, i) for b in batches for i in range(b.batch_size)]


@pytest.mark.parametrize("mode", ["fixed", "reference"])
@pytest.mark.parametrize("noise", [True, False])
def test_trial_i_does_not_depend_on_the_batch_sizes(mode, noise):
    def make() -> TrialSampler:
        return TrialSampler(TASKS, seed=3, mode=mode, noise=noise)

    whole = _concat_trials([make().sample(CHUNK + 70)])
    assert _equal(_concat_trials([make().sample(4)])[0], whole[0])  # 4 vs 198 trials: trial 0
    s = make()
    split = _concat_trials([s.sample(k) for k in (1, 3, CHUNK - 5, 9, 1, 61)])
    assert len(split) == len(whole)
    assert all(_equal(a, b) for a, b in zip(split, whole, strict=True))
    t = make()
    per_task = _concat_trials([t.sample_task("dms-intl", 5), t.sample_task("dms-intl", 40)])
    alone = _concat_trials([make().sample_task("dms-intl", 45)])
    assert all(_equal(a, b) for a, b in zip(per_task, alone, strict=True))


def test_task_streams_depend_on_seed_and_task_only():
    go = TrialSampler(["go", "dm1"], seed=9).sample_task("go", 20)
    busy = TrialSampler(TASKS, seed=9, weights=np.arange(1, 127))
    busy.sample(300)
    busy.sample_task("dm1", 50)
    go_busy = busy.sample_task("go", 20)
    for i in range(20):  # task_ids and the rule channels follow each sampler's task list
        a, b = _trial(go, i), _trial(go_busy, i)
        assert np.array_equal(a.pop("inputs")[:, :N_OBS], b.pop("inputs")[:, :N_OBS])
        assert _equal(a | {"task": 0}, b | {"task": 0})
    other = TrialSampler(["go"], seed=10).sample_task("go", 20)
    assert not np.array_equal(other.info["loc1"], go.info["loc1"])


def test_weighted_mixed_stream_is_indexed_too():
    def make() -> TrialSampler:
        return TrialSampler(["go", "anti", "dm1"], seed=0, weights=[1, 0, 3])

    whole = make().sample(300)
    s = make()
    parts = [s.sample(7) for _ in range(5)]
    assert np.array_equal(np.concatenate([p.task_ids for p in parts]), whole.task_ids[:35])
    assert 1 not in set(whole.task_ids)


@pytest.mark.parametrize("mode", ["fixed", "reference"])
def test_state_and_pickle_continue_every_stream(mode):
    s = TrialSampler(TASKS, seed=4, mode=mode)
    s.sample(CHUNK + 3)
    s.sample_task("dlydm1", 10)
    state, blob = s.get_state(), pickle.dumps(s)
    expected = [s.sample(20), s.sample_task("dlydm1", CHUNK), s.sample_task("go", 2)]
    restored = TrialSampler(TASKS, seed=4, mode=mode)
    restored.set_state(state)
    unpickled = pickle.loads(blob)
    for other in (restored, unpickled):
        got = [other.sample(20), other.sample_task("dlydm1", CHUNK), other.sample_task("go", 2)]
        for a, b in zip(got, expected, strict=True):
            assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
    with pytest.raises(NeurosheetError, match="seed"):
        TrialSampler(TASKS, seed=5, mode=mode).set_state(state)


def test_old_pickled_sampler_and_bad_seeds_are_one_line_errors():
    s = TrialSampler(["go"], seed=0)
    legacy = {k: v for k, v in s.__dict__.items() if k != "_streams"}
    legacy["rng"] = np.random.default_rng(0)  # what a sampler of the old single stream held
    fresh = TrialSampler.__new__(TrialSampler)
    with pytest.raises(NeurosheetError, match="older neurosheet"):
        fresh.__setstate__(legacy)
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(NeurosheetError, match="seed"):
            TrialSampler(["go"], seed=bad)
    assert TrialSampler(["go"], seed=np.int64(3)).sample(2).batch_size == 2


def test_fewer_heldout_trials_per_task_are_a_prefix_of_more():
    """E.g. Brian2's 16 trials per task are the first 16 of rate's 64 (same seed)."""
    from neurosheet.rate.evaluation import heldout_batches

    tasks = ("go", "dm1", "dms-intr", "dlygo-seql")
    few, many = heldout_batches(tasks, 16, 12345), heldout_batches(tasks, 64, 12345)
    for task in tasks:
        for i in range(16):
            assert _equal(_trial(few[task], i), _trial(many[task], i))
