"""The compiled posterior-mode search of the AGQ kernels: one damped Newton iteration with step
halving, written once as a template and bound (``_jit.bind``) to each kernel's cluster
objective; the compiled form of ``_newton.halving_step`` as ``MarginalLikelihood.modes`` and
``_agq_scalar.scalar_modes`` use it (the same steps, acceptance rule and last full step).

The template works on a scalar effect (floats) or a vector of q effects (arrays) alike:

- ``EVAL(args, v) -> (h, F, K)``: ``h(v)`` of one cluster, its gradient F and ``K = -h''(v)``;
- ``STEP(F, K) -> (step, size, status)``: the Newton step, its largest absolute entry and a
  status (``NONFINITE_CURVATURE``, ``NOT_POSITIVE`` where K has no Cholesky factor, else OK).

Both are inlined into the kernels: called per trial point, with arrays, they made the scalar
Poisson kernel 40% slower (measured).
"""

from __future__ import annotations

import math

import numpy as np

from .._halving import ASCENT_TOL
from .._jit import njit
from .._small_linalg import cholesky_into, cholesky_solve

# status codes returned by the kernels
OK, NONFINITE_CURVATURE, NOT_POSITIVE = 0, 1, 2


def EVAL(args, v):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError("mode_newton_template runs through bind(..., EVAL=...)")


def STEP(F, K):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError("mode_newton_template runs through bind(..., STEP=...)")


@njit(inline=True)
def damped_scalar_step(F, K):  # pragma: no cover - compiled
    """``F / K`` for one effect, K replaced by ``|K| + 1e-3`` where it is below 1e-6 (a
    Levenberg-Marquardt shift keeps the step an ascent direction away from the mode)."""
    if not math.isfinite(K):
        return 0.0, 0.0, NONFINITE_CURVATURE
    step = F / (K if K > 1e-6 else abs(K) + 1e-3)
    return step, abs(step), OK


@njit(inline=True)
def cholesky_step(F, K):  # pragma: no cover - compiled
    """``K^{-1} F`` for q effects by a Cholesky factorisation of K."""
    q = F.shape[0]
    step = np.zeros(q)
    if not np.all(np.isfinite(K)):
        return step, 0.0, NONFINITE_CURVATURE
    L = np.empty((q, q))
    if not cholesky_into(K, L):
        return step, 0.0, NOT_POSITIVE
    cholesky_solve(L, F, step)
    return step, np.max(np.abs(step)), OK


def mode_newton_template(args, v, zero, tol, max_iter):
    """Damped Newton for the mode of ``h = EVAL(args, .)`` from ``v``; returns (v, h, F, K,
    status) at the result.

    A start where h is not finite restarts from ``zero``. Each step is halved (40 times at
    most) until h does not fall by more than ``ASCENT_TOL (1 + |h|)``; once the step is below
    ``tol`` it is taken in full and the search stops: Newton's quadratic convergence puts v
    within ~tol^2 of the mode, so gradients (and differences of them) carry no mode error.
    """
    h, F, K = EVAL(args, v)
    if not np.isfinite(h):
        v = zero
        h, F, K = EVAL(args, v)
    for it in range(max_iter + 1):
        step, size, status = STEP(F, K)
        if status != OK:
            return v, h, F, K, status
        if it == max_iter:
            break
        last = size < tol
        t = 1.0
        vn, hn, Fn, Kn = v, h, F, K
        for _half in range(40):
            vn = v + t * step
            hn, Fn, Kn = EVAL(args, vn)
            if last or hn >= h - ASCENT_TOL * (1.0 + abs(h)):
                break
            t *= 0.5
        v, h, F, K = vn, hn, Fn, Kn
        if last:
            break
    return v, h, F, K, OK
