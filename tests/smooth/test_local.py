"""Local linear Poisson likelihood smoother: its definition, its limits, and the MBA table.

Tolerances: 1e-6 for the two bandwidth limits (Newton converges to rounding; statsmodels IRLS is
run to ``tol=1e-13``), 1e-8 for the direct weighted GLM at one cell, rtol 1e-4 for the df against
forward differences with step 1e-6 (truncation error ~1e-6).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import linprog

from gllmm.errors import InfiniteEstimateWarning, SpecError, TableError
from gllmm.smooth._local import (
    CRITERIA,
    _local_mle_exists,
    local_likelihood,
    poisson_deviance,
    standardised_coordinates,
)

# Coull & Agresti (2003) Table 2 column (c), "AICc-chosen smoothing based on local linear
# likelihood", rows statistics 2..7, columns economics 1..7; decoded in
# tests/fixtures/paper/table2_fitted.csv (column local_likelihood).
TABLE2_COLUMN_C = np.array(
    [
        [0.09, 0.19, 0.24, 0.23, 0.22, 0.15, 0.06],
        [0.08, 0.35, 0.77, 0.92, 1.04, 0.38, 0.11],
        [0.06, 0.31, 1.85, 4.73, 3.61, 0.99, 0.19],
        [0.12, 0.38, 1.55, 4.32, 6.49, 3.20, 0.94],
        [0.17, 0.28, 0.68, 1.82, 5.19, 4.60, 2.38],
        [0.06, 0.09, 0.15, 0.32, 1.39, 2.23, 2.02],
    ]
)


@pytest.fixture(scope="module")
def mba_aicc(mba: np.ndarray):
    return local_likelihood(mba)


def _glm_linear_scores(counts: np.ndarray) -> np.ndarray:
    """Poisson GLM log mu = a + sum_k b_k s_k with the category numbers as scores."""
    grids = np.meshgrid(*[np.arange(1, n + 1.0) for n in counts.shape], indexing="ij")
    design = sm.add_constant(np.column_stack([g.ravel() for g in grids]))
    fit = sm.GLM(counts.ravel(), design, family=sm.families.Poisson()).fit(tol=1e-13)
    return fit.fittedvalues.reshape(counts.shape)


def _numerical_influence(counts: np.ndarray, step: float = 1e-6, **options) -> np.ndarray:
    """Forward differences ``(mu_c(y + step e_c) - mu_c(y)) / step`` for every cell c."""
    base = local_likelihood(counts, **options).fitted.ravel()
    out = np.empty(counts.size)
    for c in range(counts.size):
        bumped = counts.ravel().copy()
        bumped[c] += step
        out[c] = (
            local_likelihood(bumped.reshape(counts.shape), **options).fitted.ravel()[c] - base[c]
        ) / step
    return out.reshape(counts.shape)


# ------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize("kernel", ["tricube", "epanechnikov", "gaussian"])
def test_infinite_bandwidth_is_the_linear_score_loglinear_fit(mba: np.ndarray, kernel: str) -> None:
    expected = _glm_linear_scores(mba)
    fit = local_likelihood(mba, bandwidth=np.inf, kernel=kernel)
    np.testing.assert_allclose(fit.fitted, expected, rtol=1e-6, atol=1e-8)
    assert fit.df == pytest.approx(3.0, abs=1e-6)  # trace of the GLM hat matrix


def test_huge_bandwidth_and_span_approach_the_loglinear_fit(mba: np.ndarray) -> None:
    expected = _glm_linear_scores(mba)
    gaussian = local_likelihood(mba, bandwidth=1e5, kernel="gaussian")
    tricube_span = local_likelihood(mba, span=1e6, kernel="tricube")
    np.testing.assert_allclose(gaussian.fitted, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tricube_span.fitted, expected, rtol=1e-6, atol=1e-8)


def test_three_way_table_infinite_bandwidth() -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(4.0, size=(3, 4, 2)).astype(float)
    fit = local_likelihood(counts, bandwidth=np.inf)
    np.testing.assert_allclose(fit.fitted, _glm_linear_scores(counts), rtol=1e-6, atol=1e-8)
    assert fit.coefficients.shape == (3, 4, 2, 4)


@pytest.mark.parametrize(
    ("kernel", "bandwidth"), [("tricube", 0.1), ("epanechnikov", 0.1), ("gaussian", 0.02)]
)
def test_vanishing_bandwidth_returns_the_counts(
    mba: np.ndarray, kernel: str, bandwidth: float
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfiniteEstimateWarning)  # zero cells: a_hat = -inf
        fit = local_likelihood(mba, bandwidth=bandwidth, kernel=kernel)
    positive = mba > 0
    np.testing.assert_allclose(fit.fitted[positive], mba[positive], rtol=1e-6)
    assert np.all(fit.fitted[~positive] < 1e-6)
    assert fit.df == pytest.approx(mba.size, rel=1e-6)


def test_smallest_span_returns_the_counts(mba: np.ndarray) -> None:
    with pytest.warns(InfiniteEstimateWarning):
        fit = local_likelihood(mba, span=1.0 / mba.size)
    np.testing.assert_allclose(fit.fitted, mba, rtol=1e-6, atol=1e-6)
    assert not np.any(fit.finite[mba == 0]) and np.all(fit.finite[mba > 0])


# ------------------------------------------------------------------------------ definition


@pytest.mark.parametrize(
    "options",
    [
        {"span": 18 / 42, "kernel": "tricube"},
        {"bandwidth": 1.5, "kernel": "epanechnikov"},
        {"bandwidth": 0.8, "kernel": "gaussian"},
    ],
)
def test_df_is_the_trace_of_the_numerical_hat_matrix(mba: np.ndarray, options: dict) -> None:
    fit = local_likelihood(mba, **options)
    assert np.all(fit.finite)
    numerical = _numerical_influence(mba, **options)
    np.testing.assert_allclose(fit.influence, numerical, rtol=1e-4, atol=1e-5)
    assert fit.df == pytest.approx(numerical.sum(), rel=1e-4)


def _independent_weights(shape, cell, *, span=None, bandwidth=None, kernel="tricube"):
    """Kernel weights recomputed from the stated definition, not from the module."""
    axes = []
    for n in shape:
        s = np.arange(1, n + 1.0)
        axes.append((s - s.mean()) / s.std())
    coords = np.column_stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    delta = coords - coords[cell]
    if span is not None:
        distance = np.linalg.norm(delta, axis=1)
        h = np.sort(distance)[int(np.floor(span * len(coords) + 1e-9)) - 1]
        u = distance / h
        weights = np.where(u < 1, (1 - u**3) ** 3, 0.0)
    else:
        u = np.abs(delta) / bandwidth
        weights = np.prod(np.where(u < 1, 1 - u**2, 0.0), axis=1)
    return delta, weights


@pytest.mark.parametrize("cell", [0, 19, 33, 41])
@pytest.mark.parametrize(
    "options",
    [{"span": 18 / 42, "kernel": "tricube"}, {"bandwidth": 1.5, "kernel": "epanechnikov"}],
)
def test_local_fit_is_a_weighted_poisson_regression(
    mba: np.ndarray, cell: int, options: dict
) -> None:
    fit = local_likelihood(mba, **options)
    delta, weights = _independent_weights(mba.shape, cell, **options)
    support = weights > 0
    glm = sm.GLM(
        mba.ravel()[support],
        sm.add_constant(delta[support], has_constant="add"),
        family=sm.families.Poisson(),
        var_weights=weights[support],
    ).fit(tol=1e-14, maxiter=200)
    coefficients = fit.coefficients.reshape(mba.size, -1)[cell]
    assert fit.fitted.ravel()[cell] == pytest.approx(np.exp(glm.params[0]), rel=1e-8)
    np.testing.assert_allclose(coefficients[1:], glm.params[1:], rtol=1e-7, atol=1e-8)


def test_coordinates_are_standardised(mba: np.ndarray) -> None:
    coords = standardised_coordinates(mba.shape)
    np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(coords.std(axis=0), 1.0, rtol=1e-12)
    raw = standardised_coordinates((2, 3), [[2.0, 5.0], [1.0, 2.0, 4.0]], standardise=False)
    np.testing.assert_array_equal(raw[:, 1], [1, 2, 4, 1, 2, 4])


# ---------------------------------------------------------------- existence of the local MLE


def _exists_by_linear_programme(points: np.ndarray, positive: np.ndarray) -> bool:
    """Haberman's condition as an LP: sum_P x_c a strictly positive combination of all rows."""
    if not positive.any():
        return False
    design = np.column_stack([np.ones(len(points)), points])
    n = len(points)
    result = linprog(
        np.r_[np.zeros(n), -1.0],
        A_ub=np.hstack([-np.eye(n), np.ones((n, 1))]),
        b_ub=np.zeros(n),
        A_eq=np.hstack([design.T, np.zeros((design.shape[1], 1))]),
        b_eq=design[positive].sum(axis=0),
        bounds=[(0, None)] * n + [(0, 1)],
        method="highs",
    )
    return bool(result.status == 0 and -result.fun > 1e-9)


