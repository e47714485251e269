"""The Mod-Cog task registry: 126 stable task names, their definitions and the reference's aliases.

Canonical names are ``<base>``, ``<base>-int{r,l}``, ``<base>-seq{r,l}`` and
``<base>-int{r,l}-seq{r,l}``. The order of :data:`TASKS` is the reference README's 82
(20 base, 22 int, 20 seqr, 20 seql), then the 44 int+seq combinations grouped as
intr-seqr, intr-seql, intl-seqr, intl-seql, so ``TASKS[:82]`` is the published 82-task set
and ``TASKS[:93]`` the reference file's 93 constructors.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from neurosheet.core.errors import NeurosheetError

N_RING = 16  # ring directions per modality
N_OBS = 1 + 2 * N_RING  # fixation + two modality rings = 33
N_OUT = 1 + N_RING  # fixation class 0 + ring classes 1..16 = 17
DT_MS = 100  # one time step
SEQ_DECISION_STEPS = 10  # seq tasks answer for 1000 ms, one ring unit per step
INT_DELAYS_STEPS = tuple(range(12))  # int delays {0, 100, ..., 1100} ms

FAMILIES = ("go", "dm", "dms")


@dataclass(frozen=True)
class BaseTask:
    """One of Yang et al. 2019's 20 tasks, with the parameters of its family's generator."""

    name: str
    family: str  # "go" | "dm" | "dms"
    anti: bool = False  # go: respond opposite the stimulus
    reaction: bool = False  # go: stimulus shown during the decision period, no delay
    delay_ms: int = 0  # go: fixed delay of the base task (0 or 500)
    delayed: bool = False  # dm: two stimuli separated by a delay (dlydm) vs. simultaneous
    w_mod: tuple[float, float] = (1.0, 1.0)  # dm: weight of each modality in the decision
    stim_mod: tuple[bool, bool] = (True, True)  # dm: which modalities carry stimuli
    category: bool = False  # dms: match by ring half instead of location
    matchgo: bool = True  # dms: respond on match (True) or on non-match (False)
    decision_steps: int = 5

    @property
    def has_delay(self) -> bool:
        """True for the 11 tasks whose delay period the int extension can vary."""
        return (self.family == "go" and self.delay_ms > 0) or self.delayed or \
            self.family == "dms"


def _go(name: str, anti: bool, reaction: bool = False, delay_ms: int = 0) -> BaseTask:
    return BaseTask(name, "go", anti=anti, reaction=reaction, delay_ms=delay_ms, decision_steps=5)


def _dm(name: str, delayed: bool, w_mod: tuple[float, float],
        stim_mod: tuple[bool, bool]) -> BaseTask:
    return BaseTask(name, "dm", delayed=delayed, w_mod=w_mod, stim_mod=stim_mod, decision_steps=2)


def _dms(name: str, category: bool, matchgo: bool) -> BaseTask:
    return BaseTask(name, "dms", category=category, matchgo=matchgo, decision_steps=9)


BASE_TASKS: tuple[BaseTask, ...] = (
    _go("go", anti=False),
    _go("rtgo", anti=False, reaction=True),
    _go("dlygo", anti=False, delay_ms=500),
    _go("anti", anti=True),
    _go("rtanti", anti=True, reaction=True),
    _go("dlyanti", anti=True, delay_ms=500),
    _dm("dm1", False, (1, 1), (True, False)),
    _dm("dm2", False, (1, 1), (False, True)),
    _dm("ctxdm1", False, (1, 0), (True, True)),
    _dm("ctxdm2", False, (0, 1), (True, True)),
    _dm("multidm", False, (1, 1), (True, True)),
    _dm("dlydm1", True, (1, 1), (True, False)),
    _dm("dlydm2", True, (1, 1), (False, True)),
    _dm("ctxdlydm1", True, (1, 0), (True, True)),
    _dm("ctxdlydm2", True, (0, 1), (True, True)),
    _dm("multidlydm", True, (1, 1), (True, True)),
    _dms("dms", category=False, matchgo=True),
    _dms("dnms", category=False, matchgo=False),
    _dms("dmc", category=True, matchgo=True),
    _dms("dnmc", category=True, matchgo=False),
)
BASES = {b.name: b for b in BASE_TASKS}
INT_BASES: tuple[str, ...] = tuple(b.name for b in BASE_TASKS if b.has_delay)
_DIR = {"r": 1, "l": -1}


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: a base task plus optional int (delay-rotated) and seq (moving) answers."""

    name: str
    base: BaseTask
    int_dir: int = 0  # +1 (r) / -1 (l): answer rotated by int_dir * delay/100 ring units
    seq_dir: int = 0  # +1 (r) / -1 (l): answer moves one ring unit per step during the decision
    reference_name: str | None = None  # constructor name in the reference mod_cog_tasks.py

    @property
    def family(self) -> str:
        return self.base.family

    @property
    def decision_steps(self) -> int:
        return SEQ_DECISION_STEPS if self.seq_dir else self.base.decision_steps

    @property
    def group(self) -> str:
        """``base``, ``int``, ``seq`` or ``int-seq``."""
        return {(0, 0): "base", (1, 0): "int", (0, 1): "seq", (1, 1): "int-seq"}[
            (int(bool(self.int_dir)), int(bool(self.seq_dir)))]

    def delay_steps_range(self) -> tuple[int, int]:
        """Smallest and largest delay-period length in steps."""
        b = self.base
        if self.int_dir:
            return INT_DELAYS_STEPS[0], INT_DELAYS_STEPS[-1]
        if b.family == "go":
            return (0, 0) if b.reaction else (b.delay_ms // DT_MS,) * 2
        if b.family == "dm":
            return (5, 5) if b.delayed else (0, 0)
        return 2, 11  # dms: delay uniform over {200, ..., 1100} ms, drawn per trial

    def length_range(self) -> tuple[int, int]:
        """Shortest and longest trial in steps (dt = 100 ms)."""
        b = self.base
        d0, d1 = self.delay_steps_range()
        if b.family == "go":
            fixed = 5 + (0 if b.reaction else 5)
            f0 = f1 = 0
        elif b.family == "dm":
            fixed = 5 + (5 if b.delayed else 0)
            f0, f1 = 2, 4
        else:
            fixed, f0, f1 = 3 + 5 + 5, 0, 0
        return fixed + f0 + d0 + self.decision_steps, fixed + f1 + d1 + self.decision_steps


def _suffix(int_dir: int, seq_dir: int) -> str:
    parts = []
    if int_dir:
        parts.append("int" + ("r" if int_dir > 0 else "l"))
    if seq_dir:
        parts.append("seq" + ("r" if seq_dir > 0 else "l"))
    return "".join("-" + p for p in parts)


def _build() -> tuple[TaskSpec, ...]:
    specs: list[TaskSpec] = [TaskSpec(b.name, b, reference_name=b.name) for b in BASE_TASKS]
    for name in INT_BASES:
        for d in "rl":
            specs.append(TaskSpec(f"{name}-int{d}", BASES[name], int_dir=_DIR[d],
                                  reference_name=f"{name}int{d}"))
    for d in "rl":
        for b in BASE_TASKS:
            specs.append(TaskSpec(f"{b.name}-seq{d}", b, seq_dir=_DIR[d],
                                  reference_name=f"{b.name}seq{d}"))
    for di, ds in (("r", "r"), ("r", "l"), ("l", "r"), ("l", "l")):
        for name in INT_BASES:
            ref = f"{name}intseq" if (di, ds) == ("r", "r") else None
            specs.append(TaskSpec(f"{name}-int{di}-seq{ds}", BASES[name], int_dir=_DIR[di],
                                  seq_dir=_DIR[ds], reference_name=ref))
    return tuple(specs)


SPECS: tuple[TaskSpec, ...] = _build()
TASKS: tuple[str, ...] = tuple(s.name for s in SPECS)
TASK_INDEX: dict[str, int] = {name: i for i, name in enumerate(TASKS)}
_BY_NAME = {s.name: s for s in SPECS}


def _compact(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _aliases() -> dict[str, str]:
    """Compact spelling (lower case, no separators) -> canonical name."""
    table: dict[str, str] = {}
    for s in SPECS:
        table[_compact(s.name)] = s.name
        if s.reference_name:
            table[_compact(s.reference_name)] = s.name
    return table


ALIASES: dict[str, str] = _aliases()


def resolve_task(name: str) -> str:
    """Canonical name of a task given its name or an alias (reference names like ``dlygointr``,
    ``dlygointseq``; any case, ``-``/``_`` ignored); unknown names list the closest valid ones."""
    key = _compact(str(name))
    if key in ALIASES:
        return ALIASES[key]
    raise NeurosheetError(unknown_task_message(str(name)))


def unknown_task_message(name: str) -> str:
    """``unknown task 'x'; did you mean: a, b?`` (canonical names, closest first)."""
    key = _compact(name)
    close = difflib.get_close_matches(key, list(ALIASES), n=8, cutoff=0.5)
    names: list[str] = []
    for c in close:
        if ALIASES[c] not in names:
            names.append(ALIASES[c])
    hint = f"did you mean: {', '.join(names[:5])}?" if names else \
        "see `neurosheet tasks list` for the 126 valid names"
    return f"unknown task {name!r}; {hint}"


def task_spec(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of a task name or alias."""
    return _BY_NAME[resolve_task(name)]


def resolve_tasks(names: object) -> tuple[str, ...]:
    """Canonical names of a sequence of task names; duplicates are an error."""
    if isinstance(names, str):
        names = [names]
    out = tuple(resolve_task(n) for n in names)  # type: ignore[union-attr]
    if len(set(out)) != len(out):
        dup = sorted({n for n in out if out.count(n) > 1})
        raise NeurosheetError(f"task list names {', '.join(dup)} more than once")
    if not out:
        raise NeurosheetError("the task list is empty")
    return out
