"""Smoothing contingency tables: cell-wise GLLMM smoothing and the comparators.

The local linear likelihood smoother (Simonoff 1998) and the penalized-likelihood smoother of
the paper's eq. (2.2) (Simonoff 1983).
"""

from ._cellwise import CellwiseFit, fit_cellwise
from ._local import (
    CRITERIA,
    KERNELS,
    LocalLikelihoodFit,
    SmoothingSelection,
    local_likelihood,
)
from ._penalized import PenalizedFit, penalized_objective, penalized_smoother

__all__ = [
    "CellwiseFit",
    "fit_cellwise",
    "CRITERIA",
    "KERNELS",
    "LocalLikelihoodFit",
    "PenalizedFit",
    "SmoothingSelection",
    "local_likelihood",
    "penalized_objective",
    "penalized_smoother",
]
