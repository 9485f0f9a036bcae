"""Constrained maximum likelihood for GLLMs ``C log(A mu) = X beta`` with no closed form for mu.

The model is rewritten as ``q = r - p`` constraints on the cell means,

    h(mu) = U' (C log(A mu) - offset) = 0,        U'X = 0,  [X U] spans R^r,

and the Poisson log-likelihood ``l(mu) = sum(y log mu - mu)`` is maximised subject to h = 0 with
Lagrange multipliers (Aitchison & Silvey 1958; Haber 1985; Lang & Agresti 1994; Bergsma 1997).
Multinomial and product-multinomial sampling follow the multinomial-Poisson homogeneous (MPH)
framework of Lang (2004): when h is homogeneous of degree zero in each stratum's total (checked:
the stratum indicators, pushed through C log(A .), lie in the column space of X), the Poisson ML
fit already reproduces the stratum totals, so the fitted values, G^2 and X^2 are the same under
all three plans and only the covariance of mu_hat loses the fixed-total directions.

Iteration (Fisher scoring on the Lagrangian in xi = log mu; Aitchison & Silvey 1958, Lang 2004
Section 4): with H = dh'/dmu = A' D(A mu)^-1 C' U (cells x q), D = diag(mu) and
M = (H' D H)^-1,

    delta_xi = D^-1 (y - mu) - H M (H'(y - mu) + h),      lambda = -M (H'(y - mu) + h),

which solves the Lagrange equations y - mu + D H lambda = 0, h = 0 linearised with the expected
(Poisson) information D (the SQP step with Hessian approximation D). The step length t is halved
until either the l1 exact penalty ``-l(mu) + rho sum|h|`` (rho > max|lambda|, non-decreasing; Han
1977) shows an Armijo decrease or the KKT residual ``s' D^-1 s + h' M h`` (s = y - mu +
D H lambda_ls, lambda_ls the least-squares multiplier; both on the chi-square scale) decreases;
the second test avoids the Maratos effect near the solution.

Convergence: the full step satisfies ``max_i sqrt(mu_i) |delta log mu_i| <= tol`` (the change
of each fitted value in standard-error units) and the square root of the KKT residual is
<= tol; tol is floored at ``100 eps sqrt(n)``, the rounding level of both. Zero-count cells whose
ML fitted value is 0 (e.g. marginal homogeneity) converge linearly towards 0 on the log scale
and are reported in ``ConvergenceInfo.boundary_cells``.

Glossary: c cells, r rows of C (components of eta = C log(A mu)), p = columns of X, q = r - p
constraints, K strata; y counts, m/mu fitted means, xi = log mu.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import gammaln

from ..errors import ConvergenceWarning, FitError, SpecError
from ..integrate._newton import ARMIJO, backtrack
from ._constrained_result import ConstrainedFit, ConvergenceInfo
from ._constrained_spec import (
    SAMPLING_SCHEMES,
    Problem,
    constraint_jacobian,
    matrix_rank,
    validate,
)

__all__ = ["SAMPLING_SCHEMES", "fit_constrained"]

# Where 0 counts start the iterations (log 0 is not a starting point); only the start.
_ZERO_START = 0.5
_MAX_HALVINGS = 40
# Relative size of the smallest diagonal entry of R (QR of D^1/2 H) below which the scoring
# system is treated as singular.
_QR_RTOL = 1e3 * np.finfo(float).eps


@dataclass(frozen=True)
class _State:
    """Everything the iteration needs at one xi = log mu."""

    xi: np.ndarray
    m: np.ndarray
    h: np.ndarray
    H: np.ndarray
    chol: tuple[np.ndarray, bool]
    step: np.ndarray
    lam: np.ndarray
    merit: float


def _state(problem: Problem, xi: np.ndarray) -> _State | None:
    """KKT quantities at xi; None when A mu is not positive or the system is singular.

    The linear algebra uses the QR factorisation of ``W = D^{1/2} H`` (so ``H'DH = R'R``)
    rather than a Cholesky factorisation of ``H'DH``: the normal equations square the condition
    number, which is ruinous at boundary fits where zero-count cells with fitted values tending
    to 0 enter the constraints through log mu (e.g. a log-linear part with a zero sufficient
    margin): their rows of W grow like mu^-1/2, and with Cholesky the steps lose all accuracy
    once those means fall below about 1e-8.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.exp(xi)
        am = problem.A @ m
    if not np.all(np.isfinite(m)) or np.any(m <= 0) or np.any(am <= 0):
        return None
    # a trial step can drive A mu towards 0 (H overflows): rejected just below, so no warning
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        h, H = constraint_jacobian(problem, m)
        root = np.sqrt(m)
        W = root[:, None] * H
    if not np.all(np.isfinite(W)):
        return None
    q_mat, r_mat = np.linalg.qr(W)
    diag = np.diag(r_mat)
    if not np.all(np.isfinite(r_mat)) or np.abs(diag).min() <= _QR_RTOL * np.abs(diag).max():
        return None  # H'DH singular to working precision
    signs = np.where(diag < 0, -1.0, 1.0)
    r_mat = signs[:, None] * r_mat  # R'R = H'DH with a positive diagonal: a Cholesky factor
    q_mat = q_mat * signs
    chol = (r_mat, False)
    resid = problem.y - m
    scaled = resid / root  # D^-1/2 (y - mu)
    g = W.T @ scaled + h  # H'(y - mu) + h
    mg = scipy.linalg.cho_solve(chol, g)
    step = (scaled - W @ mg) / root
    # Merit: projected score (least-squares multiplier) plus constraint violation, chi-square
    # scale: |(I - QQ') D^-1/2 (y - mu)|^2 + h'(H'DH)^-1 h.
    projected = scaled - q_mat @ (q_mat.T @ scaled)
    h_scaled = scipy.linalg.solve_triangular(r_mat, h, trans="T")
    merit = float(projected @ projected + h_scaled @ h_scaled)
    if not np.isfinite(merit) or not np.all(np.isfinite(step)):
        return None
    return _State(xi=xi, m=m, h=h, H=H, chol=chol, step=step, lam=-mg, merit=merit)


