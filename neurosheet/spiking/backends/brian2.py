"""Brian2 backend: the reference simulator, on the graph's explicit (i, j, w) edge arrays.

One ``NeuronGroup`` holds ``trials x N`` neurons (each trial a copy of the sheet, so one run
simulates a whole batch) and one ``Synapses`` object is connected from explicit ``i = pre``,
``j = post`` arrays: the spiking network's synapses are exactly the rate graph's edges. The
state update is the discrete-time map of :mod:`neurosheet.spiking.model` (exact integration of
the CubaLIF equations over one step, as on digital neuromorphic chips), written as Brian2 code
with ``S = (1 - beta) r I`` (what snntorch's ``Synaptic`` calls ``syn``)::

    groups:     rst = int(v > theta); S = alpha*S + (syn + drive(t, i)); syn = 0; v = beta*v + S
    thresholds: v > theta*(1 + rst)
    synapses:   syn_post += w          (w = (1 - beta) r W_ij: one spike's jump, scaled)
    resets:     v = 0                  (or v = v - theta with reset "subtract")

which is step-for-step the snntorch backend's ``Synaptic`` (``rst`` is snntorch's rule for a
neuron still above threshold after a subtractive reset; it is always 0 with reset to zero).
The input current ``(1 - beta) r (1 - alpha) (W_in u_t + b)`` enters as a ``TimedArray`` with
one row per task step; the readout is decoded from the spike times by ``SpikingCircuit.decode``.

Code generation: ``cython`` (the default when a C compiler and Cython work) or
``cpp_standalone`` (compiled once per call, further trial chunks re-run the binary with
``run_args``), falling back to ``numpy`` without a compiler. Builds are cached in the directory
the caller gives (the run directory), so a second call does not compile again.
:meth:`Brian2Backend.network` (also ``SpikingCircuit.brian2_network``) returns the Brian2
``Network`` itself, for use in your own Brian2 code.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.base import SpikeResult, SpikingBackend, counts_from_spikes
from neurosheet.spiking.model import SpikingCircuit

TARGETS = ("auto", "cython", "cpp_standalone", "numpy")

_STEP = ("rst = int(v > theta_s)\nS = alpha_s*S + (syn + drive(t, i))\nsyn = 0\n"
         "v = beta_s*v + S")
_EQS = "S : 1\nv : 1\nsyn : 1\nrst : 1"
_RESET = {"zero": "v = 0", "subtract": "v = v - theta_s"}


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
def codegen_prefs(build_dir: str | Path | None, target: str | None = None,
                  dtype: str = "float64") -> Iterator[None]:
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
        prefs["core.default_float_dtype"] = np.dtype(dtype).type
        yield
    finally:
        for k, v in saved.items():
            prefs[k] = v


class Brian2Backend(SpikingBackend):
    """Simulate chunks of ``batch_size`` trials as one Brian2 network of ``batch_size x N`` neurons."""

    name = "brian2"

    def __init__(self, target: str = "auto", build_dir: str | Path | None = None,
                 batch_size: int = 32, dtype: str = "float64") -> None:
        if target not in TARGETS:
            raise NeurosheetError(f"unknown Brian2 target {target!r}; use one of {', '.join(TARGETS)}")
        if batch_size < 1:
            raise NeurosheetError(f"batch_size must be >= 1, got {batch_size}")
        self.target = target
        self.build_dir = None if build_dir is None else Path(build_dir)
        if dtype not in ("float32", "float64"):
            raise NeurosheetError(f"dtype must be float32 or float64, got {dtype!r}", "dtype")
        self.dtype = dtype  # float64: spike for spike the snntorch backend in float64
        self.batch_size = batch_size
        self.last_standalone: dict[str, Any] = {}  # project folder, compiled in this call?

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
        """Brian2 objects for ``trials`` copies of the circuit driven by the input current
        ``drive [T, trials, N]`` (``SpikingCircuit.drive``): ``net`` (a ``brian2.Network``),
        ``group``, ``synapses``, ``mon`` (its ``SpikeMonitor``), ``drive`` (the ``TimedArray``),
        the ``namespace`` to pass to ``net.run`` and the ``duration`` of the trials."""
        import brian2 as b2

        # Brian2 numbers code objects whose names are taken by live objects; collect the last
        # network first so names (and hence generated code) repeat and compiled code is reused.
        gc.collect()
        n = spiking.n
        c = spiking.constants()
        nm = spiking.neuron
        dt = spiking.sim_dt_ms * b2.ms
        steps = drive.shape[0]
        scaled = ((c.gain * (1.0 - c.alpha)) * np.asarray(drive, dtype=np.float64)).astype(
            b2.prefs["core.default_float_dtype"])
        ta = b2.TimedArray(scaled.reshape(steps, trials * n), dt=spiking.task_dt_ms * b2.ms,
                           name="drive")
        group = b2.NeuronGroup(trials * n, _EQS, threshold="v > theta_s*(1 + rst)",
                               reset=_RESET[nm.reset], dt=dt, name="sheet")
        group.run_regularly(_STEP, when="groups", name="sheet_step")
        post, pre = spiking.edges()
        offsets = np.repeat(np.arange(trials, dtype=np.int64) * n, post.size)
        syn = b2.Synapses(group, group, "w : 1 (constant)", on_pre="syn_post += w", dt=dt,
                          name="sheet_syn")
        syn.connect(i=np.tile(pre, trials) + offsets, j=np.tile(post, trials) + offsets)
        syn.w = np.tile(c.gain * spiking.w_rec.astype(np.float64), trials)
        mon = b2.SpikeMonitor(group, name="sheet_spikes")
        net = b2.Network(group, syn, mon)
        namespace = {"drive": ta, "alpha_s": c.alpha, "beta_s": c.beta,
                     "theta_s": nm.threshold}
        return {"net": net, "group": group, "synapses": syn, "mon": mon, "drive": ta,
                "namespace": namespace, "duration": steps * spiking.task_dt_ms * b2.ms}

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
        shape = (steps, trials, n)
        counts = counts_from_spikes(step, trial, neuron, shape, spiking.substeps)
        weighted = counts_from_spikes(step, trial, neuron, shape, spiking.substeps,
                                      spiking.readout_weights())
        rasters = []
        for b in range(min(record, trials)):
            sel = trial == b
            order = np.lexsort((neuron[sel], step[sel]))
            rasters.append((step[sel][order], neuron[sel][order]))
        return SpikeResult(
            backend=self.name, counts=counts, logits=spiking.decode(weighted),
            sim_dt_ms=spiking.sim_dt_ms, substeps=spiking.substeps, rasters=rasters,
            build_s=build_s, run_s=run_s,
            info={"target": target, "dtype": self.dtype,
                  **(self.last_standalone if target == "cpp_standalone" else {})},
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
        with codegen_prefs(self.build_dir, target, self.dtype):
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
        """cpp_standalone: the compiled project of this circuit and shape from the cache (built
        once, by whichever process gets there first), its binary run once per chunk of trials
        with that chunk's input current as a command-line ``run_args`` file."""
        steps = drive_all.shape[0]
        chunks = list(self._chunks(drive_all, chunk))
        project, build_s = standalone_project(spiking, steps, chunk, self.build_dir, chunks[0][1],
                                              self.dtype)
        manifest = json.loads((project / MANIFEST).read_text())
        self.last_standalone = {"project": str(project), "compiled": build_s > 0}
        c = spiking.constants()
        factor = c.gain * (1.0 - c.alpha)  # as network() scales the current
        run_s = 0.0
        with tempfile.TemporaryDirectory(prefix="run-", dir=project.parent) as tmp:
            values = Path(tmp) / "drive.dat"
            for lo, part in tqdm(chunks, desc="brian2 cpp_standalone", unit="chunk",
                                 disable=not progress):
                t1 = time.perf_counter()
                np.ascontiguousarray((factor * part).reshape(steps, -1),
                                     dtype=manifest["drive_dtype"]).tofile(values)
                results = Path(tmp) / f"results-{lo}"
                results.mkdir()
                proc = subprocess.run(
                    [str(project / "main"), "--results_dir", f"{results}{os.sep}",
                     f"{manifest['drive']}.values={values}"],
                    cwd=project, capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise NeurosheetError(f"Brian2 standalone binary in {project} failed "
                                          f"(exit {proc.returncode}): "
                                          f"{proc.stderr.strip()[-300:]}", "target")
                run_s += time.perf_counter() - t1
                idx = np.fromfile(results / manifest["spike_i"], dtype=np.int32).astype(np.int64)
                t_s = np.fromfile(results / manifest["spike_t"], dtype=manifest["spike_t_dtype"])
                step = np.rint(t_s * 1000.0 / spiking.sim_dt_ms).astype(np.int64)
                spikes.append((step, idx // spiking.n + lo, idx % spiking.n))
                shutil.rmtree(results, ignore_errors=True)
        return build_s, run_s


MANIFEST = "neurosheet-build.json"


def standalone_key(spiking: SpikingCircuit, steps: int, trials: int,
                   dtype: str = "float64") -> str:
    """The cache key of a compiled standalone project (inputs are run arguments, not in it).

    Graph, exact recurrent weights, neuron model, K, task steps, trials per run, dtype and the
    Brian2 version: what the generated code and its static arrays depend on.
    """
    import brian2 as b2

    h = hashlib.sha256(spiking.graph.fingerprint().encode())
    h.update(np.ascontiguousarray(spiking.w_rec, dtype=np.float64).tobytes())
    h.update(json.dumps({"neuron": asdict(spiking.neuron), "task_dt_ms": spiking.task_dt_ms,
                         "substeps": spiking.substeps, "steps": steps, "trials": trials,
                         "brian2": b2.__version__, "code": [_STEP, _EQS, _RESET],
                         "dtype": dtype, "format": 1}, sort_keys=True).encode())
    return h.hexdigest()[:24]


def standalone_project(spiking: SpikingCircuit, steps: int, trials: int,
                       build_dir: str | Path | None, first: np.ndarray,
                       dtype: str = "float64") -> tuple[Path, float]:
    """The compiled cpp_standalone project of a circuit and shape, built here only if missing.

    Returns its folder and the seconds spent building it in this call (0 when cached).
    Projects live in ``<build_dir or user cache>/standalone/<key>``; a build happens in a
    private folder renamed into place when finished (atomic), under a file lock, so concurrent
    processes build a project once and never see half of one. ``first [T, trials, N]`` is an
    input current for the build (each run replaces it).
    """
    from brian2.utils.filelock import FileLock

    from neurosheet.core.cache import user_cache_dir

    root = (Path(build_dir) if build_dir is not None else user_cache_dir("brian2")) / "standalone"
    root.mkdir(parents=True, exist_ok=True)
    project = root / standalone_key(spiking, steps, trials, dtype)
    if (project / MANIFEST).is_file():
        return project, 0.0
    with FileLock(str(project) + ".lock"):
        if (project / MANIFEST).is_file():  # another process built it while we waited
            return project, 0.0
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f"build-{project.name}-", dir=root))
        try:
            manifest = _build_standalone(spiking, first, trials, tmp, build_dir, dtype)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            shutil.rmtree(project, ignore_errors=True)  # a broken leftover without manifest
            os.replace(tmp, project)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return project, time.perf_counter() - t0


def _build_standalone(spiking: SpikingCircuit, drive: np.ndarray, trials: int, directory: Path,
                      build_dir: str | Path | None, dtype: str) -> dict[str, Any]:
    """Generate and compile the standalone project in ``directory`` (not run); returns what a
    later process needs to run it: the input's run-argument name and the spike files."""
    import brian2 as b2
    from brian2.devices.device import get_device, reset_device

    try:
        with codegen_prefs(build_dir, dtype=dtype):
            b2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
            device = get_device()
            objs = Brian2Backend.network(spiking, drive, trials)
            objs["net"].run(objs["duration"], namespace=objs["namespace"])
            device.build(directory=str(directory), compile=True, run=False, with_output=False)
            mon = objs["mon"]
            return {"drive": objs["drive"].name,
                    "drive_dtype": np.dtype(objs["drive"].values.dtype).name,
                    "spike_t_dtype": np.dtype(mon.variables["t"].dtype).name,
                    "spike_i": device.get_array_filename(mon.variables["i"]),
                    "spike_t": device.get_array_filename(mon.variables["t"]),
                    "n": spiking.n, "trials": trials, "brian2": b2.__version__}
    finally:
        with contextlib.suppress(Exception):
            get_device().reinit()
        reset_device("runtime")


def brian2_network(spiking: SpikingCircuit, inputs: np.ndarray) -> dict[str, Any]:
    """The Brian2 objects that simulate ``spiking`` on ``inputs [T, B, n_in]`` (B copies of the
    sheet in one ``NeuronGroup``), for your own Brian2 code: ``net`` (a ``brian2.Network``),
    ``group``, ``synapses``, ``mon`` (``SpikeMonitor``), ``drive`` (``TimedArray``), and the
    ``namespace`` and ``duration`` to run it with::

        objs = brian2_network(circuit, inputs)
        objs["net"].run(objs["duration"], namespace=objs["namespace"])
        spike_times, flat_index = objs["mon"].t, objs["mon"].i   # neuron = index % N

    Runs in Brian2's current code-generation target (numpy unless you set another).
    """
    drive = spiking.drive(inputs)
    return Brian2Backend.network(spiking, drive, drive.shape[1])
