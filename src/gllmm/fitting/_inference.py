"""Inference needing refits: profile-likelihood intervals and the quadrature-accuracy check."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
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


def _refit(result: FitResult, n_nodes: int, **options: Any) -> FitResult:
    return fit(result.design, method="agq", n_nodes=n_nodes, start=result.params, **options)


def _changes(old: FitResult, new: FitResult) -> dict[str, Any]:
    """Changes from ``old`` to ``new``: log-likelihood, each parameter, and each parameter in
    units of the new fit's SE (parameters on the boundary in both fits change by 0)."""
    diff = np.abs(new.params - old.params)
    se = np.sqrt(np.abs(np.diag(new.cov)))
    # no SE (boundary or singular information): judge the change against 1 instead
    scale = np.where(np.isfinite(se) & (se > 0), se, 1.0)
    return {
        "loglik_change": float(new.loglik - old.loglik),
        "max_param_change": float(diff.max()),
        "max_change_in_se": float((diff / scale).max()),
        "param_changes": dict(zip(old.names, diff.tolist(), strict=True)),
    }


def check_nodes(result: FitResult, n_nodes: int | None = None) -> dict[str, Any]:
    """Refit with more quadrature nodes and report the changes.

    Returns the change in log-likelihood, the largest change in any parameter and the largest
    change in units of its SE (``max_change_in_se``) when the fit is repeated with ``n_nodes``
    (default: twice the nodes used, at least 5) per dimension; small changes mean the rule was
    enough.
    """
    q_used = result.n_nodes or 1
    q_new = n_nodes or max(2 * q_used, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = _refit(result, q_new)
    return {"n_nodes": q_used, "n_nodes_check": q_new, **_changes(result, refit)}


#: rules tried by ``n_nodes="auto"``: Laplace, then AGQ with more nodes per dimension
AUTO_NODES = (1, 3, 5, 9, 15, 25, 41)
#: largest number of product-rule points per cluster the automatic choice goes to
AUTO_MAX_POINTS = 2500


def fit_auto_nodes(design: Any, start: np.ndarray | None = None, loglik_tol: float = 1e-3,
                   se_fraction: float = 0.1, **options: Any) -> FitResult:
    """Fit with the quadrature rule chosen automatically (``fit(..., n_nodes="auto")``).

    Laplace first, then adaptive Gauss-Hermite with 3, 5, 9, 15, 25, 41 nodes per dimension
    (at most 2500 points per cluster), each refit starting from the previous estimate, until
    one refinement moves the log-likelihood by less than ``loglik_tol`` and every parameter by
    less than ``se_fraction`` of its SE. The finer fit of that last pair is returned: its
    rule is ``result.n_nodes``, and ``result.nodes_evidence`` lists every rule tried (log-lik,
    changes, seconds). If no pair agrees, the finest fit is returned with a
    ConvergenceWarning. Structures without AGQ (sparse Laplace for crossed effects) stop at
    Laplace, noted in the evidence.
    """
    from ..errors import ConvergenceWarning, FitError

    dim = max(design.n_random, 1)
    rules = [q for q in AUTO_NODES if q == 1 or q**dim <= AUTO_MAX_POINTS]
    rows: list[dict[str, Any]] = []
    cur, caught = _timed_fit(rows, lambda: fit(design, method="laplace", n_nodes=1,
                                               start=start, **options), 1)
    settled = False
    if design.n_random == 0:
        return cur
    if len(rules) == 1:
        rows.append({"n_nodes": 3, "note": f"AGQ not tried: 3^{dim} points per cluster exceed "
                     f"{AUTO_MAX_POINTS}"})
    for q in rules[1:]:
        try:
            new, new_caught = _timed_fit(rows, lambda q=q, c=cur: _refit(c, q, **options), q)
        except FitError as exc:
            rows.append({"n_nodes": q, "note": f"AGQ not available: {exc}"})
            break
        ch = _changes(cur, new)
        rows[-1].update(loglik_change=ch["loglik_change"],
                        max_change_in_se=ch["max_change_in_se"])
        cur, caught = new, new_caught
        if abs(ch["loglik_change"]) < loglik_tol and ch["max_change_in_se"] < se_fraction:
            settled = True
            break
    for w in caught:  # the chosen fit's own warnings
        warnings.warn(w.message, w.category, stacklevel=3)
    if not settled and len(rows) > 1 and "note" not in rows[-1]:
        warnings.warn(f"automatic node choice did not settle by {cur.n_nodes} nodes per "
                      "dimension (log-likelihood or estimates still moving); see "
                      "result.nodes_evidence", ConvergenceWarning, stacklevel=3)
    cur.extra["nodes_evidence"] = pd.DataFrame(rows)
    cur.extra["nodes_rule"] = {"loglik_tol": loglik_tol, "se_fraction": se_fraction,
                               "settled": settled}
    return cur


def _timed_fit(rows: list, call: Any, q: int) -> tuple[FitResult, list]:
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = call()
    rows.append({"n_nodes": q, "method": res.method, "loglik": res.loglik,
                 "seconds": time.perf_counter() - t0})
    return res, list(caught)
