"""Errors and warnings raised by gllmm.

One base error per layer so callers can catch what they expect; warnings for numerical trouble
that still yields a result (the result also carries a flag).
"""

from __future__ import annotations


class GllmmError(Exception):
    """Base class of all gllmm errors."""


class TableError(GllmmError, ValueError):
    """Invalid table input: negative, NaN or non-integer counts, duplicated cells, empty tables."""


class SpecError(GllmmError, ValueError):
    """Invalid model specification: shapes, rank deficiency, unknown formula terms."""


class FitError(GllmmError, RuntimeError):
    """A fit could not be carried out."""


class GllmmWarning(UserWarning):
    """Base class of gllmm warnings."""


class ConvergenceWarning(GllmmWarning):
    """The optimiser stopped without meeting its convergence criteria."""


class BoundaryWarning(GllmmWarning):
    """A variance component was estimated on the boundary (zero)."""


class InfiniteEstimateWarning(GllmmWarning):
    """Sampling zeros push an estimate towards infinity (the ML estimate does not exist)."""


class LevelOrderWarning(GllmmWarning):
    """The order of a factor's levels was guessed (sorted), where the order matters."""
