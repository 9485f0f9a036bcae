"""Local linear Poisson likelihood smoothing of a table of counts.

At every cell ``x0`` of a d-way table with cell scores ``x_c`` (standardised), the fit maximises the
kernel-weighted Poisson log-likelihood of a log-linear model that is linear in the scores,

    l(a, b; x0) = sum_c w_c(x0) [y_c (a + b'(x_c - x0)) - exp(a + b'(x_c - x0))],

and returns ``mu_hat(x0) = exp(a_hat)`` (Simonoff 1996, Section 6.4; Simonoff 1998; Loader 1999,
Chapter 4). All local fits are solved at once by a batched Newton iteration.

Glossary of the local symbols: ``y`` counts flattened in C order (K cells); ``m`` fit points (one
per cell); ``d`` table dimension; ``p = d + 1`` local parameters; ``delta[m, c] = x_c - x_m``;
``w[m, c]`` kernel weights; ``X[m, c] = (1, delta[m, c])`` local design.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.spatial import ConvexHull
from scipy.special import gammaln, xlogy

from gllmm.errors import (
    ConvergenceWarning,
    FitError,
    InfiniteEstimateWarning,
    SpecError,
    TableError,
)
from gllmm.integrate._newton import halving_step
from gllmm.tables._validate import check_numeric, check_real

__all__ = [
    "CRITERIA",
    "KERNELS",
    "LocalLikelihoodFit",
    "SmoothingSelection",
    "local_likelihood",
    "poisson_deviance",
    "standardised_coordinates",
]

FloatArray = NDArray[np.float64]

#: Newton stops when the Newton decrement g'H^+g falls below this times (1 + sum_c w_c y_c).
NEWTON_TOL = 1e-13
#: Relative eigenvalue cut-off of the pseudo-inverse used for rank-deficient local designs.
PINV_RTOL = 1e-12


# --------------------------------------------------------------------------------------------
# kernels (profile functions of u = |distance| / h, with K(0) = 1; constants cancel in the fit)
# --------------------------------------------------------------------------------------------


def _epanechnikov(u: FloatArray) -> FloatArray:
    return np.where(u < 1.0, 1.0 - u**2, 0.0)


def _tricube(u: FloatArray) -> FloatArray:
    return np.where(u < 1.0, (1.0 - np.minimum(u, 1.0) ** 3) ** 3, 0.0)


def _gaussian(u: FloatArray) -> FloatArray:
    return np.exp(-0.5 * u**2)


#: Kernel profiles ``K(u)`` for ``u >= 0``, all scaled to ``K(0) = 1``.
KERNELS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "epanechnikov": _epanechnikov,
    "tricube": _tricube,
    "gaussian": _gaussian,
}


# --------------------------------------------------------------------------------------------
# information criteria on the deviance scale (the saturated log-likelihood is a constant)
# --------------------------------------------------------------------------------------------


def _aicc(deviance: float, df: float, n_obs: int) -> float:
    denominator = n_obs - df - 1.0
    return deviance + 2.0 * df * n_obs / denominator if denominator > 0 else math.inf


def _aicc_hst(deviance: float, df: float, n_obs: int) -> float:
    denominator = n_obs - df - 2.0
    return deviance + 2.0 * n_obs * (df + 1.0) / denominator if denominator > 0 else math.inf


def _aic(deviance: float, df: float, n_obs: int) -> float:
    return deviance + 2.0 * df


#: Smoothing criteria ``f(deviance, df, n_obs)``, ``n_obs`` = number of cells.
#:
#: ``aicc``: ``D + 2 df K / (K - df - 1)`` (Hurvich & Tsai 1989 with ``df`` for the number of
#: parameters; the default). ``aicc_hst``: ``D + 2 K (df + 1) / (K - df - 2)`` (``K`` times the
#: Hurvich, Simonoff & Tsai 1998 criterion, the ``+1`` counting a scale parameter). ``aic``:
#: ``D + 2 df``. Both AICc forms are ``+inf`` when their denominator is not positive.
CRITERIA: dict[str, Callable[[float, float, int], float]] = {
    "aicc": _aicc,
    "aicc_hst": _aicc_hst,
    "aic": _aic,
}


def _criterion(name: str) -> Callable[[float, float, int], float]:
    try:
        return CRITERIA[name]
    except KeyError:
        raise SpecError(f"unknown criterion {name!r}; valid: {sorted(CRITERIA)}") from None


def _kernel(name: str) -> Callable[[FloatArray], FloatArray]:
    try:
        return KERNELS[name]
    except KeyError:
        raise SpecError(f"unknown kernel {name!r}; valid: {sorted(KERNELS)}") from None


def poisson_deviance(counts: ArrayLike, fitted: ArrayLike) -> float:
    """Poisson deviance ``D = 2 sum_c [y_c log(y_c / mu_c) - (y_c - mu_c)]`` (``0 log 0 = 0``).

    The ``-(y - mu)`` terms are kept because a local fit does not reproduce the total count.
    """
    y = np.asarray(counts, dtype=np.float64)
    mu = np.asarray(fitted, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = xlogy(y, y) - xlogy(y, mu) - (y - mu)
    return float(2.0 * terms.sum())


def _poisson_loglik(y: FloatArray, mu: FloatArray) -> float:
    with np.errstate(divide="ignore"):
        return float(np.sum(xlogy(y, mu) - mu - gammaln(y + 1.0)))


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmoothingSelection:
    """Criterion values over a grid of smoothing parameters.

    Attributes
    ----------
    parameter : str
        ``"bandwidth"``, ``"span"`` or ``"lam"``.
    values : ndarray of shape (n_grid,)
        Smoothing parameters tried, in grid order (more smoothing later), refinement points last.
    df, deviance, criterion_values : ndarray of shape (n_grid,)
    criterion : str
        Name in :data:`CRITERIA`.
    best : float
        The minimiser (first one on ties).
    at_boundary : bool
        True when the best grid value is the first or last one with a finite criterion: the
        optimum may lie beyond the grid, or (on the less smooth side) the criterion still falls
        where some local MLE stops existing.
    """

    parameter: str
    values: FloatArray
    df: FloatArray
    deviance: FloatArray
    criterion: str
    criterion_values: FloatArray
    best: float
    at_boundary: bool


class CriteriaMixin:
    """The ``aicc`` shortcut shared by the smoothers' results (each holds ``criteria``)."""

    criteria: dict[str, float]

    @property
    def aicc(self) -> float:
        """``D + 2 df K / (K - df - 1)`` over the cells the fit counts, see :data:`CRITERIA`."""
        return self.criteria["aicc"]