def _penalty_merit(problem: Problem, state: _State, rho: float) -> float:
    """l1 exact penalty: minus the Poisson kernel plus rho * sum |h| (Han 1977; Powell 1978)."""
    return float(-(problem.y @ state.xi - state.m.sum()) + rho * np.abs(state.h).sum())


def _iterate(
    problem: Problem, xi0: np.ndarray, tol: float, max_iter: int
) -> tuple[_State, ConvergenceInfo]:
    state = _state(problem, xi0)
    if state is None:
        raise FitError("the Lagrange system is singular at the starting values")
    # Both criteria are on the standard-error scale of the counts; their rounding floor is
    # about eps * sqrt(n), so tol is floored there.
    eff_tol = max(tol, 100.0 * np.finfo(float).eps * math.sqrt(problem.y.sum()))
    history: list[tuple[int, float, float, float]] = []
    n_halvings = 0
    converged = False
    message = ""
    iteration = 0
    rho = 0.0
    while True:
        step_norm = float(np.max(np.sqrt(state.m) * np.abs(state.step)))
        score_norm = math.sqrt(max(state.merit, 0.0))
        if step_norm <= eff_tol and score_norm <= eff_tol:
            converged = True
            message = "converged: max sqrt(mu)|delta log mu| <= tol and score norm <= tol"
            break
        if iteration >= max_iter:
            message = f"stopped after max_iter={max_iter} iterations"
            break
        # The scoring step solves the QP with Hessian D, so it is a descent direction of the
        # l1 penalty merit once rho exceeds max |lambda|; rho never decreases.
        rho = max(rho, 1.5 * float(np.abs(state.lam).max()) + 1e-8)
        phi0 = _penalty_merit(problem, state, rho)
        slope = float(-(problem.y - state.m) @ state.step - rho * np.abs(state.h).sum())

        def accept(t: float, out: tuple, state: _State = state, phi0: float = phi0,
                   slope: float = slope, rho: float = rho) -> bool:
            cand = out[1]
            return cand is not None and (
                _penalty_merit(problem, cand, rho) <= phi0 + ARMIJO * t * min(slope, 0.0)
                # or the KKT residual falls: avoids the Maratos effect near the solution
                or cand.merit < (1.0 - ARMIJO * t) * state.merit
            )

        found = backtrack(lambda z: (0.0, _state(problem, z)), state.xi, state.step, 0.0,
                          _MAX_HALVINGS, accept=accept)
        n_halvings += _MAX_HALVINGS if found is None else round(-math.log2(found[0]))
        accepted = None if found is None else found[2][1]
        if accepted is None:
            converged = step_norm <= math.sqrt(eff_tol) and score_norm <= math.sqrt(eff_tol)
            message = (
                "converged to rounding precision (no step decreases either merit)"
                if converged
                else "step halving failed to decrease the merit functions"
            )
            break
        iteration += 1
        history.append((iteration, found[0], step_norm, score_norm))
        state = accepted
    boundary = tuple(
        int(i) for i in np.flatnonzero((problem.y == 0) & (state.m < 1e-10 * problem.y.mean()))
    )
    if boundary:
        message += f"; fitted values of zero-count cells {list(boundary)} tend to 0 (boundary)"
    info = ConvergenceInfo(
        converged=converged,
        iterations=iteration,
        step_norm=float(np.max(np.sqrt(state.m) * np.abs(state.step))),
        score_norm=math.sqrt(max(state.merit, 0.0)),
        n_halvings=n_halvings,
        tol=tol,
        max_iter=max_iter,
        message=message,
        history=tuple(history),
        boundary_cells=boundary,
    )
    return state, info


