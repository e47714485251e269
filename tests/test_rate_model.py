"""Rate model: sparse kernel == dense product, masked weights stay zero, dynamics and files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate.edge_ops import EdgeOperator, EdgeStructure, choose_kernel
from neurosheet.rate.model import RateRNN

N_IN, N_OUT = 7, 5


def graph(n: int = 49, rule: str = "radius", density: float | None = 0.15):
    g = build_graph(make_sheet(n), rule, density=density, seed=1)
    return attach_projections(g, N_IN, N_OUT)


def test_csr_kernel_matches_dense_forward_and_gradients():
    g = graph()
    params = RateParams("relu", 200.0, 100.0, 3)
    sparse = RateRNN(g, params, seed=3, kernel="csr")
    dense = RateRNN(g, params, seed=3, kernel="dense")
    assert sparse.rec.kernel == "csr" and dense.rec.kernel == "dense"
    x = torch.randn(6, 4, N_IN, generator=torch.Generator().manual_seed(0))
    outs = [m(x) for m in (sparse, dense)]
    torch.testing.assert_close(outs[0].logits, outs[1].logits, rtol=1e-5, atol=1e-5)
    for o in outs:
        (o.logits.square().sum() + o.rates.sum()).backward()
    for a, b in zip(sparse.parameters(), dense.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_csr_matmul_gradcheck_in_double():
    g = graph(25, density=0.3)
    s = EdgeStructure.from_csr(g.adjacency, "csr")
    v = torch.randn(s.nnz, dtype=torch.float64, requires_grad=True)
    r = torch.randn(25, 3, dtype=torch.float64, requires_grad=True)
    add = torch.randn(25, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, r, add: EdgeOperator(s, v)(r, add=add), (v, r, add))


def test_auto_kernel_follows_the_measured_cost_model():
    # full graph: dense; a large sparse graph: CSR; a small sparse one: whatever is cheaper by
    # the model (at N = 49 the per-call overhead of the sparse kernels decides: dense)
    assert RateRNN(graph(rule="full", density=None)).rec.kernel == "dense"
    big = attach_projections(build_graph(make_sheet(400), "random", density=0.02, seed=1), 3, 2)
    assert RateRNN(big).rec.kernel == "csr"
    small = graph()
    assert RateRNN(small).rec.kernel == choose_kernel(small.n, small.synapses) == "dense"
    with pytest.raises(NeurosheetError, match="kernel"):
        RateRNN(graph(), kernel="fast")


def test_masked_weights_stay_exactly_zero_after_training():
    g = graph()
    model = RateRNN(g, RateParams("relu", 200.0, 100.0, 2), rec_noise=0.05, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(5, 8, N_IN, generator=gen)
        y = torch.randint(0, N_OUT, (5, 8), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x, generator=gen).logits.flatten(0, 1),
                                                 y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = model.rec.dense().detach().numpy()
    mask = g.adjacency.toarray()
    assert np.all(w[~mask] == 0.0)
    assert np.count_nonzero(w[mask]) == g.synapses  # the edges did train (nonzero)
    circuit = model.to_circuit()
    rec = circuit.rec_matrix()
    assert rec.nnz == g.synapses
    assert np.array_equal(rec.indices, g.adjacency.indices)
    # the only recurrent parameter is one value per synapse
    assert model.rec.values.shape == (g.synapses,)


def test_init_scales_with_actual_fan_in():
    for rule, dens in (("radius", 0.1), ("full", None), ("autapse", None)):
        g = graph(100, rule, dens)
        w = RateRNN(g, gain=1.0, seed=0).rec.dense().detach().numpy()
        row_norm2 = (w**2).sum(1)  # E[sum_j w_ij^2] = gain^2 for every neuron
        assert 0.6 < row_norm2.mean() < 1.4, rule


def test_noise_is_reproducible_with_a_generator_and_off_in_eval():
    model = RateRNN(graph(), rec_noise=0.1, in_noise=0.1, seed=0)
    x = torch.ones(4, 2, N_IN)
    a = model(x, generator=torch.Generator().manual_seed(5)).logits
    b = model(x, generator=torch.Generator().manual_seed(5)).logits
    c = model(x, generator=torch.Generator().manual_seed(6)).logits
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    model.eval()
    torch.testing.assert_close(model(x).logits, model(x).logits)


def test_substeps_keep_the_leak_per_task_step():
    p = RateParams("relu", 200.0, 100.0, 4)
    a = p.substep_alpha()
    assert (1 - a) ** 4 == pytest.approx(1 - p.alpha)
    # zero weights: x follows the input with the per-task-step leak whatever the sub-steps
    g = graph()
    zeros = {"w_rec": np.zeros(g.synapses), "w_in": np.ones(g.inputs.synapses),
             "b_rec": np.zeros(g.n), "w_out": np.ones(g.readout.synapses), "b_out": np.zeros(N_OUT)}
    x = torch.zeros(1, 1, N_IN)
    x[..., 0] = 1.0
    rates = [RateRNN(g, RateParams("relu", 200.0, 100.0, k), weights=zeros).eval()(x).rates
             for k in (1, 4)]
    torch.testing.assert_close(rates[0], torch.full_like(rates[0], 0.5))
    torch.testing.assert_close(rates[1], rates[0])


def test_circuit_round_trip_gives_the_same_outputs():
    model = RateRNN(graph(), RateParams("tanh", 100.0, 50.0, 2), seed=4).eval()
    x = torch.randn(5, 3, N_IN)
    again = RateRNN.from_circuit(model.to_circuit(("a",))).eval()
    torch.testing.assert_close(model(x).logits, again(x).logits)
    assert again.params.substeps == 2
    assert RateRNN.from_circuit(model.to_circuit(), substeps=5).params.substeps == 5


def test_wrong_input_width_is_a_clear_error():
    with pytest.raises(NeurosheetError, match="inputs"):
        RateRNN(graph())(torch.zeros(3, 2, N_IN + 1))
