"""neurosheet: locality-masked RNNs on a cortical sheet, from rate training to spiking hardware budgets.

The data path, one module per stage::

    sheet -> wiring -> graph (SheetGraph, shared by every stage) -> tasks (Mod-Cog)
          -> rate model -> training -> circuit (run directory) -> conversion
          -> spiking backends (snntorch, Brian2) -> reports (budgets)
"""

from neurosheet.core.errors import NeurosheetError
from neurosheet.graph.sheet import Sheet, make_sheet
from neurosheet.graph.sheetgraph import Projection, SheetGraph
from neurosheet.graph.wiring import build_graph, radius_for_density

__version__ = "0.1.0"

__all__ = [
    "NeurosheetError",
    "Projection",
    "Sheet",
    "SheetGraph",
    "__version__",
    "build_graph",
    "make_sheet",
    "radius_for_density",
]