@dataclass(frozen=True)
class LocalLikelihoodFit(CriteriaMixin):
    """Result of :func:`local_likelihood`.

    Attributes
    ----------
    counts, fitted, influence : ndarray, shape of the table
        Observed counts, ``mu_hat`` at each cell, and the influence ``d mu_hat_c / d y_c``.
    coefficients : ndarray of shape (*table_shape, d + 1)
        Local intercept ``a_hat`` (``-inf`` where the window holds no counts) and local slopes per
        standardised score unit.
    finite : ndarray of bool, shape of the table
        Whether the local MLE at the cell is finite (Haberman's condition on its window). Where it
        is not, the cell holds the limit of the local fit along the likelihood's ascent.
    coordinates : ndarray of shape (n_cells, d)
        Standardised cell scores used for the distances.
    df : float
        Effective degrees of freedom, the sum of the influences.
    deviance, loglik : float
        Poisson deviance and full Poisson log-likelihood (with ``-log y!``).
    criteria : dict
        Every criterion of :data:`CRITERIA` at this fit.
    kernel : str
    bandwidth, span : float or None
        Exactly one is set: product-kernel bandwidth (standardised units, ``inf`` allowed) or
        nearest-neighbour span.
    converged : bool
    n_iter : int
        Newton iterations of the slowest local fit.
    selection : SmoothingSelection or None
        Grid search record when the smoothing parameter was chosen by a criterion.
    """

    counts: FloatArray
    fitted: FloatArray
    influence: FloatArray
    coefficients: FloatArray
    finite: NDArray[np.bool_]
    coordinates: FloatArray
    df: float
    deviance: float
    loglik: float
    criteria: dict[str, float]
    kernel: str
    bandwidth: float | None
    span: float | None
    converged: bool
    n_iter: int
    selection: SmoothingSelection | None = field(default=None)

    @property
    def probabilities(self) -> FloatArray:
        """Fitted counts renormalised to sum to one (a local fit need not keep the total)."""
        return self.fitted / self.fitted.sum()

    @property
    def normalised(self) -> FloatArray:
        """Fitted counts rescaled to the observed total, ``n * probabilities``."""
        return self.counts.sum() * self.probabilities


