"""Vectorized trial generation for any mix of Mod-Cog tasks: one numpy pass per batch.

Every trial, whatever its task, is laid out as five periods (steps at dt = 100 ms):
``fixation, stim1, delay, stim2, decision`` where unused periods have length 0 (Go: stim1 is
the stimulus, stim2 is empty; reaction-time Go: only fixation and decision; DM: stim1 shows
both stimuli, or stim1/stim2 around a delay for the delayed variants; DMS: sample/test).
:func:`draw_params` draws every trial's parameters from one seeded Generator and
:func:`draw_noise` each trial's own input noise; :func:`render` turns both into inputs and
targets, so a trial's content never depends on the other trials rendered with it.
``envs.ModCogEnv`` is the same definition written trial by trial on neurogym's ``TrialEnv``;
tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosheet.core.errors import NeurosheetError
from neurosheet.tasks.registry import N_OBS, N_RING, SPECS

PERIODS = ("fixation", "stim1", "delay", "stim2", "decision")
PERIOD_LABELS = {  # how each family names the five slots (None = never used)
    "go": ("fixation", "stimulus", "delay", None, "decision"),
    "dm": ("fixation", "stim1", "delay", "stim2", "decision"),
    "dms": ("fixation", "sample", "delay", "test", "decision"),
}
SIGMA = 1.0 / np.sqrt(100.0)  # input noise sigma / sqrt(dt), as in the reference: 0.1
DM_COHS = np.array([0.08, 0.16, 0.32, 0.64])
DLYDM_PAIRS = np.array([(a, b) for a in (0.3, 0.6, 1.0) for b in (0.3, 0.6, 1.0) if a != b])
HALF = N_RING // 2
STIM_STEPS = 5  # every stimulus slot (stim1, stim2) lasts 0 or 5 steps
NOISE_SHAPE = (2, STIM_STEPS, N_OBS)  # one trial's noise draws: slot, step in the slot, channel


def ring_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular distance between ring indices, in ring units (0..8)."""
    d = np.abs(np.asarray(a) - np.asarray(b)) % N_RING
    return np.minimum(d, N_RING - d)


def ring_distance_float(loc: np.ndarray) -> np.ndarray:
    """[n, 16] circular distance (ring units) from real-valued positions to each ring unit."""
    d = np.abs(np.asarray(loc, dtype=np.float64)[:, None] - np.arange(N_RING)) % N_RING
    return np.minimum(d, N_RING - d)


# BUMP[loc] = the ring's response to a unit stimulus at ring unit loc: 0.8 exp(-d^2/2), d in
# ring units (the reference's Gaussian of width pi/8 = one ring spacing).
BUMP = (0.8 * np.exp(-ring_distance(np.arange(N_RING)[:, None],
                                    np.arange(N_RING)[None, :]) ** 2 / 2.0)).astype(np.float32)


