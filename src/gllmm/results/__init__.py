"""Fit results: estimates, covariance, tests, predictions, summaries."""

from ._result import FitResult
from ._tests import HypothesisTest, anova, chibar_sf, lr_test, nested, wald_test

__all__ = ["FitResult", "HypothesisTest", "anova", "chibar_sf", "lr_test", "nested", "wald_test"]