# --------------------------------------------------------------------------------------------
# geometry and weights
# --------------------------------------------------------------------------------------------


def _validate_counts(counts: ArrayLike) -> FloatArray:
    y = check_numeric(counts, "counts", TableError)
    if y.ndim < 1 or y.size == 0:
        raise TableError("counts must be a non-empty array with one axis per variable")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise TableError("counts must be finite and non-negative")
    return y


def standardised_coordinates(
    shape: tuple[int, ...],
    scores: Sequence[ArrayLike] | None = None,
    *,
    standardise: bool = True,
) -> FloatArray:
    """Cell coordinates on the grid of scores, one row per cell in C order.

    Each axis' scores are centred and divided by their population standard deviation over the
    levels (``ddof=0``); on a full grid this equals the standard deviation over the cells.

    Parameters
    ----------
    shape : tuple of int
        Table shape ``(n_1, ..., n_d)``.
    scores : sequence of d array-likes, optional
        Scores per axis; default the category numbers ``1..n_k``.
    standardise : bool
        If False, use the raw scores.

    Returns
    -------
    ndarray of shape (prod(shape), d)
    """
    if scores is None:
        scores = [np.arange(1, n + 1, dtype=np.float64) for n in shape]
    if len(scores) != len(shape):
        raise SpecError(f"need {len(shape)} score vectors, got {len(scores)}")
    axes = []
    for k, (s, n) in enumerate(zip(scores, shape, strict=True)):
        s = np.asarray(s, dtype=np.float64).ravel()
        if s.size != n:
            raise SpecError(f"scores for axis {k} have length {s.size}, table axis has {n}")
        if not np.all(np.isfinite(s)):
            raise SpecError(f"scores for axis {k} must be finite")
        if standardise and n > 1:
            sd = s.std()
            if sd == 0:
                raise SpecError(f"scores for axis {k} are constant")
            s = (s - s.mean()) / sd
        axes.append(s)
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _product_weights(delta: FloatArray, bandwidth: float, kernel: str) -> FloatArray:
    """``w[m, c] = prod_k K(|delta[m, c, k]| / h)``; ``h = inf`` gives all ones."""
    if math.isinf(bandwidth):
        return np.ones(delta.shape[:2])
    return np.prod(_kernel(kernel)(np.abs(delta) / bandwidth), axis=2)


