"""Each Mod-Cog task as a neurogym ``TrialEnv`` (a gymnasium ``Env``): one trial at a time.

This is the readable, per-trial definition of every task (periods via ``add_period`` and
neurogym timing specs, stimuli via yang19's ``_gaussianbump``), for use with gymnasium and
neurogym tools (``gym.make``, ``ngym.make``, ``ScheduleEnvs``, ``Dataset``, RL loops) and as
the check on the vectorized generator in ``trials.py``: both draw from the same distributions,
and given the same trial parameters (keyword arguments of ``new_trial``) they produce identical
inputs and targets. ``mode="reference"`` renders each trial with the vectorized generator's
reference mode instead (the reference code's quirks, docs/modcog.md). Every task is registered
as a gymnasium id (``neurosheet.tasks.gym_ids``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from neurogym.core import TrialEnv
from neurogym.envs.collections.yang19 import _gaussianbump
from neurogym.utils import scheduler, spaces
from neurogym.wrappers.block import ScheduleEnvs

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks.registry import (
    DT_MS,
    INT_DELAYS_STEPS,
    N_OBS,
    N_OUT,
    N_RING,
    resolve_tasks,
    task_spec,
)
from neurosheet.tasks.trials import DLYDM_PAIRS, DM_COHS, HALF, MODES, SIGMA

# the slot (of trials.PERIODS: fixation, stim1, delay, stim2, decision) of each period name
_SLOT = {"fixation": 0, "stimulus": 1, "stim1": 1, "sample": 1, "delay": 2, "stim2": 3,
         "test": 3, "decision": 4}


def _timing(spec: Any) -> dict[str, Any]:
    """neurogym timing spec (ms) of a task's periods."""
    b = spec.base
    dec = spec.decision_steps * DT_MS
    if spec.int_dir:
        delay: Any = ("choice", [d * DT_MS for d in INT_DELAYS_STEPS])
    elif b.family == "go":
        delay = b.delay_ms
    elif b.family == "dm":
        delay = 500
    else:
        delay = ("uniform", (200, 1200))  # floored to dt: {200, ..., 1100} ms
    if b.family == "go":
        if b.reaction:
            return {"fixation": 500, "decision": dec}
        return {"fixation": 500, "stimulus": 500, "delay": delay, "decision": dec}
    if b.family == "dm":
        fix = ("uniform", (200, 500))
        if not b.delayed:
            return {"fixation": fix, "stimulus": 500, "decision": dec}
        return {"fixation": fix, "stim1": 500, "delay": delay, "stim2": 500, "decision": dec}
    return {"fixation": 300, "sample": 500, "delay": delay, "test": 500, "decision": dec}


