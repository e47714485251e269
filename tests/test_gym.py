"""Mod-Cog tasks as gymnasium ids: registration, gym.make / ngym.make / Dataset, check_env, seeding."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks import (
    N_OBS,
    N_OUT,
    TASKS,
    TaskSpec,
    TrialSampler,
    env_id,
    env_ids,
    register_envs,
    task_spec,
)

# conftest imports neurosheet before gymnasium, and gymnasium's plugin hook registers the ids
# only for an installed neurosheet: register here. The import paths themselves are tested in
# fresh interpreters (the last test below, and test_gym_plugin.py).
register_envs()

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = TASKS[::13]  # a deterministic sample of 10 tasks over all groups and families


def _trials(env: gym.Env, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The next ``n`` trials (inputs, targets) of an env built by gym.make."""
    out = []
    for _ in range(n):
        env.unwrapped.new_trial()
        out.append((env.unwrapped.ob.copy(), env.unwrapped.gt.copy()))
    return out


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x[0].shape == y[0].shape and np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
        for x, y in zip(a, b, strict=True))


def test_every_task_is_registered_in_both_modes():
    register_envs()  # a second registration changes nothing
    ids = set(gym.envs.registry)
    assert len(env_ids()) == len(env_ids("reference")) == len(TASKS) == 126
    assert set(env_ids()) <= ids and set(env_ids("reference")) <= ids
    assert env_id("dlygointr") == "neurosheet/ModCog-dlygo-intr-v0"
    assert env_id("dlygo-intr", "reference") == "neurosheet/ModCogRef-dlygo-intr-v0"
    spec = gym.spec("neurosheet/ModCog-dlygo-intr-v0")
    assert spec.entry_point == "neurosheet.tasks.envs:ModCogEnv"  # a string: imported lazily
    assert spec.kwargs == {"task": "dlygo-intr", "mode": "fixed"}
    with pytest.raises(NeurosheetError, match="mode"):
        env_id("go", "faithful")


@pytest.mark.parametrize("mode", ["fixed", "reference"])
def test_every_id_builds_and_resets(mode):
    for task, name in zip(TASKS, env_ids(mode), strict=True):
        env = gym.make(name)
        ob, info = env.reset(seed=0)
        assert ob.shape == (N_OBS,) and ob.dtype == np.float32 and info == {}
        assert env.observation_space.contains(ob)
        assert env.spec.id == name  # gymnasium's EnvSpec, not overwritten by the task
        assert isinstance(env.unwrapped.task_spec, TaskSpec)
        assert env.unwrapped.task_spec.name == task and env.unwrapped.mode == mode
        gt = env.unwrapped.gt
        assert gt.shape == env.unwrapped.ob.shape[:1] and 0 <= gt.min() and gt.max() < N_OUT
        ob, _, terminated, truncated, _ = env.step(0)
        assert ob.shape == (N_OBS,) and not terminated and not truncated
        env.close()


@pytest.mark.parametrize("name", [env_id(t, "reference" if i % 2 else "fixed")
                                  for i, t in enumerate(SAMPLE)])
def test_check_env_passes(name):
    env = gym.make(name)
    with warnings.catch_warnings():
        # by design: the observation Box is unbounded (Gaussian input noise), neurogym keeps
        # a legacy ``seed`` method (its Dataset calls it), and gym.make wraps the env
        warnings.filterwarnings("ignore", message=".*(infinity|`seed` function|env.seed to get"
                                                  "|different from the unwrapped).*")
        check_env(env.unwrapped)
        check_env(env)  # through gym.make's wrappers too


@pytest.mark.parametrize("mode", ["fixed", "reference"])
def test_reset_with_a_seed_makes_trials_reproducible(mode):
    for task in ("dms-intr-seql", "multidm", "go"):
        name = env_id(task, mode)
        a, b, c = gym.make(name), gym.make(name), gym.make(name)
        a.reset(seed=7)
        b.reset(seed=7)
        c.reset(seed=8)
        first_a = _trials(a, 6)
        assert _same(first_a, _trials(b, 6))
        assert not _same(first_a, _trials(c, 6))
        a.reset(seed=7)  # reseeding restarts the same trials
        assert _same(first_a, _trials(a, 6))
        a.reset()  # no seed: the stream goes on, it does not restart
        assert not _same(first_a, _trials(a, 6))