def _nearest_neighbour_weights(delta: FloatArray, span: float, kernel: str) -> FloatArray:
    """Radial weights ``K(||delta|| / h(x0))`` with a nearest-neighbour bandwidth.

    ``h(x0)`` is the distance to the ``q``-th nearest cell (the fit cell included),
    ``q = max(1, floor(span * K))``, for ``span <= 1``; for ``span > 1`` it is the largest
    distance times ``span ** (1 / d)`` (the loess convention, Cleveland & Grosse 1991).
    """
    n_cells, d = delta.shape[1], delta.shape[2]
    distance = np.sqrt(np.sum(delta**2, axis=2))
    ordered = np.sort(distance, axis=1)
    if span <= 1.0:
        q = max(1, int(math.floor(span * n_cells + 1e-9)))
        h = ordered[:, q - 1]
    else:
        h = ordered[:, -1] * span ** (1.0 / d)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(h[:, None] > 0, distance / h[:, None], np.where(distance > 0, np.inf, 0.0))
    return _kernel(kernel)(u)


# --------------------------------------------------------------------------------------------
# batched local Newton
# --------------------------------------------------------------------------------------------


def _pinv_sym(matrices: FloatArray) -> FloatArray:
    """Pseudo-inverse of a stack of symmetric positive semi-definite matrices."""
    values, vectors = np.linalg.eigh(matrices)
    top = np.max(values, axis=-1, keepdims=True)
    keep = values > PINV_RTOL * np.maximum(top, np.finfo(np.float64).tiny)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return np.einsum("...ik,...k,...jk->...ij", vectors, inverse, vectors)


def _local_objective(
    y: FloatArray, design: FloatArray, weights: FloatArray, beta: FloatArray
) -> FloatArray:
    eta = np.einsum("mcp,mp->mc", design, beta)
    with np.errstate(over="ignore", invalid="ignore"):
        value = np.sum(weights * (y * eta - np.exp(eta)), axis=1)
    return np.where(np.isnan(value), -np.inf, value)


def _local_mle_exists(points: FloatArray, positive: NDArray[np.bool_]) -> bool:
    """Whether a weighted Poisson log-linear MLE, linear in the coordinates, is finite.

    Haberman's (1974) condition for a model with design rows ``(1, x_c)`` over the support (every
    cell of positive weight): the MLE of the identifiable parameters exists iff the cells with
    positive counts lie on no proper face of the convex hull of the support, taken within the
    support's affine hull. Every proper face lies in a facet, so it suffices to test the facets
    (Qhull) or, on a line, the two end points. Weights and count values do not enter.

    Parameters
    ----------
    points : ndarray of shape (n_support, d)
        Coordinates of the support cells.
    positive : ndarray of bool, shape (n_support,)
        Which support cells have positive counts.
    """
    if not np.any(positive):
        return False
    centred = points - points.mean(axis=0)
    _, singular, basis = np.linalg.svd(centred, full_matrices=False)
    scale = max(float(singular[0]) if singular.size else 0.0, 1.0)
    rank = int(np.sum(singular > 1e-9 * scale))
    if rank == 0:
        return True
    z = centred @ basis[:rank].T
    tol = 1e-9 * max(float(np.abs(z).max()), 1.0)
    if rank == 1:
        line, inside = z[:, 0], z[positive, 0]
        return not (np.all(inside <= line.min() + tol) or np.all(inside >= line.max() - tol))
    facets = ConvexHull(z).equations  # rows (unit normal, offset); normal'x + offset <= 0 inside
    distance = z[positive] @ facets[:, :-1].T + facets[:, -1]
    return not bool(np.any(np.all(np.abs(distance) <= tol, axis=0)))


@dataclass(frozen=True)
class _LocalSolution:
    coefficients: FloatArray  # (K, p)
    fitted: FloatArray  # (K,)
    influence: FloatArray  # (K,)
    finite: NDArray[np.bool_]  # (K,) local MLE exists
    converged: bool
    n_iter: int


