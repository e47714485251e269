"""The rate model's forward pass as it was on main at 6c51170 (before the fused engine), kept
only so the benchmarks can time "today's eager step" in the same run as the new code.

It uses the model's own parameters and its eager sparse operator (``model.rec.operator()``,
now with int32 indices, which is a little faster than it was: the baseline is, if anything,
flattered), draws the recurrent noise with one ``torch.randn`` per sub-step, and computes the
readout on the transposed ``[T, B, N]`` view, exactly as the old code did.
"""

from __future__ import annotations

import math

import torch

from neurosheet.rate.model import RateOutput, RateRNN


def legacy_forward(model: RateRNN, inputs: torch.Tensor, generator: torch.Generator | None = None,
                   substeps: int | None = None) -> RateOutput:
    """``model(inputs, generator=..., substeps=...)`` computed the way main@6c51170 did."""
    steps, batch, _ = inputs.shape
    k = substeps or model.params.substeps
    a = model.params.substep_alpha(k)
    if model.training and model.in_noise > 0:
        inputs = inputs + model.in_noise * torch.randn(inputs.shape, generator=generator)
    drive = (inputs @ model.inp.dense().T + model.b_rec).transpose(1, 2).unbind(0)
    x = inputs.new_zeros(model.graph.n, batch)
    w_rec = model.rec.operator()
    noise_scale = math.sqrt(2.0 / a) * model.rec_noise if model.training else 0.0
    rates = []
    r = model.act(x)
    for t in range(steps):
        for _ in range(k):
            total = w_rec(r, add=drive[t])
            if noise_scale:
                total = total + noise_scale * torch.randn(x.shape, generator=generator)
            x = total if a == 1.0 else torch.lerp(x, total, a)
            r = model.act(x)
        rates.append(r)
    r = torch.stack(rates).transpose(1, 2)  # [T, B, N]
    return RateOutput(model.out(r) + model.b_out, r)