def test_existence_check_on_known_windows() -> None:
    window = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float)
    cases = {
        (4,): True,  # the centre cell
        (0,): False,  # one corner
        (0, 1, 2): False,  # one edge
        (0, 8): True,  # a diagonal through the interior
        (1, 7): True,  # opposite edge midpoints
        (): False,  # no counts
    }
    for cells, expected in cases.items():
        positive = np.isin(np.arange(9), cells)
        assert _local_mle_exists(window, positive) is expected, cells
    line = np.array([[0.0, -1.0], [0.0, 0.0], [0.0, 1.0]])
    assert _local_mle_exists(line, np.array([False, True, False]))
    assert not _local_mle_exists(line, np.array([True, False, False]))


def test_existence_check_agrees_with_linear_programme() -> None:
    rng = np.random.default_rng(7)
    grid = np.array([(i, j) for i in range(4) for j in range(5)], dtype=float)
    for _ in range(200):
        support = rng.random(len(grid)) < 0.5
        if support.sum() < 1:
            continue
        points = grid[support]
        positive = rng.random(len(points)) < 0.3
        assert _local_mle_exists(points, positive) == _exists_by_linear_programme(points, positive)


# ------------------------------------------------------------------------ AICc on the MBA table


def test_aicc_fit_on_mba(mba: np.ndarray, mba_aicc) -> None:
    fit = mba_aicc
    assert fit.span is not None and 0 < fit.span < 1
    assert fit.selection is not None and not fit.selection.at_boundary
    assert np.all(fit.finite) and fit.converged
    assert np.all(fit.fitted > 0)
    assert 3.0 < fit.df < mba.size - 1
    n_cells = mba.size
    expected = poisson_deviance(mba, fit.fitted) + 2 * fit.df * n_cells / (n_cells - fit.df - 1)
    assert fit.aicc == pytest.approx(expected, rel=1e-12)
    assert fit.aicc == pytest.approx(np.min(fit.selection.criterion_values), rel=1e-12)
    raw = float(np.max(np.abs(fit.fitted - TABLE2_COLUMN_C)))
    normalised = float(np.max(np.abs(fit.normalised - TABLE2_COLUMN_C)))
    assert np.isfinite(raw) and np.isfinite(normalised)
    print(
        f"\nMBA local likelihood (tricube, nearest neighbour, AICc): span {fit.span:.4f} "
        f"({round(fit.span * n_cells)} cells), df {fit.df:.3f}, deviance {fit.deviance:.3f}, "
        f"AICc {fit.aicc:.3f}, total {fit.fitted.sum():.2f}; max |fit - Table 2 (c)| "
        f"{raw:.3f} raw, {normalised:.3f} rescaled to n"
    )


