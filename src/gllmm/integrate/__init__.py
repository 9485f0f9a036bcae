"""Marginal likelihood over the random effects: adaptive Gauss-Hermite quadrature and Laplace."""

from ._agq import MarginalLikelihood, ModeInfo
from ._gauss_hermite import gauss_hermite, product_rule

__all__ = ["MarginalLikelihood", "ModeInfo", "gauss_hermite", "product_rule"]