def _solve_local(
    y: FloatArray,
    delta: FloatArray,
    weights: FloatArray,
    *,
    max_iter: int,
    existence_cache: dict[tuple[int, bytes], bool] | None = None,
) -> _LocalSolution:
    """Maximise every local likelihood by Newton's method with step halving.

    A local design that does not identify every slope (e.g. a window holding one row of cells) is
    handled by the pseudo-inverse, which fits the identified sub-model. A window whose weighted
    count ``sum_c w_c y_c`` is zero has ``a_hat = -inf`` (fit 0). A window whose positive cells
    lie on a face of its hull has no finite local MLE (:func:`_local_mle_exists`): the iteration
    then follows the likelihood towards its supremum and stops when the Newton decrement is below
    tolerance, so ``mu_hat(x0)`` approaches its limiting value (0 when ``x0`` is off that face).
    ``existence_cache`` maps (fit point, support) to the existence verdict for this ``y``.
    """
    n_fit, n_cells, d = delta.shape
    design = np.concatenate([np.ones((n_fit, n_cells, 1)), delta], axis=2)
    weighted_count = weights @ y
    empty = weighted_count <= 0.0
    beta = np.zeros((n_fit, d + 1))
    with np.errstate(divide="ignore"):
        beta[:, 0] = np.log(weighted_count / weights.sum(axis=1))
    active = ~empty
    objective = _local_objective(y, design, weights, beta)
    n_iter = 0
    while np.any(active) and n_iter < max_iter:
        n_iter += 1
        idx = np.flatnonzero(active)
        x, w, b = design[idx], weights[idx], beta[idx]
        mu = np.exp(np.einsum("mcp,mp->mc", x, b))
        gradient = np.einsum("mc,mcp->mp", w * (y - mu), x)
        hessian = np.einsum("mc,mcp,mcq->mpq", w * mu, x, x)
        step = np.einsum("mpq,mq->mp", _pinv_sym(hessian), gradient)
        decrement = np.einsum("mp,mp->m", gradient, step)
        finished = decrement <= NEWTON_TOL * (1.0 + weighted_count[idx])
        # step halving keeps every local objective non-decreasing
        old = objective[idx]
        trial, (new,) = halving_step(lambda z, x=x, w=w: (_local_objective(y, x, w, z),), b, step,
                                     old, lambda t: t[:, None], 60)
        # near the optimum the full Newton step is taken even if rounding hides its gain
        improved = (new >= old) | finished
        trial[finished] = b[finished] + step[finished]
        beta[idx[improved]] = trial[improved]
        objective[idx[improved]] = _local_objective(y, x[improved], w[improved], trial[improved])
        # a step that cannot raise the objective means we are at the numerical optimum
        active[idx[finished | ~improved]] = False
    converged = not np.any(active)

    a = np.where(empty, -np.inf, beta[:, 0])
    fitted = np.where(empty, 0.0, np.exp(beta[:, 0]))
    # influence d mu_hat(x0) / d y_0 = w_00 * mu_hat(x0) * e1' (X'WVX)^+ e1; writing
    # V = mu_hat(x0) * diag(exp(b'delta)) removes mu_hat(x0), so it stays finite as a -> -inf.
    with np.errstate(over="ignore"):
        relative_mean = np.exp(
            np.minimum(np.einsum("mcp,mp->mc", design[:, :, 1:], beta[:, 1:]), 700.0)
        )
    scaled_hessian = np.einsum("mc,mcp,mcq->mpq", weights * relative_mean, design, design)
    own_weight = weights[np.arange(n_fit), np.arange(n_fit)]
    influence = own_weight * _pinv_sym(scaled_hessian)[:, 0, 0]
    coefficients = np.column_stack([a, beta[:, 1:]])
    cache = {} if existence_cache is None else existence_cache
    finite = np.empty(n_fit, dtype=bool)
    for m in range(n_fit):
        support = weights[m] > 0.0
        key = (m, support.tobytes())
        if key not in cache:
            cache[key] = _local_mle_exists(delta[m, support], y[support] > 0.0)
        finite[m] = cache[key]
    return _LocalSolution(coefficients, fitted, influence, finite, converged, n_iter)


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------


