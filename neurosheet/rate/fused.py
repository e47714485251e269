"""The whole Euler loop of a batch as one compiled call, forward and backward (BPTT by hand).

The eager model (:meth:`RateRNN.forward <neurosheet.rate.model.RateRNN.forward>` with
``engine="eager"``) pays Python, autograd and kernel-launch overhead at each of the ~100-400
sub-steps of a batch. Here one C function runs every sub-step of the forward pass and one runs
the backward pass (the gradient formulas are in :mod:`neurosheet.rate._fused_src`), with int32
CSR indices, contiguous ``[neurons, batch]`` states and the noise drawn in bulk by the caller.
Several networks run in one call as the blocks of a block-diagonal matrix (each with its own
sub-step count), which is how :mod:`neurosheet.rate.batched` trains K networks together.

The C source is compiled once per machine with the system C compiler into the user cache folder
(:func:`neurosheet.core.cache.user_cache_dir`, ``kernels/``) and loaded with :mod:`ctypes`; without a
compiler :func:`available` is False and the model uses the eager path (the reference).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from neurosheet.core.cache import user_cache_dir
from neurosheet.core.errors import NeurosheetError
from neurosheet.rate._fused_src import SOURCE

ACTIVATIONS = {"relu": 0, "tanh": 1, "softplus": 2, "retanh": 3}
_FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-shared", "-fPIC")
_I64P = ctypes.POINTER(ctypes.c_int64)


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _cpu_tag() -> str:
    """What ``-march=native`` depends on: the CPU's flags (a cache shared by two CPUs stays safe)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
        name = next((ln for ln in text.splitlines() if ln.startswith("model name")), "")
    except OSError:
        flags = name = ""
    return f"{platform.machine()}|{name}|{flags}"


