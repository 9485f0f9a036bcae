"""The quadrature rule chosen by the fit (``n_nodes="auto"``): Laplace, then AGQ with more
nodes, each refit from the last, until the estimates settle."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, FitError
from ..results import FitResult


def refit_with_nodes(fit: Callable[..., FitResult], result: FitResult, n_nodes: int,
                     **options: Any) -> FitResult:
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


def node_changes(old: FitResult, new: FitResult) -> dict[str, Any]:
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


#: rules tried by ``n_nodes="auto"``: Laplace, then AGQ with more nodes per dimension
AUTO_NODES = (1, 3, 5, 9, 15, 25, 41)
#: largest number of product-rule points per cluster the automatic choice goes to
AUTO_MAX_POINTS = 2500


def choose_nodes(fit: Callable[..., FitResult], design: Any, start: np.ndarray | None = None,
                 loglik_tol: float = 1e-3, se_fraction: float = 0.1, **options: Any) -> FitResult:
    """Fit with the quadrature rule chosen automatically (``fit(..., n_nodes="auto")``).

    Laplace first, then adaptive Gauss-Hermite with 3, 5, 9, 15, 25, 41 nodes per dimension
    (at most 2500 points per cluster), each refit starting from the previous estimate, until
    one refinement moves the log-likelihood by less than ``loglik_tol`` and every parameter by
    less than ``se_fraction`` of its SE. The finer fit of that last pair is returned: its
    rule is ``result.n_nodes``, and ``result.nodes_evidence`` lists every rule tried (log-lik,
    changes, seconds). If no pair agrees, the finest fit is returned with a
    ConvergenceWarning. Structures without AGQ (sparse Laplace for crossed effects) stop at
    Laplace, noted in the evidence. ``fit`` is :func:`gllmm.fit` (passed in: it calls this).
    """
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
            new, new_caught = _timed_fit(
                rows, lambda q=q, c=cur: refit_with_nodes(fit, c, q, **options), q)
        except FitError as exc:
            rows.append({"n_nodes": q, "note": f"AGQ not available: {exc}"})
            break
        ch = node_changes(cur, new)
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
