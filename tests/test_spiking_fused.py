"""The fused spiking engine: the eager module's spikes and gradients, its fallback, fine-tuning on it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from snntorch import surrogate

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking import fused
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.finetune import FinetuneConfig, finetune
from neurosheet.spiking.network import SpikingSheet

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C compiler")

N_IN, N_OUT = 5, 3


def spiking(k: int, reset: str = "zero", seed: int = 4):
    """A small converted circuit (48 neurons, 20% density) that fires busily at K = ``k``."""
    c = random_circuit(48, density=0.2, n_inputs=N_IN, n_outputs=N_OUT, seed=seed)
    x = random_inputs(12, 8, N_IN, seed=seed + 1)
    sc = convert(c, x, ConversionConfig(substeps=k, gate="off", rate_hz=1000.0, tau_mem_ms=50.0))
    return sc if reset == "zero" else replace(sc, neuron=replace(sc.neuron, reset="subtract"))


def sheet(sc) -> SpikingSheet:
    return SpikingSheet(sc, surrogate=surrogate.fast_sigmoid(slope=5.0), surrogate_dt_ms=5.0)


def loss_and_grads(sc, engine: str, k: int, rate_l2: bool, noise: float = 0.0,
                   batch: int = 8, seed: int = 7):
    """Outputs, a task-like loss on the logits (plus a count penalty) and every gradient."""
    net = sheet(sc)
    x = torch.as_tensor(random_inputs(10, batch, N_IN, seed=seed))
    out = fused.run(net, x, substeps=k, noise=noise, generator=torch.Generator().manual_seed(3),
                    engine=engine)
    target = torch.arange(10 * batch).reshape(10, batch) % N_OUT
    loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, N_OUT), target.reshape(-1))
    if rate_l2:
        loss = loss + 0.05 * (out.counts / sc.task_dt_ms).square().mean()
    if engine == "fused":
        # smallest |v - threshold| of the run: above rounding, every order of sums agrees
        node = out.weighted.grad_fn.next_functions[0][0]  # transpose -> the fused node
        out.margin = float(node.saved_tensors[1].abs().min())
    loss.backward()
    return out, {n: p.grad.clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize(("k", "batch", "seed"), [(1, 8, 7), (5, 8, 7), (20, 8, 7), (1, 36, 9),
                                                  (5, 36, 9)])
@pytest.mark.parametrize("rate_l2", [False, True])
def test_fused_spikes_and_gradients_equal_the_eager_module(k, batch, seed, reset, rate_l2):
    # batch 8: every spiking neuron sends as a batch vector; 36: a lone spike one by one, and
    # the backward pass's 32-trial register chunk plus a 4-trial tail. The input seeds keep
    # every membrane away from threshold (checked below: the more samples, the closer one gets)
    sc = spiking(k, reset)
    ref, g_ref = loss_and_grads(sc, "eager", k, rate_l2, batch=batch, seed=seed)
    out, g = loss_and_grads(sc, "fused", k, rate_l2, batch=batch, seed=seed)
    assert out.margin > 2e-6  # no membrane within ~16 ulps of threshold: counts must agree
    assert ref.counts.sum() > 500  # busy enough that the recurrent spikes matter
    assert torch.equal(out.counts, ref.counts)
    assert torch.equal(out.weighted, ref.weighted)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-6, atol=1e-6)
    for name in ("w_rec", "w_in", "b", "w_out", "b_out"):
        scale = float(g_ref[name].abs().max())
        assert scale > 0, name
        err = float((g[name] - g_ref[name]).abs().max()) / scale
        assert err < 1e-4, (name, err)


def test_membrane_noise_is_drawn_as_the_eager_module_draws_it():
    sc = spiking(5)
    ref, g_ref = loss_and_grads(sc, "eager", 5, False, noise=0.3)
    out, g = loss_and_grads(sc, "fused", 5, False, noise=0.3)
    quiet, _ = loss_and_grads(sc, "fused", 5, False)
    assert not torch.equal(quiet.counts, out.counts)  # the noise changed the spikes
    assert torch.equal(out.counts, ref.counts)
    torch.testing.assert_close(g["w_rec"], g_ref["w_rec"], rtol=1e-4, atol=1e-6)


def test_no_grad_forward_keeps_nothing_and_validation_agrees():
    sc = spiking(5)
    net = sheet(sc)
    x = torch.as_tensor(random_inputs(10, 4, N_IN, seed=2))
    with torch.no_grad():
        a = fused.simulate(net, x, substeps=5)
        b = net(x, substeps=5)
    assert a.logits.grad_fn is None
    assert torch.equal(a.counts, b.counts)
    # numpy inputs and a wrong shape behave as in the eager module
    with pytest.raises(NeurosheetError, match="shape"):
        fused.simulate(net, x[..., :2], substeps=5)
    with torch.no_grad():
        c = fused.simulate(net, x.numpy(), substeps=5)
    assert torch.equal(c.counts, a.counts)


def test_fine_tuning_on_the_fused_engine_trains_only_edges_and_follows_eager(tmp_path):
    from neurosheet.graph.circuit import Circuit
    from neurosheet.spiking.persist import calibration_batch
    from neurosheet.tasks import N_OBS
    from neurosheet.tasks import N_OUT as TASK_OUT

    go = random_circuit(36, density=0.2, n_inputs=N_OBS + 1, n_outputs=TASK_OUT, seed=3)

    task = Circuit(go.graph, go.w_rec, go.w_in, go.b_rec, go.w_out, go.b_out, go.params, ("go",))
    sc = convert(task, calibration_batch(task, 8, 0).inputs,
                 ConversionConfig(substeps=4, gate="off", rate_hz=1000.0, tau_mem_ms=50.0))
    kw = {"steps": 3, "batch": 4, "eval_every": 3, "eval_trials": 2, "substeps": (4,),
          "checkpoint_every": 3, "rate_l2": 0.01, "distill": 0.0}
    runs = {e: finetune(sc, tmp_path / e, FinetuneConfig(engine=e, **kw))
            for e in ("fused", "eager")}
    assert runs["fused"].steps == 3
    net = sheet(sc)
    net.load_state_dict(torch.load(tmp_path / "fused" / "checkpoint.pt",
                                   weights_only=False)["model"])
    tuned = net.to_circuit()
    mask = sc.graph.adjacency.toarray() != 0
    assert not tuned.rec_matrix().toarray()[~mask].any()  # only edges exist
    assert not np.array_equal(tuned.w_rec, sc.w_rec)  # and they trained

    def losses(d):
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if r["kind"] == "train"]

    np.testing.assert_allclose(losses(tmp_path / "fused"), losses(tmp_path / "eager"), rtol=1e-4)
    # the validation of the starting circuit (same weights) scores the same on both engines
    assert runs["fused"].initial == runs["eager"].initial


def test_unsupported_modules_and_engine_names():
    sc = spiking(2)
    x = torch.as_tensor(random_inputs(4, 2, N_IN, seed=0))
    for net in (SpikingSheet(sc, dtype=torch.float64),
                SpikingSheet(sc, surrogate=surrogate.atan()),
                SpikingSheet(sc, reset_grad=True)):
        assert fused.unsupported(net) is not None
        fused.run(net, x, substeps=2)  # auto: the eager module
        with pytest.raises(NeurosheetError):
            fused.run(net, x, substeps=2, engine="fused")
    assert fused.fast_sigmoid_slope(surrogate.fast_sigmoid(slope=7)) == 7.0
    with pytest.raises(NeurosheetError, match="engine"):
        FinetuneConfig(engine="jit")
    with pytest.raises(NeurosheetError, match="engine"):
        fused.run(sheet(sc), x, engine="jit")


def test_fallback_without_the_compiled_kernel(tmp_path, no_compiled_kernels):
    sc = spiking(2)
    net = sheet(sc)
    x = torch.as_tensor(random_inputs(4, 2, N_IN, seed=0))
    assert not fused.available()
    assert fused.resolve_engine("auto") == "eager"
    out = fused.run(net, x, substeps=2)
    out.logits.sum().backward()  # the eager module's autograd
    assert out.logits.grad_fn is not None and net.w_rec.grad is not None
    with pytest.raises(NeurosheetError, match="compiler"):
        fused.run(net, x, substeps=2, engine="fused")
    with pytest.raises(NeurosheetError, match="kernel"):
        fused.simulate(net, x, substeps=2)
    with pytest.raises(NeurosheetError, match="compiler"):
        finetune(sc, tmp_path, FinetuneConfig(engine="fused"))
