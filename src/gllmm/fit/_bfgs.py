"""A small projected BFGS for bound-constrained smooth maximisation.

Dense inverse-Hessian BFGS (Nocedal & Wright 2006, Alg. 6.1) with projection onto simple lower
bounds: variables at their bound whose gradient pushes outward are held fixed for the step
(an active-set / projected-gradient scheme as in Bertsekas 1982). Chosen over scipy's L-BFGS-B
because the problems here have tens of parameters and cheap exact gradients, so the Fortran
wrapper's per-iteration overhead dominated the fit time.
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


def projected_gradient(x: np.ndarray, g: np.ndarray, lower: np.ndarray) -> np.ndarray:
    at = x <= lower
    return np.where(at, np.minimum(g, 0.0), g)


def minimize_bfgs(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    gtol: float = 1e-6,
    ftol: float = 1e-12,
    max_iter: int = 500,
    hinv0: np.ndarray | None = None,
) -> BfgsResult:
    """Minimise ``f`` subject to ``x >= lower`` given ``fg(x) = (f, grad f)``.

    ``hinv0`` is an initial inverse-Hessian guess (default: identity, rescaled after the first
    step as Nocedal & Wright eq. 6.20).
    """
    lower = np.asarray(lower, dtype=float)
    x = np.maximum(np.asarray(x0, dtype=float), lower)
    f, g = fg(x)
    nfev = 1
    n = len(x)
    Hinv = np.eye(n) if hinv0 is None else np.array(hinv0, dtype=float)
    scaled = hinv0 is not None
    small_steps = 0
    message = "iteration limit"
    success = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count reported after the loop)
        pg = projected_gradient(x, g, lower)
        if np.max(np.abs(pg), initial=0.0) < gtol:
            success, message = True, "projected gradient below tolerance"
            break
        active = (x <= lower) & (g > 0)
        free = ~active
        d = np.zeros(n)
        hf = Hinv[np.ix_(free, free)]
        d[free] = -hf @ g[free]
        slope = float(g @ d)
        if not np.isfinite(slope) or slope >= 0:
            Hinv = np.eye(n)
            d = np.where(free, -g, 0.0)
            slope = float(g @ d)
        t = 1.0
        accepted = False
        for _ in range(60):
            x_new = np.maximum(x + t * d, lower)
            f_new, g_new = fg(x_new)
            nfev += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * float(g @ (x_new - x)):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            message = "line search failed"
            success = np.max(np.abs(pg)) < 1e3 * gtol * max(1.0, abs(f))
            break
        s = x_new - x
        y = g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):
            if not scaled:
                Hinv = np.eye(n) * (sy / float(y @ y))
                scaled = True
            rho = 1.0 / sy
            Hy = Hinv @ y
            Hinv = (Hinv - rho * (np.outer(s, Hy) + np.outer(Hy, s))
                    + (rho * rho * float(y @ Hy) + rho) * np.outer(s, s))
        df = f - f_new
        x, f, g = x_new, f_new, g_new
        if df < ftol * max(1.0, abs(f)):
            small_steps += 1
            if small_steps >= 3:
                success, message = True, "relative change in objective below tolerance"
                break
        else:
            small_steps = 0
    return BfgsResult(x, f, g, it, nfev, success, message, Hinv)
