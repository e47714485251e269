"""One named plan of seed streams: every random draw of a run comes from a stream named here.

A run has one user seed. Each consumer (wiring, training trials, held-out evaluation trials,
calibration trials, rasters, spike counts, partitions) derives its own stream from it, so that
two stages that must see the same trials (the pipeline's spike counts and ``budget --simulate``)
ask for the same stream by name, and no stage can draw another's trials by accident.
The offsets are the historical ones, kept so that published numbers stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurosheet.core.errors import NeurosheetError

MAX_SEED = 2**63 - 1 - 2_000_000  # room for the offsets below within numpy's seed range
MAX_STREAM_SEED = 2**63 - 1  # the seed of one stream (a user seed plus its offset)

#: stream name -> offset from the user seed (documented in docs/architecture.md)
STREAMS: dict[str, int] = {
    "model": 0,  # sheet layout, wiring, weight init, training trials and noise
    "validation": 1_000_003,  # held-out trials during training (learning curves, criterion)
    "test": 12_345,  # held-out trials of evaluate / pipeline / budget --evaluate
    "calibration": 7_919,  # trials that calibrate the spiking conversion
    "raster": 1,  # the one trial drawn as a raster
    "spike_counts": 2,  # trials whose spike counts feed the synaptic-op budget
    "partition": 0,  # random partition baseline of the budget
    "finetune": 31_337,  # training trials of spike-aware fine-tuning
    "finetune_validation": 424_243,  # trials that pick fine-tuning's best circuit
}


def check_seed(seed: int, what: str = "seed", param: str = "seed",
               maximum: int = MAX_SEED) -> int:
    """A seed usable by every stream: an integer in [0, MAX_SEED] (numpy integers accepted).

    Negative seeds and seeds >= 2**63 are refused here, at the library's entry, with one line
    naming the parameter, rather than deep inside numpy as a ``ValueError``. ``maximum``:
    :data:`MAX_SEED` for a user's seed (its streams add offsets), :data:`MAX_STREAM_SEED` for
    the seed of one stream.
    """
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise NeurosheetError(f"{what} must be an integer, got {seed!r}", param)
    seed = int(seed)
    if not 0 <= seed <= maximum:
        raise NeurosheetError(f"{what} must be in [0, {maximum}], got {seed}", param)
    return seed


@dataclass(frozen=True)
class SeedPlan:
    """The seed streams of one run, derived from its user ``seed``."""

    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)

    def stream(self, name: str) -> int:
        """The seed of stream ``name``."""
        if name not in STREAMS:
            raise NeurosheetError(f"unknown seed stream {name!r}; streams: {', '.join(STREAMS)}")
        return self.seed + STREAMS[name]

    @property
    def model(self) -> int:
        return self.stream("model")

    @property
    def validation(self) -> int:
        return self.stream("validation")

    @property
    def test(self) -> int:
        return self.stream("test")

    @property
    def calibration(self) -> int:
        return self.stream("calibration")

    @property
    def raster(self) -> int:
        return self.stream("raster")

    @property
    def spike_counts(self) -> int:
        return self.stream("spike_counts")

    @property
    def partition(self) -> int:
        return self.stream("partition")

    @property
    def finetune(self) -> int:
        return self.stream("finetune")

    @property
    def finetune_validation(self) -> int:
        return self.stream("finetune_validation")

    def as_dict(self) -> dict[str, int]:
        """Every stream's seed, for the record of a run."""
        return {name: self.stream(name) for name in STREAMS}
