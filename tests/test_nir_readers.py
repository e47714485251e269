"""snntorch's NIR importer reads the exported file unedited and decides as neurosheet does.

A small recurrent CubaLIF sheet is trained (its readout fitted by ridge regression to a toy
evidence task on its own spikes), exported, imported with ``snntorch.import_from_nir`` and
simulated at snntorch's fixed 0.1 ms step on fresh trials. norse is checked by
``benchmarks/nir_readers.py`` in its own environment.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.spiking.nir import FILE_DT_S, NirNetwork, read_nir, simulate, write_nir

pytest.importorskip("nirtorch", reason="snntorch.import_from_nir needs nirtorch (a dependency)")

TASK_DT_S = 0.02
STEPS, DECIDE = 6, 3  # task steps per trial; decisions on the last three


def _task(trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy evidence channels; the target is the strongest one (classes 0..2)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.2, 1.0, size=(trials, 3))
    u = level[None] + 0.15 * rng.standard_normal((STEPS, trials, 3))
    return np.clip(u, 0.0, None).astype(np.float32), level.argmax(-1)


def _sheet(seed: int = 3) -> NirNetwork:
    graph = attach_projections(build_graph(make_sheet(64), "radius", density=0.2), 3, 3)
    rng = np.random.default_rng(seed)
    post, pre = graph.edges()
    w_in = np.zeros((64, 3), np.float32)
    w_in[np.arange(64), np.arange(64) % 3] = rng.uniform(40.0, 80.0, 64)
    return NirNetwork(
        post=post, pre=pre, w_rec=rng.normal(0.0, 20.0, post.size).astype(np.float32),
        w_in=w_in, bias=np.full(64, 5.0, np.float32), w_out=np.zeros((3, 64), np.float32),
        b_out=np.zeros(3, np.float32), tau_syn_s=0.01, tau_mem_s=0.02, v_threshold=1500.0,
        dt_s=FILE_DT_S, task_dt_s=TASK_DT_S, positions=graph.sheet.positions,
        meta={"graph_fingerprint": graph.fingerprint()})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sheet with a readout fitted on 96 trials of its own spikes, written as NIR."""
    net = _sheet()
    u, target = _task(96, seed=1)
    _, counts = simulate(net, u)
    rates = counts[DECIDE:].reshape(-1, net.n) / net.steps_per_task_step
    onehot = np.eye(3)[np.tile(target, STEPS - DECIDE)]
    x = np.hstack([rates, np.ones((rates.shape[0], 1))])
    w = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ onehot)
    net = dataclasses.replace(net, w_out=w[:-1].T.astype(np.float32),
                              b_out=w[-1].astype(np.float32))
    path = write_nir(net, tmp_path_factory.mktemp("nir") / "sheet.nir")
    return net, path


def _scores(logits: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    right = logits[DECIDE:].argmax(-1) == target[None]
    return float(right.mean()), float(right.all(0).mean())


def test_snntorch_reader_reproduces_neurosheets_decisions(trained):
    from neurosheet.spiking.nir_readers import run_reader

    _, path = trained
    u, target = _task(48, seed=2)
    ours, counts = simulate(read_nir(path).network, u)
    assert counts.sum() > 0
    theirs = run_reader("snntorch", path, u, TASK_DT_S)
    acc, success = _scores(ours, target)
    acc_r, success_r = _scores(theirs, target)
    assert acc > 0.75  # trained: chance is 1/3
    assert abs(acc_r - acc) <= 0.03 and abs(success_r - success) <= 0.03
    same = ours[DECIDE:].argmax(-1) == theirs[DECIDE:].argmax(-1)
    assert same.mean() >= 0.9
