"""Penalised-likelihood smoother of eq. (2.2): limits, derivatives, and the MBA table.

Tolerances: 1e-6 for the two limits (lam = 1e-9 and 1e9; the exact lam = 0 and inf cases to
1e-12), rtol 1e-6 for the gradient and 1e-5 for the Hessian against central differences (step
1e-6, truncation ~1e-12, rounding ~1e-10 relative), rtol 1e-4 for the df against forward
differences of the fitted counts (step 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest

from gllmm.errors import SpecError, TableError
from gllmm.smooth._penalized import penalized_objective, penalized_smoother
from gllmm.spec import local_odds_ratios


@pytest.fixture(scope="module")
def mba_aicc(mba: np.ndarray):
    return penalized_smoother(mba)


def _independence(counts: np.ndarray) -> np.ndarray:
    return np.outer(counts.sum(axis=1), counts.sum(axis=0)) / counts.sum() ** 2


def test_contrasts_are_local_log_odds_ratios() -> None:
    """The penalty's contrasts (spec's builder) against the definition (1e-7 relative)."""
    rng = np.random.default_rng(0)
    eta = rng.normal(size=(3, 4))
    expected = eta[:-1, :-1] - eta[:-1, 1:] - eta[1:, :-1] + eta[1:, 1:]
    for sparse in (False, True):
        C = local_odds_ratios((3, 4), sparse=sparse).C
        np.testing.assert_allclose(C @ eta.ravel(), expected.ravel())


def test_lambda_zero_gives_sample_proportions(mba: np.ndarray) -> None:
    exact = penalized_smoother(mba, 0.0)
    np.testing.assert_allclose(exact.probabilities, mba / mba.sum(), rtol=0, atol=1e-12)
    assert np.all(exact.probabilities[mba == 0] == 0)  # zero cells stay on the boundary
    near = penalized_smoother(mba, 1e-9)
    np.testing.assert_allclose(near.probabilities, mba / mba.sum(), rtol=0, atol=1e-6)


def test_lambda_infinite_gives_independence(mba: np.ndarray) -> None:
    exact = penalized_smoother(mba, np.inf)
    np.testing.assert_allclose(exact.probabilities, _independence(mba), rtol=0, atol=1e-12)
    assert exact.df == 12.0  # I + J - 1
    near = penalized_smoother(mba, 1e9)
    np.testing.assert_allclose(near.probabilities, _independence(mba), rtol=0, atol=1e-6)
    assert near.df == pytest.approx(12.0, abs=1e-4)


def test_gradient_and_hessian_against_central_differences(mba: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    eta = np.log(_independence(mba) * mba.sum()) + 0.3 * rng.normal(size=mba.shape)
    lam, step = 2.5, 1e-6
    _, gradient, hessian = penalized_objective(eta, mba, lam)
    numerical_gradient = np.empty(eta.size)
    numerical_hessian = np.empty((eta.size, eta.size))
    for c in range(eta.size):
        bump = np.zeros(eta.size)
        bump[c] = step
        up, down = (eta.ravel() + bump).reshape(eta.shape), (eta.ravel() - bump).reshape(eta.shape)
        value_up, gradient_up, _ = penalized_objective(up, mba, lam)
        value_down, gradient_down, _ = penalized_objective(down, mba, lam)
        numerical_gradient[c] = (value_up - value_down) / (2 * step)
        numerical_hessian[:, c] = (gradient_up - gradient_down) / (2 * step)
    np.testing.assert_allclose(gradient, numerical_gradient, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hessian, numerical_hessian, rtol=1e-5, atol=1e-6)


def test_fit_is_a_stationary_point_of_the_multinomial_objective(mba_aicc) -> None:
    fit = mba_aicc
    _, gradient, _ = penalized_objective(np.log(fit.fitted), fit.counts, fit.lam)
    assert np.max(np.abs(gradient)) < 1e-8
    # sum mu = n at the optimum, so the Poisson and multinomial solutions coincide
    assert fit.fitted.sum() == pytest.approx(fit.counts.sum(), rel=1e-12)
    log_p = np.log(fit.probabilities)
    expected = log_p[:-1, :-1] - log_p[:-1, 1:] - log_p[1:, :-1] + log_p[1:, 1:]
    np.testing.assert_allclose(fit.log_odds_ratios, expected, atol=1e-12)


def test_df_is_the_trace_of_the_numerical_hat_matrix(mba: np.ndarray) -> None:
    lam, step = 3.0, 1e-6
    fit = penalized_smoother(mba, lam)
    derivative = np.empty(mba.size)
    for c in range(mba.size):
        bumped = mba.ravel().copy()
        bumped[c] += step
        moved = penalized_smoother(bumped.reshape(mba.shape), lam).fitted.ravel()[c]
        derivative[c] = (moved - fit.fitted.ravel()[c]) / step
    assert fit.df == pytest.approx(derivative.sum(), rel=1e-4)


def test_aicc_choice_on_mba(mba: np.ndarray, mba_aicc) -> None:
    fit = mba_aicc
    assert np.isfinite(fit.lam) and fit.lam > 0
    assert fit.selection is not None and not fit.selection.at_boundary
    assert fit.selection.best == fit.lam
    assert np.all(fit.probabilities > 0)
    assert fit.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    n_cells = mba.size
    expected = fit.deviance + 2 * fit.df * n_cells / (n_cells - fit.df - 1)
    assert fit.aicc == pytest.approx(expected, rel=1e-12)
    assert fit.aicc == pytest.approx(np.min(fit.selection.criterion_values), rel=1e-12)
    assert 12.0 < fit.df < n_cells
    print(
        f"\nMBA penalised likelihood (AICc): lam {fit.lam:.4f}, df {fit.df:.3f}, "
        f"deviance {fit.deviance:.3f}, AICc {fit.aicc:.3f}"
    )


def test_zero_margins_are_fitted_as_zero() -> None:
    counts = np.array([[3.0, 0.0, 2.0], [0.0, 0.0, 0.0], [1.0, 0.0, 5.0], [2.0, 0.0, 0.0]])
    fit = penalized_smoother(counts, 1.0)
    assert np.all(fit.probabilities[1] == 0) and np.all(fit.probabilities[:, 1] == 0)
    kept = np.ix_([0, 2, 3], [0, 2])
    assert np.all(fit.probabilities[kept] > 0)
    assert fit.probabilities.sum() == pytest.approx(1.0, abs=1e-12)


def test_invalid_arguments(mba: np.ndarray) -> None:
    with pytest.raises(SpecError):
        penalized_smoother(np.ones((2, 2, 2)))
    with pytest.raises(SpecError):
        penalized_smoother(mba, -1.0)
    with pytest.raises(SpecError, match="valid"):
        penalized_smoother(mba, "bic")
    with pytest.raises(TableError):
        penalized_smoother(-mba, 1.0)
    with pytest.raises(SpecError):
        penalized_smoother(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), 1.0)
