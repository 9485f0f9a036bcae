"""Inference needing refits: profile-likelihood intervals and the quadrature-accuracy check."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize, stats

from ..results import FitResult
from ._bfgs import minimize_bfgs
from ._fit import fit, make_objective


def _profile_loglik(objective: Any, x0: np.ndarray, k: int, value: float,
                    lower: np.ndarray) -> tuple[float, np.ndarray]:
    start = x0.copy()
    start[k] = value
    fixed = np.arange(len(x0)) == k

    def neg(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = objective.value_and_gradient(x)
        return -v, -g

    compiled = getattr(objective, "compiled_negative", lambda: None)()
    res = minimize_bfgs(neg, start, lower, gtol=1e-7, ftol=1e-12, compiled=compiled,
                        fixed=fixed)
    return -res.fun, res.x


def profile_interval(result: FitResult, parameter: str, level: float = 0.95) -> dict[str, float]:
    """Profile-likelihood interval for a standard-deviation parameter.

    The interval is ``{s : 2 [l(hat) - l_p(s)] <= chi2_1(level)}`` with ``l_p(s)`` the
    log-likelihood maximised over all other parameters at ``sd = s``; the lower end is 0 when
    the profile at 0 stays within the bound (Venzon & Moolgavkar 1988; lme4 ``profile``).
    """
    d = result.design
    names = list(d.param_names)
    if parameter not in names:
        raise KeyError(f"unknown parameter {parameter!r}; SD parameters: "
                       + ", ".join(n for n in names if n.startswith("sd(")))
    k = names.index(parameter)
    obj = make_objective(d, result.method if result.method in ("agq", "laplace") else "agq",
                         result.n_nodes or None)
    lower = np.r_[np.full(d.n_fixed, -np.inf), d.covariance.lower]
    x_hat = result.params
    l_hat = result.loglik
    crit = stats.chi2.ppf(level, 1) / 2

    def gap(s: float) -> float:
        return l_hat - _profile_loglik(obj, x_hat, k, s, lower)[0] - crit

    s_hat = x_hat[k]
    lo = 0.0
    if s_hat > 0 and gap(0.0) > 0:
        lo = optimize.brentq(gap, 0.0, s_hat, xtol=1e-6)
    step = max(s_hat, 0.1)
    hi_b = s_hat + step
    while gap(hi_b) < 0:
        hi_b += step
        step *= 2
        if hi_b > 1e3:
            return {"lower": lo, "upper": float("inf"), "level": level}
    hi = optimize.brentq(gap, s_hat, hi_b, xtol=1e-6)
    return {"lower": float(lo), "upper": float(hi), "level": level}


def check_nodes(result: FitResult, n_nodes: int | None = None) -> dict[str, Any]:
    """Refit with more quadrature nodes and report the changes.

    Returns the change in log-likelihood and the largest change in any parameter when the fit
    is repeated with ``n_nodes`` (default: twice the nodes used, at least 5) per dimension;
    small changes mean the rule was enough.
    """
    q_used = result.n_nodes or 1
    q_new = n_nodes or max(2 * q_used, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = fit(result.design, method="agq", n_nodes=q_new, start=result.params)
    diff = np.abs(refit.params - result.params)
    return {
        "n_nodes": q_used, "n_nodes_check": q_new,
        "loglik_change": float(refit.loglik - result.loglik),
        "max_param_change": float(diff.max()),
        "param_changes": dict(zip(result.names, diff.tolist(), strict=True)),
    }