class ModCogEnv(TrialEnv):
    """One Mod-Cog task (any of the 126) as a neurogym trial environment.

    Observation 33 = fixation + two rings of 16; actions 17 = fixate + 16 directions.
    ``new_trial`` accepts any of the drawn parameters as keywords (``fixation``/``delay`` in
    ms, ``modality``, ``loc1``, ``loc2``, ``strength1``, ``strength2``, ``match``) to fix them
    (fixed mode only). ``reset(seed=s)`` (gymnasium) and ``seed(s)`` (neurogym) both reseed the
    trial generator, so the trials after them are reproducible. The task definition is
    ``task_spec`` (``spec`` is gymnasium's ``EnvSpec``, set by ``gym.make``).
    ``mode="reference"``: trial i is trial i of ``TrialSampler([task], seed=s,
    mode="reference").sample_task(task, ...)``, the reference code's quirks included.
    """

    metadata = {  # noqa: RUF012
        "paper_name": "Winning the lottery with neural connectivity constraints (Mod-Cog)",
        "paper_link": "https://arxiv.org/abs/2207.03523",
        "tags": ["supervised", "multitask", "working memory"],
        "render_modes": [],
    }

    def __init__(self, task: str, dt: int = DT_MS, noise: bool = True,
                 mode: str = "fixed") -> None:
        if dt != DT_MS:
            raise NeurosheetError(f"Mod-Cog tasks are defined at dt = {DT_MS} ms, got dt={dt}")
        if mode not in MODES:
            raise NeurosheetError(f"unknown task mode {mode!r}; use one of {', '.join(MODES)}")
        super().__init__(dt=dt)
        self.task_spec = task_spec(task)
        self.mode = mode
        self.noise = noise
        self.sigma = SIGMA
        self.theta = np.arange(N_RING) * 2 * np.pi / N_RING
        self.timing = _timing(self.task_spec)
        self.rewards = {"abort": -0.1, "correct": 1.0, "fail": 0.0}
        self.n_trials_made = 0
        self._trial_seed: int | None = None
        self._reference: Any = None  # reference mode: a TrialSampler over this task
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(N_OBS,), dtype=np.float32,
            name={"fixation": 0, "stimulus_mod1": range(1, N_RING + 1),
                  "stimulus_mod2": range(N_RING + 1, 2 * N_RING + 1)})
        self.action_space = spaces.Discrete(
            N_OUT, name={"fixation": 0, "choice": range(1, N_RING + 1)})

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Reseed the trial generator (neurogym's interface); ``None`` draws fresh entropy."""
        out = super().seed(seed)
        self._trial_seed = seed
        self._reference = None
        return out

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """gymnasium's reset: with ``seed``, the trials from here on are reproducible."""
        if seed is not None:
            self.seed(seed)
        return super().reset(seed=seed, options=options)

    def _bump(self, loc: int, strength: float = 1.0) -> np.ndarray:
        return _gaussianbump(self.theta[int(loc) % N_RING], self.theta, strength)

    def _periods(self, names: list[str], kwargs: dict[str, Any]) -> None:
        self.add_period(names, duration=[kwargs.get(p) for p in names])

    def _new_trial(self, **kwargs: Any) -> dict[str, Any]:
        self.n_trials_made += 1
        if self.mode == "reference":
            return self._reference_trial(kwargs)
        spec = self.task_spec
        trial = {"go": self._go, "dm": self._dm, "dms": self._dms}[spec.family](kwargs)
        delay_steps = int(self._duration.get("delay", 0) // self.dt)
        int_shift = spec.int_dir * delay_steps
        self.set_groundtruth(0)
        if trial["respond"]:
            target = (trial["answer"] + int_shift) % N_RING
            dec = self.view_groundtruth("decision")
            dec[:] = 1 + (target + spec.seq_dir * np.arange(len(dec))) % N_RING
        else:
            target = -1
            trial["answer"] = -1
        trial.update(task=spec.name, delay_steps=delay_steps, int_shift=int_shift,
                     target=target, fixation_steps=int(self._duration["fixation"] // self.dt))
        return trial

    def _reference_trial(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The next trial of this task's reference-mode sampler stream, as neurogym periods."""
        if kwargs:
            raise NeurosheetError(f"reference-mode trials cannot be fixed by parameters; got "
                                  f"{', '.join(sorted(kwargs))} (use mode='fixed')")
        if self._reference is None:
            from neurosheet.tasks.dataset import TrialSampler

            seed = self._trial_seed
            if seed is None:
                seed = int(self.rng.randint(2**31))
            self._reference = TrialSampler([self.task_spec.name], seed=seed, noise=self.noise,
                                           mode="reference")
        b = self._reference.sample_task(self.task_spec.name, 1)
        steps = b.info["durations"][0]
        periods = list(self.timing)
        self.add_period(periods, duration=[int(steps[_SLOT[p]]) * self.dt for p in periods])
        n = int(b.lengths[0])
        self.add_ob(b.inputs[:n, 0, :N_OBS])
        self.set_groundtruth(b.targets[:n, 0])
        trial = {k: v[0].tolist() for k, v in b.info.items()}
        trial["task"] = self.task_spec.name
        return trial

    def _go(self, kw: dict[str, Any]) -> dict[str, Any]:
        b = self.task_spec.base
        c = int(kw["loc1"]) if "loc1" in kw else int(self.rng.choice(N_RING))
        m = int(kw["modality"]) if "modality" in kw else int(self.rng.choice(2))
        stim = self._bump(c + HALF * b.anti)
        where = f"stimulus_mod{m + 1}"
        if b.reaction:
            self._periods(["fixation", "decision"], kw)
            self.add_ob(1, "fixation", where="fixation")
            self.add_ob(stim, "decision", where=where)
        else:
            self._periods(["fixation", "stimulus", "delay", "decision"], kw)
            self.add_ob(1, ["fixation", "stimulus", "delay"], where="fixation")
            self.add_ob(stim, "stimulus", where=where)
        return {"loc1": c, "loc2": -1, "modality": m, "match": False, "respond": True,
                "answer": c}

    def _dm(self, kw: dict[str, Any]) -> dict[str, Any]:
        b = self.task_spec.base
        i1 = int(kw["loc1"]) if "loc1" in kw else int(self.rng.choice(N_RING))
        if "loc2" in kw:
            i2 = int(kw["loc2"])
        else:
            i2 = i1
            while i2 == i1:
                i2 = int(self.rng.choice(N_RING))
        if "strength1" in kw:
            s1, s2 = np.asarray(kw["strength1"], float), np.asarray(kw["strength2"], float)
        else:
            s1, s2 = np.zeros(2), np.zeros(2)
            for m in (0, 1):
                if not b.stim_mod[m]:
                    continue
                if b.delayed:
                    s1[m], s2[m] = DLYDM_PAIRS[self.rng.choice(len(DLYDM_PAIRS))]
                else:
                    coh = self.rng.choice(DM_COHS) * self.rng.choice([-1, 1])
                    s1[m], s2[m] = 0.5 + coh / 2, 0.5 - coh / 2
            w = np.asarray(b.w_mod)
            if np.isclose(w @ s1, w @ s2):  # a tie has no answer: swap modality 2's pair
                s1[1], s2[1] = s2[1], s1[1]
        if b.delayed:
            self._periods(["fixation", "stim1", "delay", "stim2", "decision"], kw)
            stim_periods = ["stim1", "stim2"]
        else:
            self._periods(["fixation", "stimulus", "decision"], kw)
            stim_periods = ["stimulus"]
        self.add_ob(1, [p for p in self.timing if p != "decision"], where="fixation")
        for m in (0, 1):
            where = f"stimulus_mod{m + 1}"
            if b.delayed:
                self.add_ob(self._bump(i1, s1[m]), "stim1", where=where)
                self.add_ob(self._bump(i2, s2[m]), "stim2", where=where)
            else:
                self.add_ob(self._bump(i1, s1[m]) + self._bump(i2, s2[m]), "stimulus",
                            where=where)
            if self.noise:
                self.add_randn(0, self.sigma, stim_periods, where=where)
        w = np.asarray(b.w_mod)
        answer = i1 if w @ s1 > w @ s2 else i2
        return {"loc1": i1, "loc2": i2, "modality": -1, "strength1": s1, "strength2": s2,
                "match": False, "respond": True, "answer": answer}

    def _dms(self, kw: dict[str, Any]) -> dict[str, Any]:
        b = self.task_spec.base
        m = int(kw["modality"]) if "modality" in kw else int(self.rng.choice(2))
        match = bool(kw["match"]) if "match" in kw else bool(self.rng.choice(2))
        i_s = int(kw["loc1"]) if "loc1" in kw else int(self.rng.choice(N_RING))
        if "loc2" in kw:
            i_t = int(kw["loc2"])
        elif b.category:
            cat_s = i_s // HALF
            cat_t = cat_s if match else 1 - cat_s
            i_t = int(self.rng.choice(HALF)) + HALF * cat_t
        else:
            i_t = i_s if match else (i_s + HALF) % N_RING
        self._periods(["fixation", "sample", "delay", "test", "decision"], kw)
        where = f"stimulus_mod{m + 1}"
        self.add_ob(1, ["fixation", "sample", "delay", "test"], where="fixation")
        self.add_ob(self._bump(i_s), "sample", where=where)
        self.add_ob(self._bump(i_t), "test", where=where)
        if self.noise:
            self.add_randn(0, self.sigma, ["sample", "test"], where=where)
        return {"loc1": i_s, "loc2": i_t, "modality": m, "match": match,
                "respond": match == b.matchgo, "answer": i_t}

    def _step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        gt = self.gt_now
        reward = 0.0
        new_trial = False
        if self.in_period("decision"):
            if action != 0:
                new_trial = True
                reward = self.rewards["correct"] if action == gt else self.rewards["fail"]
                self.performance = int(action == gt)
        elif action != 0:
            reward = self.rewards["abort"]
        return self.ob_now, reward, False, False, {"new_trial": new_trial, "gt": gt}


def make_env(task: str, seed: int | None = None, noise: bool = True,
             mode: str = "fixed") -> ModCogEnv:
    """A seeded :class:`ModCogEnv` for one task (name or alias)."""
    env = ModCogEnv(task, noise=noise, mode=mode)
    env.seed(seed)
    return env


def make_schedule_env(tasks: Sequence[str], seed: int = 0, noise: bool = True,
                      rule_input: bool = True, mode: str = "fixed") -> ScheduleEnvs:
    """neurogym ``ScheduleEnvs`` over ``tasks`` with a one-hot rule input, as in the reference
    README; task ``i`` is seeded with ``seed + i`` (``ScheduleEnvs.seed`` would give all the
    same stream)."""
    names = resolve_tasks(tasks)
    envs = [make_env(t, seed + i, noise, mode) for i, t in enumerate(names)]
    sched = scheduler.RandomSchedule(len(envs))
    sched.seed(seed)
    env = ScheduleEnvs(envs, sched, env_input=rule_input)
    env.reset()
    return env
