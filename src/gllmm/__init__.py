"""gllmm: generalized log-linear models with and without random effects.

The model (Coull & Agresti 2003) is ``C log(A mu) = X beta + Z u``, ``u ~ N(0, Sigma(theta))``,
for Poisson, multinomial or product-multinomial counts given u. Layers: ``tables`` -> ``spec``
-> ``links`` -> ``integrate`` -> ``fitting`` -> ``results`` -> ``models``; ``smooth``,
``simulate``, ``plot`` and ``cli`` sit on top.
"""

from . import datasets, fitting, models, results, smooth, spec, tables
from .errors import (
    BoundaryWarning,
    ConvergenceWarning,
    FitError,
    GllmmError,
    InfiniteEstimateWarning,
    LevelOrderWarning,
    SpecError,
    TableError,
)
from .fitting import (
    check_nodes,
    fit,
    fit_constrained,
    fit_mcem,
    fit_pql,
    make_objective,
    make_result,
    optimize,
    profile_interval,
)
from .results import FitResult, HypothesisTest, anova, lr_test, wald_test
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
    "HypothesisTest",
    "InfiniteEstimateWarning",
    "LevelOrderWarning",
    "SpecError",
    "Table",
    "TableError",
    "anova",
    "build_design",
    "check_nodes",
    "datasets",
    "fit_constrained",
    "fit_mcem",
    "fit_pql",
    "fitting",
    "from_array",
    "from_cells",
    "from_long",
    "from_wide",
    "fit",
    "lr_test",
    "make_objective",
    "make_result",
    "models",
    "optimize",
    "profile_interval",
    "read_table",
    "results",
    "smooth",
    "spec",
    "tables",
    "wald_test",
]
