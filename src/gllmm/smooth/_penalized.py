"""Penalised-likelihood smoothing of a two-way table towards independence (Simonoff 1983).

Maximises the multinomial log-likelihood minus a roughness penalty on the local log odds ratios,
eq. (2.2) of Coull & Agresti (2003):

    L(p) - lambda * sum_{i<I, j<J} (log theta_ij)^2,
    log theta_ij = log p_ij - log p_i,j+1 - log p_i+1,j + log p_i+1,j+1.

Glossary of the local symbols: ``eta = log mu`` (flattened I x J table, C order), ``mu = exp(eta)``,
``C`` the ((I-1)(J-1)) x IJ contrast matrix with ``C eta = log theta``, ``P = C'C``, ``lam`` the
smoothing parameter, ``K = IJ`` cells, ``n`` the total count.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize_scalar

from gllmm.errors import ConvergenceWarning, FitError, SpecError, TableError
from gllmm.integrate._newton import State, newton
from gllmm.spec import local_odds_ratios
from gllmm.tables._validate import check_numeric, check_real

from ._local import CRITERIA, CriteriaMixin, FloatArray, SmoothingSelection, poisson_deviance

__all__ = [
    "PenalizedFit",
    "penalized_objective",
    "penalized_smoother",
]

#: Newton stops when the Newton decrement g'H^{-1}g falls below this times (1 + n).
NEWTON_TOL = 1e-20
#: A decrement below this times (1 + n) counts as converged when step halving finds no ascent.
ROUNDING_TOL = 1e-12


def penalized_objective(
    log_mu: ArrayLike, counts: ArrayLike, lam: float
) -> tuple[float, FloatArray, FloatArray]:
    r"""Penalised Poisson log-likelihood in ``eta = log mu``, its gradient and Hessian.

    .. math::
        Q(\eta) = \sum_c [y_c \eta_c - e^{\eta_c}] - \lambda\, \eta^\top C^\top C \eta,
        \quad \nabla Q = y - \mu - 2\lambda C^\top C \eta,
        \quad \nabla^2 Q = -\operatorname{diag}(\mu) - 2\lambda C^\top C.

    The penalty is invariant to ``eta + const`` (``C 1 = 0``), so at the maximum
    ``sum mu = n`` and ``p = mu / n`` maximises the multinomial form of eq. (2.2): for
    ``eta = log(n p)`` with ``sum p = 1``,
    ``Q = sum y log p - lam sum (log theta)^2 + n log n - n``.

    Parameters
    ----------
    log_mu : array-like of shape (I, J)
    counts : array-like of shape (I, J)
    lam : float
        Non-negative smoothing parameter.

    Returns
    -------
    value : float
    gradient : ndarray of shape (I * J,)
    hessian : ndarray of shape (I * J, I * J)
    """
    eta = np.asarray(log_mu, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    if eta.ndim != 2 or eta.shape != y.shape:
        raise SpecError("log_mu and counts must be two-way arrays of the same shape")
    contrasts = local_odds_ratios(y.shape, sparse=False).C
    e, yv = eta.ravel(), y.ravel()
    mu = np.exp(e)
    log_theta = contrasts @ e
    value = float(yv @ e - mu.sum() - lam * log_theta @ log_theta)
    gradient = yv - mu - 2.0 * lam * (contrasts.T @ log_theta)
    hessian = -np.diag(mu) - 2.0 * lam * (contrasts.T @ contrasts)
    return value, gradient, hessian


@dataclass(frozen=True)
class PenalizedFit(CriteriaMixin):
    """Result of :func:`penalized_smoother`.

    Attributes
    ----------
    counts : ndarray of shape (I, J)
    probabilities : ndarray of shape (I, J)
        Smoothed cell probabilities, summing to one.
    fitted : ndarray of shape (I, J)
        ``n * probabilities``.
    log_odds_ratios : ndarray of shape (I - 1, J - 1)
        Smoothed local log odds ratios (``nan`` where a cell of the 2 x 2 block is 0).
    lam : float
        Smoothing parameter used (``0`` sample proportions, ``inf`` independence).
    df : float
        ``tr(V (V + 2 lam P)^{-1})``, ``V = diag(mu)``: the trace of ``d mu_hat / d y``.
    deviance : float
        Poisson deviance, equal to the multinomial ``G^2`` since ``sum mu = n``.
    criteria : dict
        Every criterion of :data:`gllmm.smooth._local.CRITERIA` at this fit.
    converged : bool
    n_iter : int
    selection : SmoothingSelection or None
        Record of the search when ``lam`` was chosen by a criterion.
    """

    counts: FloatArray
    probabilities: FloatArray
    fitted: FloatArray
    log_odds_ratios: FloatArray
    lam: float
    df: float
    deviance: float
    criteria: dict[str, float]
    converged: bool
    n_iter: int
    selection: SmoothingSelection | None = field(default=None)


@dataclass(frozen=True)
class _Solution:
    fitted: FloatArray  # (I, J) on the reduced table
    df: float
    converged: bool
    n_iter: int


def _independence(y: FloatArray) -> FloatArray:
    return np.outer(y.sum(axis=1), y.sum(axis=0)) / y.sum()


def _solve(y: FloatArray, lam: float, *, max_iter: int) -> _Solution:
    """Newton's method with step halving on ``Q(eta)``; ``y`` has positive margins."""
    n_rows, n_cols = y.shape
    independence = _independence(y)
    if math.isinf(lam):
        return _Solution(independence, float(n_rows + n_cols - 1), True, 0)
    if lam == 0.0:
        # the saturated fit mu = y: d mu / d y is the identity, zero cells included
        return _Solution(y.copy(), float(y.size), True, 0)
    contrasts = local_odds_ratios((n_rows, n_cols), sparse=False).C
    penalty = contrasts.T @ contrasts
    yv = y.ravel()
    total = float(yv.sum())

    def objective(eta: FloatArray) -> float:
        with np.errstate(over="ignore"):
            log_theta = contrasts @ eta
            value = yv @ eta - np.exp(eta).sum() - lam * log_theta @ log_theta
        return float(value) if np.isfinite(value) else -math.inf

    def evaluate(eta: FloatArray, order: int) -> State:
        value = objective(eta)
        if order < 2:
            return State(eta, value, order)
        mu = np.exp(eta)
        # C'(C eta) rather than P eta keeps the large-lam term inside range(P) under rounding
        gradient = yv - mu - 2.0 * lam * (contrasts.T @ (contrasts @ eta))
        return State(eta, value, order, gradient, mu)

    def direction(state: State) -> FloatArray:
        return cho_solve(cho_factor(np.diag(state.extra) + 2.0 * lam * penalty), state.grad)

    # start at the independence fit, which satisfies C eta = 0: the lam = inf solution
    res = newton(evaluate, direction, np.log(independence.ravel()),
                 tol=NEWTON_TOL * (1.0 + total), max_iter=max_iter, max_trials=35, armijo=False)
    eta = res.state.params
    # no ascent left along the Newton direction: rounding level reached
    converged = res.converged or (res.message == "line search failed"
                                  and res.decrement <= ROUNDING_TOL * (1.0 + total))
    n_iter = res.n_iter
    mu = np.exp(eta)
    # d mu / d y = V (V + 2 lam P)^{-1}: its trace is the effective df
    hat = cho_solve(cho_factor(np.diag(mu) + 2.0 * lam * penalty), np.diag(mu)).T
    return _Solution(mu.reshape(y.shape), float(np.trace(hat)), converged, n_iter)