def test_reference_env_is_the_reference_sampler_trial_by_trial():
    for task in ("dlygo-intr", "go-seql", "dms", "multidm"):
        env = gym.make(env_id(task, "reference"))
        env.reset(seed=5)  # reset itself starts trial 0
        sampler = TrialSampler([task], seed=5, mode="reference")
        batch = sampler.sample_task(task, 4)
        for i in range(4):
            if i:
                env.unwrapped.new_trial()
            n = int(batch.lengths[i])
            np.testing.assert_array_equal(env.unwrapped.ob, batch.inputs[:n, i, :N_OBS])
            np.testing.assert_array_equal(env.unwrapped.gt, batch.targets[:n, i])
            assert env.unwrapped.trial["target"] == batch.info["target"][i]
    with pytest.raises(NeurosheetError, match="loc1"):
        env.unwrapped.new_trial(loc1=3)


def test_fixed_env_periods_and_targets():
    env = gym.make("neurosheet/ModCog-dlygo-intr-v0")
    env.reset(seed=0)
    u = env.unwrapped
    trial = u.new_trial(loc1=4, delay=1000, modality=0)
    assert trial["target"] == 14 and u.gt[u.ob[:, 0] == 0].tolist() == [15] * 5
    assert list(u.timing) == ["fixation", "stimulus", "delay", "decision"]


def test_neurogym_make_and_dataset_by_id():
    import neurogym as ngym

    env = ngym.make("neurosheet/ModCogRef-dlygo-intr-v0")
    ob, _ = env.reset(seed=0)
    assert ob.shape == (N_OBS,) and env.unwrapped.mode == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurogym's Dataset reads env attributes via wrappers
        ds = ngym.Dataset("neurosheet/ModCog-dm1-v0", batch_size=4, seq_len=40)
        inputs, targets = next(ds)
        ref = ngym.Dataset("neurosheet/ModCogRef-dms-v0", batch_size=2, seq_len=40)
        ref_inputs, _ = next(ref)
    assert inputs.shape == (40, 4, N_OBS) and targets.shape == (40, 4)
    assert targets.max() > 0 and ref_inputs.shape == (40, 2, N_OBS)


def test_modcogenv_exported_and_validated():
    from neurosheet.tasks import ModCogEnv
    from neurosheet.tasks.envs import ModCogEnv as direct

    assert ModCogEnv is direct
    env = ModCogEnv("dmsintl")
    assert env.task_spec == task_spec("dms-intl") and env.spec is None
    with pytest.raises(NeurosheetError, match="mode"):
        ModCogEnv("go", mode="faithful")
    with pytest.raises(NeurosheetError, match="dt"):
        ModCogEnv("go", dt=20)


def test_import_registers_without_torch_or_neurogym_and_the_bar_command():
    """``import neurosheet`` after gymnasium registers the ids itself (no plugin needed)."""
    code = ("import sys, gymnasium as gym, neurosheet;"
            "assert 'torch' not in sys.modules and 'neurogym' not in sys.modules;"
            "assert 'neurosheet/ModCog-dlygo-intr-v0' in gym.envs.registry;"
            "assert 'neurosheet.tasks.envs' not in sys.modules;"
            "env = gym.make('neurosheet/ModCog-dlygo-intr-v0'); env.reset(seed=0);"
            "from gymnasium.utils.env_checker import check_env; check_env(env.unwrapped);"
            "print('ok')")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_the_docs_example_runs(capsys):
    """The python block of docs/modcog.md's gymnasium section, as written."""
    text = (ROOT / "docs" / "modcog.md").read_text()
    section = text[text.index("## gymnasium and neurogym"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "docs/modcog.md", "exec"), {})
    assert "[" in capsys.readouterr().out
