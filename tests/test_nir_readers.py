"""snntorch's NIR importer reads the exported file unedited and decides as neurosheet does.

A small spiking sheet (neurosheet's CubaLIF circuit) gets its readout trained by ridge
regression on its own spike counts for a toy evidence task, is exported, imported with
``snntorch.import_from_nir`` and simulated at snntorch's fixed 0.1 ms step on fresh trials;
neurosheet simulates the same trials with its snntorch backend at the same step. norse is
checked by ``benchmarks/nir_readers.py`` in its own environment.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.spiking.model import NeuronModel, SpikingCircuit
from neurosheet.spiking.nir import write_nir
from neurosheet.spiking.registry import create_backend

pytest.importorskip("nirtorch", reason="snntorch.import_from_nir needs nirtorch (a dependency)")

TASK_DT_MS = 20.0
K = 200  # 0.1 ms: the step snntorch's importer runs at
STEPS, DECIDE = 6, 3  # task steps per trial; decisions on the last three


def _task(trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy evidence channels; the target is the strongest one (classes 0..2)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.2, 1.0, size=(trials, 3))
    u = level[None] + 0.15 * rng.standard_normal((STEPS, trials, 3))
    return np.clip(u, 0.0, None).astype(np.float32), level.argmax(-1)


def _sheet(seed: int = 3) -> SpikingCircuit:
    graph = attach_projections(build_graph(make_sheet(64), "radius", density=0.2), 3, 3)
    rng = np.random.default_rng(seed)
    in_post, in_pre = graph.inputs.edges()
    w_in = np.where(in_pre == in_post % 3, rng.uniform(2.0, 4.0, in_post.size), 0.0)
    return SpikingCircuit(
        graph, w_rec=rng.normal(0.0, 0.1, graph.synapses), w_in=w_in, b=np.full(64, 0.8),
        w_out=np.zeros(graph.readout.synapses), b_out=np.zeros(3),
        neuron=NeuronModel(tau_syn_ms=10.0, tau_mem_ms=20.0, readout="count"), task_dt_ms=TASK_DT_MS,
        substeps=K, tasks=("evidence",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sheet with its readout fitted on 96 trials of its own spikes, written as NIR."""
    sheet = _sheet()
    u, target = _task(96, seed=1)
    counts = create_backend("snntorch", device="cpu").run(sheet, u).counts
    rates = counts[DECIDE:].reshape(-1, sheet.n) / TASK_DT_MS
    onehot = np.eye(3)[np.tile(target, STEPS - DECIDE)]
    x = np.hstack([rates, np.ones((rates.shape[0], 1))])
    w = np.linalg.solve(x.T @ x + 1e-4 * np.eye(x.shape[1]), x.T @ onehot)
    post, pre = sheet.graph.readout.edges()
    sheet = sheet.with_weights(w_out=w[:-1].T[post, pre], b_out=w[-1])
    return sheet, write_nir(sheet, tmp_path_factory.mktemp("nir") / "sheet.nir")


def _scores(logits: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    right = logits[DECIDE:].argmax(-1) == target[None]
    return float(right.mean()), float(right.all(0).mean())


def test_snntorch_reader_reproduces_neurosheets_decisions(trained):
    from neurosheet.spiking.nir_readers import run_reader

    sheet, path = trained
    u, target = _task(48, seed=2)
    ours = create_backend("snntorch", device="cpu").run(sheet, u)
    assert ours.counts.sum() > 0
    theirs = run_reader("snntorch", path, u, TASK_DT_MS / 1e3)
    acc, success = _scores(ours.logits, target)
    acc_r, success_r = _scores(theirs, target)
    assert acc > 0.75  # trained: chance is 1/3
    assert abs(acc_r - acc) <= 0.03 and abs(success_r - success) <= 0.03
    same = ours.logits[DECIDE:].argmax(-1) == theirs[DECIDE:].argmax(-1)
    assert same.mean() >= 0.9
