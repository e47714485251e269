"""Spike-aware fine-tuning step cost: the fused spiking engine vs the eager torch module, one run.

One fine-tuning step as ``neurosheet finetune`` takes it (batch 32 of real demo-suite trials,
forward, masked cross-entropy, backward, gradient clipping, Adam), on the same circuit, batches
and K for both engines, timed by the rules in ``benchmarks/_timing.py`` (1 thread, warm-up,
round-robin repeats, median and min-max of the thread's CPU time, wall time beside it):

1. the demo network (N = 144, 14%) at K = 20 (the default) and K = 100 (1 ms steps);
2. an N = 256 sheet at 5% (radius rule) at K = 20.

The circuits are conversions (the default recipe) of the demo run given with ``--run DIR``
(``neurosheet train --preset demo --suite demo``), else of untrained rate circuits on the same
graphs (calibrated to a demo-like ~20 Hz); the mean firing rate is printed, since the
event-driven forward pass costs with it.

    python benchmarks/bench_finetune.py [--run DIR] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import Timing, header, interleaved, load

from neurosheet.graph.circuit import Circuit
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.training import masked_loss
from neurosheet.spiking import fused
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.finetune import FinetuneConfig, param_groups
from neurosheet.spiking.network import SpikingSheet
from neurosheet.spiking.persist import calibration_batch, valid_steps


def demo_circuit(run: str | None) -> Circuit:
    """The demo run's rate circuit, or an untrained one on the demo preset's graph."""
    if run:
        from neurosheet.graph.circuit import load_run_circuit

        return load_run_circuit(run)
    return sheet_circuit(None, 0.0)


def sheet_circuit(n: int | None, density: float) -> Circuit:
    """An untrained rate circuit for the demo suite: the demo graph (n None) or an N-neuron
    radius sheet at ``density``, the demo preset's dynamics and initial recurrent weights."""
    from neurosheet.rate.config import load_model_preset
    from neurosheet.rate.model import RateRNN
    from neurosheet.rate.training import make_graph
    from neurosheet.tasks import N_OUT, TrialSampler, load_suite

    preset, _ = load_model_preset("demo")
    suite = load_suite("demo")
    n_in = TrialSampler(suite.tasks, seed=0).n_inputs
    if n is None:
        g = make_graph(preset.sheet, n_in, N_OUT, 0)
    else:
        g = attach_projections(build_graph(make_sheet(n), "radius", density=density, seed=0),
                               n_in, N_OUT)
    from neurosheet.graph.circuit import RateParams

    dyn = preset.dynamics
    params = RateParams(dyn.activation, dyn.tau_ms, dyn.dt_ms, dyn.substeps)
    c = RateRNN(g, params, gain=dyn.gain, seed=0).to_circuit()
    # positive input weights and a small bias, so task inputs drive the untrained sheet (as
    # spiking.demo.random_circuit): a silent circuit would time nothing event-driven
    c = c.with_weights(w_in=np.abs(c.w_in), b_rec=np.full(g.n, 0.1, np.float32))
    return Circuit(c.graph, c.w_rec, c.w_in, c.b_rec, c.w_out, c.b_out, c.params, suite.tasks)


def stepper(sc, engine: str, data: list, k: int):
    """One fine-tuning step per call (finetune.py's loop body), cycling through ``data``."""
    from snntorch import surrogate

    cfg = FinetuneConfig()
    net = SpikingSheet(sc, surrogate=surrogate.fast_sigmoid(slope=cfg.slope),
                       surrogate_dt_ms=cfg.surrogate_dt_ms)
    opt = torch.optim.Adam(param_groups(net, cfg.lr))
    state = {"i": 0}

    def step() -> None:
        x, y, m = data[state["i"] % len(data)]
        state["i"] += 1
        out = fused.run(net, x, substeps=k, engine=engine)
        loss = masked_loss(out.logits, y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
    return step


def converted(rate: Circuit, k: int, **knobs: object):
    """The conversion of ``rate`` at K = ``k`` (as persist.spiking_for_run converts a run)."""
    cal = calibration_batch(rate, 64, 0)
    return convert(rate, cal.inputs, ConversionConfig(substeps=k, **knobs), mask=cal.decision,
                   valid=valid_steps(cal))


def compare(title: str, sc, data: list, k: int, repeats: int) -> None:
    """Time one fine-tuning step of ``sc`` at K = ``k`` on both engines, round-robin."""
    with torch.no_grad():
        out = SpikingSheet(sc, trainable=False)(data[0][0], substeps=k)
    inside = data[0][2].gt(0)  # steps inside the trials (the loss mask's support)
    spikes = float((out.counts * inside.unsqueeze(-1)).sum())
    hz = spikes / (float(inside.sum()) * sc.n * sc.task_dt_ms / 1000.0)
    steps = {e: stepper(sc, e, data, k) for e in ("eager", "fused")}
    t: dict[str, Timing] = interleaved(steps, repeats)
    e, f = t["eager"], t["fused"]
    print(f"\n{title}: N={sc.n}, {sc.synapses} synapses ({sc.graph.density:.1%}), K={k} "
          f"(dt {sc.task_dt_ms / k:g} ms), T={data[0][0].shape[0]}, batch "
          f"{data[0][0].shape[1]}, ~{hz:.1f} Hz mean rate (first batch), {repeats} repeats")
    print(f"  {'engine':<8}{'CPU ms median':>14}{'(min-max)':>18}{'wall ms':>10}")
    for name, tm in t.items():
        print(f"  {name:<8}{tm.median * 1e3:>14.1f}{tm.spread():>18}"
              f"{tm.wall_median() * 1e3:>10.1f}")
    print(f"  -> fused vs eager: {e.median / f.median:.1f}x CPU, "
          f"{e.wall_median() / f.wall_median():.1f}x wall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a trained demo run (else untrained circuits)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    header(args.threads)
    if not fused.available():
        sys.exit("the fused spiking kernel is not available here (no C compiler?)")
    from neurosheet.tasks import TrialSampler, load_suite

    sampler = TrialSampler(load_suite("demo").tasks, seed=0)
    data = [(torch.as_tensor(b.inputs), torch.as_tensor(b.targets), torch.as_tensor(b.mask))
            for b in (sampler.sample(32) for _ in range(3))]
    demo = demo_circuit(args.run)
    src = f"demo run {args.run}" if args.run else "untrained demo-graph circuit"
    for k in (20, 100):
        compare(f"[1] {src}, converted", converted(demo, k), data, k, args.repeats)
    tuned = Path(args.run or "-") / "spiking" / "circuit.npz"
    if args.run and tuned.exists():
        from neurosheet.spiking.model import SpikingCircuit

        sc = SpikingCircuit.load(tuned, demo.graph)
        for k in (20, 100):
            compare(f"[1] {src}, fine-tuned (K {sc.substeps})", sc, data, k, args.repeats)
    # untrained: calibrated to ~20 Hz (the fine-tuned demo circuit's activity), no gate
    sheet = converted(sheet_circuit(256, 0.05), 20, rate_hz=3000.0, gate="off")
    compare("[2] N=256 5% sheet, untrained", sheet, data, 20, args.repeats)
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
