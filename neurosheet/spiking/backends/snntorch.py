"""snntorch backend: batched over trials (CPU or GPU), ``snn.Synaptic`` neurons on the edges.

The circuit runs as :class:`neurosheet.spiking.network.SpikingSheet` (snntorch ``Synaptic``
neurons, an explicit sparse CSR product whose nonzeros are exactly the graph's edges — not
``RSynaptic``'s dense, biased ``nn.Linear``), without gradients. The input current is computed
once by ``SpikingCircuit.drive`` and the readout decoded by ``SpikingCircuit.decode``, exactly
as the Brian2 backend does, so in float64 both produce identical spikes.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.backends.base import SpikeResult, SpikingBackend
from neurosheet.spiking.model import SpikingCircuit

MATMULS = ("auto", "events", "csr", "dense")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SnntorchBackend(SpikingBackend):
    """Simulate trials in batches of ``batch_size`` on ``device`` (default: CUDA when present)."""

    name = "snntorch"

    def __init__(self, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 256, matmul: str = "auto") -> None:
        if matmul not in MATMULS:
            raise NeurosheetError(f"matmul must be one of {', '.join(MATMULS)}, got {matmul!r}")
        if batch_size < 1:
            raise NeurosheetError(f"batch_size must be >= 1, got {batch_size}")
        if dtype is not None and dtype not in DTYPES:
            raise NeurosheetError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise NeurosheetError(f"bad torch device {device!r} ({exc})") from None
        self.dtype = dtype or "float32"
        self.batch_size = batch_size
        self.matmul = matmul

    def module(self, spiking: SpikingCircuit) -> torch.nn.Module:
        """The circuit as a (frozen) :class:`SpikingSheet` on this backend's device."""
        from neurosheet.spiking.network import SpikingSheet

        return SpikingSheet(spiking, dtype=DTYPES[self.dtype], trainable=False,
                            kernel=self.matmul).to(self.device)

    def run(self, spiking: SpikingCircuit, inputs: np.ndarray, *, record: int = 0,
            progress: bool = False) -> SpikeResult:
        t0 = time.perf_counter()
        current = spiking.drive(inputs)  # [T, B, N] float64
        u = np.asarray(inputs, dtype=np.float64)
        steps, trials, n = current.shape
        net = self.module(spiking)
        counts = np.zeros((steps, trials, n), dtype=np.int32)
        weighted = np.zeros((steps, trials, n), dtype=np.float64)
        rasters: list[tuple[np.ndarray, np.ndarray]] = []
        bar = tqdm(total=trials, desc="snntorch", unit="trial", disable=not progress)
        with torch.no_grad():
            for lo in range(0, trials, self.batch_size):
                hi = min(lo + self.batch_size, trials)
                rec = max(0, min(record, hi) - lo)
                out = net(torch.as_tensor(u[:, lo:hi]), current=current[:, lo:hi], record=rec)
                counts[:, lo:hi] = out.counts.cpu().numpy().round().astype(np.int32)
                weighted[:, lo:hi] = out.weighted.double().cpu().numpy()
                if out.raster is not None:
                    ras = out.raster.cpu().numpy()
                    for b in range(ras.shape[1]):
                        step_idx, neuron_idx = np.nonzero(ras[:, b])
                        rasters.append((step_idx.astype(np.int64), neuron_idx.astype(np.int64)))
                bar.update(hi - lo)
        bar.close()
        return SpikeResult(
            backend=self.name, counts=counts, logits=spiking.decode(weighted),
            sim_dt_ms=spiking.sim_dt_ms, substeps=spiking.substeps, rasters=rasters,
            build_s=0.0, run_s=time.perf_counter() - t0,
            info={"device": str(self.device), "dtype": self.dtype, "matmul": self.matmul},
        )
