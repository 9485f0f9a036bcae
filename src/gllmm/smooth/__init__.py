"""Smoothing contingency tables: cell-wise GLLMM smoothing and the comparators.

The local linear likelihood smoother (Simonoff 1998), the Poisson GAM with one loess term that
made the paper's Table 2 column (c) (local scoring around Cleveland & Grosse's loess), and the
penalized-likelihood smoother of the paper's eq. (2.2) (Simonoff 1983).
"""

from ._cellwise import CellwiseFit, fit_cellwise
from ._local import (
    CRITERIA,
    KERNELS,
    LocalLikelihoodFit,
    SmoothingSelection,
    local_likelihood,
)
from ._loess import LoessGamFit, loess_gam, loess_smoother
from ._penalized import PenalizedFit, penalized_objective, penalized_smoother

__all__ = [
    "CellwiseFit",
    "fit_cellwise",
    "CRITERIA",
    "KERNELS",
    "LocalLikelihoodFit",
    "LoessGamFit",
    "PenalizedFit",
    "SmoothingSelection",
    "local_likelihood",
    "loess_gam",
    "loess_smoother",
    "penalized_objective",
    "penalized_smoother",
]
