"""Rate circuit -> spiking network on the same graph: conversion, fine-tuning, backends, NIR.

Modules: :mod:`~neurosheet.spiking.model` (the spiking circuit: NIR CubaLIF neurons on the
graph's edges), :mod:`~neurosheet.spiking.conversion` (the recipe),
:mod:`~neurosheet.spiking.network` (the circuit as an snntorch ``nn.Module``),
:mod:`~neurosheet.spiking.finetune` (surrogate-gradient fine-tuning),
:mod:`~neurosheet.spiking.fused` (the module's simulation and its gradient as compiled calls),
:mod:`~neurosheet.spiking.registry` (backends by name, imported lazily),
:mod:`~neurosheet.spiking.backends` (snntorch, Brian2), :mod:`~neurosheet.spiking.evaluate`
(any backend -> held-out accuracy), :mod:`~neurosheet.spiking.persist` (the run directory's
saved circuits), :mod:`~neurosheet.spiking.nir` (NIR export). Importing this package imports
none of them.
"""
