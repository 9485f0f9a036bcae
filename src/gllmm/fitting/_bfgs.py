"""A small projected BFGS for bound-constrained smooth maximisation.

Dense inverse-Hessian BFGS (Nocedal & Wright 2006, Alg. 6.1) with projection onto simple lower
bounds: variables at their bound whose gradient pushes outward are held fixed for the step
(an active-set / projected-gradient scheme as in Bertsekas 1982). Chosen over scipy's L-BFGS-B
because the problems here have tens of parameters and cheap exact gradients, so the Fortran
wrapper's per-iteration overhead dominated the fit time.

The algorithm is written once (``fitting._loops.bfgs_template``) in the subset of numpy that
numba compiles: with a compiled objective the whole loop runs compiled; with a Python objective
the same source runs as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

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
    fun0: float = float("nan")  # f at the start (projected onto the bounds)


MESSAGES = ("iteration limit", "projected gradient below tolerance", "line search failed",
            "relative change in objective below tolerance", "quasi-Newton step below tolerance")


def _python_fg(fun, x, g):
    f, grad = fun(x)
    g[:] = grad
    return f


@cache
def _python_core():
    from .._jit import bind
    from .._small_linalg import eye_numpy, rank2_numpy
    from ._loops import bfgs_template

    return bind(bfgs_template, "bfgs_python", OBJECTIVE=_python_fg,
                EYE=eye_numpy, RANK2=rank2_numpy)


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
    xtol: float = 0.0,
) -> BfgsResult:
    """Minimise ``f`` subject to ``x >= lower`` given ``fg(x) = (f, grad f)``.

    ``hinv0`` is an initial inverse-Hessian guess (default: identity, rescaled after the first
    step as Nocedal & Wright eq. 6.20). ``compiled = (name, data)``, when given, replaces
    ``fg`` by the compiled objective ``name`` on ``data`` and runs the whole loop compiled
    (``fitting._loops.bfgs_<name>``); a third element, when present, is called after the
    loop (the objective takes back the state the loop left in ``data``).
    ``fixed`` (bool, n) holds variables at their start values. ``xtol > 0``: stop (message
    "quasi-Newton step below tolerance") once every component of the step is below
    ``xtol max(1, |x|)``. The returned gradient is the full one.
    """
    lower = np.ascontiguousarray(lower, dtype=float)
    x0 = np.ascontiguousarray(x0, dtype=float)
    n = len(x0)
    scaled = hinv0 is not None
    hinv = np.eye(n) if hinv0 is None else np.ascontiguousarray(hinv0, dtype=float)
    g = np.empty(n)
    fixed = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    if compiled is not None:
        from . import _loops

        run = getattr(_loops, f"bfgs_{compiled[0]}")
        out = run(compiled[1], x0, lower, fixed, hinv, scaled, gtol, ftol, max_iter, g, xtol)
        if len(compiled) > 2:  # the objective takes back the state the compiled search left
            compiled[2]()
    else:
        out = _python_core()(fg, x0, lower, fixed, hinv, scaled, gtol, ftol, max_iter, g,
                                   xtol)
    x, f, hinv, nit, nfev, success, code, f0 = out
    return BfgsResult(np.array(x), float(f), g, int(nit), int(nfev), bool(success),
                      MESSAGES[code], hinv, float(f0))
