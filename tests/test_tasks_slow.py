"""Scientific check (slow): the ``demo`` suite is learnable by a small rate network in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from neurosheet.tasks import N_OUT, TrialSampler, load_suite, score


@pytest.mark.slow
def test_demo_suite_is_learnable_by_128_neurons():
    torch = pytest.importorskip("torch")
    from neurosheet.graph.circuit import RateParams
    from neurosheet.graph.projections import attach_projections
    from neurosheet.graph.sheet import make_sheet
    from neurosheet.graph.wiring import build_graph
    from neurosheet.rate.model import RateRNN

    torch.set_num_threads(1)
    torch.manual_seed(0)
    suite = load_suite("demo")
    train = TrialSampler(suite.tasks, seed=0)
    graph = attach_projections(build_graph(make_sheet(128, "grid"), "radius", density=1.0),
                               train.n_inputs, N_OUT)
    net = RateRNN(graph, RateParams(tau_ms=200.0), seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(2500):
        b = train.sample(64)
        logits = net(torch.from_numpy(b.inputs)).logits
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, N_OUT),
                                               torch.from_numpy(b.targets).reshape(-1),
                                               reduction="none")
        m = torch.from_numpy(b.mask).reshape(-1)
        loss = (ce * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    test = TrialSampler(suite.tasks, seed=123).sample(1024)
    with torch.no_grad():
        logits = net(torch.from_numpy(test.inputs)).logits.numpy()
    result = score(logits, test, suite.tasks)
    chance = score(np.zeros_like(test.targets), test, suite.tasks)
    assert chance["mean"]["trial_success"] == 0.0
    assert result["mean"]["trial_success"] > 0.8, result
    assert result["per_task"]["go"]["trial_success"] > 0.9
