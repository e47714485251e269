"""Spiking backends at scale: N = 1,024 to 65,536 neurons, 1 trial and 16, float32 on both.

For each sheet size, on a radius sheet with a balanced E/I circuit that fires at 10-30 Hz
without training (``neurosheet.spiking.demo.balanced_circuit``: 1 ms steps, 20 ms task steps),
this prints one row per (backend, variant, trials): the mean firing rate it measured, the wall
time per trial-second (simulated time x trials) after a warm-up run and the CPU time per
trial-second (process + children: what a loaded shared machine does not steal; not for Brian2
cython, whose call also builds the network), the build time (module /
Brian2 network + compile; for Brian2 cpp_standalone the first build and the reuse of the cached
build in a fresh process, separately), the peak resident memory of the process doing it, and
whether its spike counts equal the torch event-driven variant's.

Variants: torch ``events`` (event-driven scatter), torch ``csr`` (the sparse product every
step), torch ``auto`` (per step the one the cost model of ``neurosheet.spiking.events`` picks,
the backend's default; the steps that took the scatter are printed), Brian2 ``cython`` and
Brian2 ``cpp_standalone`` (the build cached in ``--cache``, run by a second process). Every
(N, variant, trials) runs in a process of its own (clean peak memory). Densities: 5% up to
8,192 neurons; above, the 8,192 sheet's radius (the same neighbourhood: 421 / 431 / 439
synapses per neuron, density 2.6% / 1.3% / 0.67% at 16,384 / 32,768 / 65,536), so a
65,536-neuron sheet holds 28.8 M synapses instead of the 215 M it would at 5%.

    python benchmarks/bench_spiking_scale.py [--quick] [--sizes 1024,8192] [--fit]

``--float64-check N``: instead, torch event-driven vs Brian2 cython in float64 (identical
spikes expected). ``--quick``: 1,024 and 4,096 neurons, 0.2 s simulated (a smoke test). ``--fit``: instead of
the table, time one step's recurrent input by scatter vs CSR vs dense (thread CPU time, the
data of ``neurosheet.spiking.events.EVENT_COSTS``) and print the model next to it, plus the
other event-driven candidate, ``spsp``: the CSR matrix times the spike-sparse matrix (2% of
the neurons spiking), densified.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _timing import interleaved, load, machine

TASK_DT_MS, K = 20.0, 20  # 1 ms simulation steps
DENSE_FAN_IN_N = 8192     # above this size keep this size's radius (constant fan-in)


def _rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def _cpu() -> float:
    """CPU seconds of this process and its finished children (a shared machine's load does not
    count here, unlike in wall time)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _circuit(n: int):
    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import radius_for_density
    from neurosheet.spiking.demo import balanced_circuit

    if n <= DENSE_FAN_IN_N:
        return balanced_circuit(n, density=0.05, task_dt_ms=TASK_DT_MS, substeps=K)
    radius = radius_for_density(make_sheet(DENSE_FAN_IN_N), 0.05).radius
    return balanced_circuit(n, radius=radius, task_dt_ms=TASK_DT_MS, substeps=K)


