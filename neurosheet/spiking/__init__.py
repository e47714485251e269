"""Spiking backends (snntorch, Brian2) behind one interface; see :mod:`neurosheet.spiking.backends.base`."""

from neurosheet.spiking.backends.base import BACKENDS, SpikeResult, SpikingBackend, get_backend

__all__ = ["BACKENDS", "SpikeResult", "SpikingBackend", "get_backend"]
