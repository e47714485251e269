"""Brian2 backend: the reference simulator, on the graph's explicit (i, j, w) edge arrays.

One ``NeuronGroup`` holds ``trials x N`` neurons (each trial a copy of the sheet, so one run
simulates a whole batch) and one ``Synapses`` object is connected from explicit ``i = pre``,
``j = post`` arrays with ``w = w_rec / g``: the spiking network's synapses are exactly the rate
graph's edges. The state update is the documented discrete-time map of
:mod:`neurosheet.spiking.conversion` (as on digital neuromorphic chips), written as Brian2 code:

    groups:     I = beta*I + (1 - beta)*(syn + drive(t, i)); syn = 0; v = clip(v + g*I, 0, inf)
    thresholds: v > 1
    synapses:   syn_post += w
    resets:     v = clip(v - 1, 0, 1)

which is step-for-step the snntorch backend's loop. The input current ``W_in u_t + b`` enters as
a ``TimedArray`` with one row per task step.

Code generation: ``cython`` (the default when a C compiler and Cython work) or
``cpp_standalone`` (compiled once per call, further trial chunks re-run the binary with
``run_args``), falling back to ``numpy`` without a compiler. Builds are cached in the directory
the caller gives (the run directory), so a second call does not compile again.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.base import SpikeResult, SpikingBackend, counts_from_spikes
from neurosheet.spiking.conversion import SpikingCircuit

TARGETS = ("auto", "cython", "cpp_standalone", "numpy")

_STEP = "I = beta_s*I + (1 - beta_s)*(syn + drive(t, i))\nsyn = 0\nv = clip(v + g_s*I, 0, inf)"
_EQS = "I : 1\nv : 1\nsyn : 1"


def available_target(preferred: str = "auto", build_dir: str | Path | None = None) -> str:
    """The code-generation target to use: ``auto`` picks cython when it compiles, else numpy."""
    if preferred not in TARGETS:
        raise NeurosheetError(f"unknown Brian2 target {preferred!r}; use one of {', '.join(TARGETS)}")
    if preferred == "numpy":
        return preferred
    from brian2.codegen.runtime.cython_rt.cython_rt import CythonCodeObject

    with codegen_prefs(build_dir):
        compiles = CythonCodeObject.is_available()
    if preferred == "auto":
        return "cython" if compiles else "numpy"
    if not compiles:
        raise NeurosheetError(
            f"Brian2 target {preferred} needs a working C++ compiler; use target numpy", "target"
        )
    return preferred


@contextlib.contextmanager
def codegen_prefs(build_dir: str | Path | None, target: str | None = None) -> Iterator[None]:
    """Set Brian2's (global) code-generation preferences for one call and restore them after.

    Compiled Cython modules go to ``build_dir/cython`` (Brian2 keys them by their generated
    code, so one folder serves every circuit and process: by default the user's cache folder).
    """
    from brian2 import prefs

    keys = ["codegen.target", "codegen.runtime.cython.cache_dir", "core.default_float_dtype"]
    saved = {k: prefs[k] for k in keys}
    try:
        if build_dir is not None:
            cache = Path(build_dir) / "cython"
            cache.mkdir(parents=True, exist_ok=True)
            prefs["codegen.runtime.cython.cache_dir"] = str(cache)
        if target in ("cython", "numpy"):
            prefs["codegen.target"] = target
        prefs["core.default_float_dtype"] = np.float64
        yield
    finally:
        for k, v in saved.items():
            prefs[k] = v


class Brian2Backend(SpikingBackend):
    """Simulate chunks of ``batch_size`` trials as one Brian2 network of ``batch_size x N`` neurons."""

    name = "brian2"

    def __init__(self, target: str = "auto", build_dir: str | Path | None = None,
                 batch_size: int = 32) -> None:
        if target not in TARGETS:
            raise NeurosheetError(f"unknown Brian2 target {target!r}; use one of {', '.join(TARGETS)}")
        if batch_size < 1:
            raise NeurosheetError(f"batch_size must be >= 1, got {batch_size}")
        self.target = target
        self.build_dir = None if build_dir is None else Path(build_dir)
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run: Any, **options: Any) -> Brian2Backend:
        """Compiled code in the user's cache folder, shared by every run and report folder, so
        a fresh report does not recompile (``NEUROSHEET_CACHE`` moves it)."""
        from neurosheet.core.cache import user_cache_dir

        options.setdefault("build_dir", user_cache_dir("brian2"))
        return cls(**options)

    # ------------------------------------------------------------------ network
    @staticmethod
    def network(spiking: SpikingCircuit, drive: np.ndarray, trials: int) -> dict[str, Any]:
        """Brian2 objects for ``trials`` copies of the circuit driven by ``drive [T, trials, N]``."""
        import brian2 as b2

        # Brian2 numbers code objects whose names are taken by live objects; collect the last
        # network first so names (and hence generated code) repeat and compiled code is reused.
        gc.collect()
        n = spiking.n
        dt = spiking.sim_dt_ms * b2.ms
        steps = drive.shape[0]
        ta = b2.TimedArray(drive.reshape(steps, trials * n), dt=spiking.task_dt_ms * b2.ms,
                           name="drive")
        group = b2.NeuronGroup(trials * n, _EQS, threshold="v > 1", reset="v = clip(v - 1, 0, 1)",
                               dt=dt, name="sheet")
        group.run_regularly(_STEP, when="groups", name="sheet_step")
        post, pre = spiking.edges()
        offsets = np.repeat(np.arange(trials, dtype=np.int64) * n, post.size)
        syn = b2.Synapses(group, group, "w : 1 (constant)", on_pre="syn_post += w", dt=dt,
                          name="sheet_syn")
        syn.connect(i=np.tile(pre, trials) + offsets, j=np.tile(post, trials) + offsets)
        syn.w = np.tile(spiking.spike_weights(), trials)
        mon = b2.SpikeMonitor(group, name="sheet_spikes")
        net = b2.Network(group, syn, mon)
        namespace = {"drive": ta, "beta_s": spiking.beta, "g_s": spiking.g}
        return {"net": net, "mon": mon, "drive": ta, "namespace": namespace,
                "duration": steps * spiking.task_dt_ms * b2.ms}

    @staticmethod
    def _collect(mon: Any, spiking: SpikingCircuit, steps: int, trials: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sim_step, trial, neuron) of every recorded spike."""
        idx = np.asarray(mon.i[:], dtype=np.int64)
        t_ms = np.asarray(mon.t_[:], dtype=np.float64) * 1000.0
        step = np.rint(t_ms / spiking.sim_dt_ms).astype(np.int64)
        return step, idx // spiking.n, idx % spiking.n

    # ------------------------------------------------------------------ run
    def run(self, spiking: SpikingCircuit, inputs: np.ndarray, *, record: int = 0,
            progress: bool = False) -> SpikeResult:
        target = available_target(self.target, self.build_dir)
        drive_all = spiking.drive(inputs)
        steps, trials, n = drive_all.shape
        chunk = min(self.batch_size, trials)
        spikes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        runner = self._run_standalone if target == "cpp_standalone" else self._run_runtime
        build_s, run_s = runner(spiking, drive_all, chunk, target, spikes, progress)
        step = np.concatenate([s[0] for s in spikes])
        trial = np.concatenate([s[1] for s in spikes])
        neuron = np.concatenate([s[2] for s in spikes])
        keep = trial < trials  # drop the zero-padded trials of a last, short chunk
        step, trial, neuron = step[keep], trial[keep], neuron[keep]
        counts = counts_from_spikes(step, trial, neuron, (steps, trials, n), spiking.substeps)
        rasters = []
        for b in range(min(record, trials)):
            sel = trial == b
            order = np.lexsort((neuron[sel], step[sel]))
            rasters.append((step[sel][order], neuron[sel][order]))
        return SpikeResult(
            backend=self.name, counts=counts, logits=spiking.decode(counts),
            sim_dt_ms=spiking.sim_dt_ms, substeps=spiking.substeps, rasters=rasters,
            build_s=build_s, run_s=run_s, info={"target": target, "dtype": "float64"},
        )

    def _chunks(self, drive_all: np.ndarray, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        trials = drive_all.shape[1]
        for lo in range(0, trials, chunk):
            part = drive_all[:, lo:lo + chunk]
            if part.shape[1] < chunk:  # pad so every chunk has the compiled shape
                pad = np.zeros((part.shape[0], chunk - part.shape[1], part.shape[2]))
                part = np.concatenate([part, pad], axis=1)
            yield lo, np.ascontiguousarray(part)

    def _run_runtime(self, spiking: SpikingCircuit, drive_all: np.ndarray, chunk: int,
                     target: str, spikes: list, progress: bool) -> tuple[float, float]:
        """cython / numpy: build objects per chunk (compiled code is cached), time each run."""
        import brian2 as b2

        build_s = run_s = 0.0
        steps = drive_all.shape[0]
        with codegen_prefs(self.build_dir, target):
            for lo, part in self._chunks(drive_all, chunk):
                t0 = time.perf_counter()
                objs = self.network(spiking, part, chunk)
                # a zero-length run generates and compiles all code (cached in build_dir)
                objs["net"].run(0 * b2.ms, namespace=objs["namespace"])
                t1 = time.perf_counter()
                bar = tqdm(total=100, desc=f"brian2 {target} trials {lo}+", unit="%",
                           disable=not progress)

                def report(elapsed: Any, completed: float, start: Any, duration: Any,
                           _bar: Any = bar) -> None:
                    _bar.update(int(completed * 100) - _bar.n)

                objs["net"].run(objs["duration"], namespace=objs["namespace"],
                                report=report if progress else None, report_period=1 * b2.second)
                bar.close()
                t2 = time.perf_counter()
                build_s += t1 - t0
                run_s += t2 - t1
                step, trial, neuron = self._collect(objs["mon"], spiking, steps, chunk)
                spikes.append((step, trial + lo, neuron))
                del objs  # free the names for the next chunk's network
        return build_s, run_s

    def _run_standalone(self, spiking: SpikingCircuit, drive_all: np.ndarray, chunk: int,
                        target: str, spikes: list, progress: bool) -> tuple[float, float]:
        """cpp_standalone: generate and compile once, then run the binary once per chunk."""
        import brian2 as b2
        from brian2.devices.device import get_device, reset_device

        steps = drive_all.shape[0]
        # a project folder of this call's own (processes sharing a cache never collide);
        # compiled once here, then the binary is re-run for every chunk of trials
        tmp = tempfile.TemporaryDirectory(prefix="standalone-", dir=self.build_dir)
        directory = Path(tmp.name)
        chunks = list(self._chunks(drive_all, chunk))
        build_s = run_s = 0.0
        try:
            with codegen_prefs(self.build_dir):
                b2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
                device = get_device()
                t0 = time.perf_counter()
                objs = self.network(spiking, chunks[0][1], chunk)
                objs["net"].run(objs["duration"], namespace=objs["namespace"])
                device.build(directory=str(directory), compile=True, run=False)
                build_s = time.perf_counter() - t0
                for lo, part in tqdm(chunks, desc="brian2 cpp_standalone", unit="chunk",
                                     disable=not progress):
                    t1 = time.perf_counter()
                    device.run(run_args={objs["drive"]: part.reshape(steps, -1)})
                    run_s += time.perf_counter() - t1
                    step, trial, neuron = self._collect(objs["mon"], spiking, steps, chunk)
                    spikes.append((step, trial + lo, neuron))
        finally:
            with contextlib.suppress(Exception):
                get_device().reinit()
            reset_device("runtime")
            if tmp is not None:
                tmp.cleanup()
        return build_s, run_s
