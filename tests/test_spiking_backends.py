"""snntorch and Brian2 backends: same synapses as the graph, and the same spikes on the same input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.brian2 import (
    MANIFEST,
    Brian2Backend,
    available_target,
    codegen_prefs,
)
from neurosheet.spiking.backends.snntorch import SnntorchBackend
from neurosheet.spiking.conversion import ConversionConfig, convert, decisions
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.network import SpikingSheet
from neurosheet.spiking.registry import create_backend

BUSY = {"rate_hz": 1000.0, "tau_mem_ms": 50.0}  # enough spikes to compare on a small circuit


def _convert(dtype: str, substeps: int = 20, seed: int = 1, **knobs):
    circuit = random_circuit(64, density=0.1, seed=seed)
    u = random_inputs(8, 24, 4, seed=seed + 1)
    cfg = ConversionConfig(substeps=substeps, dtype=dtype, **{**BUSY, **knobs})
    return convert(circuit, u, cfg), u


@pytest.fixture(scope="module")
def sc64():
    return _convert("float64")


@pytest.fixture(scope="module")
def brian_numpy(sc64):
    sc, u = sc64
    return Brian2Backend(target="numpy").run(sc, u, record=2)


def _corr(a, b):
    return float(np.corrcoef(a.per_neuron_counts().ravel(), b.per_neuron_counts().ravel())[0, 1])


def test_snntorch_synapses_are_exactly_the_graph_edges(sc64):
    sc, _ = sc64
    net = SnntorchBackend(device="cpu", dtype="float64").module(sc)
    post, pre = sc.edges()
    np.testing.assert_array_equal(net.structure.post.numpy(), post)
    np.testing.assert_array_equal(net.structure.pre.numpy(), pre)
    np.testing.assert_array_equal(net.w_rec.numpy(), sc.w_rec.astype(np.float64))
    assert net.w_rec.numel() == sc.graph.synapses


def test_brian2_synapses_are_exactly_the_graph_edges(sc64):
    sc, u = sc64
    with codegen_prefs(None, "numpy"):
        objs = Brian2Backend.network(sc, sc.drive(u[:, :2]), 2)
    syn = objs["net"]["sheet_syn"]
    post, pre = sc.edges()
    n, e = sc.n, sc.graph.synapses
    assert len(syn) == 2 * e  # two trials, each a full copy of the graph
    i, j, w = np.asarray(syn.i[:]), np.asarray(syn.j[:]), np.asarray(syn.w[:])
    for b in range(2):
        part = slice(b * e, (b + 1) * e)
        assert set(zip((i[part] - b * n).tolist(), (j[part] - b * n).tolist(), strict=True)) == \
            set(zip(pre.tolist(), post.tolist(), strict=True))
        np.testing.assert_allclose(w[part], sc.constants().gain * sc.w_rec.astype(np.float64))


def test_float64_backends_agree_spike_for_spike(sc64, brian_numpy):
    sc, u = sc64
    snn = SnntorchBackend(device="cpu").run(sc, u, record=2)
    b2 = brian_numpy
    assert snn.total_spikes > 1000  # the comparison is not between two silent networks
    assert _corr(snn, b2) >= 0.95
    assert (decisions(snn.logits) == decisions(b2.logits)).mean() >= 0.95
    # exact equivalence of the two implementations of the same map (float64)
    assert np.abs(snn.counts - b2.counts).sum() <= 1e-3 * snn.total_spikes
    for (s1, n1), (s2, n2) in zip(snn.rasters, b2.rasters, strict=True):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(n1, n2)


def test_float32_snntorch_meets_the_agreement_bars(brian_numpy):
    sc32, u = _convert("float32")
    snn = SnntorchBackend(device="cpu").run(sc32, u)
    assert _corr(snn, brian_numpy) >= 0.95
    assert (decisions(snn.logits) == decisions(brian_numpy.logits)).mean() >= 0.95


def test_rasters_add_up_to_the_counts(sc64, brian_numpy):
    sc, _ = sc64
    for b, (steps, neurons) in enumerate(brian_numpy.rasters):
        counts = np.zeros((brian_numpy.counts.shape[0], sc.n), int)
        np.add.at(counts, (steps // sc.substeps, neurons), 1)
        np.testing.assert_array_equal(counts, brian_numpy.counts[:, b])


def test_batching_does_not_change_the_result(sc64, brian_numpy):
    sc, u = sc64
    whole = SnntorchBackend(device="cpu", batch_size=256).run(sc, u)
    parts = SnntorchBackend(device="cpu", batch_size=5).run(sc, u)
    np.testing.assert_array_equal(whole.counts, parts.counts)
    csr = SnntorchBackend(device="cpu", matmul="csr").run(sc, u)
    assert _corr(whole, csr) > 0.99
    chunked = Brian2Backend(target="numpy", batch_size=7).run(sc, u)  # last chunk is padded
    np.testing.assert_array_equal(chunked.counts, brian_numpy.counts)


def test_result_summary_counts_synaptic_events(brian_numpy, sc64):
    sc, _ = sc64
    s = brian_numpy.summary(sc.graph.fan_out)
    per_neuron = brian_numpy.counts.sum((0, 1))
    assert s["synaptic_events"] == int((per_neuron * sc.graph.fan_out).sum())
    assert s["spikes"] == brian_numpy.total_spikes and s["mean_rate_hz"] > 0
    assert brian_numpy.biological_s == pytest.approx(8 * sc.task_dt_ms / 1000)


@pytest.fixture(scope="module")
def standalone(sc64, tmp_path_factory):
    """One cpp_standalone build of the circuit in a fresh cache (the only compile here)."""
    cache = tmp_path_factory.mktemp("brian2-cache")
    try:
        available_target("cpp_standalone", cache)
    except NeurosheetError:
        pytest.skip("no working C++ compiler for Brian2's cpp_standalone")
    sc, u = sc64
    return cache, Brian2Backend(target="cpp_standalone", build_dir=cache, batch_size=16).run(sc, u)


def test_cpp_standalone_matches_and_leaves_brian2_usable(sc64, brian_numpy, standalone):
    sc, u = sc64
    cache, b2 = standalone
    assert b2.info["target"] == "cpp_standalone" and b2.build_s > 0 and b2.info["compiled"]
    projects = [p for p in (cache / "standalone").iterdir() if p.is_dir()]
    assert len(projects) == 1 and (projects[0] / MANIFEST).is_file()  # no half builds left
    np.testing.assert_array_equal(b2.counts, brian_numpy.counts)
    again = Brian2Backend(target="numpy").run(sc, u[:, :3])  # runtime mode works afterwards
    np.testing.assert_array_equal(again.counts, brian_numpy.counts[:, :3])


@pytest.mark.slow
def test_cython_matches_and_caches_in_the_build_dir(sc64, brian_numpy, tmp_path):
    sc, u = sc64
    b2 = Brian2Backend(target="cython", build_dir=tmp_path).run(sc, u)
    assert b2.info["target"] == "cython"
    assert any((tmp_path / "cython").iterdir())
    np.testing.assert_array_equal(b2.counts, brian_numpy.counts)


def test_bad_backend_options_are_one_line_errors():
    with pytest.raises(NeurosheetError, match="unknown backend"):
        create_backend("nest")
    with pytest.raises(NeurosheetError, match="Brian2 target"):
        Brian2Backend(target="gpu")
    with pytest.raises(NeurosheetError, match="matmul"):
        SnntorchBackend(matmul="coo")


def test_the_module_step_is_snntorchs_synaptic_neuron(sc64):
    """SpikingSheet's written-out step equals snn.Synaptic(alpha, beta, threshold, reset)."""
    sc, u = sc64
    for reset in ("zero", "subtract"):
        circ = sc if reset == "zero" else _convert("float64", reset="subtract")[0]
        net = SpikingSheet(circ, dtype=torch.float64, trainable=False, kernel="dense")
        soma = net.soma()
        c = circ.constants()
        drive = torch.as_tensor(circ.drive(u[:, :3]))
        w = torch.zeros(circ.n, circ.n, dtype=torch.float64)
        post, pre = circ.edges()
        w[post, pre] = torch.as_tensor(c.gain * circ.w_rec.astype(np.float64))
        syn = mem = spk = torch.zeros(3, circ.n, dtype=torch.float64)
        raster = []
        with torch.no_grad():
            for t in range(drive.shape[0]):
                for _ in range(circ.substeps):
                    x = spk @ w.T + (c.gain * (1 - c.alpha)) * drive[t]
                    spk, syn, mem = soma(x, syn, mem)
                    spk = spk.to(torch.float64)
                    raster.append(spk.clone())
            out = net(u[:, :3], current=circ.drive(u[:, :3]), record=3)
        ours = out.raster.to(torch.float64)
        assert ours.sum() > 100
        theirs = torch.stack(raster)
        assert (ours != theirs).sum() <= 1e-3 * ours.sum()


