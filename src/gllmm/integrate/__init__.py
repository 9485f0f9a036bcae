"""Marginal likelihood over the random effects: adaptive Gauss-Hermite quadrature, Laplace and
second-order Laplace."""

from ._agq import MarginalLikelihood, ModeInfo
from ._gauss_hermite import gauss_hermite, product_rule
from ._laplace_higher import HigherOrderLaplace

__all__ = ["HigherOrderLaplace", "MarginalLikelihood", "ModeInfo", "gauss_hermite",
           "product_rule"]
