"""Spiking simulators behind one interface (:class:`~neurosheet.spiking.backends.base.SpikingBackend`);
registered by name in :mod:`neurosheet.spiking.registry`."""
