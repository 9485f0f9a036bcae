"""The one Newton iteration of the package and its one step-halving line search.

:func:`halving_step` halves the step of each cluster separately (the inner searches for the
posterior modes); :func:`backtrack` is the same loop for one objective; :func:`newton` is the
outer loop of every Newton fit (direction, decrement test, :func:`backtrack`), and
:func:`damped_newton_direction` its default direction. The compiled kernels
(``integrate._scalar_kernel``, ``integrate._dense_kernel``) carry the compiled form of this loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .._halving import ASCENT_TOL

#: Armijo's sufficient-increase fraction of the predicted rise ``t * slope``.
ARMIJO = 1e-4


def halving_step(
    evaluate: Callable[[np.ndarray], tuple], v: np.ndarray, step: np.ndarray, h: np.ndarray,
    expand: Callable[[np.ndarray], np.ndarray], max_trials: int = 40,
    slope: np.ndarray | float = 0.0,
    accept: Callable[[np.ndarray, tuple], np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple]:
    """``v + t * step`` with each cluster's ``t`` halved until its trial is accepted
    (``max_trials`` evaluations at most); returns the new point and ``evaluate`` there.

    ``evaluate(v)`` returns a tuple whose first entry is the objective ``h`` per cluster;
    ``expand(t)`` broadcasts the per-cluster factors to the shape of ``v``. A trial is accepted
    where ``h_new >= h + ARMIJO * t * slope - ASCENT_TOL (1 + |h|)`` (Armijo's rule; slope 0:
    no decrease), or where ``accept(t, out)`` says so when given.
    """
    if accept is None:
        def accept(t: np.ndarray, out: tuple) -> np.ndarray:
            return out[0] >= h + ARMIJO * t * slope - ASCENT_TOL * (1 + np.abs(h))
    t = np.ones(len(h))
    for _half in range(max_trials):
        v_new = v + expand(t) * step
        out = evaluate(v_new)
        worse = ~accept(t, out)
        if not worse.any():
            break
        t = np.where(worse, t / 2, t)
    return v_new, out


def backtrack(
    evaluate: Callable[[np.ndarray], tuple], x: np.ndarray, step: np.ndarray, value: float,
    max_trials: int = 40, project: Callable[[np.ndarray], np.ndarray] | None = None,
    slope: float = 0.0, accept: Callable[[float, tuple], bool] | None = None,
) -> tuple[float, np.ndarray, tuple] | None:
    """Step halving for one objective (``halving_step`` with one cluster): the first of
    ``x + step``, ``x + step / 2``, ... (``max_trials`` trials at most), mapped by
    ``project`` onto the feasible set, whose objective (first entry of ``evaluate``'s tuple)
    is finite and at least ``value + ARMIJO * t * slope`` (up to rounding), or that
    ``accept(t, evaluate(point))`` accepts when given; returns ``(t, point, evaluate(point))``,
    or None when no trial is accepted (no ascent left along ``step``)."""
    project = project if project is not None else (lambda z: z)
    if accept is None:
        def accept(t: float, out: tuple) -> bool:
            return bool(np.isfinite(out[0]) and out[0] >= value + ARMIJO * t * slope
                        - ASCENT_TOL * (1 + abs(value)))
    trials: list[tuple] = []

    def one_cluster(v: np.ndarray) -> tuple:
        out = evaluate(project(v))
        trials.append(out)
        return (out,)

    v, (out,) = halving_step(one_cluster, np.asarray(x, dtype=float), step, np.zeros(1),
                             lambda t: t[0], max_trials,
                             accept=lambda t, o: np.array([accept(float(t[0]), o[0])]))
    t = 0.5 ** (len(trials) - 1)
    if not accept(t, out):
        return None
    return t, project(v), out


@dataclass
class ModeInfo:
    """Posterior modes and curvature per cluster at one parameter value (what the searches
    for the posterior modes, :func:`halving_step` per cluster, return)."""

    v: np.ndarray  # (C, q) modes of the spherical effects
    chol: np.ndarray  # (C, q, q) lower Cholesky factor of K = -h''(v)
    eta: np.ndarray  # (B, J) linear predictor at the modes
    converged: bool


@dataclass
class State:
    """Objective value (and, at order 2, gradient and what the direction needs) at ``params``."""

    params: np.ndarray
    value: float
    order: int
    grad: np.ndarray | None = None
    extra: Any = None


@dataclass
class NewtonResult:
    state: State
    converged: bool
    n_iter: int
    n_evaluations: int
    message: str
    decrement: float = float("nan")


def damped_newton_direction(grad: np.ndarray, hess: np.ndarray,
                            max_tries: int = 60) -> np.ndarray | None:
    """The Newton step ``(-H + lam I)^-1 g``, with Levenberg's ``lam`` raised from 0 until the
    matrix is positive definite (an ascent direction where the objective is not concave);
    None if no ``lam`` in ``max_tries`` works."""
    neg = -np.asarray(hess, dtype=float)
    if neg.size == 0:
        return np.zeros(0)
    scale = max(1.0, float(np.abs(np.diag(neg)).max()))
    lam = 0.0
    eye = np.eye(len(grad))
    for _try in range(max_tries):
        try:
            factor = scipy.linalg.cho_factor(neg + lam * eye, lower=True)
        except (np.linalg.LinAlgError, ValueError):
            lam = max(4.0 * lam, 1e-10 * scale)
            continue
        return scipy.linalg.cho_solve(factor, grad)
    return None


def newton(
    evaluate: Callable[[np.ndarray, int], State],
    direction: Callable[[State], np.ndarray | None],
    x0: np.ndarray,
    *,
    tol: float = 1e-10,
    stop: Callable[[State, float], bool] | None = None,
    max_iter: int = 100,
    max_trials: int = 40,
    armijo: bool = True,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
    final_step: bool = False,
    min_step: float = 0.0,
    progress: Callable[[dict], None] | None = None,
) -> NewtonResult:
    """Newton ascent with step halving (:func:`backtrack`), the one Newton loop of the package.

    ``evaluate(x, order)`` returns a :class:`State` (order 0: the value; order 2: also the
    gradient and whatever ``direction`` needs); ``direction(state)`` returns an ascent direction
    ``d`` (the Newton step ``-H^-1 g`` or a modification of it, ``g'd > 0``), or None when there
    is none. Stops (converged) when the Newton decrement ``g'd`` is at most ``tol``, or when
    ``stop(state, g'd)`` holds if given; with ``final_step`` the last step is still taken. The
    step length is halved until Armijo's sufficient increase (``armijo``; else no decrease);
    ``project`` maps trial points onto the feasible set; an accepted step that moves no
    parameter by more than ``min_step`` ends the iteration too. ``progress`` receives a dict
    (iteration, loglik, decrement, params) before every step.
    """
    state = evaluate(np.asarray(x0, dtype=float), 2)
    n_eval = 1
    if not np.isfinite(state.value):
        return NewtonResult(state, False, 0, n_eval, "objective not finite at the start")
    dec = float("nan")
    for it in range(1, max_iter + 1):
        d = direction(state)
        if d is None:
            return NewtonResult(state, False, it - 1, n_eval, "no ascent direction", dec)
        dec = float(state.grad @ d)
        if progress is not None:
            progress({"iteration": it, "loglik": state.value,
                      "decrement": dec, "params": state.params})
        if not np.isfinite(dec):
            return NewtonResult(state, False, it, n_eval, "non-finite Newton step", dec)
        done = stop(state, dec) if stop is not None else dec <= tol
        if done and not final_step:
            return NewtonResult(state, True, it - 1, n_eval, "converged", dec)
        trials: list[State] = []

        def trial(z: np.ndarray, trials: list[State] = trials) -> tuple:
            # the full step is evaluated with derivatives: it is usually accepted
            s = evaluate(z, 0 if trials else 2)
            trials.append(s)
            return (s.value, s)

        found = backtrack(trial, state.params, d, state.value, max_trials, project,
                          slope=dec if armijo else 0.0)
        n_eval += len(trials)
        if found is None:
            return NewtonResult(state, done, it, n_eval,
                                "converged" if done else "line search failed", dec)
        t, _, (_, new) = found
        if new.order < 2:
            new = evaluate(new.params, 2)
            n_eval += 1
        state = new
        if done or np.max(np.abs(t * d), initial=0.0) <= min_step:
            return NewtonResult(state, done, it, n_eval,
                                "converged" if done else "step below min_step", dec)
    return NewtonResult(state, False, max_iter, n_eval, "maximum number of iterations", dec)
