"""The fused engine equals the eager reference; the noise stream, block calls and buffers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.circuit import RateParams
from neurosheet.graph.projections import attach_projections
from neurosheet.graph.sheet import make_sheet
from neurosheet.graph.wiring import build_graph
from neurosheet.rate import edge_ops, fused
from neurosheet.rate.fused import Blocks, fused_rates
from neurosheet.rate.model import RateRNN

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C compiler: eager path only")

N_IN, N_OUT = 7, 5


def graph(n: int = 49, density: float = 0.15, seed: int = 1):
    return attach_projections(build_graph(make_sheet(n), "radius", density=density, seed=seed),
                              N_IN, N_OUT)


def pair(g, params: RateParams, **kw) -> tuple[RateRNN, RateRNN]:
    return tuple(RateRNN(g, params, seed=3, engine=e, **kw) for e in ("eager", "fused"))


@pytest.mark.parametrize("act", ["relu", "tanh", "softplus", "retanh"])
@pytest.mark.parametrize(("batch", "tau"), [(5, 200.0), (37, 100.0), (80, 200.0)])
def test_fused_matches_eager_forward_and_gradients(act, batch, tau):
    # batch 5: scalar tail only; 37: 16-wide chunks and tail; 80: 64-wide chunk and 16-wide
    eager, fast = pair(graph(), RateParams(act, tau, 100.0, 3), rec_noise=0.1, in_noise=0.1)
    assert not eager.uses_fused() and fast.uses_fused()
    x = torch.randn(6, batch, N_IN, generator=torch.Generator().manual_seed(0))
    x0 = torch.randn(batch, 49, generator=torch.Generator().manual_seed(1), requires_grad=True)
    outs, x0_grads = [], []
    for m in (eager, fast):
        m.train()
        o = m(x, x0=x0, generator=torch.Generator().manual_seed(2))
        (o.logits.square().sum() + o.rates.sum()).backward()
        outs.append(o)
        x0_grads.append(x0.grad.clone())
        x0.grad = None
    torch.testing.assert_close(outs[0].logits, outs[1].logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0].rates, outs[1].rates, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x0_grads[0], x0_grads[1], rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(eager.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_fused_training_matches_eager_over_steps():
    """Same losses and weights over a few Adam steps with noise and changing sub-steps."""
    g = graph(64, 0.2)
    models = pair(g, RateParams("relu", 200.0, 100.0, 4), rec_noise=0.05)
    opts = [torch.optim.Adam(m.parameters(), lr=0.01) for m in models]
    gens = [torch.Generator().manual_seed(7) for _ in models]
    data = torch.Generator().manual_seed(0)
    for step, k in enumerate((4, 8, 2, 4)):
        x = torch.rand(5 + step, 16, N_IN, generator=data)
        y = torch.randint(0, N_OUT, (5 + step, 16), generator=data)
        losses = []
        for m, opt, gen in zip(models, opts, gens, strict=True):
            out = m(x, generator=gen, substeps=k)
            loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), step
    for a, b in zip(*(m.parameters() for m in models), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_one_block_call_equals_separate_calls_exactly():
    gs = [build_graph(make_sheet(n), "radius", density=d, seed=s).adjacency
          for n, d, s in ((36, 0.2, 0), (49, 0.1, 1), (36, 0.3, 2))]
    ks, ts, alphas = (2, 3, 1), (4, 6, 5), (0.25, 1 / 6, 0.5)
    batch = 19
    gen = torch.Generator().manual_seed(0)
    vals = [torch.randn(m.nnz, generator=gen) * 0.3 for m in gs]
    drives = [torch.randn(t, m.shape[0], batch, generator=gen) for m, t in zip(gs, ts, strict=True)]
    noises = [torch.randn(t * k, m.shape[0], batch, generator=gen) * 0.1
              for m, t, k in zip(gs, ts, ks, strict=True)]
    x0s = [torch.randn(m.shape[0], batch, generator=gen) for m in gs]
    weights = [torch.randn(t, m.shape[0], batch, generator=gen) for m, t in zip(gs, ts, strict=True)]

    def grads(blocks, v, d, n, x0, k, t, a, w):
        v, d, x0 = (z.clone().requires_grad_() for z in (v, d, x0))
        out = fused_rates(blocks, v, d, n, x0, k, t, a, "relu")
        (out * w).sum().backward()
        return out.detach(), v.grad, d.grad, x0.grad

    alone = [grads(Blocks.from_csr([m]), v, d, n, x0, (k,), (t,), (a,), w)
             for m, v, d, n, x0, k, t, a, w in zip(gs, vals, drives, noises, x0s, ks, ts, alphas,
                                                   weights, strict=True)]
    blocks = Blocks.from_csr(gs)
    tmax, smax = max(ts), max(t * k for t, k in zip(ts, ks, strict=True))

    def pack(parts, length):
        out = torch.zeros(length, blocks.rows, batch)
        for p, r0, r1 in zip(parts, blocks.row0, blocks.row1, strict=True):
            out[: p.shape[0], r0:r1] = p
        return out

    joint = grads(blocks, torch.cat(vals), pack(drives, tmax), pack(noises, smax),
                  torch.cat(x0s), ks, ts, alphas, pack(weights, tmax))
    offsets = np.cumsum([0] + [m.nnz for m in gs])
    for q, (r0, r1, t) in enumerate(zip(blocks.row0, blocks.row1, ts, strict=True)):
        out, gv, gd, gx = alone[q]
        assert torch.equal(joint[0][:t, r0:r1], out)
        assert torch.all(joint[0][t:, r0:r1] == 0)
        assert torch.equal(joint[1][offsets[q]:offsets[q + 1]], gv)
        assert torch.equal(joint[2][:t, r0:r1], gd)
        assert torch.equal(joint[3][r0:r1], gx)


def test_gradcheck_of_the_fused_loop_against_finite_differences():
    # float32 only, so finite differences in float64 of the eager model check the formulas
    g = graph(25, 0.3)
    m64 = RateRNN(g, RateParams("tanh", 200.0, 100.0, 2), seed=0, engine="eager").double()
    m32 = RateRNN(g, RateParams("tanh", 200.0, 100.0, 2), seed=0, engine="fused")
    x = torch.randn(4, 3, N_IN, generator=torch.Generator().manual_seed(0))
    for m in (m64, m32):
        m(x.to(m.rec.values.dtype)).logits.sum().backward()
    v = m64.rec.values.detach().clone()
    eps, picks = 1e-6, [0, 7, 31]
    for e in picks:
        up, down = v.clone(), v.clone()
        up[e] += eps
        down[e] -= eps
        with torch.no_grad():
            m64.rec.values.copy_(up)
            f_up = m64(x.double()).logits.sum()
            m64.rec.values.copy_(down)
            f_down = m64(x.double()).logits.sum()
        numeric = (f_up - f_down).item() / (2 * eps)
        assert m32.rec.values.grad[e].item() == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_normal_stream_is_reproducible_gaussian_and_advances_the_generator():
    z = fused.normal((200_001,), torch.Generator().manual_seed(0))
    again = fused.normal((200_001,), torch.Generator().manual_seed(0))
    assert torch.equal(z, again)
    gen = torch.Generator().manual_seed(0)
    first, second = fused.normal((64,), gen), fused.normal((64,), gen)
    assert not torch.equal(first, second)
    # counter-based: a shorter draw from the same state is a prefix; shape does not matter
    head = fused.normal((7, 11), torch.Generator().manual_seed(0)).flatten()
    assert torch.equal(head, z[:77])
    a = z.numpy().astype(np.float64)
    assert abs(a.mean()) < 0.01 and abs(a.std() - 1) < 0.01
    assert abs(scipy.stats.kurtosis(a)) < 0.05 and abs(scipy.stats.skew(a)) < 0.03
    assert scipy.stats.kstest(a, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.01
    assert abs(np.corrcoef(a[:-16], a[16:])[0, 1]) < 0.01  # the sine/cosine halves of a chunk
    scaled = fused.normal((10,), torch.Generator().manual_seed(0), scale=3.0)
    torch.testing.assert_close(scaled, 3.0 * z[:10])


def test_reused_buffers_never_overwrite_a_tensor_still_held():
    m = RateRNN(graph(), RateParams("relu", 200.0, 100.0, 2), rec_noise=0.1, seed=0,
                engine="fused")
    x = torch.rand(5, 8, N_IN, generator=torch.Generator().manual_seed(0))
    first = m(x, generator=torch.Generator().manual_seed(0))
    kept = first.rates.clone()
    for s in range(4):  # more calls than a pool would need if it reused held memory
        m(x, generator=torch.Generator().manual_seed(s + 1)).logits.sum().backward()
    assert torch.equal(first.rates, kept)


def test_a_returned_buffer_is_lent_again_on_a_cache_line():
    ws = fused.Workspace()
    first = ws.take((3, 40))
    ptr = first.data_ptr()
    held = ws.take((3, 40))
    assert held.data_ptr() != ptr  # still in use: a new buffer
    del first
    again = ws.take((2, 50), zero=True)
    assert again.data_ptr() == ptr and torch.all(again == 0)  # free again: reused
    assert ptr % 64 == 0 and held.data_ptr() % 64 == 0


def test_engine_names_and_the_fallback_without_a_compiler(no_compiled_kernels):
    g = graph()
    assert RateRNN(g, engine="eager").uses_fused() is False
    with pytest.raises(NeurosheetError, match="engine"):
        RateRNN(g, engine="jit")
    with pytest.raises(NeurosheetError, match="noise"):
        RateRNN(g, noise="fast")
    # without a compiler (or with NEUROSHEET_FUSED=0) everything runs on the eager path
    from neurosheet.rate.model import resolve_engine

    assert not fused.available()
    assert resolve_engine("auto") == "eager"
    m = RateRNN(g, RateParams("relu", 200.0, 100.0, 2), rec_noise=0.1)
    assert m.engine == "eager" and not m.uses_fused()
    m(torch.rand(3, 4, N_IN)).logits.sum().backward()  # torch.randn noise, eager loop
    with pytest.raises(NeurosheetError, match="compiler"):
        RateRNN(g, engine="fused")


def test_cost_model_reproduces_the_measured_choices():
    # measured (issue 16, 1 thread): eager dense beats eager CSR at N = 144, 14%; CSR wins
    # at N = 1024, 5% and far more at N = 4096, 1%
    assert edge_ops.choose_kernel(144, int(0.14 * 144**2)) == "dense"
    assert edge_ops.choose_kernel(1024, int(0.05 * 1024**2)) == "csr"
    assert edge_ops.choose_kernel(4096, int(0.01 * 4096**2)) == "csr"
    # the fused loop beats both on the demo and on the lmrnn sheet
    assert edge_ops.choose_implementation(144, int(0.14 * 144**2)) == "fused"
    assert edge_ops.choose_implementation(1024, int(0.05 * 1024**2)) == "fused"
    assert edge_ops.choose_implementation(1024, int(0.05 * 1024**2), fused_ok=False) == "csr"


@pytest.mark.parametrize("act", ["relu", "retanh"])
def test_a_diverging_network_is_not_made_to_look_sane(act):
    # NaN must survive f as in torch (relu(NaN) = NaN); otherwise a blown-up run reads as zeros
    eager, fast = pair(graph(), RateParams(act, 100.0, 100.0, 3))
    x = torch.rand(4, 3, N_IN, generator=torch.Generator().manual_seed(0))
    for m in (eager, fast):
        with torch.no_grad():
            m.rec.values[0] = float("nan")
        assert torch.isnan(m(x).rates).any()


@pytest.fixture
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("batch", [64, 37, 100])
def test_threads_split_the_batch_without_changing_the_results(batch, restore_threads):
    # columns never interact: rates, drive and x0 gradients are bitwise the same at any thread
    # count; the weight gradient only adds the threads' partial sums in another order, and
    # at a fixed thread count it is the same bit for bit (exact resume)
    g = build_graph(make_sheet(64), "radius", density=0.2, seed=0).adjacency
    blocks = Blocks.from_csr([g])
    gen = torch.Generator().manual_seed(0)
    vals = torch.randn(g.nnz, generator=gen) * 0.2
    drive = torch.randn(5, 64, batch, generator=gen)
    x0 = torch.randn(64, batch, generator=gen)
    weights = torch.randn(5, 64, batch, generator=gen)
    results = []
    for nt in (1, 2, 3, 2):
        torch.set_num_threads(nt)
        noise = fused.normal((15, 64, batch), torch.Generator().manual_seed(1), 0.1)
        v, d, x = (z.clone().requires_grad_() for z in (vals, drive, x0))
        out = fused_rates(blocks, v, d, noise, x, (3,), (5,), (0.3,), "retanh")
        (out * weights).sum().backward()
        results.append((noise, out.detach(), d.grad, x.grad, v.grad))
    for other in results[1:]:
        for a, b in zip(results[0][:4], other[:4], strict=True):
            assert torch.equal(a, b)
        torch.testing.assert_close(results[0][4], other[4], rtol=1e-5, atol=1e-6)
    assert torch.equal(results[1][4], results[3][4])
    assert not torch.equal(results[0][4], torch.zeros_like(results[0][4]))


def test_the_noise_stream_does_not_depend_on_the_thread_count(restore_threads):
    draws = []
    for nt in (1, 2):
        torch.set_num_threads(nt)
        draws.append(fused.normal((300_007,), torch.Generator().manual_seed(4)))
    assert torch.equal(*draws)


def test_training_steps_agree_at_one_and_two_threads(restore_threads):
    g = graph(64, 0.2)
    losses = {}
    for nt in (1, 2):
        torch.set_num_threads(nt)
        m = RateRNN(g, RateParams("relu", 200.0, 100.0, 4), rec_noise=0.05, seed=0,
                    engine="fused")
        opt = torch.optim.Adam(m.parameters(), lr=0.01)
        gen, data = torch.Generator().manual_seed(7), torch.Generator().manual_seed(0)
        losses[nt] = []
        for k in (4, 8, 2):
            x = torch.rand(6, 64, N_IN, generator=data)
            y = torch.randint(0, N_OUT, (6, 64), generator=data)
            loss = torch.nn.functional.cross_entropy(
                m(x, generator=gen, substeps=k).logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[nt].append(loss.item())
    assert losses[1] == pytest.approx(losses[2], rel=1e-5)
