"""Budget report cost vs network size, and sheet tiling vs random crossing-edge fractions.

Run: ``python benchmarks/bench_budget.py`` (well under a minute on 2 cores).

For LM-RNN radius graphs (radius 3, 33 all-to-all inputs, 17 readouts) of growing N, prints
the wall time of one full budget report (partition search included, no accuracy
evaluation) on Loihi, DYNAP-SE2 and TrueNorth, the cores found, and the crossing-edge
fraction of the sheet tiling next to the random partition of the same core sizes.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from neurosheet.graph.projections import attach_projections
    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import build_graph
    from neurosheet.hardware.budget import SpikeCounts, budget_report
    from neurosheet.hardware.targets import load_target

    targets = [load_target(t) for t in ("loihi", "dynapse2", "truenorth")]
    print(f"{'N':>6} {'synapses':>9} {'target':>10} {'cores':>6} {'binding':>20} "
          f"{'tiling':>7} {'random':>7} {'ratio':>6} {'time s':>7}")
    for n in (1024, 4096, 16384):
        g = attach_projections(build_graph(make_sheet(n), "radius", radius=3.0), 33, 17)
        spikes = SpikeCounts.from_array(np.random.default_rng(0).poisson(5, n), n)
        for t in targets:
            t0 = time.perf_counter()
            r = budget_report(g, t, spikes=spikes)
            dt = time.perf_counter() - t0
            c, p = r["cores"], r["partitions"]
            if c is None:
                print(f"{n:>6} {g.synapses:>9} {t.name:>10}  {r['verdict']['text']}  {dt:7.3f}")
                continue
            tf, rf = p["tiling"]["crossing_fraction"], p["random"]["crossing_fraction"]
            ratio = rf / tf if tf else float("inf")
            print(f"{n:>6} {g.synapses:>9} {t.name:>10} {c['needed']:>6} {c['binding']:>20} "
                  f"{tf:7.3f} {rf:7.3f} {ratio:6.1f} {dt:7.3f}")


if __name__ == "__main__":
    main()