def one(n: int, variant: str, trials: int, bio_s: float, cache: str, repeats: int) -> dict:
    """Run one (N, variant, trials) in this process; returns its row."""
    from neurosheet.spiking.demo import random_inputs

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sc = _circuit(n)
    graph_s = time.perf_counter() - t0
    steps = max(1, round(bio_s * 1000 / TASK_DT_MS))
    u = random_inputs(steps, trials, sc.n_inputs, seed=1)
    row = {"n": n, "synapses": sc.synapses, "variant": variant, "trials": trials,
           "bio_s": steps * TASK_DT_MS / 1000, "graph_s": graph_s}
    if variant in ("events", "csr", "auto"):
        from neurosheet.spiking.network import SpikingSheet

        t0 = time.perf_counter()
        net = SpikingSheet(sc, dtype=torch.float32, trainable=False,
                           kernel=variant)
        cur = sc.drive(u)
        with torch.no_grad():
            net(u[:1], current=cur[:1])  # warm-up (and the event structure, built once)
        row["build_s"] = time.perf_counter() - t0
        outs = []

        def run() -> None:
            with torch.no_grad():
                outs.append(net(u, current=cur))

        c0 = _cpu()
        timing = interleaved({"run": run}, repeats=repeats, warmup=0)["run"]
        row["cpu_s"] = (_cpu() - c0) / repeats
        counts = outs[-1].counts.cpu().numpy().round().astype(np.int32)
        row["wall_s"] = timing.wall_median()
        row["propagation"] = net.last_propagation
    else:
        from neurosheet.spiking.backends.brian2 import Brian2Backend

        target = "cython" if variant == "cython" else "cpp_standalone"
        be = Brian2Backend(target=target, build_dir=Path(cache), batch_size=trials,
                           dtype="float32")
        if target == "cython":
            be.run(sc, u[:1])  # warm-up: compiles the Cython code once (cached in --cache)
        res = None
        for _ in range(repeats):  # the last one's times
            c0 = _cpu()
            res = be.run(sc, u)
            # CPU of the whole call: for cpp_standalone (reused build) the binary's run, for
            # cython it would include building the network, so it is not reported
            row["cpu_s"] = _cpu() - c0 if target == "cpp_standalone" else float("nan")
        assert res is not None
        row["build_s"] = res.build_s
        row["wall_s"] = res.run_s  # the simulation (Brian2 network built in build_s)
        row["run_s"] = res.run_s
        row["compiled"] = bool(res.info.get("compiled", target == "cython"))
        counts = res.counts
    row["rate_hz"] = float(counts.sum() / (n * trials * row["bio_s"]))
    row["per_trial_s"] = row["wall_s"] / (row["bio_s"] * trials)
    row["cpu_per_trial_s"] = row["cpu_s"] / (row["bio_s"] * trials)
    row["rss_mb"] = _rss_mb()
    np.save(Path(cache) / f"counts-{n}-{variant}-{trials}.npy", counts)
    return row


def child(n: int, variant: str, trials: int, bio_s: float, cache: str, repeats: int) -> dict:
    """:func:`one` in a fresh process (its own peak memory; a cold Python for Brian2 reuse)."""
    cmd = [sys.executable, __file__, "--one", f"{n},{variant},{trials},{bio_s},{repeats}",
           "--cache", cache]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"n": n, "variant": variant, "trials": trials,
                "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(lines[-1])


def fit() -> None:
    """One step's recurrent input: CSR / dense product vs scatter, measured vs modelled."""
    from neurosheet.spiking.demo import balanced_circuit
    from neurosheet.spiking.events import step_cost
    from neurosheet.spiking.network import SpikingSheet

    def per_call(fn, reps: int) -> float:
        res = interleaved({"x": fn}, repeats=reps, warmup=1)["x"]
        return res.median

    print(f"\n{'kind':<7}{'N':>6}{'B':>4}{'units':>12}{'measured us':>13}{'model us':>10}")
    for n in (256, 1024, 4096, 8192):
        sc = balanced_circuit(n, density=0.05)
        net = SpikingSheet(sc, trainable=False)
        es, vals = net.event_structure(), net.w_rec.detach()
        for b in (1, 4, 16):
            d, sf = torch.zeros(n, b), (torch.rand(n, b) < 0.02).float()
            cases = []
            if n > 512:
                csr = net._product_matrix(vals)
                cases.append(("csr", sc.synapses, lambda csr=csr, d=d, sf=sf: torch.addmm(d, csr, sf)))
                # the other event-driven candidate: W (CSR) x the spike-sparse matrix (sparse
                # CSR; torch's only sparse x sparse product on CPU), densified
                cases.append(("spsp", sc.synapses, lambda csr=csr, sf=sf: torch.sparse.mm(
                    csr, sf.to_sparse_csr()).to_dense()))
            if n <= 4096:
                dense = torch.zeros(n, n)
                dense[net.structure.post, net.structure.pre] = vals
                cases.append(("dense", n * n, lambda dn=dense, d=d, sf=sf: torch.addmm(d, dn, sf)))
            prop = es.propagator(vals, b)
            out = prop.scratch(torch.float32, torch.device("cpu"))
            for frac in (0.001, 0.01, 0.03, 0.1):
                flat = (torch.rand(n * b) < frac).nonzero().view(-1)
                cases.append(("events", flat.numel() * es.mean_fan_out,
                              lambda f=flat, p=prop, o=out: p.add(o, f)))
            for kind, units, fn in cases:
                t = per_call(fn, 10)
                model = (f"{step_cost(kind, units, b, n) * 1e6:>10.1f}" if kind != "spsp"
                         else f"{'-':>10}")
                print(f"{kind:<7}{n:>6}{b:>4}{units:>12,.0f}{t * 1e6:>13.1f}{model}")