def test_aicc_fixed_bandwidth_on_mba(mba: np.ndarray) -> None:
    fit = local_likelihood(mba, bandwidth="aicc", kernel="epanechnikov")
    assert fit.bandwidth is not None and np.isfinite(fit.bandwidth)
    assert np.all(fit.finite) and np.all(fit.fitted > 0)
    distance = float(np.max(np.abs(fit.normalised - TABLE2_COLUMN_C)))
    assert np.isfinite(distance)
    print(
        f"\nMBA local likelihood (Epanechnikov product, AICc): h {fit.bandwidth:.4f}, "
        f"df {fit.df:.3f}, AICc {fit.aicc:.3f}; max |fit - Table 2 (c)| "
        f"{np.max(np.abs(fit.fitted - TABLE2_COLUMN_C)):.3f} raw, {distance:.3f} rescaled"
    )


def test_selection_skips_infinite_local_estimates(mba: np.ndarray) -> None:
    fit = local_likelihood(mba, span="aicc", grid=[4 / 42, 18 / 42, 1.0])
    assert fit.selection is not None
    assert fit.selection.criterion_values[0] == np.inf  # 4-cell windows: some MLEs infinite
    assert np.isfinite(fit.selection.criterion_values[1:]).all()


def test_criteria_registry() -> None:
    assert CRITERIA["aicc"](10.0, 4.0, 20) == pytest.approx(10.0 + 2 * 4 * 20 / 15)
    assert CRITERIA["aicc_hst"](10.0, 4.0, 20) == pytest.approx(10.0 + 2 * 20 * 5 / 14)
    assert CRITERIA["aic"](10.0, 4.0, 20) == pytest.approx(18.0)
    assert CRITERIA["aicc"](0.0, 19.0, 20) == np.inf


# ---------------------------------------------------------------------------------- errors


def test_invalid_arguments(mba: np.ndarray) -> None:
    with pytest.raises(SpecError, match="valid"):
        local_likelihood(mba, bandwidth=1.0, kernel="boxcar")
    with pytest.raises(SpecError, match="either"):
        local_likelihood(mba, bandwidth=1.0, span=0.5)
    with pytest.raises(SpecError, match="valid"):
        local_likelihood(mba, span="bic")
    with pytest.raises(SpecError):
        local_likelihood(mba, bandwidth=-1.0)
    with pytest.raises(SpecError):
        local_likelihood(mba, scores=[np.arange(6.0)])
    with pytest.raises(TableError):
        local_likelihood(-mba, bandwidth=1.0)