def _fit_once(
    y: FloatArray,
    coords: FloatArray,
    *,
    kernel: str,
    bandwidth: float | None,
    span: float | None,
    max_iter: int,
    existence_cache: dict[tuple[int, bytes], bool] | None = None,
) -> _LocalSolution:
    delta = coords[None, :, :] - coords[:, None, :]
    if span is not None:
        weights = _nearest_neighbour_weights(delta, span, kernel)
    else:
        assert bandwidth is not None
        weights = _product_weights(delta, bandwidth, kernel)
    return _solve_local(y, delta, weights, max_iter=max_iter, existence_cache=existence_cache)


def _default_bandwidths(coords: FloatArray, n_grid: int) -> FloatArray:
    """Geometric grid from the smallest cell spacing to 20 times the widest score range."""
    spacings = []
    for k in range(coords.shape[1]):
        gaps = np.diff(np.unique(coords[:, k]))
        spacings.append(gaps.min() if gaps.size else 1.0)
    low = float(min(spacings))
    high = 20.0 * float(np.ptp(coords, axis=0).max() or 1.0)
    return np.geomspace(low, high, n_grid)


def _default_spans(n_cells: int, d: int) -> FloatArray:
    """Every distinct neighbour count ``q = d + 2 .. K`` as ``q / K``, then spans up to 10."""
    q = np.arange(min(d + 2, n_cells), n_cells + 1)
    return np.concatenate([q / n_cells, [1.25, 1.5, 2.0, 3.0, 5.0, 10.0]])


def _select(
    run: Callable[[float], _LocalSolution],
    y: FloatArray,
    values: FloatArray,
    *,
    parameter: str,
    criterion: str,
    refine: bool,
    allow_infinite: bool,
) -> SmoothingSelection:
    """Minimise a criterion over ``values``, then optionally between the best one's neighbours."""
    crit = _criterion(criterion)
    n_cells = y.size
    records: list[tuple[float, float, float, float]] = []

    def score(value: float) -> float:
        sol = run(value)
        df = float(sol.influence.sum())
        dev = poisson_deviance(y, sol.fitted)
        admissible = allow_infinite or bool(np.all(sol.finite))
        crit_value = crit(dev, df, n_cells) if admissible else math.inf
        records.append((value, df, dev, crit_value))
        return crit_value

    grid_scores = np.array([score(float(v)) for v in values])
    if not np.any(np.isfinite(grid_scores)):
        raise FitError(
            f"criterion {criterion!r} is infinite over the whole {parameter} grid "
            "(every candidate leaves some local MLE infinite or uses too many df)"
        )
    best_index = int(np.argmin(grid_scores))
    admissible = np.flatnonzero(np.isfinite(grid_scores))
    if refine and 0 < best_index < values.size - 1 and np.isfinite(values[best_index + 1]):
        low, high = values[best_index - 1], values[best_index + 1]
        # Brent needs finite values: an inadmissible point scores above every admissible one
        ceiling = float(np.max(grid_scores[admissible])) + 1.0
        minimize_scalar(
            lambda log_value: min(score(float(np.exp(log_value))), ceiling),
            bounds=(float(np.log(low)), float(np.log(high))),
            method="bounded",
            options={"xatol": 1e-4},
        )
    record = np.array(records)
    return SmoothingSelection(
        parameter=parameter,
        values=record[:, 0],
        df=record[:, 1],
        deviance=record[:, 2],
        criterion=criterion,
        criterion_values=record[:, 3],
        best=float(record[int(np.argmin(record[:, 3])), 0]),
        at_boundary=best_index in (admissible[0], admissible[-1]),
    )