def float64_check(n: int, bio_s: float, cache: str) -> None:
    """float64 on both backends: torch event-driven and Brian2 cython give identical spikes."""
    from neurosheet.spiking.backends.brian2 import Brian2Backend
    from neurosheet.spiking.backends.snntorch import SnntorchBackend
    from neurosheet.spiking.demo import random_inputs

    sc = _circuit(n)
    u = random_inputs(max(1, round(bio_s * 1000 / TASK_DT_MS)), 1, sc.n_inputs, seed=1)
    a = SnntorchBackend(device="cpu", dtype="float64", matmul="events").run(sc, u)
    b = Brian2Backend(target="cython", build_dir=Path(cache), dtype="float64").run(sc, u)
    flips = int(np.abs(a.counts.astype(np.int64) - b.counts).sum())
    print(f"float64, N = {n}, 1 trial, {bio_s:g} s: torch events {a.total_spikes:,} spikes "
          f"({a.mean_rate_hz():.1f} Hz), Brian2 cython {b.total_spikes:,}; "
          f"{'identical counts' if flips == 0 else f'{flips} spike differences'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N 1024 and 4096, 0.2 s simulated")
    ap.add_argument("--sizes", default="1024,4096,8192,16384,32768,65536")
    ap.add_argument("--variants", default="events,csr,cython,cpp_standalone")
    ap.add_argument("--bio-s", type=float, default=1.0, help="simulated seconds per trial")
    ap.add_argument("--slow-bio-s", type=float, default=0.2,
                    help="simulated seconds for the slow rows (csr above 8,192; 16 trials "
                         "above 8,192)")
    ap.add_argument("--brian2-max-n", type=int, default=65536,
                    help="largest N for Brian2 (its build holds the edge list several times)")
    ap.add_argument("--brian2-batch-max-n", type=int, default=8192,
                    help="largest N for Brian2 with 16 trials (16 copies of the graph)")
    ap.add_argument("--cache", default=None, help="Brian2 build cache (default: a temp dir)")
    ap.add_argument("--fit", action="store_true", help="time the propagation kernels (instead of the table)")
    ap.add_argument("--float64-check", type=int, default=0, metavar="N",
                    help="instead of the table: torch events vs Brian2 cython in float64 at N")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        n, variant, trials, bio_s, repeats = args.one.split(",")
        print(json.dumps(one(int(n), variant, int(trials), float(bio_s), args.cache,
                             int(repeats))))
        return 0
    torch.set_num_threads(1)
    if args.float64_check:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            float64_check(args.float64_check, args.bio_s, args.cache or tmp)
        return 0
    if args.fit:
        print(f"machine: {machine()}\ntorch {torch.__version__}, 1 thread; {load()}")
        fit()
        print(load())
        return 0
    sizes = [1024, 4096] if args.quick else [int(x) for x in args.sizes.split(",")]
    bio = 0.2 if args.quick else args.bio_s
    variants = args.variants.split(",")
    print(f"machine: {machine()}\ntorch {torch.__version__}, 1 thread, float32 on both "
          f"backends; {load()}")
    tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
    cache = args.cache or tmp.name
    rows = []
    head = (f"{'N':>6}{'synapses':>12}{'variant':>16}{'B':>4}{'bio s':>6}{'rate Hz':>8}"
            f"{'s/trial-s':>10}{'CPU s':>7}{'build s':>11}{'peak MB':>9}{'same':>8}")
    print(head + "\n" + "-" * len(head), flush=True)
    for n in sizes:
        for trials in (1, 16):
            for variant in variants:
                brian = variant in ("cython", "cpp_standalone")
                if brian and (n > args.brian2_max_n
                              or (trials > 1 and n > args.brian2_batch_max_n)):
                    continue
                slow = n > DENSE_FAN_IN_N and (variant == "csr" or trials > 1 or brian)
                b_s = min(bio, args.slow_bio_s) if slow else bio
                repeats = 3 if n <= 4096 else 1
                if variant == "cpp_standalone":  # first process builds, a second reuses
                    first = child(n, variant, trials, b_s, cache, 1)
                    row = child(n, variant, trials, b_s, cache, repeats)
                    row["first_build_s"] = first.get("build_s", float("nan"))
                    row["first_compiled"] = first.get("compiled")
                else:
                    row = child(n, variant, trials, b_s, cache, repeats)
                rows.append(row)
                _print_row(row, cache)
    print(f"\n{load()}")
    _bars(rows)
    return 0


