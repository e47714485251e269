"""BIMT settings: :class:`BimtConfig` (the ``[bimt]`` table of a model preset) and lambda schedules.

Pydantic only, so that validating a preset never imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Multipliers of the base lambda at fractions of training (reference notebooks, bimt-reference §1.2).
SCHEDULES: dict[str, tuple[tuple[float, float], ...]] = {
    "constant": (),
    "bump": ((0.25, 10.0), (0.75, 1.0)),   # fit, compress, recover (symbolic, modular addition)
    "ramp": ((0.25, 10.0), (0.5, 100.0)),  # keep compressing (MNIST)
}


# ----------------------------------------------------------------------------- config
class BimtConfig(BaseModel):
    """Connection-cost regularizer and swap schedule (the ``[bimt]`` table of a model preset).

    Defaults follow the MNIST BIMT notebook; ``swap_every = 0`` turns swaps off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lam: float = Field(0.01, ge=0, description="base lambda (0 = no regularization)")
    schedule: Literal["constant", "bump", "ramp"] = "bump"
    milestones: list[tuple[float, float]] | None = Field(
        None, description="(fraction of training, multiplier of lam) pairs; overrides schedule")
    locality: float = Field(2.0, ge=0, description="A: cost per unit of wire length (0 = plain L1)")
    l0: float = Field(0.5, ge=0, description="cost of a connection of length 0")
    metric: Literal["manhattan", "euclidean"] = "manhattan"
    reduction: Literal["mean", "sum"] = "mean"
    unit_square: bool = Field(True, description="measure distances with the sheet scaled to [0,1]")
    penalize_bias: bool = Field(False, description="add R(l0 |b_rec|) as the reference's bias term")
    swap_every: int = Field(500, ge=0, description="swap pass every this many optimizer steps")
    swap_top_k: int = Field(30, ge=1, description="neurons (highest total |weight|) moved per pass")
    permute_optimizer: bool = Field(True, description="permute Adam moments with the weights")
    prune: float | None = Field(None, ge=0, description="after training, prune |w| <= prune")
    prune_relative: bool = Field(True, description="prune is a fraction of each matrix's max|W|")

    @model_validator(mode="after")
    def _check_milestones(self) -> BimtConfig:
        ms = self.milestones or []
        fracs = [f for f, _ in ms]
        if any(not 0.0 <= f <= 1.0 for f in fracs) or fracs != sorted(fracs):
            raise ValueError("milestones need increasing fractions in [0, 1]")
        if any(m < 0 for _, m in ms):
            raise ValueError("milestone multipliers must be >= 0")
        return self

    @property
    def mode(self) -> str:
        """``none``, ``l1``, ``l1+local``, ``l1+swap`` or ``bimt`` (the reference's ablation ladder)."""
        swaps = self.swap_every > 0
        if self.lam == 0:
            return "swap-only" if swaps else "none"
        if self.locality == 0:
            return "l1+swap" if swaps else "l1"
        return "bimt" if swaps else "l1+local"

    def lam_at(self, step: int, total_steps: int) -> float:
        """lambda at optimizer step ``step`` of ``total_steps`` (piecewise constant)."""
        mult = 1.0
        frac = step / max(total_steps, 1)
        for f, m in self.milestones if self.milestones is not None else SCHEDULES[self.schedule]:
            if frac >= f:
                mult = m
        return self.lam * mult
