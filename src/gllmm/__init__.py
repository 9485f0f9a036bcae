"""gllmm: generalized log-linear models with and without random effects.

The model (Coull & Agresti 2003) is ``C log(A mu) = X beta + Z u``, ``u ~ N(0, Sigma(theta))``,
for Poisson, multinomial or product-multinomial counts given u. Layers: ``tables`` -> ``spec``
-> ``links`` -> ``integrate`` -> ``fitting`` -> ``results`` -> ``models``; ``smooth``,
``simulate``, ``plot`` and ``cli`` sit on top.
"""

from . import datasets, models, tables
from .errors import (
    BoundaryWarning,
    ConvergenceWarning,
    FitError,
    GllmmError,
    InfiniteEstimateWarning,
    SpecError,
    TableError,
)
from .fitting import fit, make_objective, make_result, optimize
from .results import FitResult
from .spec import Design, build_design
from .tables import Table, from_array, from_cells, from_long, from_wide, read_table

__version__ = "0.1.0"

__all__ = [
    "BoundaryWarning",
    "ConvergenceWarning",
    "Design",
    "FitError",
    "FitResult",
    "GllmmError",
    "InfiniteEstimateWarning",
    "SpecError",
    "Table",
    "TableError",
    "build_design",
    "datasets",
    "from_array",
    "from_cells",
    "from_long",
    "from_wide",
    "fit",
    "make_objective",
    "make_result",
    "models",
    "optimize",
    "read_table",
    "tables",
]