def _table() -> dict[str, np.ndarray]:
    """Per-task parameter columns, indexed by registry position."""
    fam = {"go": 0, "dm": 1, "dms": 2}
    cols: dict[str, list] = {k: [] for k in (
        "family", "anti", "reaction", "delay0", "delayed", "w_mod", "stim_mod", "category",
        "matchgo", "int_dir", "seq_dir", "decision")}
    for s in SPECS:
        b = s.base
        cols["family"].append(fam[b.family])
        cols["anti"].append(b.anti)
        cols["reaction"].append(b.reaction)
        cols["delay0"].append(b.delay_ms // 100)
        cols["delayed"].append(b.delayed)
        cols["w_mod"].append(b.w_mod)
        cols["stim_mod"].append(b.stim_mod)
        cols["category"].append(b.category)
        cols["matchgo"].append(b.matchgo)
        cols["int_dir"].append(s.int_dir)
        cols["seq_dir"].append(s.seq_dir)
        cols["decision"].append(s.decision_steps)
    out = {k: np.asarray(v) for k, v in cols.items()}
    out["w_mod"] = out["w_mod"].astype(np.float64)
    return out


TABLE = _table()
MODES = ("fixed", "reference")


@dataclass
class ReferenceQuirks:
    """State for ``mode="reference"``: the reference draws one DMS delay per task and modality
    when it builds its envs, and alternates the modality of Go/DMS trials (``next_modality``
    advances with every trial drawn; each trial stream of a sampler holds its own, see
    :meth:`fork`)."""

    frozen_delay: np.ndarray  # int64 [n_registry, 2]: steps, floor(U(200, 1200) ms / dt)
    next_modality: np.ndarray  # int64 [n_registry]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ReferenceQuirks:
        n = len(SPECS)
        return cls(rng.integers(2, 12, (n, 2)), rng.integers(0, 2, n))

    def fork(self) -> ReferenceQuirks:
        """The same frozen delays with an alternation state of its own."""
        return ReferenceQuirks(self.frozen_delay, self.next_modality.copy())

    def modalities(self, g: np.ndarray) -> np.ndarray:
        """Alternating modality of each trial (in batch order within a task); advances state."""
        order = np.argsort(g, kind="stable")
        sg = g[order]
        first = np.r_[True, sg[1:] != sg[:-1]] if sg.size else np.zeros(0, bool)
        run_start = np.maximum.accumulate(np.where(first, np.arange(sg.size), 0))
        occurrence = np.empty_like(g)
        occurrence[order] = np.arange(sg.size) - run_start
        m = (self.next_modality[g] + occurrence) % 2
        counts = np.bincount(g, minlength=self.next_modality.size)
        self.next_modality = (self.next_modality + counts) % 2
        return m


@dataclass
class Trials:
    """A batch of rendered trials (time-major) and the parameters that produced them."""

    obs: np.ndarray  # float32 [T, B, 33]
    targets: np.ndarray  # int64 [T, B]: 0 fixate, 1..16 ring
    decision: np.ndarray  # bool [T, B]
    lengths: np.ndarray  # int64 [B]
    durations: np.ndarray  # int64 [B, 5] steps of PERIODS
    info: dict[str, np.ndarray] = field(default_factory=dict)


def _onehot_mod(modality: np.ndarray) -> np.ndarray:
    return np.stack([modality == 0, modality == 1], axis=1).astype(np.float64)


def draw_params(task_ids: np.ndarray, rng: np.random.Generator,
                quirks: ReferenceQuirks | None = None) -> dict[str, np.ndarray]:
    """Draw every random quantity of the trials of ``task_ids`` (registry indices) from ``rng``.

    Returns arrays of length B: ``fixation_steps, delay_steps, modality`` (-1 for DM),
    ``loc1, loc2`` (go: answer, -; dm: stimulus 1, 2; dms: sample, test), ``strength1,
    strength2`` ([B, 2] per modality), ``match``, ``respond``, ``answer`` (ring unit before the
    int rotation; -1 on fixate trials), ``int_shift`` and ``target`` (answer after int).
    With ``quirks`` the reference code's behaviour is reproduced (docs/modcog.md, "reference
    mode").
    """
    g = np.asarray(task_ids, dtype=np.int64)
    n = g.shape[0]
    fam = TABLE["family"][g]
    is_go, is_dm, is_dms = fam == 0, fam == 1, fam == 2
    int_dir = TABLE["int_dir"][g]

    loc1 = rng.integers(0, N_RING, n)
    offset = rng.integers(1, N_RING, n)  # DM: second stimulus uniform over the other 15
    modality = rng.integers(0, 2, n)
    fix_dm = rng.integers(2, 5, n)  # floor(U(200, 500) ms / dt)
    delay_dms = rng.integers(2, 12, n)  # floor(U(200, 1200) ms / dt)
    delay_int = rng.integers(0, 12, n)  # {0, 100, ..., 1100} ms
    coh = DM_COHS[rng.integers(0, len(DM_COHS), (n, 2))] * (2 * rng.integers(0, 2, (n, 2)) - 1)
    pairs = DLYDM_PAIRS[rng.integers(0, len(DLYDM_PAIRS), (n, 2))]  # [n, 2 mod, (a, b)]
    match = rng.integers(0, 2, n).astype(bool)
    half = rng.integers(0, HALF, n)
    coin = rng.integers(0, 2, n).astype(bool)
    ref = quirks is not None
    if ref:
        modality = quirks.modalities(g)

    # DM: stimulus strengths per modality, first (a) and second (b) location.
    delayed = TABLE["delayed"][g]
    a = np.where(delayed[:, None], pairs[..., 0], 0.5 + coh / 2)
    b = np.where(delayed[:, None], pairs[..., 1], 0.5 - coh / 2)
    shown = TABLE["stim_mod"][g]
    a, b = a * shown, b * shown
    w = TABLE["w_mod"][g]
    ev_a, ev_b = (w * a).sum(1), (w * b).sum(1)
    tie = is_dm & np.isclose(ev_a, ev_b)  # multisensory ties have no answer: swap modality 2
    if not ref:
        a[tie, 1], b[tie, 1] = b[tie, 1].copy(), a[tie, 1].copy()
        ev_a, ev_b = (w * a).sum(1), (w * b).sum(1)
    loc2_dm = (loc1 + offset) % N_RING
    first_wins = np.where(tie, coin, ev_a > ev_b) if ref else ev_a > ev_b  # reference: coin
    answer_dm = np.where(first_wins, loc1, loc2_dm)

    # DMS: test location from match / category rules.
    category = TABLE["category"][g]
    cat_s = (loc1 > HALF).astype(np.int64) if ref else loc1 // HALF  # reference: 8 in half 0
    cat_t = np.where(match, cat_s, 1 - cat_s)
    test = np.where(category, half + HALF * cat_t, np.where(match, loc1, (loc1 + HALF) % N_RING))
    respond_dms = match == TABLE["matchgo"][g]

    onehot = _onehot_mod(modality)
    strength1 = np.where(is_dm[:, None], a, onehot)
    strength2 = np.where(is_dm[:, None], b, np.where(is_dms[:, None], onehot, 0.0))
    loc2 = np.where(is_dm, loc2_dm, np.where(is_dms, test, -1))
    respond = np.where(is_dms, respond_dms, True)
    answer = np.where(is_go, loc1, np.where(is_dm, answer_dm, test))

    reaction = TABLE["reaction"][g]
    seq_dir = TABLE["seq_dir"][g]
    decision_steps = TABLE["decision"][g]
    if ref:  # go = dlygo (500 ms), DMS delays frozen, DM-int fixed 500 ms, rt*seq 5 steps
        delay_dms = quirks.frozen_delay[g, modality]
        go_delay = np.full(n, 5)
        delay_int = np.where(is_dm, 5, delay_int)
        decision_steps = np.where(reaction & (seq_dir != 0), 5, decision_steps)
    else:
        go_delay = TABLE["delay0"][g]
    base_delay = np.where(is_go, go_delay, np.where(is_dm, np.where(delayed, 5, 0), delay_dms))
    delay = np.where(int_dir != 0, delay_int, base_delay)
    delay = np.where(reaction, 0, delay)
    int_shift = int_dir * delay
    # reference Go-int: the stimulus turns by 0.01 rad/ms x delay (1 rad per step) and the
    # target stays; stim_shift is that turn in ring units
    stim_shift = np.where(is_go & ref, int_shift * N_RING / (2 * np.pi), 0.0)
    int_shift = np.where(is_go & ref, 0, int_shift)
    target = (answer + int_shift) % N_RING
    return {
        "task_id": g,
        "fixation_steps": np.where(is_go, 5, np.where(is_dm, fix_dm, 3)),
        "delay_steps": delay,
        "modality": np.where(is_dm, -1, modality),
        "loc1": loc1,
        "loc2": loc2,
        "strength1": strength1,
        "strength2": strength2,
        "match": match & is_dms,
        "respond": respond,
        "answer": np.where(respond, answer, -1),
        "int_shift": int_shift,
        "target": np.where(respond, target, -1),
        "decision_steps": decision_steps,
        "stim_shift": stim_shift,
        "reference": np.full(n, ref),
    }


def layout(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Period lengths and the input content of each stimulus slot for drawn ``params``."""
    g = params["task_id"]
    fam = TABLE["family"][g]
    is_go, is_dm = fam == 0, fam == 1
    reaction = TABLE["reaction"][g]
    together = is_dm & ~TABLE["delayed"][g]  # DM without delay: both stimuli at once
    n = g.shape[0]
    durations = np.stack([
        params["fixation_steps"],
        np.where(reaction, 0, 5),
        params["delay_steps"],
        np.where(is_go | together, 0, 5),
        params["decision_steps"],
    ], axis=1).astype(np.int64)
    stim_loc1 = np.where(is_go, (params["loc1"] + HALF * TABLE["anti"][g]) % N_RING,
                         params["loc1"])
    shift = params["stim_shift"]
    bump1 = BUMP[stim_loc1].astype(np.float64)
    off = shift != 0  # off-grid stimuli (reference Go-int), computed for those trials only
    if off.any():
        bump1[off] = 0.8 * np.exp(-ring_distance_float(stim_loc1[off] + shift[off]) ** 2 / 2.0)
    c1 = params["strength1"][:, :, None] * bump1[:, None, :]  # [n, 2, 16]
    c2 = params["strength2"][:, :, None] * BUMP[np.maximum(params["loc2"], 0)][:, None, :]
    first = c1 + together[:, None, None] * c2
    second = ~together[:, None, None] * c2
    noise = np.where(is_dm[:, None], 1.0, np.where(fam[:, None] == 2,
                                                   params["strength1"], 0.0))  # [n, 2]
    noise = np.repeat(noise, N_RING, axis=1)
    noise_fix = (is_dm & params["reference"]).astype(np.float64)  # reference: fixation too
    zeros = np.zeros((n, 2 * N_RING))
    return {
        "durations": durations,
        "stim1": np.where(reaction[:, None], zeros, first.reshape(n, -1)).astype(np.float32),
        "stim2": second.reshape(n, -1).astype(np.float32),
        "decision_stim": np.where(reaction[:, None], first.reshape(n, -1), zeros
                                  ).astype(np.float32),
        "noise": np.concatenate([noise_fix[:, None], noise], axis=1).astype(np.float32),
    }


def draw_noise(params: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``[n, 2, 5, 33]`` input noise of drawn ``params`` (trials in order): standard normals for
    each stimulus slot that carries noise (DM and DMS trials, slots of nonzero length), zeros
    elsewhere. A trial's draws depend only on the trials before it, never on those after."""
    g = params["task_id"]
    n = g.shape[0]
    fam = TABLE["family"][g]
    # DM and DMS show a first stimulus; DMS and delayed DM a second one (layout's slots)
    noisy = np.stack([fam != 0, (fam == 2) | ((fam == 1) & TABLE["delayed"][g])], axis=1)
    out = np.zeros((n, *NOISE_SHAPE), dtype=np.float32)
    out[noisy] = rng.standard_normal((int(noisy.sum()), *NOISE_SHAPE[1:]), dtype=np.float32)
    return out


def render(params: dict[str, np.ndarray], noise: np.ndarray | None = None) -> Trials:
    """Inputs [T, B, 33], targets [T, B] and decision mask of drawn ``params`` (T = longest).

    Fixation input is 1 on every step before the decision period and 0 from its first step.
    ``noise`` (from :func:`draw_noise`, or None for noise-free inputs) is added, times sigma
    0.1, to the stimulus channels of DM and DMS trials during their stimulus periods: step s of
    slot k of trial b gets ``noise[b, k, s]``, so each trial reads only its own draws.
    """
    lay = layout(params)
    dur = lay["durations"]
    ends = np.cumsum(dur, axis=1)
    lengths = ends[:, 4]
    n = lengths.shape[0]
    t_max = int(lengths.max()) if n else 0
    t = np.arange(t_max)[:, None]
    obs = np.zeros((t_max, n, N_OBS), dtype=np.float32)
    dec_start = ends[:, 3]
    obs[:, :, 0] = t < dec_start
    in_s1 = (t >= ends[:, 0]) & (t < ends[:, 1])
    in_s2 = (t >= ends[:, 2]) & (t < ends[:, 3])
    decision = (t >= dec_start) & (t < lengths)
    for where, content in ((in_s1, lay["stim1"]), (in_s2, lay["stim2"])):
        ti, bi = np.nonzero(where)
        obs[ti, bi, 1:] = content[bi]
    rt = lay["decision_stim"].any(axis=1)
    if rt.any():
        ti, bi = np.nonzero(decision & rt)
        obs[ti, bi, 1:] = lay["decision_stim"][bi]
    if noise is not None:
        if noise.shape != (n, *NOISE_SHAPE):
            raise NeurosheetError(f"noise must have shape {(n, *NOISE_SHAPE)}, got {noise.shape}")
        noisy = lay["noise"].any(axis=1)
        for slot, where, start in ((0, in_s1, ends[:, 0]), (1, in_s2, ends[:, 2])):
            ti, bi = np.nonzero(where & noisy)
            if ti.size:
                eps = noise[bi, slot, ti - start[bi]]
                obs[ti, bi] += eps * np.float32(SIGMA) * lay["noise"][bi]
    step = t - dec_start
    seq_dir = TABLE["seq_dir"][params["task_id"]]
    ring = params["target"] + seq_dir * step
    # reference label wrap: class (k + 1) mod 16, so ring 15 -> class 0 and 16 never occurs
    labels = np.where(params["reference"], (ring + 1) % N_RING, 1 + ring % N_RING)
    targets = np.where(decision & params["respond"], labels, 0).astype(np.int64)
    return Trials(obs, targets, decision, lengths.astype(np.int64), dur,
                  {**params, "durations": dur})


def generate(task_ids: np.ndarray, rng: np.random.Generator, noise: bool = True,
             quirks: ReferenceQuirks | None = None) -> Trials:
    """Draw and render trials for registry indices ``task_ids`` (any mix of tasks): first every
    trial's parameters, then (with ``noise``) every trial's noise, all from ``rng``."""
    params = draw_params(task_ids, rng, quirks)
    return render(params, draw_noise(params, rng) if noise else None)
