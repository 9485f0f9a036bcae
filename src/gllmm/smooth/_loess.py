"""A GAM with one loess term, fitted by local scoring: the paper's Table 2 column (c) comparator.

The model is ``g(mu_c) = f(x_c)`` on the cells of a one- or two-way table, ``f`` a loess
surface in the (standardised) scores, with a Poisson (log link) or binomial (logit link)
response. It is fitted by local scoring (Hastie & Tibshirani 1990, Section 6.2): IRLS in which
the weighted least-squares step is replaced by backfitting of the linear part ``X beta``
(intercept and the scores, plus their squares and products for degree 2) and the loess
smoother of the partial residuals with prior weights equal to the IRLS weights, as in the S
``gam(y ~ lo(x1, x2, span, degree), family = poisson)`` of Chambers & Hastie (1992) and R's
``gam`` package. At convergence the working response ``z`` and weights ``W`` satisfy

    eta = P_W z + (I - P_W) L_W z,

``P_W`` the weighted projection on the linear part and ``L_W`` the loess operator with prior
weights ``W``. The equivalent degrees of freedom are ``rank(X) + sum_c (L_cc - H_cc)`` with
``H`` the hat matrix of the linear part: the trace of the operator (Hastie & Tibshirani 1990,
Section 3.5). The span is chosen by a criterion of :data:`gllmm.smooth.CRITERIA` (AICc by
default) over every distinct loess neighbourhood of the table.

Section 5.1 of the reference note decodes the paper's column (c) as this fit with degree 1 on
the MBA table, both scores standardised, span 0.43-0.45 chosen by AICc.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, gammaln, xlogy

from gllmm.errors import ConvergenceWarning, FitError, SpecError, TableError
from gllmm.tables._validate import check_counts, check_real

from ._local import (
    CRITERIA,
    CriteriaMixin,
    SmoothingSelection,
    _criterion,
    standardised_coordinates,
)
from ._loess_kernels import loess_operator

__all__ = ["LoessGamFit", "loess_gam", "loess_smoother"]

FloatArray = NDArray[np.float64]

#: Default of the k-d tree's ``cell``: a cell holding more than ``floor(n * span * cell)``
#: points is split (R's ``gam``, ``lo()``: ``span / 5``).
CELL = 0.2
#: Prior weight used in the linear projection for cells of zero IRLS weight (as ``gam``).
ZERO_WEIGHT = 1e-10


def default_nvmax(n: int) -> int:
    """Vertex budget of the k-d tree as R's ``gam`` sets it: ``200 + 300 (1 - 1/log(max(n -
    200, 3))))``, rounded up."""
    return int(math.ceil(200.0 + 300.0 * (1.0 - 1.0 / math.log(max(n - 200.0, 3.0)))))


def _trimmed_scale(column: FloatArray) -> float:
    """Standard deviation of the 10% trimmed column (Cleveland & Grosse 1991 normalisation)."""
    ordered = np.sort(column)
    cut = int(math.floor(0.1 * ordered.size))
    kept = ordered[cut: ordered.size - cut]
    return float(np.std(kept, ddof=1)) if kept.size > 1 else 1.0


def loess_smoother(
    x: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    span: float = 0.75,
    degree: int = 1,
    surface: str = "interpolate",
    normalize: bool = False,
    cell: float = CELL,
    nvmax: int | None = None,
) -> tuple[FloatArray, FloatArray]:
    r"""The loess operator ``L`` (``y_hat = L y``) at the points ``x`` and its trace diagonal.

    Local regression of degree 1 or 2 (Cleveland & Grosse 1991): at ``x0`` it minimises

    .. math::
        \sum_i w_i\,T(\lVert x_i - x_0\rVert / \rho(x_0))\,(y_i - P(x_i - x_0))^2,
        \qquad T(u) = (1 - u^3)^3_+,

    ``rho(x0)`` the distance to the ``floor(n * span)``-th nearest point (times
    ``span^(1/2)`` for ``span > 1``), ``w`` prior weights. ``surface="direct"`` fits at every
    point; ``"interpolate"`` fits at the vertices of a k-d tree and interpolates (cubic
    Hermite, blended in two dimensions), as the S / dloess code and R's ``gam::lo`` do.

    Parameters
    ----------
    x : array-like of shape (n,) or (n, d), d <= 2 for interpolation
    weights : array-like of shape (n,), optional
        Prior weights (default ones).
    span : float
        Neighbourhood fraction; above 1 every point is in every neighbourhood.
    degree : {1, 2}
    surface : {"interpolate", "direct"}
    normalize : bool
        Divide each coordinate by its 10% trimmed standard deviation first.
    cell : float
        A k-d tree cell with more than ``floor(n * span * cell)`` points is split.
    nvmax : int, optional
        Vertex budget (default :func:`default_nvmax`).

    Returns
    -------
    L : ndarray of shape (n, n)
    diagonal : ndarray of shape (n,)
        The diagonal dloess sums for the trace (``diag(L)`` except for tied points on the far
        side of a split).
    """
    xt, rw = _points(x, weights, normalize)
    smoother, diagonal, ok = _operator(xt, rw, span, degree, surface, cell, nvmax)
    if not ok:
        raise FitError(f"some loess neighbourhood at span {span:g} has no positive weight; "
                       "use a larger span or positive weights")
    return smoother, diagonal


def _points(x: ArrayLike, weights: ArrayLike | None,
            normalize: bool) -> tuple[FloatArray, FloatArray]:
    points = np.asarray(x, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[0] == 0 or not np.all(np.isfinite(points)):
        raise SpecError("x must be a finite (n,) or (n, d) array")
    if normalize:
        points = points / np.array([_trimmed_scale(c) for c in points.T])
    rw = np.ones(points.shape[0]) if weights is None else np.asarray(weights, np.float64)
    if rw.shape != (points.shape[0],) or np.any(rw < 0) or not np.all(np.isfinite(rw)):
        raise SpecError("weights must be finite, non-negative, one per point")
    return np.ascontiguousarray(points.T), rw


def _operator(xt: FloatArray, rw: FloatArray, span: float, degree: int, surface: str,
              cell: float, nvmax: int | None) -> tuple[FloatArray, FloatArray, bool]:
    d, n = xt.shape
    if degree not in (1, 2):
        raise SpecError(f"degree must be 1 or 2, got {degree}")
    if surface not in ("interpolate", "direct"):
        raise SpecError(f"surface must be 'interpolate' or 'direct', got {surface!r}")
    if surface == "interpolate" and d > 2:
        raise SpecError("the interpolated surface is implemented for 1 or 2 dimensions; "
                        "use surface='direct'")
    if not (span > 0 and math.isfinite(span)):
        raise SpecError(f"span must be positive, got {span}")
    n_local = 1 + d + (d * (d + 1) // 2 if degree == 2 else 0)
    nf = min(n, int(math.floor(n * span)))
    if nf < n_local + 1:
        raise SpecError(f"span {span:g} puts {nf} of {n} points in a neighbourhood; a local "
                        f"fit of degree {degree} needs at least {n_local + 1}")
    budget = default_nvmax(n) if nvmax is None else int(nvmax)
    smoother, diagonal, ok, _ = loess_operator(xt, rw, float(span), int(degree),
                                               surface == "interpolate", float(cell), budget)
    return smoother, diagonal, bool(ok)


# --------------------------------------------------------------------------------------------
# families: (link inverse, d mu / d eta, variance, deviance, starting mean)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    name: str

    def mean(self, eta: FloatArray) -> FloatArray:
        return np.exp(eta) if self.name == "poisson" else expit(eta)

    def mu_eta(self, mu: FloatArray) -> FloatArray:
        return mu if self.name == "poisson" else mu * (1.0 - mu)

    def variance(self, mu: FloatArray) -> FloatArray:
        return mu if self.name == "poisson" else mu * (1.0 - mu)

    def link(self, mu: FloatArray) -> FloatArray:
        return np.log(mu) if self.name == "poisson" else np.log(mu / (1.0 - mu))

    def start(self, y: FloatArray, prior: FloatArray) -> FloatArray:
        return y + 0.1 if self.name == "poisson" else (prior * y + 0.5) / (prior + 1.0)

    def deviance(self, y: FloatArray, mu: FloatArray, prior: FloatArray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "poisson":
                terms = xlogy(y, y) - xlogy(y, mu) - (y - mu)
            else:
                terms = (xlogy(y, y) - xlogy(y, mu) + xlogy(1 - y, 1 - y)
                         - xlogy(1 - y, 1 - mu))
        return float(2.0 * np.sum(prior * terms))

    def loglik(self, y: FloatArray, mu: FloatArray, prior: FloatArray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "poisson":
                return float(np.sum(xlogy(y, mu) - mu - gammaln(y + 1.0)))
            s = prior * y
            return float(np.sum(gammaln(prior + 1) - gammaln(s + 1) - gammaln(prior - s + 1)
                                + xlogy(s, mu) + xlogy(prior - s, 1 - mu)))


FAMILIES = ("poisson", "binomial")


# --------------------------------------------------------------------------------------------
# local scoring
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Solution:
    mu: FloatArray
    eta: FloatArray
    influence: FloatArray  # per-cell shares of the df: L_cc - H_cc (+ the linear rank spread)
    df: float
    nl_df: float
    deviance: float
    converged: bool
    n_iter: int
    ok: bool


def _linear_part(coords: FloatArray, degree: int) -> FloatArray:
    """Intercept, the coordinates and (degree 2) their squares and products (``gam::polylo``)."""
    columns = [np.ones(coords.shape[0])] + list(coords.T)
    if degree == 2:
        d = coords.shape[1]
        columns += [coords[:, j] * coords[:, k] for j in range(d) for k in range(j, d)]
    return np.column_stack(columns)


def _projector(design: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray, int]:
    """Weighted projection ``P_W = X (X'WX)^+ X'W`` and its (symmetrised) diagonal, rank."""
    root = np.sqrt(w)
    q, r = np.linalg.qr(design * root[:, None])
    keep = np.abs(np.diag(r)) > 1e-7 * max(np.abs(np.diag(r)).max(), 1e-300)
    q = q[:, keep]
    projector = (q * (1.0 / root)[:, None]) @ (q * root[:, None]).T
    return projector, np.sum(q**2, axis=1), int(keep.sum())


def _local_scoring(y: FloatArray, prior: FloatArray, xt: FloatArray, coords: FloatArray,
                   family: _Family, *, span: float, degree: int, surface: str, cell: float,
                   nvmax: int | None, epsilon: float, bf_epsilon: float, maxit: int,
                   bf_maxit: int) -> _Solution:
    """``gam.fit`` + ``lo.wam``: IRLS around backfitting of the linear part and loess."""
    design = _linear_part(coords, degree)
    mu = family.start(y, prior)
    eta = family.link(mu)
    new_dev = family.deviance(y, mu, prior)
    smooth = np.zeros_like(y)
    converged, ok = False, True
    diagonal = hat = np.zeros_like(y)
    rank, n_iter = design.shape[1], 0
    while n_iter < maxit:
        n_iter += 1
        mu_eta = family.mu_eta(mu)
        good = (prior > 0) & (mu_eta != 0)
        z = eta.copy()
        z[good] += (y - mu)[good] / mu_eta[good]
        w = np.where(good, prior * mu_eta**2 / np.where(good, family.variance(mu), 1.0), 0.0)
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(w))):
            ok = False  # diverged (a fitted mean -> 0 or infinity): no fit at this span
            break
        smoother, diagonal, ok_now = _operator(xt, w, span, degree, surface, cell, nvmax)
        ok = ok and ok_now
        projector, hat, rank = _projector(design, np.where(w > 0, w, ZERO_WEIGHT))
        residual_maker = np.eye(y.size) - projector
        total_w = w.sum()
        for _ in range(bf_maxit):
            linear = projector @ (z - smooth)
            old = smooth
            smooth = residual_maker @ (smoother @ (z - linear))
            change = float(np.sum(w * (old - smooth) ** 2) / total_w) if total_w > 0 else 0.0
            norm = float(np.sum(w * smooth**2))
            if not (norm > 0 and math.sqrt(change / norm) > bf_epsilon):
                break
        eta = linear + smooth
        with np.errstate(over="ignore"):
            mu = family.mean(eta)
        old_dev, new_dev = new_dev, family.deviance(y, mu, prior)
        if not math.isfinite(new_dev):
            break
        if abs(old_dev - new_dev) / (old_dev + 0.1) <= epsilon:
            converged = True
            break
    influence = np.where(w > 0, diagonal - hat, 0.0)
    nl_df = float(influence.sum())
    share = np.where(w > 0, hat, 0.0)
    influence = influence + share * (rank / share.sum() if share.sum() > 0 else 0.0)
    return _Solution(mu, eta, influence, rank + nl_df, nl_df, new_dev, converged, n_iter, ok)


# --------------------------------------------------------------------------------------------
# result and entry point
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoessGamFit(CriteriaMixin):
    """Result of :func:`loess_gam`.

    Attributes
    ----------
    counts : ndarray, shape of the table
        Observed counts (binomial: successes).
    trials : ndarray or None
        Binomial trials per cell.
    fitted : ndarray, shape of the table
        Fitted means: counts (Poisson) or success counts ``trials * p_hat`` (binomial).
    eta : ndarray, shape of the table
        Additive predictor ``X beta + f`` (log mean or logit).
    influence : ndarray, shape of the table
        Per-cell shares of ``df``: ``L_cc - H_cc`` plus ``rank(X)`` spread over ``H_cc``.
    coordinates : ndarray of shape (n_cells, d)
        Scores used by the smoother.
    df : float
        Equivalent degrees of freedom ``rank(X) + nl_df`` (``n - df.residual`` in R's gam).
    nl_df : float
        Nonlinear degrees of freedom of the loess term, ``sum_c (L_cc - H_cc)``.
    deviance, loglik : float
        Deviance and full log-likelihood (with ``-log y!`` or the binomial coefficients).
    criteria : dict
        Every criterion of :data:`gllmm.smooth.CRITERIA` at this fit (``n_obs`` = cells).
    family : str
    span : float
    degree : int
    surface : str
    converged : bool
    n_iter : int
        Local-scoring iterations.
    selection : SmoothingSelection or None
        Criterion over the span grid when the span was chosen.
    """

    counts: FloatArray
    trials: FloatArray | None
    fitted: FloatArray
    eta: FloatArray
    influence: FloatArray
    coordinates: FloatArray
    df: float
    nl_df: float
    deviance: float
    loglik: float
    criteria: dict[str, float]
    family: str
    span: float
    degree: int
    surface: str
    converged: bool
    n_iter: int
    selection: SmoothingSelection | None = field(default=None)

    @property
    def probabilities(self) -> FloatArray:
        """Poisson: fitted counts over their total; binomial: fitted success probabilities."""
        if self.trials is None:
            return self.fitted / self.fitted.sum()
        return self.fitted / np.where(self.trials > 0, self.trials, 1.0)


def default_spans(n_cells: int, d: int, degree: int = 1, cell: float = CELL) -> FloatArray:
    """One span per distinct loess fit in (0, 1].

    A span acts through ``q = floor(K span)`` (neighbours) and ``floor(K span cell)`` (the k-d
    tree's cell size) only, so below 1 the fit is constant between the breakpoints ``q / K``
    and ``c / (K cell)``; each candidate sits just above a breakpoint (``q >= n_local + 1``).
    Spans above 1 (wider than the data) are left out, as the usual S loess span range: on
    Table 1's 3 x 3 tables a grid up to 10 gives MSEs far from the printed LL column
    (uniform, beta 0.4, n 200: 0.099 against 0.052; up to 1: 0.053), see docs/simulation.md.
    """
    n_local = 1 + d + (d * (d + 1) // 2 if degree == 2 else 0)
    q = np.arange(n_local + 1, n_cells + 1, dtype=np.float64) / n_cells
    c = np.arange(1, int(n_cells * cell) + 1, dtype=np.float64) / (n_cells * cell)
    breaks = np.unique(np.round(np.concatenate([q, c[(c > q[0]) & (c < 1.0)]]), 12))
    return np.minimum(breaks * (1.0 + 1e-9), 1.0)


def _validate(counts: ArrayLike, trials: ArrayLike | None, family: str,
              degree: int) -> tuple[FloatArray, FloatArray | None]:
    """Refuse bad input at the entry: inside the span search a bad degree or a too-small table
    would only show up as "criterion infinite over the whole grid" (or an IndexError)."""
    if family not in FAMILIES:
        raise SpecError(f"unknown family {family!r}; valid: {list(FAMILIES)}")
    if isinstance(degree, bool) or degree not in (1, 2):
        raise SpecError(f"degree must be 1 or 2, got {degree!r}")
    if np.ndim(counts) < 1:
        raise TableError("counts must be a non-empty array with one axis per variable")
    y = check_counts(counts, "counts", TableError, rows="cells")
    if y.ndim > 1 and 1 in y.shape:
        raise TableError(f"counts have shape {y.shape}: an axis with one level gives the "
                         "smoother no direction; drop it (e.g. pass a 1 x K table as shape (K,))")
    d = y.ndim
    n_local = 1 + d + (d * (d + 1) // 2 if degree == 2 else 0)
    if y.size < n_local + 1:
        raise TableError(f"counts have {y.size} cells; a local fit of degree {degree} in {d} "
                         f"dimension(s) needs at least {n_local + 1}")
    if family == "poisson":
        if trials is not None:
            raise SpecError("trials are for family='binomial'")
        return y, None
    if trials is None:
        raise SpecError("family='binomial' needs trials (the number of trials per cell)")
    m = check_counts(trials, "trials", TableError, rows="cells")
    if m.shape != y.shape or np.any(m < y):
        raise TableError("trials must have the table's shape and be >= the counts "
                         "(successes)")
    return y, m


def loess_gam(
    counts: ArrayLike,
    scores: Sequence[ArrayLike] | None = None,
    *,
    span: float | str = "aicc",
    degree: int = 1,
    family: str = "poisson",
    trials: ArrayLike | None = None,
    surface: str = "interpolate",
    grid: ArrayLike | None = None,
    standardise: bool = True,
    normalize: bool = False,
    cell: float = CELL,
    nvmax: int | None = None,
    epsilon: float = 1e-10,
    bf_epsilon: float = 1e-10,
    maxit: int = 100,
    bf_maxit: int = 100,
) -> LoessGamFit:
    r"""Poisson or binomial GAM with one loess term in the table's scores, by local scoring.

    Fits ``g(mu_c) = f(x_c)`` with ``f`` = linear part + loess smooth of the partial residuals
    (Hastie & Tibshirani 1990, Sections 6.2 and 6.9), as ``gam(y ~ lo(x1, x2, span = span,
    degree = degree), family = poisson)`` does in S and R's ``gam``. Each IRLS step backfits

    .. math::
        \hat\eta_{lin} = P_W (z - s), \qquad s = (I - P_W) L_W (z - \hat\eta_{lin}),

    with working response ``z = eta + (y - mu) / mu'(eta)``, weights
    ``W = diag(prior mu'(eta)^2 / V(mu))`` and ``L_W`` the loess operator with prior weights
    ``W`` (:func:`loess_smoother`, k-d tree + vertex interpolation by default), until the
    relative change of the deviance is below ``epsilon``. The equivalent degrees of freedom are
    ``df = rank(X) + sum_c (L_cc - H_cc)``. A span given as a string (a key of
    :data:`gllmm.smooth.CRITERIA`, default ``"aicc"``: ``D + 2 df K / (K - df - 1)``) is chosen
    by minimising that criterion over :func:`default_spans` or ``grid``.

    Parameters
    ----------
    counts : array-like of shape (n_1,) or (n_1, n_2)
        Counts (Poisson) or successes (binomial) on a full grid of cells.
    scores : sequence of d array-likes, optional
        Scores per axis (default ``1..n_k``); standardised unless ``standardise=False``.
    span : float or str
        Loess span, or a criterion name to choose it.
    degree : {1, 2}
        Local polynomial degree.
    family : {"poisson", "binomial"}
        Log link (Poisson) or logit link (binomial, with ``trials``).
    trials : array-like, optional
        Binomial trials per cell.
    surface : {"interpolate", "direct"}
        k-d tree + vertex interpolation (as S and R's ``gam``) or a local fit at every cell.
    grid : array-like, optional
        Candidate spans for a chosen span.
    standardise : bool
        Centre the scores and divide by their population SD over the levels.
    normalize : bool
        Also divide each coordinate by its 10% trimmed SD (``stats::loess``' normalisation;
        ``gam::lo`` does not).
    cell, nvmax : float, int
        k-d tree cell fraction and vertex budget (see :func:`loess_smoother`).
    epsilon, bf_epsilon : float
        Local-scoring (relative deviance change) and backfitting tolerances.
    maxit, bf_maxit : int
        Iteration limits.

    Returns
    -------
    LoessGamFit

    Raises
    ------
    TableError
        Missing, infinite, negative or non-integer counts or trials; all-zero counts; an axis
        with one level; too few cells for a local fit of ``degree``; successes above trials.
    SpecError
        Bad scores, family, span, degree or surface.
    FitError
        No span of the grid gives a finite criterion.

    Warns
    -----
    ConvergenceWarning
        Local scoring stopped at ``maxit`` iterations or at an infinite deviance.

    Notes
    -----
    Sampling zeros, whole zero rows or columns included, are accepted: the loess term pools
    neighbouring cells, so a zero row gets a small positive fitted mean rather than an infinite
    estimate (a fit that still diverges raises ``FitError``, a span search skips it). Spans
    above 1 put every cell in every neighbourhood and widen the tricube weights by
    ``span^(1/d)``; as the span grows the fit tends to the linear part alone (``df`` to
    ``rank(X)``), a Poisson GLM in the scores.

    References
    ----------
    Cleveland, W. S. and Grosse, E. (1991). Computational methods for local regression.
    Statistics and Computing 1, 47-62.
    Hastie, T. J. and Tibshirani, R. J. (1990). Generalized Additive Models. Chapman & Hall.
    Chambers, J. M. and Hastie, T. J. (1992). Statistical Models in S, Chapter 7.
    Coull, B. A. and Agresti, A. (2003), Section 5.1 and Table 2 column (c).
    """
    table, m = _validate(counts, trials, family, degree)
    if table.ndim > 2 and surface == "interpolate":
        raise SpecError("the loess GAM takes one- or two-way tables; use surface='direct' "
                        "for more axes")
    coords = standardised_coordinates(table.shape, scores, standardise=standardise)
    xt, _ = _points(coords, None, normalize)
    coords = np.ascontiguousarray(xt.T)
    fam = _Family(family)
    prior = np.ones(table.size) if m is None else m.ravel()
    y = table.ravel() if m is None else table.ravel() / np.where(prior > 0, prior, 1.0)
    n_cells, d = coords.shape

    def run(value: float) -> _Solution:
        return _local_scoring(y, prior, xt, coords, fam, span=value, degree=degree,
                              surface=surface, cell=cell, nvmax=nvmax, epsilon=epsilon,
                              bf_epsilon=bf_epsilon, maxit=maxit, bf_maxit=bf_maxit)

    selection = None
    if isinstance(span, str):
        crit = _criterion(span)
        values = (default_spans(n_cells, d, degree, cell) if grid is None
                  else np.sort(np.asarray(grid, dtype=np.float64).ravel()))
        if values.size == 0 or not np.all(values > 0):
            raise SpecError("the span grid must hold positive values")
        records = []
        for value in values:
            try:
                sol = run(float(value))
            except SpecError:
                continue  # too few neighbours for a local fit
            score = crit(sol.deviance, sol.df, n_cells) if sol.ok else math.inf
            score = score if math.isfinite(score) else math.inf  # a diverged fit (NaN)
            records.append((float(value), sol.df, sol.deviance, score))
        record = np.array(records, dtype=np.float64).reshape(-1, 4)
        finite = np.flatnonzero(np.isfinite(record[:, 3]))
        if finite.size == 0:
            raise FitError(f"criterion {span!r} is infinite over the whole span grid")
        best = int(np.argmin(record[:, 3]))
        selection = SmoothingSelection(
            parameter="span", values=record[:, 0], df=record[:, 1], deviance=record[:, 2],
            criterion=span, criterion_values=record[:, 3], best=float(record[best, 0]),
            at_boundary=best in (finite[0], finite[-1]))
        value = selection.best
    else:
        value = check_real(span, "span", hint=" or a criterion name")
    sol = run(value)
    if not sol.converged:
        warnings.warn(f"local scoring did not converge in {sol.n_iter} iterations at span "
                      f"{value:.4g}", ConvergenceWarning, stacklevel=2)
    if not sol.ok:
        raise FitError(f"local scoring at span {value:g} diverged or met a loess "
                       "neighbourhood with no positive weight; use a larger span")
    fitted = sol.mu * prior
    return LoessGamFit(
        counts=table, trials=m, fitted=fitted.reshape(table.shape),
        eta=sol.eta.reshape(table.shape), influence=sol.influence.reshape(table.shape),
        coordinates=coords, df=sol.df, nl_df=sol.nl_df, deviance=sol.deviance,
        loglik=fam.loglik(y, sol.mu, prior),
        criteria={name: f(sol.deviance, sol.df, n_cells) for name, f in CRITERIA.items()},
        family=family, span=value, degree=degree, surface=surface, converged=sol.converged,
        n_iter=sol.n_iter, selection=selection)