def compile_library(source: str, symbols: Sequence[str], name: str = "fused",
                    flags: Sequence[str] = _FLAGS) -> ctypes.CDLL | None:
    """Compile C ``source`` (once per machine, source and flags) into the user cache and load it.

    ``symbols`` are the void functions it exports; None when that is impossible (no compiler,
    Windows, a failed build) or when ``NEUROSHEET_FUSED=0``: callers then use their eager path.
    Shared by every compiled kernel (:mod:`neurosheet.spiking.fused` too); callers cache it.
    """
    if os.environ.get("NEUROSHEET_FUSED", "1") == "0":
        return None
    cc = _compiler()
    if cc is None or platform.system() == "Windows":
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\0".join((source, *flags, version, _cpu_tag())).encode()).hexdigest()
    try:
        folder = user_cache_dir("kernels")
    except OSError:
        return None
    lib = folder / f"{name}-{key[:20]}.so"
    if not lib.exists():
        try:
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                src = Path(tmp) / f"{name}.c"
                src.write_text(source)
                built = Path(tmp) / f"{name}.so"
                done = subprocess.run([cc, *flags, "-o", str(built), str(src), "-lm"],
                                      capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    warnings.warn(f"neurosheet: compiling the {name} kernel failed, using the "
                                  f"eager path:\n{done.stderr[-2000:]}", RuntimeWarning,
                                  stacklevel=2)
                    return None
                os.replace(built, lib)  # atomic: a concurrent process sees all or nothing
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        dll = ctypes.CDLL(str(lib))
    except OSError:
        return None
    for symbol in symbols:
        getattr(dll, symbol).restype = None
    return dll


@functools.lru_cache(maxsize=1)
def openmp_flags() -> tuple[str, ...]:
    """``-fopenmp`` when the C compiler builds an OpenMP library here, else nothing.

    Checked once per process; without it the kernels compile serially (the OpenMP pragmas are
    then ignored and every call runs on one thread, whatever the thread count asks).
    """
    cc = _compiler()
    if cc is None or platform.system() == "Windows":
        return ()
    probe = "#include <omp.h>\nint ns_probe(void) { return omp_get_max_threads(); }\n"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.c"
            src.write_text(probe)
            done = subprocess.run([cc, "-fopenmp", "-shared", "-fPIC", "-o",
                                   str(Path(tmp) / "probe.so"), str(src)],
                                  capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ()
    return ("-fopenmp",) if done.returncode == 0 else ()


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """The rate kernel, compiled and loaded once per process (with OpenMP where the compiler
    has it, else serial); None when impossible."""
    return compile_library(SOURCE, ("ns_forward", "ns_backward", "ns_normal"),
                           flags=(*_FLAGS, *openmp_flags()))


def threads() -> int:
    """Threads of a kernel call, one per part of the batch columns: torch's thread count.

    Set by ``torch.set_num_threads``, ``training.threads`` or ``OMP_NUM_THREADS``.
    """
    return max(1, torch.get_num_threads())


def available() -> bool:
    """True when the fused kernel is compiled and loadable here (else the eager path is used)."""
    return _library() is not None


class Workspace:
    """Float32 buffers reused across calls: fresh large tensors cost page faults at first touch
    (measured: ~2,000 faults and ~30% of a demo training step's CPU time).

    A buffer is lent as a tensor viewing a pooled NumPy array; torch keeps the array referenced
    for as long as any tensor (or autograd) uses that memory, so a buffer is free again exactly
    when the pool holds the only references. Buffers start on a 64-byte cache line, so threads
    that split the batch columns of ``[rows, B]`` planes (B a multiple of 16) never write to
    one line (false sharing: measured 3x slower at 2 threads with NumPy's 16-byte alignment).
    """

    def __init__(self, limit: int = 16) -> None:
        self._arrays: list[tuple[np.ndarray, np.ndarray]] = []  # (allocation, aligned view)
        self._limit = limit

    def take(self, shape: Sequence[int], zero: bool = False) -> torch.Tensor:
        """A contiguous float32 tensor of ``shape`` (zero-filled if asked), possibly reused."""
        n = int(np.prod(shape))
        for i in range(len(self._arrays)):
            # references to the allocation: the pool's tuple, the aligned view's base,
            # getrefcount's argument; every lent slice adds one (its base is the allocation:
            # CPython/NumPy semantics). No local name may hold it here.
            if self._arrays[i][1].size >= n and sys.getrefcount(self._arrays[i][0]) == 3:
                t = torch.from_numpy(self._arrays[i][1][:n]).view(*shape)
                return t.zero_() if zero else t
        if len(self._arrays) >= self._limit:
            return torch.zeros(*shape) if zero else torch.empty(*shape)
        raw = np.empty(n + 16, np.float32)
        start = (-raw.ctypes.data % 64) // 4
        self._arrays.append((raw, raw[start:start + n]))
        t = torch.from_numpy(self._arrays[-1][1][:n]).view(*shape)
        return t.zero_() if zero else t


@dataclass(frozen=True, eq=False)
class Blocks:
    """A block-diagonal recurrent structure: one block of rows per network (CSR, int32)."""

    rows: int
    indptr: torch.Tensor  # int32 [rows + 1]
    indices: torch.Tensor  # int32 [nnz], global column ids
    t_indptr: torch.Tensor  # the transpose, int32
    t_indices: torch.Tensor
    t_perm: torch.Tensor  # int64: edge k of the transpose is edge t_perm[k]
    row0: tuple[int, ...]
    row1: tuple[int, ...]
    workspace: Workspace = field(default_factory=Workspace, repr=False)

    @classmethod
    def from_csr(cls, matrices: Sequence[sp.csr_array]) -> Blocks:
        """One block per (square, canonical) CSR matrix, in order."""
        indptr, indices, row0, row1 = [np.zeros(1, np.int64)], [], [], []
        offset = nnz = 0
        for m in matrices:
            n = m.shape[0]
            if m.shape != (n, n):
                raise NeurosheetError(f"a recurrent block must be square, not {m.shape}",
                                      "matrices")
            indptr.append(np.asarray(m.indptr[1:], np.int64) + nnz)
            indices.append(np.asarray(m.indices, np.int64) + offset)
            row0.append(offset)
            row1.append(offset + n)
            offset += n
            nnz += int(m.nnz)
        if nnz >= 2**31:
            raise NeurosheetError(f"{nnz} synapses exceed the int32 index range", "matrices")
        ip = np.concatenate(indptr)
        ix = np.concatenate(indices) if indices else np.zeros(0, np.int64)
        post = np.repeat(np.arange(offset, dtype=np.int64), np.diff(ip))
        t = sp.csr_array((np.arange(1, nnz + 1, dtype=np.int64), (ix, post)),
                         shape=(offset, offset))
        t.sort_indices()

        def i32(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int32))

        return cls(offset, i32(ip), i32(ix), i32(t.indptr), i32(t.indices),
                   torch.from_numpy((t.data - 1).astype(np.int64)), tuple(row0), tuple(row1))

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    @functools.cached_property
    def t_perm32(self) -> torch.Tensor:
        return self.t_perm.to(torch.int32)


def _i64(values: Sequence[int]) -> ctypes.Array:
    return (ctypes.c_int64 * len(values))(*values)


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr() if t is not None else None)