def _check_start(problem: Problem, m0: np.ndarray) -> None:
    am = problem.A @ m0
    bad = np.flatnonzero(am <= 0)
    if bad.size:
        raise SpecError(
            f"A mu must be positive: rows {bad.tolist()} of A give A mu <= 0 at the starting "
            "values (A should be non-negative)"
        )
    q = problem.U.shape[1]
    if q == 0:
        return
    # Redundancy often shows only where the constraints hold (e.g. all row and column margins
    # equal), so the rank is also checked at the uniform table, which satisfies many models.
    uniform = np.full_like(m0, problem.y.mean())
    points = [("the starting values", m0)]
    if np.all(problem.A @ uniform > 0):
        points.append(("the uniform table", uniform))
    for where, m in points:
        rank = _jacobian_rank(problem, m)
        if rank < q:
            raise SpecError(
                f"the constraints must be linearly independent at the start: the Jacobian of "
                f"U'C log(A mu) has rank {rank} < {q} constraints at {where} (typically "
                "C log(A mu) has functionally dependent components, e.g. the logs of all row and "
                "column margins including the last category, or there are too many constraints "
                "for the number of cells)"
            )


def _jacobian_rank(problem: Problem, m: np.ndarray) -> int:
    _, H = constraint_jacobian(problem, m)
    return matrix_rank(np.sqrt(m)[:, None] * H)


def _loglik(y: np.ndarray, m: np.ndarray, Z: np.ndarray | None) -> float:
    """Full log-likelihood with constants: Poisson, or (product-)multinomial given Z."""
    ylogm = np.where(y > 0, y * np.log(np.where(y > 0, m, 1.0)), 0.0)
    if Z is None:
        return float(np.sum(ylogm - m - gammaln(y + 1.0)))
    totals = Z.T @ y
    ylogn = float(np.sum(totals * np.log(totals)))
    return float(np.sum(gammaln(totals + 1.0)) - np.sum(gammaln(y + 1.0)) + ylogm.sum() - ylogn)


