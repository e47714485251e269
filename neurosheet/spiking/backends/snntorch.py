"""snntorch backend: batched over trials (CPU or GPU), IF somas from ``snn.Leaky``.

The soma is ``snn.Leaky(beta=1, threshold=1, reset_mechanism="subtract", reset_delay=False)``
(beta = 1: no membrane leak, i.e. integrate-and-fire). The recurrent input is an explicit
sparse (CSR) matmul whose nonzeros are exactly the graph's edges, not ``RLeaky``'s dense,
biased, trainable ``nn.Linear``, so no synapse can appear off the graph. The synaptic current
filter and the floor/cap of the membrane are the few lines of :mod:`neurosheet.spiking.conversion`.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.base import SpikeResult, SpikingBackend
from neurosheet.spiking.conversion import SpikingCircuit

MATMULS = ("csr", "dense")


class SnntorchBackend(SpikingBackend):
    """Simulate trials in batches of ``batch_size`` on ``device`` (default: CUDA when present)."""

    name = "snntorch"

    def __init__(self, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 256, matmul: str = "csr") -> None:
        if matmul not in MATMULS:
            raise NeurosheetError(f"matmul must be one of {', '.join(MATMULS)}, got {matmul!r}")
        if batch_size < 1:
            raise NeurosheetError(f"batch_size must be >= 1, got {batch_size}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise NeurosheetError(f"bad torch device {device!r} ({exc})") from None
        self.dtype = dtype
        self.batch_size = batch_size
        self.matmul = matmul

    def recurrent_matrix(self, spiking: SpikingCircuit, dtype: torch.dtype) -> Any:
        """W_rec / g on the graph's edges: torch sparse CSR (or its dense copy), ``[post, pre]``."""
        from neurosheet.spiking.signs import check_dale

        weights = spiking.spike_weights()
        check_dale(spiking, weights, "snntorch")  # E/I circuits: signs checked as loaded
        w = torch.as_tensor(weights, dtype=dtype)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only matmul
            warnings.simplefilter("ignore", UserWarning)
            csr = spiking.graph.to_torch_sparse(w, dtype=dtype, device=self.device)
        return csr if self.matmul == "csr" else csr.to_dense()

    def run(self, spiking: SpikingCircuit, inputs: np.ndarray, *, record: int = 0,
            progress: bool = False) -> SpikeResult:
        import snntorch as snn

        dtype = torch.float64 if (self.dtype or spiking.config.dtype) == "float64" else torch.float32
        t0 = time.perf_counter()
        drive_all = spiking.drive(inputs)  # [T, B, N] float64
        steps, trials, n = drive_all.shape
        k, beta, g = spiking.substeps, spiking.beta, spiking.g
        w_rec = self.recurrent_matrix(spiking, dtype)
        counts = np.zeros((steps, trials, n), dtype=np.int32)
        n_rec = min(record, trials)
        raster = torch.zeros((steps * k, n_rec, n), dtype=torch.bool, device=self.device)
        bar = tqdm(total=steps * trials, desc="snntorch", unit="trial-step", disable=not progress)
        # One neuron module per run (snntorch keeps a class-level list of instances).
        soma = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract", reset_delay=False)
        with torch.no_grad():
            for lo in range(0, trials, self.batch_size):
                hi = min(lo + self.batch_size, trials)
                drive = torch.as_tensor(drive_all[:, lo:hi], dtype=dtype, device=self.device)
                cur = torch.zeros((hi - lo, n), dtype=dtype, device=self.device)
                mem = torch.zeros_like(cur)
                spk = torch.zeros_like(cur)
                rec_here = max(0, min(record, hi) - lo)
                for t in range(steps):
                    cnt = torch.zeros_like(cur)
                    for j in range(k):
                        syn = (w_rec @ spk.T).T
                        cur = beta * cur + (1.0 - beta) * (syn + drive[t])
                        spk, mem = soma(g * cur, mem)
                        spk = spk.to(dtype)
                        mem = mem.clamp(0.0, 1.0)
                        cnt += spk
                        if rec_here:
                            raster[t * k + j, lo:lo + rec_here] = spk[:rec_here] > 0
                    counts[t, lo:hi] = cnt.cpu().numpy().astype(np.int32)
                    bar.update(hi - lo)
        bar.close()
        run_s = time.perf_counter() - t0
        out_rasters = []
        for b in range(n_rec):
            step_idx, neuron_idx = np.nonzero(raster[:, b].cpu().numpy())
            out_rasters.append((step_idx.astype(np.int64), neuron_idx.astype(np.int64)))
        return SpikeResult(
            backend=self.name, counts=counts, logits=spiking.decode(counts),
            sim_dt_ms=spiking.sim_dt_ms, substeps=k, rasters=out_rasters, build_s=0.0,
            run_s=run_s,
            info={"device": str(self.device), "dtype": str(dtype).replace("torch.", ""),
                  "matmul": self.matmul},
        )