def _lam_grid() -> FloatArray:
    return np.concatenate([[0.0], np.logspace(-4.0, 6.0, 41), [np.inf]])


def penalized_smoother(
    counts: ArrayLike,
    lam: float | str | None = None,
    *,
    criterion: str = "aicc",
    grid: ArrayLike | None = None,
    refine: bool = True,
    max_iter: int = 100,
) -> PenalizedFit:
    r"""Penalised-likelihood smoother of a two-way table, eq. (2.2) (Simonoff 1983).

    Maximises, over cell probabilities ``p``,

    .. math::
        \sum_{ij} y_{ij} \log p_{ij} - \lambda \sum_{i<I,\,j<J} (\log\theta_{ij})^2,
        \qquad \log\theta_{ij} = \log\frac{p_{ij}\,p_{i+1,j+1}}{p_{i,j+1}\,p_{i+1,j}},

    by Newton's method on ``eta = log mu`` with the exact gradient and Hessian of
    :func:`penalized_objective` (the penalty is the quadratic form ``eta' C'C eta``), started at
    the independence fit. ``lam = 0`` returns the sample proportions (zero cells stay 0: the
    maximum is on the boundary); ``lam = inf`` returns the independence fit
    ``y_i+ y_+j / n^2``. For ``0 < lam < inf`` every cell in a row and column with positive
    totals gets a positive probability, zero cells included. Rows or columns with a zero total
    are fitted as 0 (as under independence: there the likelihood is maximised at the boundary
    and the penalty does not see a common row or column shift) and left out of ``K``.

    A ``lam`` given as a string is chosen by minimising that criterion over a grid
    (``0``, ``10^-4 .. 10^6`` in 41 steps, ``inf``), refined between the best point's neighbours
    by a bounded search on ``log lam``. The default ``"aicc"`` is
    ``D + 2 df K / (K - df - 1)`` with ``D`` the deviance (``G^2``), ``K`` the number of cells
    fitted and ``df = tr(V (V + 2 lam C'C)^{-1})``, ``V = diag(mu_hat)``, the trace of the hat
    matrix ``d mu_hat / d y`` of the penalised fit.

    Parameters
    ----------
    counts : array-like of shape (I, J)
        Non-negative counts, multinomial given ``n``.
    lam : float, str or None
        Smoothing parameter ``>= 0`` (``inf`` allowed), or a criterion name; ``None`` means
        ``criterion``.
    criterion : str
        Key of :data:`gllmm.smooth._local.CRITERIA` used when ``lam`` is ``None``.
    grid : array-like, optional
        Candidate values of ``lam`` instead of the default grid.
    refine : bool
        Refine the best grid value by a bounded search between its neighbours.
    max_iter : int
        Newton iterations.

    Returns
    -------
    PenalizedFit

    Raises
    ------
    TableError
        Invalid counts or a zero total.
    SpecError
        Not a two-way table of at least 2 x 2 positive margins, or a bad ``lam``.
    FitError
        No grid value gives a finite criterion.

    Warns
    -----
    ConvergenceWarning
        Newton reached ``max_iter``.

    References
    ----------
    Simonoff, J. S. (1983). A penalty function approach to smoothing large sparse contingency
    tables. Ann. Statist. 11, 208-218.
    Coull, B. A. and Agresti, A. (2003), Section 2.1, eq. (2.2).
    Hurvich, C. M. and Tsai, C.-L. (1989). Biometrika 76, 297-307.
    """
    y_full = check_numeric(counts, "counts", TableError)
    if y_full.ndim != 2:
        raise SpecError(f"penalized_smoother needs a two-way table, got {y_full.ndim} axes")
    if not np.all(np.isfinite(y_full)) or np.any(y_full < 0):
        raise TableError("counts must be finite and non-negative")
    if y_full.sum() <= 0:
        raise TableError("the table is empty (zero total)")
    rows = y_full.sum(axis=1) > 0
    cols = y_full.sum(axis=0) > 0
    y = y_full[np.ix_(rows, cols)]
    if min(y.shape) < 2:
        raise SpecError("need at least two rows and two columns with positive totals")
    n_cells = y.size
    if lam is None:
        lam = criterion

    selection: SmoothingSelection | None = None
    if isinstance(lam, str):
        crit = CRITERIA.get(lam)
        if crit is None:
            raise SpecError(f"unknown criterion {lam!r}; valid: {sorted(CRITERIA)}")
        values = _lam_grid() if grid is None else np.sort(np.asarray(grid, float).ravel())
        if values.size == 0 or not np.all(values >= 0):
            raise SpecError("the lam grid must hold non-negative values")
        records: list[tuple[float, float, float, float]] = []

        def score(value: float) -> float:
            sol = _solve(y, value, max_iter=max_iter)
            dev = poisson_deviance(y, sol.fitted)
            crit_value = crit(dev, sol.df, n_cells)
            records.append((value, sol.df, dev, crit_value))
            return crit_value

        grid_scores = np.array([score(float(v)) for v in values])
        admissible = np.flatnonzero(np.isfinite(grid_scores))
        if admissible.size == 0:
            raise FitError(f"criterion {lam!r} is infinite over the whole lam grid")
        best_index = int(np.argmin(grid_scores))
        if (
            refine
            and 0 < best_index < values.size - 1
            and values[best_index - 1] > 0
            and np.isfinite(values[best_index + 1])
        ):
            ceiling = float(np.max(grid_scores[admissible])) + 1.0
            bounds = (float(np.log(values[best_index - 1])), float(np.log(values[best_index + 1])))
            minimize_scalar(
                lambda log_lam: min(score(float(np.exp(log_lam))), ceiling),
                bounds=bounds,
                method="bounded",
                options={"xatol": 1e-4},
            )
        record = np.array(records)
        best = float(record[int(np.argmin(record[:, 3])), 0])
        selection = SmoothingSelection(
            parameter="lam",
            values=record[:, 0],
            df=record[:, 1],
            deviance=record[:, 2],
            criterion=lam,
            criterion_values=record[:, 3],
            best=best,
            at_boundary=best_index in (admissible[0], admissible[-1]),
        )
        value = best
    else:
        value = check_real(lam, "lam", hint=f" or a criterion of {sorted(CRITERIA)}")
        if not value >= 0:
            raise SpecError(f"lam must be non-negative, got {lam}")

    solution = _solve(y, value, max_iter=max_iter)
    if not solution.converged:
        warnings.warn(
            f"penalised Newton did not converge in {max_iter} iterations (lam = {value:.4g})",
            ConvergenceWarning,
            stacklevel=2,
        )
    fitted = np.zeros_like(y_full)
    fitted[np.ix_(rows, cols)] = solution.fitted
    total = y_full.sum()
    fitted *= total / fitted.sum()  # removes the last rounding; sum mu = n at the optimum
    with np.errstate(divide="ignore", invalid="ignore"):
        log_fitted = np.log(fitted)
        # sparse C: a -inf log mean reaches only its own odds ratios (never 0 * inf)
        log_or = local_odds_ratios(fitted.shape, sparse=True).C @ log_fitted.ravel()
    log_or = log_or.reshape(fitted.shape[0] - 1, fitted.shape[1] - 1)
    log_or = np.where(np.isfinite(log_or), log_or, np.nan)
    deviance = poisson_deviance(y, solution.fitted)
    return PenalizedFit(
        counts=y_full,
        probabilities=fitted / total,
        fitted=fitted,
        log_odds_ratios=log_or,
        lam=value,
        df=solution.df,
        deviance=deviance,
        criteria={name: f(deviance, solution.df, n_cells) for name, f in CRITERIA.items()},
        converged=solution.converged,
        n_iter=solution.n_iter,
        selection=selection,
    )
