"""Table 1 estimators: the specialised small-table fits equal the general engine's, exact
gradients, closed forms, registry behaviour (paper Sections 2.1, 2.2, 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import models
from gllmm.errors import SpecError
from gllmm.links import Multinomial
from gllmm.simulate import (
    ESTIMATORS,
    TABLE1_ESTIMATORS,
    Estimator,
    EstimatorUnavailable,
    association_design,
    design_matrix,
    fit_association_laplace,
    fit_cellwise_agq,
    get_estimator,
    paper_table1_study,
    poisson_loglinear,
    register_estimator,
    simulate_table,
    true_probabilities,
)
from gllmm.simulate._association_small import AssociationObjective
from gllmm.simulate._small_tables import CellwiseObjective, maximize_bfgs
from gllmm.spec import Design, scalar_structure

SCORES = np.array([1.0, 2.0, 3.0])
# tables with an interior sigma and with sigma = 0 for both bases (seeded draws from the truth)
TABLES = [
    np.array([[30, 12, 4], [14, 26, 17], [6, 15, 76]]),
    np.array([[9, 5, 4], [6, 6, 5], [3, 5, 7]]),
    np.array([[69, 10, 6], [11, 20, 25], [10, 17, 32]]),
]


def _quiet_fit(design, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, **kw)


def _central_gradient(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _long(y):
    rows, cols = np.divmod(np.arange(y.size), y.shape[1])
    return pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": y.ravel()})


@pytest.mark.parametrize("base", ["independence", "linear_by_linear"])
@pytest.mark.parametrize("k", range(len(TABLES)))
def test_cellwise_fit_equals_the_general_engine(base, k):
    y = TABLES[k]
    X = design_matrix(3, 3, None if base == "independence" else SCORES)
    fast = fit_cellwise_agq(y.ravel(), X, n_nodes=15)
    design = models.cellwise_smoothing(_long(y), "row", "col", base=base,
                                       row_scores=list(SCORES), col_scores=list(SCORES))
    ref = _quiet_fit(design, method="agq", n_nodes=15)
    assert fast.loglik == pytest.approx(ref.loglik, abs=1e-8)
    assert fast.sigma == pytest.approx(float(ref.params[-1]), abs=1e-5)
    np.testing.assert_allclose(fast.fitted, ref.fitted_counts(), rtol=1e-6)
    assert fast.boundary == (ref.params[-1] == 0.0)


@pytest.mark.parametrize("n_nodes", [1, 15])
def test_cellwise_gradient_is_exact(n_nodes):
    y = TABLES[0].ravel().astype(float)
    X = design_matrix(3, 3, SCORES)
    obj = CellwiseObjective(y, X, n_nodes)
    for sigma in (0.7, -0.4, 1e-3):
        x = np.r_[np.linalg.lstsq(X, np.log(y), rcond=None)[0] + 0.05, sigma]
        g = obj.value_and_gradient(x)[1]
        num = _central_gradient(lambda z: obj.value_and_gradient(z)[0], x)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


def test_cellwise_likelihood_at_zero_sd_is_the_poisson_glm():
    y = TABLES[1].ravel().astype(float)
    X = design_matrix(3, 3, SCORES)
    glm = poisson_loglinear(y, X)
    assert CellwiseObjective(y, X, 15).value_and_gradient(np.r_[glm.beta, 0.0])[0] == (
        pytest.approx(glm.loglik, abs=1e-10))
    assert glm.converged
    assert glm.fitted.sum() == pytest.approx(y.sum())


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
@pytest.mark.parametrize("free_beta", [False, True])
@pytest.mark.parametrize("k", range(len(TABLES)))
def test_association_fit_equals_the_general_engine(free_beta, k, coding):
    y = TABLES[k]
    X, Z = association_design(3, 3, free_beta, coding)
    fast = fit_association_laplace(y, free_beta=free_beta, coding=coding)
    names = tuple(f"x{j}" for j in range(X.shape[1]))
    design = Design(Multinomial(y.ravel()[None, :].astype(float)), X[None], Z[None],
                    np.zeros((1, 9)), np.array([0]), scalar_structure("odds_ratio", 4), names)
    ref = _quiet_fit(design, method="laplace")
    # the engine's single search may stop at a local maximum; global ML is at least as high
    assert fast.loglik >= ref.loglik - 1e-8
    if abs(fast.loglik - ref.loglik) < 1e-6:
        np.testing.assert_allclose(fast.probabilities.ravel(), ref.fitted_counts() / y.sum(),
                                   atol=1e-6)


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
def test_association_gradient_is_exact_and_zero_sd_gives_the_glm(coding):
    y = TABLES[0].astype(float)
    X, Z = association_design(3, 3, True, coding)
    obj = AssociationObjective(y, X, Z)
    x = np.r_[-0.3, 0.2, 0.1, -0.4, 0.5, 0.8]
    g = obj.value_and_gradient(x)[1]
    num = _central_gradient(lambda z: AssociationObjective(y, X, Z).value_and_gradient(z)[0], x)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)
    # sigma = 0: the uniform association GLM, multinomial likelihood
    fit = fit_association_laplace(TABLES[1], free_beta=True, coding=coding)
    assert fit.boundary
    np.testing.assert_allclose(fit.probabilities,
                               get_estimator("glm_uniform_association")(TABLES[1], SCORES),
                               atol=1e-8)
    # a trial point where nothing can be computed is -inf, not an exception
    assert obj.value_and_gradient(np.r_[np.nan, 0, 0, 0, 0, 0.5])[0] == -np.inf
    assert np.isfinite(obj.value_and_gradient(np.r_[800.0, 0, 0, 0, 0, 50.0])[0])


def test_association_design_columns():
    X, Z = association_design(3, 3, True, "cumulative")
    # cell (a, b) (0-based) collects the local odds ratios (i, j) with i < a, j < b
    assert Z.shape == (9, 4)
    np.testing.assert_array_equal(Z[8], [1, 1, 1, 1])
    np.testing.assert_array_equal(Z[4], [1, 0, 0, 0])
    np.testing.assert_array_equal(X[:, -1], [0, 0, 0, 0, 1, 2, 0, 2, 4])
    assert association_design(6, 6, False)[1].shape == (36, 25)
    # centred: a right inverse of the odds-ratio contrasts, orthogonal to row/column effects
    from gllmm.simulate._association_small import local_odds_ratio_contrasts

    Xc, Zc = association_design(3, 3, True, "centred")
    L = local_odds_ratio_contrasts(3, 3)
    np.testing.assert_allclose(L @ Zc, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(design_matrix(3, 3, None).T @ Zc, 0.0, atol=1e-12)
    c = SCORES - SCORES.mean()
    np.testing.assert_allclose(Xc[:, -1], np.outer(c, c).ravel(), atol=1e-12)
    with pytest.raises(ValueError, match="coding"):
        association_design(3, 3, True, "other")


def test_centred_coding_is_symmetric_and_cumulative_is_not():
    y = TABLES[0]
    flipped = y[::-1, :]
    a = fit_association_laplace(y, free_beta=False, coding="centred")
    b = fit_association_laplace(flipped, free_beta=False, coding="centred")
    np.testing.assert_allclose(a.probabilities[::-1, :], b.probabilities, atol=1e-7)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-9)
    c = fit_association_laplace(y, free_beta=False, coding="cumulative")
    d = fit_association_laplace(flipped, free_beta=False, coding="cumulative")
    assert abs(c.loglik - d.loglik) > 0.5  # a different model once the rows are reversed
    assert np.max(np.abs(c.probabilities[::-1, :] - d.probabilities)) > 1e-4


def test_closed_form_estimators():
    y = TABLES[0].astype(float)
    n = y.sum()
    np.testing.assert_allclose(get_estimator("sample_proportions")(y, SCORES), y / n)
    np.testing.assert_allclose(get_estimator("glm_independence")(y, SCORES),
                               np.outer(y.sum(1), y.sum(0)) / n**2)
    p = get_estimator("glm_uniform_association")(y, SCORES)
    # L x L ML keeps the margins and the score cross-product
    np.testing.assert_allclose(p.sum(1), y.sum(1) / n, atol=1e-10)
    np.testing.assert_allclose(p.sum(0), y.sum(0) / n, atol=1e-10)
    assert (SCORES @ p @ SCORES) == pytest.approx(SCORES @ y @ SCORES / n)


def test_bfgs_maximises_a_quadratic():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    res = maximize_bfgs(lambda x: (-(0.5 * x @ A @ x) + b @ x, -(A @ x) + b), np.zeros(2))
    assert res.converged
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), atol=1e-8)


@pytest.mark.parametrize("name", TABLE1_ESTIMATORS)
def test_every_table1_estimator_returns_probabilities(name):
    est = get_estimator(name)
    if not est.available():
        pytest.skip(f"{name} needs {est.requires}")
    spec = paper_table1_study(3)
    y = simulate_table(spec.scenarios[13], spec.seed, 0)
    p = est(y, SCORES)
    assert p.shape == (3, 3)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=0.02)  # posterior-mode fits need not sum to 1


def test_registry_errors_and_unavailable_adapters():
    with pytest.raises(SpecError, match="valid: .*sample_proportions"):
        get_estimator("no_such_estimator")
    fake = Estimator("needs_missing_module", "X", "test",
                     lambda c, s: __import__("gllmm_no_such_module"),
                     requires="gllmm_no_such_module")
    assert not fake.available()
    with pytest.raises(ImportError):
        fake(TABLES[0], SCORES)
    register_estimator(fake, replace=True)
    try:
        from gllmm.simulate import run_study
        from gllmm.simulate._spec import ScoreSet, StudySpec

        spec = StudySpec((ScoreSet("u", (1, 2, 3)),), (0.1,), (50,), ("needs_missing_module",),
                         replicates=1)
        with pytest.raises(EstimatorUnavailable, match="needs_missing_module"):
            run_study(spec, progress=False)
    finally:
        del ESTIMATORS["needs_missing_module"]


def test_smooth_adapter_raises_a_clear_error_when_its_module_is_missing():
    est = get_estimator("cellwise_gllmm_independence_smooth")
    if est.available():
        pytest.skip("gllmm.smooth._cellwise exists")
    with pytest.raises(EstimatorUnavailable, match=r"gllmm\.smooth\._cellwise"):
        est(TABLES[0], SCORES)


def test_true_model_recovered_by_glm_at_large_n():
    p = true_probabilities(SCORES, 0.4)
    y = np.round(p * 1e6)
    np.testing.assert_allclose(get_estimator("glm_uniform_association")(y, SCORES), p,
                               atol=1e-6)


@pytest.mark.parametrize("base", ["independence", "uniform_association"])
def test_cellwise_fit_equals_the_scalable_smoothing_path(base):
    est = get_estimator(f"cellwise_gllmm_{base}_smooth")
    if not est.available():
        pytest.skip("gllmm.smooth._cellwise is not available")
    fast = get_estimator(f"cellwise_gllmm_{base}")
    for y in TABLES:
        np.testing.assert_allclose(fast(y, SCORES), est(y, SCORES), atol=1e-6)


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
@pytest.mark.parametrize("which", ["beta0", "free_beta"])
def test_association_fit_equals_the_models_builder(which, coding):
    est = get_estimator(f"association_gllmm_{which}_engine")
    if not est.available():
        pytest.skip("gllmm.models._association_gllmm is not available")
    from gllmm.models._association_gllmm import random_association

    for y in TABLES:
        design = random_association(y, beta="free" if which == "free_beta" else 0.0,
                                    coding=coding)
        ref = _quiet_fit(design, method="laplace")
        fast = fit_association_laplace(y, free_beta=which == "free_beta", coding=coding)
        assert fast.loglik >= ref.loglik - 1e-8
        if abs(fast.loglik - ref.loglik) < 1e-6:
            np.testing.assert_allclose(fast.probabilities, ref.fitted_counts().reshape(3, 3)
                                       / y.sum(), atol=1e-6)
            if coding == "centred":
                np.testing.assert_allclose(fast.probabilities, est(y, SCORES), atol=1e-6)