def _print_row(r: dict, cache: str) -> None:
    if "error" in r:
        print(f"{r['n']:>6}{'':>12}{r['variant']:>16}{r['trials']:>4}  failed: {r['error']}",
              flush=True)
        return
    same = "-"
    ref = Path(cache) / f"counts-{r['n']}-events-{r['trials']}.npy"
    mine = Path(cache) / f"counts-{r['n']}-{r['variant']}-{r['trials']}.npy"
    if ref.exists() and mine.exists() and r["variant"] != "events":
        a, b = np.load(ref), np.load(mine)
        if a.shape == b.shape:
            flips = int(np.abs(a.astype(np.int64) - b).sum())
            same = "yes" if flips == 0 else f"{flips}"
        else:
            same = "n/a"  # a shorter simulation than the reference
    build = f"{r['build_s']:.2f}"
    if "first_build_s" in r:
        build = f"{r['first_build_s']:.1f}/{r['build_s']:.1f}"
    if r["variant"] == "auto":
        same += f" (scatter {r['propagation']['events']}, product {r['propagation']['product']})"
    print(f"{r['n']:>6}{r['synapses']:>12,}{r['variant']:>16}{r['trials']:>4}{r['bio_s']:>6g}"
          f"{r['rate_hz']:>8.1f}{r['per_trial_s']:>10.3f}{r['cpu_per_trial_s']:>7.3f}{build:>11}"
          f"{r['rss_mb']:>9.0f} {same:>7}",
          flush=True)


def _bars(rows: list[dict]) -> None:
    ok = [r for r in rows if "error" not in r]
    for r in ok:
        if r["n"] == 8192 and r["variant"] == "events" and r["trials"] == 1:
            verdict = "met" if r["per_trial_s"] <= 1.0 else "NOT met"
            print(f"bar: torch at N = 8,192, 5%, one trial <= 1 s per trial-second: "
                  f"{r['per_trial_s']:.3f} s ({verdict})")
    big = [r for r in ok if r["n"] == 65536 and r["trials"] == 1 and r["bio_s"] >= 1.0]
    for r in big:
        print(f"bar: 65,536 neurons ({r['synapses']:,} synapses), 1 s simulated, "
              f"{r['variant']}: {r['wall_s']:.2f} s wall, peak {r['rss_mb']:.0f} MB, "
              f"{r['rate_hz']:.1f} Hz")
    if not big:
        print("bar: no 65,536-neuron row with 1 s simulated in this run")
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
