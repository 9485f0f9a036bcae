"""The elementwise maths of the one-predictor families (Poisson with a log link, binomial with
a logit link) and of the logistic cdf: each written once, in numpy operations that act alike on
arrays (the families' ``derivatives``, in Python) and on scalars (compiled by ``links._jets``
for the kernels). So the numpy and compiled paths evaluate the same expressions.

Each returns the log-likelihood (or cdf) and its first three derivatives in ``e``.
"""

from __future__ import annotations

import numpy as np


def logistic_parts(e):
    """``q = exp(-|e|)`` and the logistic cdf ``p = 1 / (1 + exp(-e))``, computed as
    ``(1 if e > 0 else q) / (1 + q)`` so that nothing overflows; the branch is written as
    arithmetic on ``e > 0`` to serve arrays and scalars alike."""
    q = np.exp(-np.abs(e))
    pos = e > 0
    return q, (pos + (1 - pos) * q) / (1.0 + q)


def poisson_jets(y, e, order):
    """``l = y e - mu``, ``mu = exp(e)`` (without ``-log y!``) and, for ``order >= 1``, its
    derivatives ``y - mu, -mu, -mu`` (zeros for order 0)."""
    mu = np.exp(e)
    if order == 0:
        return y * e - mu, 0.0, 0.0, 0.0
    return y * e - mu, y - mu, -mu, -mu


def binomial_jets(y, n, e, order):
    """``l = y e - n log(1 + exp(e))`` (y successes of n, without ``log C(n, y)``) and, for
    ``order >= 1``, its derivatives ``y - n p, -n w, -n w (1 - 2p)``, ``w = p (1 - p)``
    (zeros for order 0)."""
    q, p = logistic_parts(e)
    ll = y * e - n * (np.maximum(e, 0.0) + np.log1p(q))
    if order == 0:
        return ll, 0.0, 0.0, 0.0
    w = p * (1.0 - p)
    return ll, y - n * p, -n * w, -n * w * (1.0 - 2.0 * p)


def logistic_jets(e):
    """The logistic cdf F and its first three derivatives at ``e``:
    ``F' = F (1 - F)``, ``F'' = F' (1 - 2F)``, ``F''' = F' (1 - 6F + 6F^2)``."""
    p = logistic_parts(e)[1]
    f1 = p * (1.0 - p)
    return p, f1, f1 * (1.0 - 2.0 * p), f1 * (1.0 - 6.0 * p + 6.0 * p * p)