def local_likelihood(
    counts: ArrayLike,
    scores: Sequence[ArrayLike] | None = None,
    *,
    bandwidth: float | str | None = None,
    span: float | str | None = None,
    kernel: str = "tricube",
    criterion: str = "aicc",
    grid: ArrayLike | None = None,
    refine: bool = True,
    allow_infinite: bool = False,
    standardise: bool = True,
    max_iter: int = 200,
) -> LocalLikelihoodFit:
    r"""Local linear Poisson likelihood smoother of a d-way table of counts.

    At each cell ``x0`` it maximises

    .. math::
        \ell(a, b; x_0) = \sum_c w_c(x_0)\,[y_c (a + b^\top(x_c - x_0)) - e^{a + b^\top(x_c - x_0)}]

    and returns :math:`\hat\mu(x_0) = e^{\hat a}`. Weights are either a product kernel
    ``w_c = prod_k K(|x_ck - x0_k| / h)`` with a fixed bandwidth ``h`` on standardised scores, or a
    radial kernel ``K(||x_c - x0|| / h(x0))`` with ``h(x0)`` the distance to the
    ``floor(span * K)``-th nearest cell. The effective degrees of freedom are the trace of the
    hat matrix of the linearised smoother (Loader 1999, Section 4.4):

    .. math::
        \mathrm{infl}(x_0) = w_{x_0}(x_0)\,\hat\mu(x_0)\,e_1^\top (X^\top W V X)^{-1} e_1
        = \partial\hat\mu(x_0) / \partial y(x_0),
        \qquad \mathrm{df} = \sum_{x_0} \mathrm{infl}(x_0),

    with ``V = diag(exp(a_hat + b_hat'(x_c - x0)))`` the local fitted means. A smoothing parameter
    given as a string (``"aicc"`` or any key of :data:`CRITERIA`) is chosen by minimising that
    criterion, by default ``AICc = D + 2 df K / (K - df - 1)`` with ``D`` the Poisson deviance and
    ``K`` the number of cells, over the candidates at which every local MLE is finite.

    Parameters
    ----------
    counts : array-like of shape (n_1, ..., n_d)
        Non-negative counts on a full grid.
    scores : sequence of d array-likes, optional
        Scores per axis (default ``1..n_k``); standardised unless ``standardise=False``.
    bandwidth : float, str or None
        Product-kernel bandwidth in standardised units (``inf`` = no localisation: the Poisson
        log-linear fit with linear scores), or a criterion name to choose it.
    span : float, str or None
        Nearest-neighbour span (fraction of cells; values above 1 widen past the furthest cell),
        or a criterion name. Give ``bandwidth`` or ``span``, not both; with neither, the span is
        chosen by ``criterion`` (the loess-like default: every window holds the same number of
        cells, so sparse corners still get data).
    kernel : {"tricube", "epanechnikov", "gaussian"}
        Kernel profile, scaled so that ``K(0) = 1``. Default tricube ``(1 - u^3)^3_+`` (loess).
    criterion : str
        Criterion used when a parameter is ``None``.
    grid : array-like, optional
        Candidate bandwidths or spans. Default: 40 bandwidths from the smallest score spacing to
        20 times the widest range, plus ``inf``; or every span ``q / K``, ``q = d+2..K``, plus
        1.25-10.
    refine : bool
        For a chosen bandwidth, refine the best grid value by a bounded scalar search on
        ``log h`` between its grid neighbours. (A span below 1 acts through ``q`` only, so the
        default span grid is already exhaustive there and is not refined.)
    allow_infinite : bool
        Let the selection consider candidates at which some local MLE is infinite (the fit there
        is the limit of the likelihood's supremum, often 0). Off by default: those fits are
        degenerate and the criterion's derivation does not cover them.
    standardise : bool
        Standardise the scores (centre, divide by the population SD over the levels).
    max_iter : int
        Newton iterations per local fit.

    Returns
    -------
    LocalLikelihoodFit

    Raises
    ------
    TableError
        Invalid counts.
    SpecError
        Bad scores, kernel, criterion or smoothing arguments.
    FitError
        No candidate of the grid gives a finite criterion.

    Warns
    -----
    ConvergenceWarning
        Some local fit reached ``max_iter``.
    InfiniteEstimateWarning
        Some local MLE is infinite at the bandwidth or span used.

    References
    ----------
    Simonoff, J. S. (1996). Smoothing Methods in Statistics, Section 6.4. Springer.
    Simonoff, J. S. (1998). Three sides of smoothing. Int. Stat. Review 66, 137-156.
    Loader, C. (1999). Local Regression and Likelihood, Chapter 4. Springer.
    Haberman, S. J. (1974). The Analysis of Frequency Data, Theorem 2.3. Chicago.
    Hurvich, C. M. and Tsai, C.-L. (1989). Biometrika 76, 297-307.
    Hurvich, C. M., Simonoff, J. S. and Tsai, C.-L. (1998). JRSS B 60, 271-293.
    Coull, B. A. and Agresti, A. (2003), Section 5.1 and Table 2 column (c).
    """
    table = _validate_counts(counts)
    coords = standardised_coordinates(table.shape, scores, standardise=standardise)
    y = table.ravel()
    n_cells, d = coords.shape
    if bandwidth is not None and span is not None:
        raise SpecError("give either bandwidth or span, not both")
    if bandwidth is None and span is None:
        span = criterion
    _kernel(kernel)
    by_span = span is not None
    parameter = "span" if by_span else "bandwidth"
    choice = span if by_span else bandwidth
    existence_cache: dict[tuple[int, bytes], bool] = {}

    def run(value: float) -> _LocalSolution:
        return _fit_once(
            y,
            coords,
            kernel=kernel,
            bandwidth=None if by_span else value,
            span=value if by_span else None,
            max_iter=max_iter,
            existence_cache=existence_cache,
        )

    selection: SmoothingSelection | None = None
    if isinstance(choice, str):
        if grid is None:
            values = (
                _default_spans(n_cells, d)
                if by_span
                else np.append(_default_bandwidths(coords, 40), np.inf)
            )
        else:
            values = np.sort(np.asarray(grid, dtype=np.float64).ravel())
        if values.size == 0 or not np.all(values > 0):
            raise SpecError(f"the {parameter} grid must hold positive values")
        selection = _select(
            run,
            y,
            values,
            parameter=parameter,
            criterion=choice,
            refine=refine and not by_span,
            allow_infinite=allow_infinite,
        )
        value = selection.best
    else:
        assert choice is not None
        value = check_real(choice, parameter, hint=f" or a criterion of {sorted(CRITERIA)}")
        if not value > 0:
            raise SpecError(f"{parameter} must be positive, got {value}")

    solution = run(value)
    if not solution.converged:
        warnings.warn(
            f"some local fits did not converge in {max_iter} Newton iterations",
            ConvergenceWarning,
            stacklevel=2,
        )
    if not np.all(solution.finite):
        warnings.warn(
            f"{int(np.sum(~solution.finite))} of {n_cells} local MLEs are infinite at "
            f"{parameter} {value:.4g}; those cells hold the limit of the local fit",
            InfiniteEstimateWarning,
            stacklevel=2,
        )
    df = float(solution.influence.sum())
    deviance = poisson_deviance(y, solution.fitted)
    return LocalLikelihoodFit(
        counts=table,
        fitted=solution.fitted.reshape(table.shape),
        influence=solution.influence.reshape(table.shape),
        coefficients=solution.coefficients.reshape(*table.shape, d + 1),
        finite=solution.finite.reshape(table.shape),
        coordinates=coords,
        df=df,
        deviance=deviance,
        loglik=_poisson_loglik(y, solution.fitted),
        criteria={name: f(deviance, df, n_cells) for name, f in CRITERIA.items()},
        kernel=kernel,
        bandwidth=None if by_span else value,
        span=value if by_span else None,
        converged=solution.converged,
        n_iter=solution.n_iter,
        selection=selection,
    )
