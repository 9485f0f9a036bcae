"""Inference needing refits: profile-likelihood intervals and the quadrature-accuracy check."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..errors import SpecError
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
    """Profile-likelihood interval for any parameter of ``result.names``.

    The interval is ``{x : 2 [l(hat) - l_p(x)] <= chi2_1(level)}`` with ``l_p(x)`` the
    log-likelihood maximised over all other parameters at that value (Venzon & Moolgavkar
    1988; lme4 ``confint(method="profile")``). A variance parameter's lower end is 0 when the
    profile at 0 stays within the bound; an end that the profile never reaches is infinite.
    The ends are found by bracketing in steps of the Wald SE and Brent's method (1e-6).
    """
    from ..spec._design import VARIANCE_ROLES

    d = result.design
    names = list(d.param_names)
    if parameter not in names:
        raise SpecError(f"unknown parameter {parameter!r}; parameters: {', '.join(names)}")
    k = names.index(parameter)
    method = result.method if result.method in ("agq", "laplace") else "laplace"
    obj = make_objective(d, method, result.n_nodes or None)
    lower = d.param_lower
    x_hat = result.params
    crit = stats.chi2.ppf(level, 1) / 2

    def gap(v: float) -> float:
        return result.loglik - _profile_loglik(obj, x_hat, k, v, lower)[0] - crit

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


def _refit(result: FitResult, n_nodes: int, **options: Any) -> FitResult:
    """``result``'s model with ``n_nodes`` per dimension, from its estimate and (where the
    quasi-Newton optimiser is used) its inverse information as the starting curvature."""
    hinv = _curvature(result) if result.strategy != "cellwise" else None
    if hinv is not None:
        options = {**options, "hinv0": hinv}
    return fit(result.design, method="agq", n_nodes=n_nodes, start=result.params, **options)


def _curvature(result: FitResult) -> np.ndarray | None:
    """The fit's covariance as an inverse Hessian: parameters without one (boundary) get the
    default start's 0.05; None unless positive definite."""
    cov = np.array(result.cov, dtype=float)
    bad = ~np.isfinite(np.diag(cov))
    cov[bad, :] = 0.0
    cov[:, bad] = 0.0
    cov[bad, bad] = 0.05
    if not np.all(np.isfinite(cov)):
        return None
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return cov


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
