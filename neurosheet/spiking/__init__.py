"""Rate circuit -> spiking network on the same graph: conversion, backends, NIR export.

Modules: :mod:`~neurosheet.spiking.conversion` (the recipe), :mod:`~neurosheet.spiking.registry`
(backends by name, imported lazily), :mod:`~neurosheet.spiking.backends` (snntorch, Brian2),
:mod:`~neurosheet.spiking.evaluate` (any backend -> held-out accuracy),
:mod:`~neurosheet.spiking.persist` (the run directory's saved conversion),
:mod:`~neurosheet.spiking.nir` (NIR export). Importing this package imports none of them.
"""
