"""The step-halving line search shared by the inner Newton searches for the posterior modes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def halving_step(
    evaluate: Callable[[np.ndarray], tuple], v: np.ndarray, step: np.ndarray, h: np.ndarray,
    expand: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, tuple]:
    """``v + t * step`` with each cluster's ``t`` halved (up to 40 times) until its objective
    ``h`` does not decrease; returns the new point and ``evaluate`` there.

    ``evaluate(v)`` returns a tuple whose first entry is ``h`` per cluster; ``expand(t)``
    broadcasts the per-cluster factors to the shape of ``v``.
    """
    t = np.ones(len(h))
    for _half in range(40):
        v_new = v + expand(t) * step
        out = evaluate(v_new)
        worse = ~(out[0] >= h - 1e-12 * (1 + np.abs(h)))
        if not worse.any():
            break
        t = np.where(worse, t / 2, t)
    return v_new, out
