"""The cortical sheet: where each neuron sits in 2D.

A :class:`Sheet` is just positions plus the geometry needed to measure distances between
them (physical size and whether the boundary wraps around as a torus). Distances are in
*sheet units*; the default layouts use a grid spacing of 1, so a radius of 3 means
"three neighbours away", as in the LM-RNN tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from neurosheet.core.errors import NeurosheetError
from neurosheet.core.geometry import displacement, norm

Layout = Literal["grid", "jittered", "random"]
LAYOUTS: tuple[str, ...] = ("grid", "jittered", "random")


@dataclass(frozen=True, eq=False)
class Sheet:
    """N neurons on a ``width x height`` sheet.

    Attributes:
        positions: float64 array [N, 2] of (x, y) in ``[0, width) x [0, height)``.
        width, height: physical size of the sheet (sheet units).
        periodic: if True the sheet is a torus and distances use the minimum image.
        layout: how the positions were made (``grid``, ``jittered``, ``random`` or ``custom``).
        seed: the seed that made them (None for deterministic layouts).
    """

    positions: np.ndarray
    width: float
    height: float
    periodic: bool = False
    layout: str = "custom"
    seed: int | None = None
    _tree: cKDTree | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        pos = np.ascontiguousarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise NeurosheetError(f"sheet positions must have shape [N, 2], got {pos.shape}")
        if pos.shape[0] == 0:
            raise NeurosheetError("a sheet needs at least one neuron (N > 0)")
        if not (self.width > 0 and self.height > 0):
            raise NeurosheetError(f"sheet size must be positive, got {self.width} x {self.height}")
        if not np.isfinite(pos).all():
            raise NeurosheetError("sheet positions contain NaN or infinite values")
        if self.periodic:
            pos = np.mod(pos, [self.width, self.height])
            # np.mod can return exactly the box size for tiny negatives; KD-tree wants [0, L).
            pos[pos[:, 0] >= self.width, 0] = 0.0
            pos[pos[:, 1] >= self.height, 1] = 0.0
        pos.setflags(write=False)
        object.__setattr__(self, "positions", pos)

    @property
    def n(self) -> int:
        """Number of neurons."""
        return int(self.positions.shape[0])

    @property
    def area(self) -> float:
        return float(self.width * self.height)

    @property
    def tree(self) -> cKDTree:
        """KD-tree over the positions (periodic when the sheet is a torus); built once."""
        if self._tree is None:
            box = [self.width, self.height] if self.periodic else None
            object.__setattr__(self, "_tree", cKDTree(self.positions, boxsize=box))
        return self._tree  # type: ignore[return-value]

    @property
    def max_distance(self) -> float:
        """The largest possible distance between two points of the sheet."""
        if self.periodic:
            return math.hypot(self.width / 2, self.height / 2)
        return math.hypot(self.width, self.height)

    @property
    def period(self) -> np.ndarray | None:
        """``[width, height]`` on a torus (the period of the minimum image), None on a flat sheet."""
        return np.array([self.width, self.height], dtype=np.float64) if self.periodic else None

    def displacement(self, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
        """Vector from neuron ``pre`` to neuron ``post`` (minimum image on a torus), shape [E, 2]."""
        return displacement(self.positions[np.asarray(post)], self.positions[np.asarray(pre)],
                            self.period)

    def distance(self, pre: np.ndarray, post: np.ndarray, metric: str = "euclidean") -> np.ndarray:
        """Distance between paired neurons ``pre[k]``, ``post[k]`` (``euclidean`` or ``manhattan``)."""
        return norm(self.displacement(pre, post), metric)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for saving (see :mod:`neurosheet.graph.sheetgraph` for the file format)."""
        return {
            "positions": np.asarray(self.positions),
            "size": np.array([self.width, self.height], dtype=np.float64),
            "periodic": np.array(self.periodic),
            "layout": np.array(self.layout),
            "seed": np.array(-1 if self.seed is None else self.seed, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Sheet:
        seed = int(arrays["seed"])
        return cls(
            positions=np.asarray(arrays["positions"], dtype=np.float64),
            width=float(arrays["size"][0]),
            height=float(arrays["size"][1]),
            periodic=bool(arrays["periodic"]),
            layout=str(arrays["layout"]),
            seed=None if seed < 0 else seed,
        )


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the most nearly square grid holding at least ``n`` cells."""
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    return rows, cols


def make_sheet(
    n: int,
    layout: str = "grid",
    *,
    spacing: float = 1.0,
    periodic: bool = False,
    jitter: float = 0.3,
    seed: int | None = 0,
) -> Sheet:
    """Place ``n`` neurons on a sheet.

    Args:
        n: number of neurons (> 0).
        layout: ``grid`` (square lattice at cell centres, row-major), ``jittered`` (lattice
            plus a uniform offset of up to ``jitter * spacing / 2`` per axis) or ``random``
            (uniform over the sheet).
        spacing: lattice spacing; the sheet is ``cols * spacing`` by ``rows * spacing``.
        periodic: wrap the sheet into a torus.
        jitter: jitter amplitude as a fraction of the spacing (``jittered`` only), in [0, 1].
        seed: seed of the random layouts (ignored by ``grid``).
    """
    if not isinstance(n, int | np.integer) or n <= 0:
        raise NeurosheetError(f"number of neurons must be a positive integer, got {n}")
    if layout not in LAYOUTS:
        raise NeurosheetError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not spacing > 0:
        raise NeurosheetError(f"grid spacing must be positive, got {spacing}")
    n = int(n)
    rows, cols = grid_shape(n)
    width, height = cols * spacing, rows * spacing
    if layout == "random":
        rng = np.random.default_rng(seed)
        pos = rng.uniform(0.0, 1.0, size=(n, 2)) * [width, height]
        return Sheet(pos, width, height, periodic, layout, seed)
    idx = np.arange(n)
    pos = np.stack([(idx % cols + 0.5) * spacing, (idx // cols + 0.5) * spacing], axis=1)
    if layout == "jittered":
        if not 0.0 <= jitter <= 1.0:
            raise NeurosheetError(f"jitter must be in [0, 1], got {jitter}")
        rng = np.random.default_rng(seed)
        pos = pos + rng.uniform(-0.5, 0.5, size=(n, 2)) * jitter * spacing
        return Sheet(pos, width, height, periodic, layout, seed)
    return Sheet(pos, width, height, periodic, layout, None)
