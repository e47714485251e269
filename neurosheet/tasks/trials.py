"""Vectorized trial generation for any mix of Mod-Cog tasks: one numpy pass per batch.

Every trial, whatever its task, is laid out as five periods (steps at dt = 100 ms):
``fixation, stim1, delay, stim2, decision`` where unused periods have length 0 (Go: stim1 is
the stimulus, stim2 is empty; reaction-time Go: only fixation and decision; DM: stim1 shows
both stimuli, or stim1/stim2 around a delay for the delayed variants; DMS: sample/test).
:func:`draw_params` draws every trial's parameters from one seeded Generator;
:func:`render` turns them into inputs and targets. ``envs.ModCogEnv`` is the same definition
written trial by trial on neurogym's ``TrialEnv``; tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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


def ring_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular distance between ring indices, in ring units (0..8)."""
    d = np.abs(np.asarray(a) - np.asarray(b)) % N_RING
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


def draw_params(task_ids: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw every random quantity of the trials of ``task_ids`` (registry indices) from ``rng``.

    Returns arrays of length B: ``fixation_steps, delay_steps, modality`` (-1 for DM),
    ``loc1, loc2`` (go: answer, -; dm: stimulus 1, 2; dms: sample, test), ``strength1,
    strength2`` ([B, 2] per modality), ``match``, ``respond``, ``answer`` (ring unit before the
    int rotation; -1 on fixate trials), ``int_shift`` and ``target`` (answer after int).
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

    # DM: stimulus strengths per modality, first (a) and second (b) location.
    delayed = TABLE["delayed"][g]
    a = np.where(delayed[:, None], pairs[..., 0], 0.5 + coh / 2)
    b = np.where(delayed[:, None], pairs[..., 1], 0.5 - coh / 2)
    shown = TABLE["stim_mod"][g]
    a, b = a * shown, b * shown
    w = TABLE["w_mod"][g]
    ev_a, ev_b = (w * a).sum(1), (w * b).sum(1)
    tie = is_dm & np.isclose(ev_a, ev_b)  # multisensory ties have no answer: swap modality 2
    a[tie, 1], b[tie, 1] = b[tie, 1].copy(), a[tie, 1].copy()
    ev_a, ev_b = (w * a).sum(1), (w * b).sum(1)
    loc2_dm = (loc1 + offset) % N_RING
    answer_dm = np.where(ev_a > ev_b, loc1, loc2_dm)

    # DMS: test location from match / category rules.
    category = TABLE["category"][g]
    cat_s = loc1 // HALF
    cat_t = np.where(match, cat_s, 1 - cat_s)
    test = np.where(category, half + HALF * cat_t, np.where(match, loc1, (loc1 + HALF) % N_RING))
    respond_dms = match == TABLE["matchgo"][g]

    onehot = _onehot_mod(modality)
    strength1 = np.where(is_dm[:, None], a, onehot)
    strength2 = np.where(is_dm[:, None], b, np.where(is_dms[:, None], onehot, 0.0))
    loc2 = np.where(is_dm, loc2_dm, np.where(is_dms, test, -1))
    respond = np.where(is_dms, respond_dms, True)
    answer = np.where(is_go, loc1, np.where(is_dm, answer_dm, test))

    base_delay = np.where(is_go, TABLE["delay0"][g],
                          np.where(is_dm, np.where(delayed, 5, 0), delay_dms))
    delay = np.where(int_dir != 0, delay_int, base_delay)
    delay = np.where(TABLE["reaction"][g], 0, delay)
    int_shift = int_dir * delay
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
        TABLE["decision"][g],
    ], axis=1).astype(np.int64)
    stim_loc1 = np.where(is_go, (params["loc1"] + HALF * TABLE["anti"][g]) % N_RING,
                         params["loc1"])
    c1 = params["strength1"][:, :, None] * BUMP[stim_loc1][:, None, :]  # [n, 2, 16]
    c2 = params["strength2"][:, :, None] * BUMP[np.maximum(params["loc2"], 0)][:, None, :]
    first = c1 + together[:, None, None] * c2
    second = ~together[:, None, None] * c2
    noise = np.where(is_dm[:, None], 1.0, np.where(fam[:, None] == 2,
                                                   params["strength1"], 0.0))  # [n, 2]
    zeros = np.zeros((n, 2 * N_RING))
    return {
        "durations": durations,
        "stim1": np.where(reaction[:, None], zeros, first.reshape(n, -1)).astype(np.float32),
        "stim2": second.reshape(n, -1).astype(np.float32),
        "decision_stim": np.where(reaction[:, None], first.reshape(n, -1), zeros
                                  ).astype(np.float32),
        "noise": np.repeat(noise, N_RING, axis=1).astype(np.float32),
    }


def render(params: dict[str, np.ndarray], rng: np.random.Generator | None,
           noise: bool = True) -> Trials:
    """Inputs [T, B, 33], targets [T, B] and decision mask of drawn ``params`` (T = longest).

    Fixation input is 1 on every step before the decision period and 0 from its first step;
    noise (sigma 0.1) is added from ``rng`` to the stimulus channels of DM and DMS trials
    during their stimulus periods when ``noise`` is true.
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
    if noise and rng is not None:
        noisy = (in_s1 | in_s2) & lay["noise"].any(axis=1)
        ti, bi = np.nonzero(noisy)
        if ti.size:
            eps = rng.standard_normal((ti.size, 2 * N_RING), dtype=np.float32)
            obs[ti, bi, 1:] += eps * np.float32(SIGMA) * lay["noise"][bi]
    step = t - dec_start
    seq_dir = TABLE["seq_dir"][params["task_id"]]
    labels = 1 + (params["target"] + seq_dir * step) % N_RING
    targets = np.where(decision & params["respond"], labels, 0).astype(np.int64)
    return Trials(obs, targets, decision, lengths.astype(np.int64), dur,
                  {**params, "durations": dur})


def generate(task_ids: np.ndarray, rng: np.random.Generator, noise: bool = True) -> Trials:
    """Draw and render trials for registry indices ``task_ids`` (any mix of tasks)."""
    return render(draw_params(task_ids, rng), rng, noise=noise)
