"""Speed of the spiking backends: N = 1024 neurons at ~5% density, 1 s of biological time.

Prints, side by side from one run, for snntorch (CPU, 1 and 64 trials) and Brian2 (numpy,
cython, cpp_standalone): wall time of the simulation, compile/build time (cold = empty cache
directory, warm = second call on the same directory), spikes, recurrent synaptic events per
wall second and the real-time factor (wall seconds per biological second; per trial for a
batch). Also checks that the two backends produced the same spikes (float64 runs).

    python benchmarks/bench_spiking.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurosheet.graph.circuit import RateParams
from neurosheet.spiking.backends.brian2 import Brian2Backend
from neurosheet.spiking.backends.snntorch import SnntorchBackend
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit, random_inputs

N, DENSITY, TASK_DT_MS, BIO_S = 1024, 0.05, 20.0, 1.0


def _row(name: str, res, fan_out: np.ndarray, build: str = "") -> dict:
    trials = res.counts.shape[1]
    events = res.synaptic_events(fan_out)
    bio = res.biological_s * trials
    return {"name": name, "trials": trials, "dt_ms": res.sim_dt_ms, "build": build,
            "run_s": res.run_s, "spikes": res.total_spikes, "rate_hz": res.mean_rate_hz(),
            "events": events, "events_per_s": events / res.run_s, "rtf": res.run_s / bio}


def _print(rows: list[dict]) -> None:
    head = (f"{'backend':<28}{'trials':>6}{'dt ms':>7}{'build s':>16}{'run s':>9}{'spikes':>11}"
            f"{'rate Hz':>9}{'syn events':>13}{'events/s':>11}{'RTF':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<28}{r['trials']:>6}{r['dt_ms']:>7g}{r['build']:>16}{r['run_s']:>9.3f}"
              f"{r['spikes']:>11,}{r['rate_hz']:>9.1f}{r['events']:>13,}"
              f"{r['events_per_s']:>11.3g}{r['rtf']:>9.4f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 0.1 ms and numpy x64 rows")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--rate-hz", type=float, default=200.0,
                    help="firing rate at the 99.9th-percentile rate (sets the firing rate)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    params = RateParams("relu", tau_ms=100.0, dt_ms=TASK_DT_MS, substeps=4)
    circuit = random_circuit(N, density=DENSITY, params=params, seed=0)
    fan_out = circuit.graph.fan_out
    steps = round(BIO_S * 1000 / TASK_DT_MS)
    print(f"N = {circuit.n}, synapses = {circuit.graph.synapses:,} "
          f"(density {circuit.graph.density:.3f}), {BIO_S:g} s biological = {steps} task steps "
          f"of {TASK_DT_MS:g} ms; torch threads {torch.get_num_threads()}, "
          f"CUDA {'yes' if torch.cuda.is_available() else 'no'}")
    u64 = random_inputs(steps, 64, circuit.n_inputs, seed=1)
    rows: list[dict] = []
    dts = [1.0] if args.quick else [1.0, 0.1]
    agreement = []
    scales: list[str] = []
    for dt in dts:
        k = round(TASK_DT_MS / dt)
        cfg = ConversionConfig(substeps=k, rate_hz=args.rate_hz, tau_mem_ms=50.0, gate="off",
                               dtype="float32")
        sc = convert(circuit, u64[:, :16], cfg)
        sc64 = convert(circuit, u64[:, :16], ConversionConfig(
            substeps=k, rate_hz=args.rate_hz, tau_mem_ms=50.0, gate="off", dtype="float64"))
        batches = [1, 64] if dt == 1.0 else [1]
        for b in batches:
            res = SnntorchBackend(device="cpu", dtype="float32").run(sc, u64[:, :b])
            rows.append(_row("snntorch cpu float32", res, fan_out))
        if torch.cuda.is_available():
            for b in batches:
                res = SnntorchBackend(device="cuda", dtype="float32").run(sc, u64[:, :b])
                rows.append(_row("snntorch cuda float32", res, fan_out))
        ref = SnntorchBackend(device="cpu", dtype="float64").run(sc64, u64[:, :1])
        targets = ["numpy", "cython", "cpp_standalone"]
        for target in targets:
            with tempfile.TemporaryDirectory(prefix="bench-brian2-") as tmp:
                for b in batches:
                    if target == "numpy" and b > 1 and args.quick:
                        continue
                    cold = Brian2Backend(target=target, build_dir=Path(tmp), batch_size=b)
                    t0 = time.perf_counter()
                    first = cold.run(sc64, u64[:, :b])
                    first_total = time.perf_counter() - t0
                    warm = Brian2Backend(target=target, build_dir=Path(tmp), batch_size=b).run(
                        sc64, u64[:, :b])
                    build = f"{first.build_s:.2f} / {warm.build_s:.2f}"
                    rows.append(_row(f"brian2 {target}", warm, fan_out, build))
                    if b == 1:
                        same = np.array_equal(warm.counts, ref.counts)
                        agreement.append((dt, target, same, first_total))
        c = sc.constants()
        scales.append(f"dt {dt:g} ms: K = {k}, alpha = {c.alpha:.5f}, beta = {c.beta:.5f}")
    print("; ".join(scales))
    _print(rows)
    print("\nbuild s = cold (empty cache dir) / warm (same dir again); run s excludes the build.")
    print("RTF = run s / (biological s x trials): < 1 is faster than real time per trial.")
    for dt, target, same, total in agreement:
        print(f"dt {dt:g} ms: brian2 {target} spike counts {'==' if same else '!='} "
              f"snntorch float64 (1 trial); first call incl. build {total:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