def fit_constrained(
    counts: object,
    C: object,
    A: object,
    X: object | None = None,
    sampling: str = "poisson",
    strata: object | None = None,
    names: Sequence[str] | None = None,
    offset: object | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
    start: object | None = None,
) -> ConstrainedFit:
    """ML fit of the GLLM ``C log(A mu) = offset + X beta`` by Lagrange multipliers.

    Maximises the Poisson log-likelihood subject to ``h(mu) = U'(C log(A mu) - offset) = 0``
    (U spans the orthogonal complement of span(X)) with the scoring iteration of Aitchison &
    Silvey (1958) in ``(log mu, lambda)``, as in Lang & Agresti (1994) and Lang (2004):

        log mu <- log mu + t [D^-1 (y - mu) - H M (H'(y - mu) + h)],   M = (H'DH)^-1,

    with ``H = A' D(A mu)^-1 C' U`` and t halved until an l1 exact-penalty merit or the KKT
    residual decreases. Converged when the full step has ``max sqrt(mu) |delta log mu| <= tol``
    and the KKT residual (projected score plus constraint violation, chi-square scale) has
    square root <= tol (both floored at ``100 eps sqrt(n)``).

    Then ``beta = (X'X)^-1 X'(C log(A mu_hat) - offset)`` (least squares, exact at the fit) and
    ``cov(beta) = P J cov(mu_hat) J' P'`` with ``P = (X'X)^-1 X'``, ``J = C D(A mu)^-1 A``, and
    the MPH covariance (Lang 2004, Theorem 4 / eq. for cov(m_hat))

        cov(mu_hat) = D - D H M H' D - sum_k fixed  mu_k mu_k' / n_k.

    Parameters
    ----------
    counts : array_like (c,)
        Cell counts (any shape; flattened in C order).
    C : array_like (r, rA)
        Contrast matrix.
    A : array_like (rA, c)
        Matrix forming the (positive) linear combinations A mu, e.g. margins; non-negative.
    X : array_like (r, p), optional
        Model matrix, full column rank; None (or p = 0) means ``C log(A mu) = offset``.
    sampling : {"poisson", "multinomial", "product-multinomial"}
        Sampling plan. The fixed totals must be compatible (MPH homogeneity, checked).
    strata : array_like (c,), optional
        Stratum label per cell, for product-multinomial sampling only.
    names : sequence of str, optional
        Names of beta's components; default ``beta[1]``, ... .
    offset : array_like (r,), optional
        Known offset in ``C log(A mu) = offset + X beta``.
    tol : float
        Convergence tolerance (see above).
    max_iter : int
        Maximum number of scoring iterations; a ConvergenceWarning is issued at the limit.
    start : array_like (c,), optional
        Positive starting means; default the counts with zeros replaced by 0.5.

    Returns
    -------
    ConstrainedFit
        Estimates, covariances, fitted values, G^2, X^2 (df = q), residuals, tests.

    Raises
    ------
    SpecError
        When a rank or compatibility condition fails; the message names the condition.

    References
    ----------
    Aitchison & Silvey (1958), Ann. Math. Statist. 29; Lang & Agresti (1994), JASA 89;
    Bergsma (1997), PhD thesis, Tilburg; Lang (2004), Ann. Statist. 32, 340-383; Coull & Agresti
    (2003), Sections 1, 3 and 6 (fitting GLLMs with no closed form for mu).
    """
    if not (tol > 0 and math.isfinite(tol)):
        raise SpecError("tol must be a positive number")
    if int(max_iter) < 1:
        raise SpecError("max_iter must be at least 1")
    problem = validate(counts, C, A, X, offset, sampling, strata, names)
    y = problem.y
    if start is None:
        m0 = np.where(y > 0, y, _ZERO_START)
    else:
        m0 = np.array(start, dtype=np.float64).reshape(-1)
        if m0.shape != y.shape or not np.all(np.isfinite(m0)) or np.any(m0 <= 0):
            raise SpecError(f"start must hold {y.shape[0]} positive finite means")
    _check_start(problem, m0)

    q = problem.U.shape[1]
    if q == 0:
        state, info = _saturated(problem, tol, max_iter)
    else:
        state, info = _iterate(problem, np.log(m0), tol, int(max_iter))
    if not info.converged:
        hint = ""
        if q and _jacobian_rank(problem, state.m) < q:
            hint = (
                "; the constraint Jacobian is rank deficient at the last iterate, so the "
                "constraints are redundant near the solution (check the specification)"
            )
        warnings.warn(
            f"constrained ML did not converge: {info.message}{hint}", ConvergenceWarning,
            stacklevel=2,
        )
    return _make_result(problem, state, info)


