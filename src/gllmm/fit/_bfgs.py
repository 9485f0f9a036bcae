"""A small projected BFGS for bound-constrained smooth maximisation.

Dense inverse-Hessian BFGS (Nocedal & Wright 2006, Alg. 6.1) with projection onto simple lower
bounds: variables at their bound whose gradient pushes outward are held fixed for the step
(an active-set / projected-gradient scheme as in Bertsekas 1982). Chosen over scipy's L-BFGS-B
because the problems here have tens of parameters and cheap exact gradients, so the Fortran
wrapper's per-iteration overhead dominated the fit time.

The algorithm is written once (``_bfgs_core``) in the subset of numpy that numba compiles: with
a compiled objective (``fg(data, x, g) -> f``, see ``integrate._kernels``) the whole loop runs
compiled; with a Python objective the same source runs as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class BfgsResult:
    x: np.ndarray
    fun: float
    grad: np.ndarray
    nit: int
    nfev: int
    success: bool
    message: str
    hinv: np.ndarray | None = None


MESSAGES = ("iteration limit", "projected gradient below tolerance", "line search failed",
            "relative change in objective below tolerance")


def _bfgs_core(fg, data, x0, lower, fixed, hinv0, scaled, gtol, ftol, max_iter, out_g):
    """Projected BFGS; returns (x, f, Hinv, nit, nfev, success, message code); ``out_g`` gets
    the gradient at x. ``fg(data, x, g)`` returns f and writes the gradient into g; variables
    where ``fixed`` is True keep their start values."""
    n = x0.shape[0]
    bounded = np.isfinite(lower)
    x = np.where(bounded, np.maximum(x0, lower), x0)
    g = np.empty(n)
    g_new = np.empty(n)
    f = fg(data, x, g)
    nfev = 1
    Hinv = hinv0.copy()
    small_steps = 0
    code = 0
    success = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count reported after the loop)
        active = fixed | (bounded & (x <= lower) & (g > 0))
        pg = np.where(active, 0.0, g)
        if np.max(np.abs(pg)) < gtol:
            success, code = True, 1
            break
        free = (~active).astype(np.float64)
        d = -(Hinv @ (g * free)) * free
        slope = np.dot(g, d)
        if not np.isfinite(slope) or slope >= 0:
            Hinv = np.eye(n)
            d = -g * free
        t = 1.0
        accepted = False
        x_new = x
        f_new = f
        for _ in range(60):
            x_new = x + t * d
            x_new = np.where(bounded, np.maximum(x_new, lower), x_new)
            f_new = fg(data, x_new, g_new)
            nfev += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * np.dot(g, x_new - x):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            code = 2
            success = np.max(np.abs(pg)) < 1e3 * gtol * max(1.0, abs(f))
            break
        s = x_new - x
        y = g_new - g
        sy = np.dot(s, y)
        yy = np.dot(y, y)
        if sy > 1e-12 * np.sqrt(np.dot(s, s) * yy):
            if not scaled:
                Hinv = np.eye(n) * (sy / yy)
                scaled = True
            rho = 1.0 / sy
            Hy = Hinv @ y
            # Hinv <- (I - rho s y') Hinv (I - rho y s') + rho s s', as one rank-2 update
            a = (rho * rho * np.dot(y, Hy) + rho) * s - rho * Hy
            Hinv = Hinv + np.outer(a, s) - rho * np.outer(s, Hy)
        df = f - f_new
        x, f = x_new, f_new
        g[:] = g_new
        if df < ftol * max(1.0, abs(f)):
            small_steps += 1
            if small_steps >= 3:
                success, code = True, 3
                break
        else:
            small_steps = 0
    out_g[:] = g
    return x, f, Hinv, it, nfev, success, code


_bfgs_compiled = None


def _compiled_core():
    global _bfgs_compiled
    if _bfgs_compiled is None:
        import numba

        _bfgs_compiled = numba.njit(cache=True)(_bfgs_core)
    return _bfgs_compiled


def _python_fg(fun, x, g):
    f, grad = fun(x)
    g[:] = grad
    return f


def minimize_bfgs(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]] | None,
    x0: np.ndarray,
    lower: np.ndarray,
    gtol: float = 1e-6,
    ftol: float = 1e-12,
    max_iter: int = 500,
    hinv0: np.ndarray | None = None,
    compiled: tuple | None = None,
    fixed: np.ndarray | None = None,
) -> BfgsResult:
    """Minimise ``f`` subject to ``x >= lower`` given ``fg(x) = (f, grad f)``.

    ``hinv0`` is an initial inverse-Hessian guess (default: identity, rescaled after the first
    step as Nocedal & Wright eq. 6.20). ``compiled = (fg_jit, data)``, when given, replaces
    ``fg`` by a numba objective ``fg_jit(data, x, g) -> f`` and runs the loop compiled.
    ``fixed`` (bool, n) holds variables at their start values. The returned gradient is the
    full one.
    """
    lower = np.ascontiguousarray(lower, dtype=float)
    x0 = np.ascontiguousarray(x0, dtype=float)
    n = len(x0)
    scaled = hinv0 is not None
    hinv = np.eye(n) if hinv0 is None else np.ascontiguousarray(hinv0, dtype=float)
    g = np.empty(n)
    fixed = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    if compiled is not None:
        out = _compiled_core()(compiled[0], compiled[1], x0, lower, fixed, hinv, scaled, gtol,
                               ftol, max_iter, g)
    else:
        out = _bfgs_core(_python_fg, fg, x0, lower, fixed, hinv, scaled, gtol, ftol,
                         max_iter, g)
    x, f, hinv, nit, nfev, success, code = out
    return BfgsResult(np.array(x), float(f), g, int(nit), int(nfev), bool(success),
                      MESSAGES[code], hinv)
