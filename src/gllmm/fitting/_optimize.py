"""The optimiser record and the outer maximisation over (beta, theta).

L-BFGS-B on the negative marginal log-likelihood with its exact gradient; variance
parameters (diagonal entries of Lambda) bounded below by 0 as in lme4, so a zero variance is
reached as an ordinary bound, then confirmed by the boundary step (MixedModels ``fit!``):
a standard deviation below ``xtol_zero`` is set to 0 if the log-likelihood drops by less than
``ftol_zero``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..errors import ConvergenceWarning, FitError
from ._bfgs import MESSAGES, BfgsResult, minimize_bfgs

#: The boundary tolerance of every fit: a variance is set to 0 (and a boundary fit preferred to
#: an interior one) unless the interior log-likelihood is higher by more than this.
FTOL_ZERO = 1e-6
#: A standard deviation below this is a candidate for the boundary step.
XTOL_ZERO = 1e-4
#: A search that ends with an exact Newton step (``newton_finish``) hands over from BFGS once
#: its step is below this (relative to max(1, |x|)) in every component, and keeps the observed
#: information of that step's base point for the standard errors when the Newton step is below
#: ``REUSE_STEP``: the forward differences of ``observed_information`` (step 1e-6) already
#: measure the curvature about 5e-7 from the point, so a base 2e-6 away changes SEs by about
#: 1e-5 relative (measured on the crossed and nested fits: 5e-6 per 1e-6 of displacement).
NEWTON_XTOL = 1e-6
REUSE_STEP = 2e-6

#: Interior starts (every boundary SD at each value) of the searches that follow a fit ending
#: with an SD on the boundary.
BOUNDARY_RESTARTS = (0.5, 1.5)


def best_of_starts(best: Any, search: Callable[[float], Any], loglik: Callable[[Any], float],
                   sd_starts: tuple[float, ...] = BOUNDARY_RESTARTS,
                   boundary: tuple[float, Callable[[], Any]] | None = None) -> Any:
    """The best of ``best``, of ``search(sd)`` for each ``sd`` of ``sd_starts`` and of the
    boundary fit.

    The likelihood in sigma can be bimodal (Coull & Agresti 2003, Section 4), so a search that
    ends with an SD at 0 may have stopped at a maximum on the boundary below an interior one:
    every strategy searches the interior again from these starts (``search(sd)``: the search
    with the boundary SDs at ``sd``). A later search wins only if its log-likelihood
    (``loglik(result)``) is higher by more than ``FTOL_ZERO``, the rule of the boundary step.

    Conversely a search can end at an interior maximum below the boundary: ``boundary`` is the
    boundary fit's log-likelihood (every SD 0, the fixed effects at the GLLM's ML: the GLLM's
    log-likelihood, which every objective reproduces there to rounding, so comparing costs no
    evaluation) and the search from that fit (run only when its log-likelihood is higher than
    the best's by more than ``FTOL_ZERO``; it reports the boundary as any fit ending there).
    """
    for sd in sd_starts:
        opt = search(sd)
        if loglik(opt) > loglik(best) + FTOL_ZERO:
            best = opt
    if boundary is not None and boundary[0] > loglik(best) + FTOL_ZERO:
        opt = boundary[1]()
        if loglik(opt) > loglik(best):
            best = opt
    return best


@dataclass
class OptSummary:
    """Everything about one optimisation: start, end, counts, return code, log and timings."""

    method: str
    optimizer: str
    n_nodes: int
    initial: np.ndarray
    final: np.ndarray
    initial_loglik: float
    final_loglik: float
    n_evaluations: int = 0
    n_iterations: int = 0
    return_code: str = ""
    converged: bool = False
    tolerances: dict[str, float] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    boundary: tuple[str, ...] = ()
    strategy: str = ""  # how the likelihood was evaluated (see fitting.STRATEGIES)
    #: observed information (all parameters) valid at ``final``, from the Newton finish
    information: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "optimizer": self.optimizer,
            "n_nodes": self.n_nodes,
            "initial": self.initial.tolist(),
            "final": self.final.tolist(),
            "initial_loglik": self.initial_loglik,
            "final_loglik": self.final_loglik,
            "n_evaluations": self.n_evaluations,
            "n_iterations": self.n_iterations,
            "return_code": self.return_code,
            "converged": self.converged,
            "tolerances": dict(self.tolerances),
            "timings": dict(self.timings),
            "boundary": list(self.boundary),
            "strategy": self.strategy,
        }


def maximize(
    objective: Any,
    start: np.ndarray,
    lower: np.ndarray,
    names: tuple[str, ...],
    method: str,
    n_nodes: int,
    sd_index: np.ndarray,
    gtol: float = 1e-7,
    ftol: float = 1e-12,
    max_iter: int = 2000,
    xtol_zero: float = XTOL_ZERO,
    ftol_zero: float = FTOL_ZERO,
    keep_log: bool = False,
    optimizer: str = "bfgs",
    hinv0: np.ndarray | None = None,
    newton_finish: bool = False,
) -> OptSummary:
    """Maximise ``objective.value_and_gradient`` from ``start`` subject to ``params >= lower``.

    Parameters
    ----------
    sd_index : ndarray of int
        Positions of standard-deviation parameters (candidates for the boundary step).
    newton_finish : bool
        End an interior search with an exact Newton step (``_newton_finish``) whose observed
        information the standard errors reuse: for objectives whose evaluations are
        expensive, as the P forward differences are paid for once instead of twice.
    """
    t0 = time.perf_counter()
    log: list[dict[str, Any]] = []
    n_eval = 0
    last: dict[str, Any] = {}

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        # the start and the optimum are each asked for twice (around the search); an
        # evaluation can cost a sparse factorisation, so the last point is remembered
        key = np.asarray(x, dtype=float).tobytes()
        if last.get("key") != key:
            last["out"] = objective.value_and_gradient(x)
            last["key"] = key
        return last["out"]

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal n_eval
        n_eval += 1
        try:
            val, grad = value_and_gradient(x)
        except (FitError, np.linalg.LinAlgError, FloatingPointError):
            # a trial point outside the region where the model is computable: reject it
            return 1e300, np.zeros_like(x)
        if keep_log:
            log.append({"stage": "lbfgsb", "params": x.copy(), "loglik": val})
        if not np.isfinite(val):
            return 1e300, np.zeros_like(x)
        return -val, -grad

    # a compiled objective runs the whole BFGS loop in numba (no per-evaluation log); its
    # data is made afresh for each search from the objective's state, which it hands back
    compiled_negative = (None if keep_log or optimizer != "bfgs"
                         else getattr(objective, "compiled_negative", None))

    def bfgs(x0: np.ndarray, compiled: tuple | None = None, **kw: Any) -> BfgsResult:
        nonlocal n_eval
        if compiled is None and compiled_negative is not None:
            compiled = compiled_negative(x0)
        res = minimize_bfgs(negative, x0, lower, gtol=gtol, ftol=ftol, max_iter=max_iter,
                            compiled=compiled, **kw)
        n_eval += res.nfev if compiled is not None else 0
        return res

    start = np.asarray(start, dtype=float)
    first = compiled_negative(start) if compiled_negative is not None else None
    if first is None and optimizer == "bfgs":
        initial_ll = value_and_gradient(start)[0]
    elif first is None:
        initial_ll = objective.value_and_gradient(start, gradient=False)[0]
    information = None
    if optimizer == "bfgs":
        res = bfgs(start, first, hinv0=hinv0, xtol=NEWTON_XTOL if newton_finish else 0.0)
        if first is not None:  # its first evaluation is at the start (within the bounds)
            initial_ll = -res.fun0 if abs(res.fun0) < 1e300 else -np.inf
        if newton_finish and res.message == MESSAGES[4]:
            res, information = _newton_finish(objective, negative, bfgs, res, lower, gtol)
        x, ll = res.x.copy(), -float(res.fun)
        success, message, nit = res.success, res.message, res.nit
        hinv0 = res.hinv
        at_x = _value_at(res)
    else:
        bounds = [(None if not np.isfinite(lo) else lo, None) for lo in lower]
        res = minimize(
            negative, start, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"ftol": ftol, "gtol": gtol, "maxiter": max_iter, "maxcor": 20},
        )
        x, ll = res.x.copy(), -float(res.fun)
        success, message, nit = bool(res.success), str(res.message), int(res.nit)
        at_x = None
    # sigma = 0 is a stationary point of every scalar SD (the likelihood is even in it), so a
    # step that lands there stops any gradient method: probe a small positive SD and restart
    # when the likelihood rises there (a saddle in sigma, not a maximum).
    for _restart in range(3):
        escaped = False
        for k in sd_index:
            if x[k] <= xtol_zero:
                for probe in (0.1, 0.5):
                    trial = x.copy()
                    trial[k] = probe
                    f_t, _ = negative(trial)
                    if -f_t > ll + ftol_zero:
                        res = bfgs(trial, hinv0=hinv0)
                        if -res.fun > ll:
                            x, ll = res.x.copy(), -float(res.fun)
                            success, message, nit = res.success, res.message, nit + res.nit
                            escaped = True
                            at_x = _value_at(res)
                        break
        if not escaped:
            break
    timings = {"optimize": time.perf_counter() - t0}

    # boundary step
    boundary: list[str] = []
    t1 = time.perf_counter()
    moved = False  # whether the boundary step moved x
    for k in sd_index:
        if x[k] == 0:  # on the boundary already: nothing to compare
            boundary.append(names[k])
        elif 0 < x[k] < xtol_zero:
            trial = x.copy()
            trial[k] = 0.0
            ll0 = objective.value_and_gradient(trial, gradient=False)[0]
            if ll0 >= ll - ftol_zero:
                x, ll = trial, ll0
                at_x = None
                moved = True
                boundary.append(names[k])
                if keep_log:
                    log.append({"stage": "boundary", "params": x.copy(), "loglik": ll})
    # a search that stopped on its projected gradient with these SDs at 0 has its other
    # parameters at their maximum already: re-maximising them would stop at once
    if boundary and (moved or message != MESSAGES[1]):
        # re-maximise the remaining parameters with the boundary ones held at 0
        fixed = np.isin(np.arange(len(x)), [names.index(b) for b in boundary])
        res3 = bfgs(x, fixed=fixed)
        if -res3.fun >= ll - 1e-9:
            x = res3.x
            ll = -float(res3.fun)
            at_x = _value_at(res3)
    timings["boundary"] = time.perf_counter() - t1
    # the last BFGS run ended at x with its value and gradient: no evaluation needed then
    final_val, final_grad = value_and_gradient(x) if at_x is None else at_x
    free_mask = np.ones(len(x), bool)
    free_mask[[names.index(b) for b in boundary]] = False
    fin = np.isfinite(lower)  # np.isclose's tolerances, on the bounded parameters only
    at_lower = np.zeros(len(x), dtype=bool)
    at_lower[fin] = np.abs(x[fin] - lower[fin]) <= 1e-8 + 1e-5 * np.abs(lower[fin])
    proj = np.where(at_lower & (final_grad < 0), 0.0, final_grad)[free_mask]
    grad_norm = float(np.max(np.abs(proj), initial=0.0))
    converged = bool(success) and grad_norm < 1e-3 * max(1.0, abs(final_val))
    return OptSummary(
        method=method,
        optimizer="projected BFGS" if optimizer == "bfgs" else "L-BFGS-B",
        n_nodes=n_nodes,
        initial=start,
        final=x,
        initial_loglik=float(initial_ll),
        final_loglik=float(final_val),
        n_evaluations=n_eval,
        n_iterations=int(nit),
        return_code=str(message),
        converged=converged,
        tolerances={"gtol": gtol, "ftol": ftol, "xtol_zero": xtol_zero, "ftol_zero": ftol_zero,
                    "max_abs_gradient": grad_norm},
        log=log,
        timings=timings,
        boundary=tuple(boundary),
        information=information[1] if information is not None and not boundary
        and np.array_equal(information[0], x) else None,
    )


def _newton_finish(objective: Any, negative: Any, bfgs: Callable[..., BfgsResult], res: Any,
                   lower: np.ndarray, gtol: float) -> tuple[Any, tuple | None]:
    """End a BFGS search stopped by ``NEWTON_XTOL`` with one Newton step on the exact
    curvature (``observed_information`` at its end, P gradients).

    Returns the result to report and ``(point, information)`` when that information also
    stands for the reported point (a Newton step below ``REUSE_STEP``), else None. A step that
    does not reach the gradient tolerance (or an indefinite curvature, an active bound) hands
    back to BFGS (``bfgs(x, hinv0=...)``, the search's own) from the better point, with the
    exact inverse curvature as its metric.
    """
    x = res.x
    n = len(x)
    hinv = res.hinv
    if np.all(x > lower):
        try:
            info = observed_information(objective, x, np.arange(n))
            np.linalg.cholesky(info)
            step = np.linalg.solve(info, -res.grad)
        except (FitError, np.linalg.LinAlgError, FloatingPointError):
            info = None
        if info is not None and np.all(np.isfinite(step)):
            inv = np.linalg.inv(info)
            hinv = (inv + inv.T) / 2
            trial = x + step
            if np.all(trial >= lower):
                f, g = negative(trial)
                # near the maximum the change in value is at rounding level (1e-13 of ~1e3)
                if f <= res.fun + 1e-11 * max(1.0, abs(res.fun)) and np.max(np.abs(g)) < gtol:
                    out = BfgsResult(trial, float(f), np.asarray(g, dtype=float), res.nit + 1,
                                     res.nfev + 1, True, MESSAGES[1], hinv)
                    small = np.all(np.abs(step) <= REUSE_STEP * np.maximum(1.0, np.abs(x)))
                    return out, ((trial, info) if small else None)
                if f <= res.fun:
                    x = trial
    again = bfgs(x, hinv0=hinv)
    again.nit += res.nit
    again.nfev += res.nfev
    return again, None


def observed_information(objective: Any, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Negative Hessian of the log-likelihood over the ``free`` parameters.

    Forward differences of the exact gradient (outside the optimisation loop), step
    ``1e-6 max(1, |x|)``: truncation error about 1e-6 relative, rounding about 1e-9, i.e. SEs
    to about 6 digits at half the cost of central differences; symmetrised.
    """
    hess = objective.gradient_jacobian(x, free, 1e-6)
    return -(hess + hess.T) / 2


def _value_at(res: Any) -> tuple[float, np.ndarray] | None:
    """(log-likelihood, gradient) at a BFGS result's x (None: not a computable point)."""
    if not (np.isfinite(res.fun) and abs(res.fun) < 1e300):
        return None
    return -float(res.fun), -np.asarray(res.grad, dtype=float)


def inverse_information(info: np.ndarray, free: np.ndarray, n: int, what: str = "observed",
                        stacklevel: int = 3) -> np.ndarray:
    """Covariance of the estimates: ``info^{-1}`` over the ``free`` parameters, NaN elsewhere.

    ``info`` is the (len(free), len(free)) information of the free parameters; a singular or
    indefinite inverse leaves every entry NaN with a ConvergenceWarning (standard errors do not
    exist there, and a number would be a wrong one).
    """
    cov = np.full((n, n), np.nan)
    try:
        sub = np.linalg.inv(info)
        if np.any(np.diag(sub) < 0):
            raise np.linalg.LinAlgError
        if len(free) == n:
            cov[:] = sub
        else:
            cov[np.ix_(free, free)] = sub
    except np.linalg.LinAlgError:
        warnings.warn(f"{what} information is singular; standard errors are unavailable",
                      ConvergenceWarning, stacklevel=stacklevel)
    return cov
