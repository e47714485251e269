"""The Mod-Cog battery: every task's structure, the extensions' rules, seeding, suites, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks import (
    N_OBS,
    N_OUT,
    N_RING,
    SPECS,
    TASKS,
    TrialSampler,
    load_suite,
    resolve_task,
    score,
    task_spec,
)
from neurosheet.tasks.envs import make_env, make_schedule_env

# The reference README's 82-task list (modcog-reference.md section 3.5), in order.
REF82 = """
go rtgo dlygo anti rtanti dlyanti dm1 dm2 ctxdm1 ctxdm2 multidm dlydm1 dlydm2 ctxdlydm1 ctxdlydm2
multidlydm dms dnms dmc dnmc dlygointr dlygointl dlyantiintr dlyantiintl dlydm1intr dlydm1intl
dlydm2intr dlydm2intl ctxdlydm1intr ctxdlydm1intl ctxdlydm2intr ctxdlydm2intl multidlydmintr
multidlydmintl dmsintr dmsintl dnmsintr dnmsintl dmcintr dmcintl dnmcintr dnmcintl goseqr rtgoseqr
dlygoseqr antiseqr rtantiseqr dlyantiseqr dm1seqr dm2seqr ctxdm1seqr ctxdm2seqr multidmseqr
dlydm1seqr dlydm2seqr ctxdlydm1seqr ctxdlydm2seqr multidlydmseqr dmsseqr dnmsseqr dmcseqr dnmcseqr
goseql rtgoseql dlygoseql antiseql rtantiseql dlyantiseql dm1seql dm2seql ctxdm1seql ctxdm2seql
multidmseql dlydm1seql dlydm2seql ctxdlydm1seql ctxdlydm2seql multidlydmseql dmsseql dnmsseql
dmcseql dnmcseql""".split()
REF_INTSEQ = [f"{b}intseq" for b in ("dlygo dlyanti dlydm1 dlydm2 ctxdlydm1 ctxdlydm2 multidlydm "
                                     "dms dnms dmc dnmc").split()]
B = 40


@pytest.fixture(scope="module")
def sampler() -> TrialSampler:
    return TrialSampler(TASKS, seed=7, noise=False)


@pytest.fixture(scope="module")
def batches(sampler):
    return {t: sampler.sample_task(t, B) for t in TASKS}


# ---------------------------------------------------------------- registry


def test_registry_counts_and_names():
    assert len(TASKS) == 126 and len(set(TASKS)) == 126
    groups = [s.group for s in SPECS]
    assert {g: groups.count(g) for g in set(groups)} == {
        "base": 20, "seq": 40, "int": 22, "int-seq": 44}
    assert [resolve_task(n) for n in REF82] == list(TASKS[:82])
    assert [resolve_task(n) for n in REF_INTSEQ] == list(TASKS[82:93])
    assert resolve_task("dlygointseq") == "dlygo-intr-seqr"
    assert resolve_task("DlyGo_Int_R") == "dlygo-intr"
    assert resolve_task("dmsintlseqr") == "dms-intl-seqr"
    assert all(task_spec(t).group == "int-seq" for t in TASKS[82:])


def test_unknown_task_is_one_line_with_closest_names():
    with pytest.raises(NeurosheetError) as exc:
        resolve_task("dlygo-intx")
    msg = str(exc.value)
    assert "\n" not in msg and "'dlygo-intx'" in msg and "dlygo-intr" in msg


# ---------------------------------------------------------------- every task


def _rings(batch) -> np.ndarray:
    return batch.inputs[:, :, 1:N_OBS]


@pytest.mark.parametrize("task", TASKS)
def test_shapes_and_padding(task, batches, sampler):
    b = batches[task]
    spec = task_spec(task)
    t_max = int(b.lengths.max())
    assert b.inputs.shape == (t_max, B, N_OBS + 126) and b.inputs.dtype == np.float32
    assert b.targets.shape == (t_max, B) and b.targets.dtype == np.int64
    assert b.mask.dtype == np.float32 and b.decision.dtype == bool
    assert b.task_ids.dtype == np.int64 and set(b.task_ids) == {sampler.tasks.index(task)}
    lo, hi = spec.length_range()
    assert lo <= b.lengths.min() and b.lengths.max() <= hi
    valid = np.arange(t_max)[:, None] < b.lengths
    assert not b.inputs[~valid].any() and not b.targets[~valid].any()
    assert not b.mask[~valid].any() and not b.decision[~valid].any()
    rule = b.inputs[:, :, N_OBS:]
    assert np.array_equal(rule.sum(-1), valid.astype(np.float32))
    assert np.all(rule[:, :, TASKS.index(task)][valid] == 1)
    assert np.all(b.mask[b.decision] == 5) and np.all(b.mask[valid & ~b.decision] == 1)
    assert b.targets.min() >= 0 and b.targets.max() < N_OUT


@pytest.mark.parametrize("task", TASKS)
def test_fixation_on_before_and_off_during_decision(task, batches):
    b = batches[task]
    n_dec = task_spec(task).decision_steps
    t = np.arange(b.targets.shape[0])[:, None]
    expected_dec = (t >= b.lengths - n_dec) & (t < b.lengths)
    assert np.array_equal(b.decision, expected_dec)
    fix = b.inputs[:, :, 0]
    valid = t < b.lengths
    assert np.all(fix[valid & ~b.decision] == 1)
    assert np.all(fix[b.decision] == 0)
    assert not b.targets[~b.decision].any()  # fixate (class 0) before the decision


def _delay_from_inputs(b) -> np.ndarray:
    """Steps between the end of the first stimulus and the next stimulus / the decision."""
    active = np.abs(_rings(b)).sum(-1) > 0
    dec_start = b.lengths - b.decision.sum(0)
    out = []
    for i in range(b.batch_size):
        on = np.nonzero(active[:, i])[0]
        first_on = on[0]
        if first_on >= dec_start[i]:  # reaction-time task: stimulus only in the decision
            out.append(0)
            continue
        end1 = first_on
        while active[end1 + 1, i] and end1 + 1 < dec_start[i]:
            end1 += 1
        later = on[(on > end1)]
        nxt = min(int(later[0]) if later.size else dec_start[i], dec_start[i])
        out.append(nxt - end1 - 1)
    return np.array(out)


def _peak(b, i, step) -> tuple[int, int]:
    """(modality, ring unit) of the strongest input at ``step`` of trial ``i``."""
    flat = int(np.argmax(_rings(b)[step, i]))
    return flat // N_RING, flat % N_RING


@pytest.mark.parametrize("task", TASKS)
def test_answers_follow_the_task_rule(task, batches):
    """Base answers read off the inputs; int rotates by dir * delay/100; seq moves 1 unit/step."""
    b = batches[task]
    spec, base = task_spec(task), task_spec(task).base
    info = b.info
    delay = _delay_from_inputs(b)
    assert np.array_equal(delay, info["delay_steps"])
    dec_start = b.lengths - b.decision.sum(0)
    dur = np.cumsum([info["fixation_steps"], np.full(B, 5)], axis=0)
    for i in range(B):
        if base.family == "go":
            step = dec_start[i] if base.reaction else dur[0, i]
            m, loc = _peak(b, i, step)
            assert m == info["modality"][i]
            answer = (loc + N_RING // 2 * base.anti) % N_RING
            respond = True
        elif base.family == "dm":
            s1, s2 = info["strength1"][i], info["strength2"][i]
            w = np.array(base.w_mod)
            assert not np.isclose(w @ s1, w @ s2)
            answer = info["loc1"][i] if w @ s1 > w @ s2 else info["loc2"][i]
            assert info["loc1"][i] != info["loc2"][i]
            respond = True
        else:
            m, sample = _peak(b, i, 3)
            m2, test = _peak(b, i, dec_start[i] - 1)
            assert m == m2 == info["modality"][i]
            match = (sample // 8 == test // 8) if base.category else sample == test
            if not base.category:
                assert test in (sample, (sample + 8) % N_RING)
            respond = match == base.matchgo
            answer = test
        dec = b.targets[b.decision[:, i], i]
        assert len(dec) == spec.decision_steps
        if not respond:
            assert not dec.any() and info["answer"][i] == -1
            continue
        assert info["answer"][i] == answer
        start = (answer + spec.int_dir * delay[i]) % N_RING
        assert dec[0] == 1 + start  # int: rotated by exactly dir * delay/100 ring units
        steps = np.diff(dec - 1) % N_RING
        assert np.all(steps == spec.seq_dir % N_RING)  # seq: one unit per step; else constant


def _env_kwargs(info: dict, i: int) -> dict:
    return {"fixation": int(info["fixation_steps"][i]) * 100,
            "delay": int(info["delay_steps"][i]) * 100, "modality": int(info["modality"][i]),
            "loc1": int(info["loc1"][i]), "loc2": int(info["loc2"][i]),
            "strength1": info["strength1"][i], "strength2": info["strength2"][i],
            "match": bool(info["match"][i])}


@pytest.mark.parametrize("task", TASKS)
def test_vectorized_trials_match_neurogym_env(task, batches):
    """Same parameters -> the per-trial neurogym TrialEnv gives identical inputs and targets."""
    b = batches[task]
    env = make_env(task, seed=0, noise=False)
    for i in range(8):
        trial = env.new_trial(**_env_kwargs(b.info, i))
        n = int(b.lengths[i])
        assert env.ob.shape == (n, N_OBS)
        np.testing.assert_allclose(env.ob, b.inputs[:n, i, :N_OBS], atol=1e-6)
        assert np.array_equal(env.gt, b.targets[:n, i])
        assert trial["target"] == b.info["target"][i]


@pytest.mark.parametrize("task", ["dm1", "multidm", "multidlydm-intl", "dnmc", "dms-intr-seql",
                                  "dlyanti-intl", "rtgo-seqr", "go"])
def test_env_and_sampler_draw_the_same_distribution(task):
    n = 600
    env = make_env(task, seed=3, noise=False)
    lengths, delays, targets = [], [], []
    for _ in range(n):
        trial = env.new_trial()
        lengths.append(env.ob.shape[0])
        delays.append(trial["delay_steps"])
        targets.append(trial["target"])
    b = TrialSampler([task], seed=3, noise=False).sample(n)
    assert abs(np.mean(lengths) - b.lengths.mean()) < 0.5
    assert abs(np.mean(delays) - b.info["delay_steps"].mean()) < 0.5
    assert abs(np.mean(np.array(targets) < 0) - np.mean(b.info["target"] < 0)) < 0.08
    hist = np.bincount(np.array(targets)[np.array(targets) >= 0], minlength=N_RING) / n
    ours = np.bincount(b.info["target"][b.info["target"] >= 0], minlength=N_RING) / n
    assert np.abs(hist - ours).max() < 0.05


# ---------------------------------------------------------------- seeding, sampling


def test_same_seed_same_trials_different_seed_different():
    a = TrialSampler(TASKS, seed=1).sample(64)
    b = TrialSampler(TASKS, seed=1).sample(64)
    c = TrialSampler(TASKS, seed=2).sample(64)
    for field in ("inputs", "targets", "mask", "decision", "task_ids", "lengths"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.task_ids, c.task_ids)
    s1, s2 = TrialSampler(["dm1"], seed=5), TrialSampler(["dm1"], seed=5)
    s1.sample(3), s2.sample(3)
    assert np.array_equal(s1.sample(16).inputs, s2.sample(16).inputs)  # stream continues alike
    assert not np.array_equal(TrialSampler(["dm1"], seed=6).sample(16).inputs,
                              TrialSampler(["dm1"], seed=5).sample(16).inputs)


def test_noise_only_on_stimulus_channels_of_dm_and_dms():
    for task in ("dm1", "dms", "go"):
        noisy = TrialSampler([task], seed=0, noise=True).sample(32)
        ref = TrialSampler([task], seed=0, noise=False).sample(32)
        fix = noisy.inputs[:, :, 0]
        assert set(np.unique(fix)) <= {0.0, 1.0}  # the fixation input is never noisy
        rings = noisy.inputs[:, :, 1:N_OBS]
        if task == "go":
            assert np.array_equal(noisy.inputs, ref.inputs)
        else:
            assert rings.min() < 0  # Gaussian noise (sigma 0.1) on the stimulus channels
            quiet = noisy.inputs[:, :, 0] == 0  # decision period: no stimulus, no noise
            assert not rings[quiet].any()


def test_weights_and_rule_inputs():
    s = TrialSampler(["go", "anti", "dm1"], seed=0, weights=[1, 0, 3],
                     rule_inputs=["dm1", "go", "anti", "dms"])
    b = s.sample(400)
    assert s.n_inputs == N_OBS + 4 and b.inputs.shape[2] == N_OBS + 4
    assert 1 not in set(b.task_ids)
    assert 0.65 < np.mean(b.task_ids == 2) < 0.85
    go = b.task_ids == 0
    assert np.all(b.inputs[0, go, N_OBS + 1] == 1) and not b.inputs[:, go, N_OBS].any()
    with pytest.raises(NeurosheetError):
        TrialSampler(["go", "dms"], seed=0, rule_inputs=["go"])
    with pytest.raises(NeurosheetError):
        TrialSampler(["go"], seed=0, weights=[1, 2])
    with pytest.raises(NeurosheetError):
        TrialSampler(["go"], seed=0).sample_task("anti", 4)


def test_neurogym_schedule_env_adds_rule_input():
    env = make_schedule_env(["go", "dms-intr"], seed=0)
    env.new_trial()
    assert env.unwrapped.ob.shape[1] == N_OBS + 2
    assert env.observation_space.shape == (N_OBS + 2,)


# ---------------------------------------------------------------- suites


def test_suites():
    counts = {"yang20": 20, "modcog82": 82, "modcog126": 126, "modcog-seq": 40,
              "modcog-int": 22, "modcog-intseq": 44}
    for name, n in counts.items():
        suite = load_suite(name)
        assert suite.name == name and len(suite.tasks) == n and suite.description
    assert load_suite("modcog82").tasks == TASKS[:82]
    assert load_suite("modcog126").tasks == TASKS
    demo = load_suite("demo")
    assert 4 <= len(demo.tasks) <= 6
    assert {task_spec(t).group for t in demo.tasks} >= {"base", "seq", "int"}


def test_suite_errors(tmp_path):
    with pytest.raises(NeurosheetError) as exc:
        load_suite("modcog132")
    assert "126" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(NeurosheetError) as exc:
        load_suite("modcg82")
    assert "'modcg82'" in str(exc.value) and "modcog82" in str(exc.value)
    bad = tmp_path / "bad.toml"
    bad.write_text('tasks = ["go", "gox"]\n')
    with pytest.raises(NeurosheetError, match="gox"):
        load_suite(str(bad))
    ok = tmp_path / "mine.toml"
    ok.write_text('tasks = ["goseqr", "dmsintl"]\nweights = [1, 2]\n')
    suite = load_suite(str(ok))
    assert suite.tasks == ("go-seqr", "dms-intl") and suite.weights == (1.0, 2.0)


# ---------------------------------------------------------------- metrics


def _logits_for(classes: np.ndarray) -> np.ndarray:
    return np.eye(N_OUT, dtype=np.float32)[classes] * 10


def test_score_perfect_and_fixate_only():
    s = TrialSampler(["go", "dnms", "go-seqr"], seed=0)
    b = s.sample(300)
    perfect = score(_logits_for(b.targets), b, s.tasks)
    assert perfect["mean"] == {"step_accuracy": 1.0, "trial_success": 1.0, "yang_success": 1.0}
    assert sum(v["n_trials"] for v in perfect["per_task"].values()) == 300
    assert score(b.targets, b, s.tasks)["mean"]["trial_success"] == 1.0
    fixate = score(np.zeros_like(b.targets), b, s.tasks)["per_task"]
    assert fixate["go"]["trial_success"] == 0.0 and fixate["go"]["step_accuracy"] == 0.0
    no_go = np.mean(b.info["target"][b.task_ids == 1] < 0)
    assert fixate["dnms"]["trial_success"] == pytest.approx(no_go)
    assert fixate["dnms"]["yang_success"] == pytest.approx(no_go)


def test_score_seq_needs_every_step_and_fixation():
    s = TrialSampler(["go-seqr"], seed=0)
    b = s.sample(50)
    pred = b.targets.copy()
    last = b.lengths - 1
    frozen = np.where(b.decision, pred[last, np.arange(50)], pred)  # only the last step right
    r = score(frozen, b, s.tasks)["mean"]
    assert r["trial_success"] == 0.0 and r["yang_success"] == 1.0
    assert r["step_accuracy"] == pytest.approx(0.1)
    broken = b.targets.copy()
    broken[0] = 3  # breaks fixation on the first step
    assert score(broken, b, s.tasks)["mean"]["trial_success"] == 0.0


def test_yang_success_tolerance():
    s = TrialSampler(["go"], seed=0)
    b = s.sample(20)
    shifted = np.where(b.targets > 0, 1 + (b.targets - 1 + 1) % N_RING, 0)  # 22.5 deg off
    assert score(shifted, b, s.tasks)["mean"]["yang_success"] == 1.0
    shifted2 = np.where(b.targets > 0, 1 + (b.targets - 1 + 2) % N_RING, 0)  # 45 deg off
    assert score(shifted2, b, s.tasks)["mean"]["yang_success"] == 0.0


# ---------------------------------------------------------------- reference mode


@pytest.fixture(scope="module")
def ref_batches():
    s = TrialSampler(TASKS, seed=11, noise=False, mode="reference")
    return {t: s.sample_task(t, B) for t in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_reference_mode_reproduces_the_reference_rules(task, ref_batches):
    b = ref_batches[task]
    spec, base, info = task_spec(task), task_spec(task).base, ref_batches[task].info
    assert b.targets.max() <= N_RING - 1  # the label wrap: class 16 never occurs
    fix, valid = b.inputs[:, :, 0], np.arange(b.targets.shape[0])[:, None] < b.lengths
    assert np.all(fix[valid & ~b.decision] == 1) and not fix[b.decision].any()
    n_dec = 5 if base.reaction and spec.seq_dir else spec.decision_steps
    assert np.all(b.decision.sum(0) == n_dec)
    delay = info["delay_steps"]
    if base.family == "go" and not base.reaction:
        assert np.all(delay == 5) if not spec.int_dir else delay.max() <= 11  # go == dlygo
    if base.family == "dm" and base.delayed:
        assert np.all(delay == 5)  # DM-int keeps the 500 ms delay (a constant +-5 remap)
    if base.family == "dms" and not spec.int_dir:
        for m in (0, 1):  # one frozen delay per task and modality
            assert np.unique(delay[info["modality"] == m]).size <= 1
    if base.family != "dm":
        m = info["modality"]
        assert np.array_equal(m, (m[0] + np.arange(B)) % 2)  # strict alternation
    for i in range(B):
        dec = b.targets[b.decision[:, i], i]
        if not info["respond"][i]:
            assert not dec.any()
            continue
        k = info["answer"][i]
        if base.family == "go":
            shift = 0
            turn = spec.int_dir * delay[i] * N_RING / (2 * np.pi)
            pos = (k + 8 * base.anti + turn) % N_RING
            step = b.lengths[i] - n_dec if base.reaction else 5
            assert int(np.argmax(_rings(b)[step, i])) % N_RING == int(np.round(pos)) % N_RING
        else:
            shift = spec.int_dir * delay[i]
        expected = (k + shift + 1 + spec.seq_dir * np.arange(n_dec)) % N_RING
        assert np.array_equal(dec, expected)


def test_reference_mode_worked_examples():
    """Examples measured on the reference code (modcog-reference.md sections 3.1, 3.2)."""
    s = TrialSampler(["goseql", "dlygointr"], seed=0, noise=False, mode="reference")
    b = s.sample_task("goseql", 200)
    i = int(np.nonzero(b.info["loc1"] == 3)[0][0])
    assert b.targets[b.decision[:, i], i].tolist() == [4, 3, 2, 1, 0, 15, 14, 13, 12, 11]
    b = s.sample_task("dlygointr", 3000)
    i = int(np.nonzero((b.info["loc1"] == 4) & (b.info["delay_steps"] == 10))[0][0])
    assert int(np.argmax(b.inputs[5, i, 1:N_OBS])) % N_RING == 13
    assert set(b.targets[b.decision[:, i], i]) == {5}
    with pytest.raises(NeurosheetError, match="mode"):
        TrialSampler(["go"], seed=0, mode="faithful")
    dm = TrialSampler(["dm1"], seed=0, mode="reference").sample(16)  # noise on fixation too
    fix = dm.inputs[:, :, 0][~dm.decision & (np.arange(dm.targets.shape[0])[:, None]
                                             < dm.lengths)]
    assert np.any(fix != 1) and np.all(np.abs(fix - 1) < 0.6)