def _check(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dtype != torch.float32 or t.device.type != "cpu":
        raise NeurosheetError(f"the fused kernel takes float32 CPU tensors, {name} is "
                              f"{t.dtype} on {t.device}", name)
    return t.contiguous()


class _Fused(torch.autograd.Function):
    """Autograd of the fused loop: inputs (values, drive, x0), output rates at task-step ends."""

    @staticmethod
    def forward(ctx, blocks, steps, act, values, drive, noise, x0):  # type: ignore[override]
        lib = _library()
        ks, ss, alphas = steps
        smax, tmax = max(ss), drive.shape[0]
        keep = any(ctx.needs_input_grad)  # grad mode is off inside forward: ask autograd
        batch = drive.shape[2]
        ws = blocks.workspace
        rates = ws.take((smax + 1 if keep else 2, blocks.rows, batch))
        out = ws.take((tmax, blocks.rows, batch), zero=True)
        x = ws.take((blocks.rows, batch)).copy_(x0)
        lib.ns_forward(  # type: ignore[union-attr]
            ctypes.c_int64(batch), ctypes.c_int64(len(ks)), _i64(blocks.row0), _i64(blocks.row1),
            _i64(ks), _i64(ss), (ctypes.c_float * len(ks))(*alphas), ctypes.c_int(act),
            ctypes.c_int64(blocks.rows), _ptr(blocks.indptr), _ptr(blocks.indices), _ptr(values),
            _ptr(drive), _ptr(noise), _ptr(x), _ptr(rates), ctypes.c_int(1 if keep else 0),
            _ptr(out), ctypes.c_int(threads()), ctypes.c_int(threads()))
        ctx.blocks, ctx.steps, ctx.act = blocks, steps, act
        if keep:
            ctx.save_for_backward(values, rates)
        return out

    @staticmethod
    def backward(ctx, gout):  # type: ignore[override]
        values, rates = ctx.saved_tensors
        blocks, (ks, ss, alphas) = ctx.blocks, ctx.steps
        gout = gout.contiguous()
        tmax, rows, batch = gout.shape
        ws = blocks.workspace
        gdrive = ws.take((tmax, rows, batch), zero=True)
        gw = torch.empty_like(values)
        gx0 = torch.empty(rows, batch)
        scratch = ws.take((2, rows, batch))
        nt = threads()
        partial = ws.take((nt, blocks.nnz, 16), zero=True)  # partial sums of each column part
        # the transpose's values, times each block's a (the a of W^T in the gradient)
        scale = torch.cat([torch.full((blocks.t_indptr[r1] - blocks.t_indptr[r0],), a)
                           for r0, r1, a in zip(blocks.row0, blocks.row1, alphas, strict=True)])
        wt = values[blocks.t_perm] * scale
        _library().ns_backward(  # type: ignore[union-attr]
            ctypes.c_int64(batch), ctypes.c_int64(len(ks)), _i64(blocks.row0), _i64(blocks.row1),
            _i64(ks), _i64(ss), (ctypes.c_float * len(ks))(*alphas), ctypes.c_int(ctx.act),
            ctypes.c_int64(rows), _ptr(blocks.t_indptr), _ptr(blocks.t_indices),
            _ptr(blocks.t_perm32), _ptr(wt), _ptr(rates), _ptr(gout), _ptr(gdrive), _ptr(gw),
            _ptr(gx0), _ptr(scratch[0]), _ptr(scratch[1]), _ptr(partial), ctypes.c_int(nt), ctypes.c_int(nt))
        return None, None, None, gw, gdrive, None, gx0


def normal(shape: Sequence[int], generator: torch.Generator | None, scale: float = 1.0,
           workspace: Workspace | None = None) -> torch.Tensor:
    """``scale`` times standard normal float32 numbers, ~10x faster than ``torch.randn``.

    One int64 seed is drawn from ``generator`` (so its state, saved in checkpoints, still decides
    everything); the numbers are a counter-based stream of that seed (splitmix64 and
    Box-Muller in the compiled kernel), the same on every machine and vector width.
    """
    lib = _library()
    if lib is None:
        raise NeurosheetError("the fused kernel is not available (no C compiler?)", "engine")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    out = workspace.take(shape) if workspace is not None else torch.empty(tuple(shape))
    lib.ns_normal(_ptr(out), ctypes.c_int64(out.numel()), ctypes.c_uint64(seed),
                  ctypes.c_float(scale), ctypes.c_int(threads()))
    return out


def fused_rates(blocks: Blocks, values: torch.Tensor, drive: torch.Tensor,
                noise: torch.Tensor | None, x0: torch.Tensor, substeps: Sequence[int],
                task_steps: Sequence[int], alphas: Sequence[float],
                activation: str) -> torch.Tensor:
    """Rates ``[T_max, rows, B]`` at each task step's end; differentiable in values, drive, x0.

    Block ``q`` runs ``task_steps[q]`` task steps of ``substeps[q]`` sub-steps with leak
    ``alphas[q]``; ``drive`` is ``[T_max, rows, B]`` (input projection plus bias), ``noise``
    ``[S_max, rows, B]`` already scaled (or None), ``x0`` ``[rows, B]``. Rows of a block past its
    own task steps are zero.
    """
    if not available():
        raise NeurosheetError("the fused kernel is not available (no C compiler?)", "engine")
    if activation not in ACTIVATIONS:
        raise NeurosheetError(f"unknown activation {activation!r}", "activation")
    nblk = len(blocks.row0)
    if not (len(substeps) == len(task_steps) == len(alphas) == nblk):
        raise NeurosheetError("one substeps/task_steps/alpha per block", "substeps")
    if values.shape != (blocks.nnz,) or drive.dim() != 3 or drive.shape[1] != blocks.rows:
        raise NeurosheetError("values/drive do not fit the block structure", "drive")
    if max(task_steps) > drive.shape[0] or min(task_steps) < 1:
        raise NeurosheetError("task_steps must be in 1..T of the drive", "task_steps")
    ss = tuple(int(k) * int(t) for k, t in zip(substeps, task_steps, strict=True))
    if noise is not None and (noise.shape[0] < max(ss) or noise.shape[1:] != drive.shape[1:]):
        raise NeurosheetError("noise must be [S_max, rows, B]", "noise")
    steps = (tuple(int(k) for k in substeps), ss, tuple(float(a) for a in alphas))
    return _Fused.apply(blocks, steps, ACTIVATIONS[activation], _check(values, "values"),
                        _check(drive, "drive"), None if noise is None else _check(noise, "noise"),
                        _check(x0, "x0"))
