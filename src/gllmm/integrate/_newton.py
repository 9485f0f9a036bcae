"""The one step-halving line search of the package's Newton iterations: the inner searches for
the posterior modes (one step length per cluster, :func:`halving_step`) and the outer Newton
fits of one objective (:func:`backtrack`, the same loop with one cluster). The compiled kernels
(``integrate._scalar_kernel``, ``integrate._dense_kernel``) carry its compiled form."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: A trial is accepted unless its objective falls below the current one by more than this times
#: ``1 + |objective|``: a decrease at rounding level is no reason to halve.
ASCENT_TOL = 1e-12


def halving_step(
    evaluate: Callable[[np.ndarray], tuple], v: np.ndarray, step: np.ndarray, h: np.ndarray,
    expand: Callable[[np.ndarray], np.ndarray], max_trials: int = 40,
) -> tuple[np.ndarray, tuple]:
    """``v + t * step`` with each cluster's ``t`` halved until
    its objective ``h`` does not decrease (``max_trials`` evaluations at most); returns the new
    point and ``evaluate`` there.

    ``evaluate(v)`` returns a tuple whose first entry is ``h`` per cluster; ``expand(t)``
    broadcasts the per-cluster factors to the shape of ``v``.
    """
    t = np.ones(len(h))
    for _half in range(max_trials):
        v_new = v + expand(t) * step
        out = evaluate(v_new)
        worse = ~(out[0] >= h - ASCENT_TOL * (1 + np.abs(h)))
        if not worse.any():
            break
        t = np.where(worse, t / 2, t)
    return v_new, out


def backtrack(
    evaluate: Callable[[np.ndarray], tuple], x: np.ndarray, step: np.ndarray, value: float,
    max_trials: int = 40, project: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, np.ndarray, tuple] | None:
    """Step halving for one objective (``halving_step`` with one cluster): the first of
    ``x + step``, ``x + step / 2``, ... (``max_trials`` trials at most), mapped by
    ``project`` onto the feasible set, whose objective (first entry of ``evaluate``'s tuple)
    is finite and does not decrease; returns ``(t, point, evaluate(point))``, or None when no
    trial is accepted (no ascent left along ``step``)."""
    project = project if project is not None else (lambda z: z)
    trials: list[tuple] = []

    def one_cluster(v: np.ndarray) -> tuple:
        out = evaluate(project(v))
        trials.append(out)
        return (np.array([out[0]], dtype=float),)

    v, _ = halving_step(one_cluster, np.asarray(x, dtype=float), step,
                        np.array([float(value)]), lambda t: t[0], max_trials)
    out = trials[-1]
    if not (np.isfinite(out[0]) and out[0] >= value - ASCENT_TOL * (1 + abs(value))):
        return None
    return 0.5 ** (len(trials) - 1), project(v), out