def test_backends_agree_on_a_finetuned_circuit(tmp_path):
    """After a few surrogate-gradient steps (weights off the converted values) snntorch and
    Brian2 still produce the same spikes in float64."""
    from neurosheet.graph.circuit import save_run_circuit
    from neurosheet.spiking.finetune import FinetuneConfig, finetune
    from neurosheet.tasks import N_OBS, N_OUT

    circuit = random_circuit(36, density=0.2, n_inputs=N_OBS + 1, n_outputs=N_OUT, seed=3)
    circuit = type(circuit)(circuit.graph, circuit.w_rec, circuit.w_in, circuit.b_rec,
                            circuit.w_out, circuit.b_out, circuit.params, ("go",))
    save_run_circuit(tmp_path, circuit)
    from neurosheet.spiking.persist import calibration_batch

    cal = calibration_batch(circuit, 8, 0)
    sc = convert(circuit, cal.inputs, ConversionConfig(substeps=10, gate="off", **BUSY))
    res = finetune(sc, tmp_path / "ft", FinetuneConfig(steps=3, batch=4, eval_every=3,
                                                       eval_trials=2, substeps=(5,), distill=0.0))
    tuned = SpikingSheet(sc, trainable=True)
    assert res.steps == 3
    last = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=False)["model"]
    tuned.load_state_dict(last)
    tc = tuned.to_circuit(sc.meta)
    assert not np.array_equal(tc.w_rec, sc.w_rec)  # the weights did move
    u = calibration_batch(circuit, 6, 5).inputs
    a = SnntorchBackend(device="cpu", dtype="float64").run(tc, u)
    b = Brian2Backend(target="numpy").run(tc, u)
    assert a.total_spikes > 100
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-9, atol=1e-9)


