"""Spiking circuits (NIR CubaLIF neurons on the sheet graph) and their backends.

:class:`~neurosheet.spiking.model.SpikingCircuit` is what conversion
(:mod:`neurosheet.spiking.conversion`) and fine-tuning (:mod:`neurosheet.spiking.finetune`)
produce; the snntorch and Brian2 backends (:mod:`neurosheet.spiking.backends`) simulate it;
``SpikingCircuit.to_snntorch()`` and ``SpikingCircuit.brian2_network()`` hand it to your own
snntorch or Brian2 code.
"""

from neurosheet.spiking.backends.base import BACKENDS, SpikeResult, SpikingBackend, get_backend
from neurosheet.spiking.model import NeuronModel, SpikingCircuit

__all__ = ["BACKENDS", "NeuronModel", "SpikeResult", "SpikingBackend", "SpikingCircuit",
           "get_backend"]
