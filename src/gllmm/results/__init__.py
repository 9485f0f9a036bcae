"""Fit results: estimates, covariance, tests, predictions, summaries."""

from ._result import FitResult

__all__ = ["FitResult"]
