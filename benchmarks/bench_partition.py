"""Sheet tiling vs an established graph partitioner (METIS) vs random, in one run.

For an LM-RNN radius graph of N neurons split onto k equal cores, prints for each method the
fraction of recurrent edges that cross cores (each such spike is a packet between cores), the
balance (largest core / mean core size: a chip's per-core limit binds on the largest core) and
the time to partition. METIS comes from pymetis (`pip install -e ".[bench]"`, not a dependency of
neurosheet's core): the benchmark says so and skips it when it is absent.

    python benchmarks/bench_partition.py [--n 16384] [--cores 16,64,256] [--radius 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def metis_partition(graph, n_cores: int, seed: int = 0) -> np.ndarray | None:
    """METIS k-way partition of the undirected recurrent graph (self loops dropped)."""
    try:
        import pymetis
    except ImportError:
        return None
    import scipy.sparse as sp

    post, pre = graph.edges()
    keep = post != pre
    a = sp.coo_matrix((np.ones(keep.sum()), (post[keep], pre[keep])), shape=(graph.n, graph.n))
    a = (a + a.T).tocsr()
    a.data[:] = 1
    opts = pymetis.Options(seed=seed)
    adjacency = pymetis.CSRAdjacency(a.indptr, a.indices)
    _, parts = pymetis.part_graph(n_cores, adjacency=adjacency, options=opts)
    return np.asarray(parts, dtype=np.int64)


def main() -> None:
    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import build_graph
    from neurosheet.hardware.partition import crossing_edges, random_partition, tile_partition

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--cores", default="16,64,256")
    p.add_argument("--radius", type=float, default=3.0)
    args = p.parse_args()
    graph = build_graph(make_sheet(args.n), "radius", radius=args.radius)
    e = graph.synapses
    print(f"N = {graph.n:,} on a {graph.sheet.width:g} x {graph.sheet.height:g} grid, radius "
          f"{args.radius}: {e:,} recurrent synapses (density {graph.density:.3%}); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'cores':>6} {'method':<14} {'crossing':>9} {'balance':>8} {'seconds':>8}")
    for k in (int(c) for c in args.cores.split(",")):
        rows = []
        t0 = time.perf_counter()
        tiles = tile_partition(graph, k)
        rows.append(("sheet tiling", tiles.core, time.perf_counter() - t0))
        t0 = time.perf_counter()
        parts = metis_partition(graph, k)
        if parts is not None:
            rows.append(("METIS", parts, time.perf_counter() - t0))
        t0 = time.perf_counter()
        rnd = random_partition(tiles, np.random.default_rng(0))
        rows.append(("random", rnd.core, time.perf_counter() - t0))
        for name, core, secs in rows:
            sizes = np.bincount(core, minlength=k)
            print(f"{k:>6} {name:<14} {crossing_edges(graph, core) / e:>9.2%} "
                  f"{sizes.max() / sizes.mean():>8.3f} {secs:>8.3f}")
        if parts is None:
            print(f"{k:>6} METIS          skipped: pip install pymetis")


if __name__ == "__main__":
    main()