def _saturated(problem: Problem, tol: float, max_iter: int) -> tuple[_State, ConvergenceInfo]:
    """No constraints (q = 0): mu_hat = y, which must give A y > 0."""
    y = problem.y
    if np.any(problem.A @ y <= 0):
        raise FitError(
            "the model has no constraints (saturated): mu_hat = y, but zero counts make "
            "A mu_hat zero and log(A mu_hat) undefined"
        )
    empty = np.zeros((y.shape[0], 0))
    chol = (np.zeros((0, 0)), False)
    with np.errstate(divide="ignore"):
        xi = np.log(y)
    state = _State(
        xi=xi, m=y.copy(), h=np.zeros(0), H=empty, chol=chol, step=np.zeros_like(y),
        lam=np.zeros(0), merit=0.0,
    )
    info = ConvergenceInfo(
        converged=True, iterations=0, step_norm=0.0, score_norm=0.0, n_halvings=0, tol=tol,
        max_iter=max_iter, message="no constraints: mu_hat = y", history=(),
    )
    return state, info


def _make_result(problem: Problem, state: _State, info: ConvergenceInfo) -> ConstrainedFit:
    y, m, H = problem.y, state.m, state.H
    q = problem.U.shape[1]
    if q:
        mh = m[:, None] * H  # D H
        # cov of residuals y - mu_hat = D H M H' D  (Lang 2004)
        cov_resid = mh @ scipy.linalg.cho_solve(state.chol, mh.T)
        lam = -scipy.linalg.cho_solve(state.chol, H.T @ (y - m) + state.h)
    else:
        cov_resid = np.zeros((y.shape[0], y.shape[0]))
        lam = np.zeros(0)
    cov_mu = np.diag(m) - cov_resid
    if problem.Z is not None:
        totals = problem.Z.T @ y
        zm = problem.Z * m[:, None]
        cov_mu = cov_mu - (zm / totals) @ zm.T
    cov_mu = 0.5 * (cov_mu + cov_mu.T)

    am = problem.A @ m
    eta = problem.C @ np.log(am)
    J = problem.C @ (problem.A / am[:, None])  # d eta / d mu'
    cov_eta = J @ cov_mu @ J.T
    X = problem.X
    p = X.shape[1]
    if p:
        pinv = np.linalg.solve(X.T @ X, X.T)
        beta = pinv @ (eta - problem.offset)
        cov_beta = pinv @ cov_eta @ pinv.T
        cov_beta = 0.5 * (cov_beta + cov_beta.T)
    else:
        beta = np.zeros(0)
        cov_beta = np.zeros((0, 0))

    resid = y - m
    var_resid = np.diag(cov_resid).copy()
    floor = 1e-12 * max(1.0, float(m.max()))
    adjusted = np.where(var_resid > floor, resid / np.sqrt(np.maximum(var_resid, floor)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = y > 0
        g2 = 2.0 * float(np.sum(y[pos] * np.log(y[pos] / m[pos])) - np.sum(y - m))
    pos_m = m > 0  # m = 0 only for zero counts of a saturated model
    x2 = float(np.sum(resid[pos_m] ** 2 / m[pos_m]))
    n_fixed = 0 if problem.Z is None else problem.Z.shape[1]
    loglik = _loglik(y, m, problem.Z)
    return ConstrainedFit(
        params=beta,
        cov=cov_beta,
        names=problem.names,
        counts=y,
        fitted_values=m,
        eta=eta,
        cov_eta=cov_eta,
        cov_fitted=cov_mu,
        lagrange_multipliers=lam,
        g2=max(g2, 0.0),
        x2=x2,
        df=q,
        adjusted_residuals=adjusted,
        pearson_residuals=np.where(pos_m, resid / np.sqrt(np.where(pos_m, m, 1.0)), 0.0),
        loglik=loglik,
        n_params=y.shape[0] - q - n_fixed,
        sampling=problem.sampling,
        strata=problem.strata,
        opt=info,
        refit=fit_constrained,
        C=problem.C,
        A=problem.A,
        X=problem.X,
        offset=problem.offset,
    )

