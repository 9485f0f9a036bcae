"""Inference needing refits: profile-likelihood intervals and the quadrature-accuracy check."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize

from .._distributions import chi2_ppf
from ..errors import SpecError
from ..results import FitResult
from ..tables._validate import check_level
from ._auto_nodes import choose_nodes, node_changes, refit_with_nodes
from ._bfgs import minimize_bfgs
from ._fit import OBJECTIVES, fit, make_objective


def _profile_loglik(objective: Any, x0: np.ndarray, k: int, lower: np.ndarray
                    ) -> Callable[[float], float]:
    """``l_p(value)``: the log-likelihood maximised over all parameters but the k-th, held at
    ``value``, from ``x0``; the negative objective (the compiled kernel's where it applies) is
    built once for every value of the profile."""
    fixed = np.arange(len(x0)) == k

    def neg(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = objective.value_and_gradient(x)
        return -v, -g

    compiled = getattr(objective, "compiled_negative", lambda: None)()

    def profile(value: float) -> float:
        start = x0.copy()
        start[k] = value
        res = minimize_bfgs(neg, start, lower, gtol=1e-7, ftol=1e-12, compiled=compiled,
                            fixed=fixed)
        return -float(res.fun)

    return profile


def profile_interval(result: FitResult, parameter: str, level: float = 0.95) -> dict[str, float]:
    """Profile-likelihood interval for any parameter of ``result.names``.

    The interval is ``{x : 2 [l(hat) - l_p(x)] <= chi2_1(level)}`` with ``l_p(x)`` the
    log-likelihood maximised over all other parameters at that value (Venzon & Moolgavkar
    1988; lme4 ``confint(method="profile")``). A variance parameter's lower end is 0 when the
    profile at 0 stays within the bound; an end that the profile never reaches is infinite.
    The ends are found by bracketing in steps of the Wald SE and Brent's method (1e-6).
    """
    from ..spec._design import VARIANCE_ROLES

    level = check_level(level)
    if not isinstance(result, FitResult):
        raise SpecError(f"profile_interval needs a FitResult (the value of gllmm.fit), got "
                        f"{type(result).__name__}")
    d = result.design
    names = list(d.param_names)
    if parameter not in names:
        raise SpecError(f"unknown parameter {parameter!r}; parameters: {', '.join(names)}")
    k = names.index(parameter)
    method = result.method if result.method in OBJECTIVES else "laplace"
    obj = make_objective(d, method, result.n_nodes or None)
    lower = d.param_lower
    x_hat = result.params
    crit = chi2_ppf(level, 1) / 2

    profile = _profile_loglik(obj, x_hat, k, lower)

    def gap(v: float) -> float:
        return result.loglik - profile(v) - crit

    se = float(np.sqrt(result.cov[k, k])) if np.isfinite(result.cov[k, k]) else np.nan
    step0 = se if np.isfinite(se) and se > 0 else max(abs(x_hat[k]), 0.1)

    def end(sign: float) -> float:
        step, inner = step0, x_hat[k]
        outer = inner + sign * step
        while gap(outer) < 0:
            inner, step = outer, step * 2
            outer = inner + sign * step
            if abs(outer - x_hat[k]) > 1e3 * step0:
                return sign * float("inf")
        return float(optimize.brentq(gap, min(inner, outer), max(inner, outer), xtol=1e-6))

    if d.param_roles[k] in VARIANCE_ROLES:
        lo = 0.0
        if x_hat[k] > 0 and gap(0.0) > 0:
            lo = float(optimize.brentq(gap, 0.0, x_hat[k], xtol=1e-6))
    else:
        lo = end(-1.0)
    return {"lower": lo, "upper": end(1.0), "level": level}


def check_nodes(result: FitResult, n_nodes: int | None = None) -> dict[str, Any]:
    """Refit with more quadrature nodes and report the changes.

    Returns the change in log-likelihood, the largest change in any parameter and the largest
    change in units of its SE (``max_change_in_se``) when the fit is repeated with ``n_nodes``
    (default: twice the nodes used, at least 5) per dimension; small changes mean the rule was
    enough.
    """
    if not isinstance(result, FitResult):
        raise SpecError(f"check_nodes needs a FitResult (the value of gllmm.fit), got "
                        f"{type(result).__name__}")
    q_used = result.n_nodes or 1
    q_new = n_nodes or max(2 * q_used, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = refit_with_nodes(fit, result, q_new)
    return {"n_nodes": q_used, "n_nodes_check": q_new, **node_changes(result, refit)}


def fit_auto_nodes(design: Any, start: np.ndarray | None = None, loglik_tol: float = 1e-3,
                   se_fraction: float = 0.1, **options: Any) -> FitResult:
    """Fit with the quadrature rule chosen automatically (``fit(..., n_nodes="auto")``); see
    :func:`gllmm.fitting._auto_nodes.choose_nodes`."""
    return choose_nodes(fit, design, start, loglik_tol, se_fraction, **options)