def test_run_directories_share_one_compiled_code_cache(tmp_path, monkeypatch):
    """Brian2's compiled code lives in the user cache, not in each run or report folder."""
    monkeypatch.setenv("NEUROSHEET_CACHE", str(tmp_path / "cache"))
    a = Brian2Backend.from_run(tmp_path / "run-a")
    b = Brian2Backend.from_run(tmp_path / "run-b")
    assert a.build_dir == b.build_dir == tmp_path / "cache" / "brian2"


ROOT = Path(__file__).resolve().parents[1]
_SAME_CIRCUIT = """
import json, sys
import numpy as np
from neurosheet.spiking.conversion import ConversionConfig, convert
from neurosheet.spiking.demo import random_circuit, random_inputs
circuit = random_circuit(64, density=0.1, seed=1)
u = random_inputs(8, 24, 4, seed=2)
sc = convert(circuit, u, ConversionConfig(substeps=20, dtype="float64", rate_hz=1000.0,
                                          tau_mem_ms=50.0))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cpp_standalone_build_is_reused_by_a_new_process(sc64, standalone, tmp_path):
    """A second process runs the cached binary with the same and with new inputs: the same
    spikes as the fresh build (and as numpy on the new inputs), and it compiles nothing."""
    sc, _ = sc64
    cache, first = standalone
    root = cache / "standalone"
    before = sorted(p.name for p in root.iterdir())
    project = Path(first.info["project"])
    stamp = (project / "main").stat().st_mtime_ns
    code = _SAME_CIRCUIT + """
import neurosheet.spiking.backends.brian2 as b2mod
def no_build(*a, **k):
    raise SystemExit("compiled again")
b2mod._build_standalone = no_build  # the marker: any build would end this process
u2 = random_inputs(8, 24, 4, seed=9)
be = b2mod.Brian2Backend(target="cpp_standalone", build_dir=sys.argv[1], batch_size=16)
same, new = be.run(sc, u), be.run(sc, u2)
np.savez(sys.argv[2], same=same.counts, new=new.counts)
print(json.dumps({"same": same.info, "build_s": same.build_s + new.build_s}))
"""
    out = tmp_path / "counts.npz"
    proc = _python(code, str(cache), str(out))
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-500:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["same"]["compiled"] is False and info["build_s"] == 0.0
    assert info["same"]["project"] == str(project)
    assert sorted(p.name for p in root.iterdir()) == before  # no new build folder
    assert (project / "main").stat().st_mtime_ns == stamp  # the binary was not rebuilt
    got = np.load(out)
    np.testing.assert_array_equal(got["same"], first.counts)
    u2 = random_inputs(8, 24, 4, seed=9)
    np.testing.assert_array_equal(got["new"], Brian2Backend(target="numpy").run(sc, u2).counts)
    assert not np.array_equal(got["new"], got["same"])  # the inputs did change the run


def test_concurrent_processes_build_a_standalone_project_once(tmp_path):
    """Two processes asking for the same uncached project: one builds (under the lock, into a
    private folder renamed into place), the other waits and reuses it."""
    code = """
import sys, time
from pathlib import Path
import numpy as np
import neurosheet.spiking.backends.brian2 as b2mod
from neurosheet.spiking.demo import balanced_circuit

def fake_build(spiking, drive, trials, directory, build_dir, dtype):
    with open(sys.argv[2], "a") as fh:
        fh.write(str(directory) + chr(10))
    time.sleep(1.5)  # long enough for the other process to arrive
    (Path(directory) / "main").write_text("")
    return {"drive": "drive"}

b2mod._build_standalone = fake_build
sc = balanced_circuit(64, density=0.2)
while time.time() < float(sys.argv[3]):  # start together
    time.sleep(0.01)
project, build_s = b2mod.standalone_project(sc, 4, 2, sys.argv[1], np.zeros((4, 2, 64)))
print(project, build_s > 0)
"""
    import time

    marker = tmp_path / "builds.txt"
    start = str(time.time() + 8.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(tmp_path),
                               str(marker), start], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1000:] for o in outs]
    lines = [o[0].split() for o in outs]
    assert lines[0][0] == lines[1][0]  # the same project
    assert sorted(x[1] for x in lines) == ["False", "True"]  # one built, one reused
    assert len(marker.read_text().splitlines()) == 1
    root = tmp_path / "standalone"
    assert [p.name for p in root.iterdir() if p.is_dir()] == [Path(lines[0][0]).name]
    assert json.loads((Path(lines[0][0]) / MANIFEST).read_text()) == {"drive": "drive"}
