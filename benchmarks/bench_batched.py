"""Throughput of K networks trained together (train_many) vs one after another, one run.

K = 8 networks of N = 256 (``docs/presets/small-lm.toml``: radius wiring at 8%, 2 sub-steps,
batch 64, seeds 0..7) on the ``modcog-int`` suite. One timed round = one optimizer step of each
of the K networks, trial sampling included (it is part of every variant's step):

- one after another, today's eager step (main at 6c51170, ``benchmarks/_legacy.py``);
- one after another, the fused engine (``train``'s step, each network alone);
- together: the K recurrent loops as one block-diagonal fused call (``joint_step``, what
  ``neurosheet.rate.batched.train_many`` runs).

Each variant trains its own K networks from the same seeds; timing rules as in
``benchmarks/_timing.py``. Prints network-steps per second and the ratios.

    python benchmarks/bench_batched.py [--k 8] [--n 256] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _legacy import legacy_forward
from _timing import header, interleaved, load, peak_gflops

from neurosheet.rate.batched import joint_step
from neurosheet.rate.config import load_model_preset, with_overrides
from neurosheet.rate.training import (
    _train_step,
    apply_update,
    batch_loss,
    checked_value,
    next_batch,
    train_session,
)

PRESET = Path(__file__).resolve().parents[1] / "docs" / "presets" / "small-lm.toml"


def legacy_step(req) -> None:
    """``_train_step`` with main@6c51170's forward pass."""
    st, tc = req.state, req.config
    x, y, m, k = next_batch(st, tc, req.device)
    out = legacy_forward(st.model, x, st.noise, k)
    loss = batch_loss(st, tc, out, y, m)
    checked_value(st, tc, loss)
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    apply_update(st, tc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--suite", default="modcog-int")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    header(args.threads)
    peak = peak_gflops()
    print(f"measured FP32 peak (2048^3 sgemm): {peak:.1f} GFLOP/s")
    base, _ = load_model_preset(PRESET)
    preset = with_overrides(base, {"sheet": {"n": args.n}, "training": {"threads": args.threads}})
    tmp = Path(tempfile.mkdtemp(prefix="bench_batched-"))
    sessions, reqs = [], {}
    for variant in ("legacy", "fused", "together"):
        group = [train_session(tmp / f"{variant}{i}", preset, args.suite, seed=i,
                               progress=False) for i in range(args.k)]
        sessions += group
        reqs[variant] = [next(s) for s in group]  # built, initial evaluation done
    m = reqs["fused"][0].state.model
    assert all(r.state.model.uses_fused() for r in reqs["together"])
    structures: dict = {}
    fns = {
        "one after another, today's eager (main@6c51170)": lambda: [legacy_step(r) for r in
                                                                     reqs["legacy"]],
        "one after another, fused engine": lambda: [
            _train_step(r.state, r.config, r.device) for r in reqs["fused"]],
        "together, one block-diagonal fused call": lambda: joint_step(reqs["together"],
                                                                      structures),
    }
    t = interleaved(fns, args.repeats)
    # executed arithmetic per round, from the mean trial length of an independent sampler of the
    # same suite (all variants see the same trials: same seeds)
    from neurosheet.tasks import TrialSampler, load_suite

    suite = load_suite(args.suite)
    probe = TrialSampler(suite.tasks, seed=1234, weights=suite.weights)
    mean_t = sum(probe.sample(preset.training.batch).inputs.shape[0] for _ in range(20)) / 20
    g, b, k = m.graph, preset.training.batch, preset.dynamics.substeps
    n_in, n_out = g.inputs.shape[1], g.readout.shape[0]
    per_net = 2 * b * mean_t * (3 * g.synapses * k + 2 * g.n * n_in + 3 * n_out * g.n)
    work = args.k * per_net
    print(f"\nK={args.k} networks, N={m.graph.n} at {m.graph.density:.2%} "
          f"({m.graph.synapses} synapses each), batch {preset.training.batch}, "
          f"{preset.dynamics.substeps} sub-steps, suite {args.suite}; "
          f"{args.repeats} rounds of one step per network")
    print(f"  {'variant':<48}{'CPU ms/round':>13}{'(min-max)':>16}{'wall ms':>9}"
          f"{'net-steps/s':>12}{'~GFLOP/s':>9}{'% peak':>7}{'vs first':>9}{'vs second':>10}")
    names = list(fns)
    for name in names:
        tm = t[name]
        print(f"  {name:<48}{tm.median * 1e3:>13.1f}{tm.spread():>16}{tm.wall_median() * 1e3:>9.1f}"
              f"{args.k / tm.median:>12.1f}{work / tm.median / 1e9:>9.1f}"
              f"{work / tm.median / 1e9 / peak:>7.1%}{t[names[0]].median / tm.median:>8.2f}x"
              f"{t[names[1]].median / tm.median:>9.2f}x")
    print(f"  -> together vs one after another: {t[names[0]].median / t[names[2]].median:.2f}x "
          f"against today's eager step, {t[names[1]].median / t[names[2]].median:.2f}x against "
          "the fused engine run one network at a time (goal >= 3x)")
    for s in sessions:
        s.close()
    print(load())


if __name__ == "__main__":
    main()
