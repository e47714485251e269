"""Radius-graph construction: KD-tree (ours) vs a chunked distance scan vs a dense N x N matrix.

Run: ``python benchmarks/bench_sheet.py`` (about a minute on 2 cores, ~4 GB peak).

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss, which
also sees the KD-tree's C++ allocations that tracemalloc would miss) is its own; the
baseline (interpreter + imports + positions) is subtracted. The dense way is measured at
the largest N where it comfortably fits here (default 16,384: a float64 N x N matrix is
2 GiB); at N = 65,536 only the KD-tree is run — the dense matrix alone would be 32 GiB.
The fair dense-free alternative a user would write without a KD-tree is also measured:
distances computed a block of rows at a time (``--chunk`` rows), keeping only the edges.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _one(method: str, n: int, density: float) -> dict:
    import numpy as np

    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import build_graph, radius_for_density

    sheet = make_sheet(n, "grid")
    # The dense way is given the radius for free (found by the same closest-density search).
    radius = radius_for_density(sheet, density).radius if method != "kdtree" else None
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if method == "kdtree":
        g = build_graph(sheet, "radius", density=density)
        synapses = g.synapses
    elif method == "dense":
        from scipy.spatial.distance import cdist

        d = cdist(sheet.positions, sheet.positions)  # N x N float64
        mask = d <= radius
        synapses = int(np.count_nonzero(mask))
    elif method.startswith("chunked"):
        from scipy.spatial.distance import cdist

        chunk = int(method.split(":")[1])
        posts, pres = [], []
        for start in range(0, n, chunk):  # rows [start, start + chunk) against all neurons
            d = cdist(sheet.positions[start:start + chunk], sheet.positions)
            post, pre = np.nonzero(d <= radius)
            posts.append(post + start)
            pres.append(pre)
        synapses = int(sum(p.size for p in posts))
    else:
        synapses = 0
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "n": n, "seconds": seconds, "peak_mb": (peak - base) / 1024,
            "synapses": synapses}


def measure(method: str, n: int, density: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", method, str(n), str(density)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "N", "DENSITY"), help=argparse.SUPPRESS)
    parser.add_argument("--dense-n", type=int, default=16384, help="N for the side-by-side run")
    parser.add_argument("--big-n", type=int, default=65536, help="N for the KD-tree-only run")
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--chunk", type=int, default=1024, help="rows per block (chunked scan)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]), float(args.one[2]))))
        return
    chunked = f"chunked:{args.chunk}"
    rows = [measure("kdtree", args.dense_n, args.density), measure("dense", args.dense_n, args.density),
            measure(chunked, args.dense_n, args.density)]
    rows.append(measure("kdtree", args.big_n, args.density))
    rows.append(measure(chunked, args.big_n, args.density))
    print(f"{'method':<14} {'N':>7} {'synapses':>12} {'time s':>8} {'peak MB':>9}")
    for r in rows:
        print(f"{r['method']:<14} {r['n']:>7} {r['synapses']:>12} {r['seconds']:>8.2f} {r['peak_mb']:>9.0f}")
    kd, dense, chunk, big, big_chunk = rows
    assert kd["synapses"] == dense["synapses"] == chunk["synapses"], "same graph every way"
    assert big["synapses"] == big_chunk["synapses"], "same graph every way"
    print(f"\nN={args.dense_n}: dense / kd-tree  time x{dense['seconds'] / kd['seconds']:.1f}, "
          f"peak memory x{dense['peak_mb'] / max(kd['peak_mb'], 1):.1f}")
    for r_kd, r_ch in ((kd, chunk), (big, big_chunk)):
        print(f"N={r_kd['n']}: chunked scan / kd-tree  time x{r_ch['seconds'] / r_kd['seconds']:.1f}, "
              f"peak memory x{r_ch['peak_mb'] / max(r_kd['peak_mb'], 1):.1f}")
    print(f"N={args.big_n}: kd-tree {big['seconds']:.1f} s, {big['peak_mb']:.0f} MB; a dense float64 "
          f"distance matrix would need {args.big_n**2 * 8 / 2**30:.0f} GiB")


if __name__ == "__main__":
    main()
