"""Table 1 estimators: the engine's global ML fits (boundary and interior searches) on
objectives prepared once per table shape, against ``gllmm.fit`` on freshly built designs,
closed forms, registry behaviour (paper Sections 2.1, 2.2, 4)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import quiet_fit

from gllmm import models
from gllmm.errors import SpecError
from gllmm.fitting import make_objective, optimize
from gllmm.models._association_gllmm import random_association
from gllmm.simulate import (
    ESTIMATORS,
    TABLE1_ESTIMATORS,
    Estimator,
    EstimatorUnavailable,
    get_estimator,
    paper_table1_study,
    register_estimator,
    simulate_table,
    true_probabilities,
)

SCORES = np.array([1.0, 2.0, 3.0])
# tables with an interior sigma and with sigma = 0 for both bases (seeded draws from the truth)
TABLES = [
    np.array([[30, 12, 4], [14, 26, 17], [6, 15, 76]]),
    np.array([[9, 5, 4], [6, 6, 5], [3, 5, 7]]),
    np.array([[69, 10, 6], [11, 20, 25], [10, 17, 32]]),
]


def _long(y):
    rows, cols = np.divmod(np.arange(y.size), y.shape[1])
    return pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": y.ravel()})


def _cellwise(y, base):
    return models.cellwise_smoothing(_long(y), "row", "col", base=base,
                                     row_scores=list(SCORES), col_scores=list(SCORES))


def _global(design, method, sd_starts):
    objective = make_objective(design, method, 15 if method == "agq" else None)
    objective.method_name = method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return objective, optimize(objective, design, sd_starts=sd_starts)


@pytest.mark.parametrize("base", ["independence", "linear_by_linear"])
@pytest.mark.parametrize("k", range(len(TABLES)))
def test_cellwise_estimator_equals_gllmm_fit(base, k):
    # on these tables the engine's local search from sigma = 0.5 reaches the global maximum
    y = TABLES[k]
    ref = quiet_fit(_cellwise(y, base), method="agq", n_nodes=15)
    _, opt = _global(_cellwise(y, base), "agq", (0.5,))
    assert opt.final_loglik == pytest.approx(ref.loglik, abs=1e-8)
    assert opt.final[-1] == pytest.approx(float(ref.params[-1]), abs=1e-5)
    assert (opt.final[-1] == 0.0) == (ref.params[-1] == 0.0)
    name = "cellwise_gllmm_" + ("independence" if base == "independence"
                                else "uniform_association")
    np.testing.assert_allclose(get_estimator(name)(y, SCORES),
                               ref.fitted_counts().reshape(3, 3) / y.sum(), rtol=1e-6)


def test_global_fit_finds_the_interior_maximum_a_bounded_search_misses():
    # Table 1, scenario 11, replicate 1: the likelihood rises steeply from sigma = 0 to a
    # maximum near 0.04 and falls below l(0) by 0.1; from sigma = 0.5 a bounded search lands
    # on sigma = 0, a stationary point (the likelihood is even in sigma), and stays there.
    # gllmm.fit's search ends there too and its boundary restarts reach the same maximum
    spec = paper_table1_study(3)
    y = simulate_table(spec.scenarios[11], spec.seed, 1)
    design = _cellwise(y, "independence")
    local = quiet_fit(design, method="agq", n_nodes=15)
    objective, opt = _global(design, "agq", (0.5,))
    boundary = objective.value_and_gradient(np.r_[opt.final[:-1], 0.0], gradient=False)[0]
    assert opt.final_loglik > boundary + 0.04
    assert local.loglik == pytest.approx(opt.final_loglik, abs=1e-8)
    assert 0.01 < opt.final[-1] < 0.1
    # a maximum: the gradient vanishes and a grid in sigma around it is lower
    grad = objective.value_and_gradient(opt.final)[1]
    assert np.max(np.abs(grad)) < 1e-4
    for sigma in (0.0, 0.5 * opt.final[-1], 1.5 * opt.final[-1], 0.1):
        x = opt.final.copy()
        x[-1] = sigma
        assert objective.value_and_gradient(x, gradient=False)[0] < opt.final_loglik


def test_cellwise_zero_sd_is_the_poisson_glm():
    y = TABLES[1]
    objective, opt = _global(_cellwise(y, "linear_by_linear"), "agq", (0.5,))
    assert opt.boundary == ("sd(row:col)",)
    glm = quiet_fit(_cellwise(y, "linear_by_linear"), method="agq", n_nodes=15)
    assert opt.final_loglik == pytest.approx(glm.loglik, abs=1e-8)
    np.testing.assert_allclose(get_estimator("cellwise_gllmm_uniform_association")(y, SCORES),
                               get_estimator("glm_uniform_association")(y, SCORES), atol=1e-8)


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
@pytest.mark.parametrize("free_beta", [False, True])
@pytest.mark.parametrize("k", range(len(TABLES)))
def test_association_fit_is_global_and_equals_gllmm_fit(free_beta, k, coding):
    y = TABLES[k]
    beta = "free" if free_beta else 0.0
    ref = quiet_fit(random_association(y, beta=beta, coding=coding), method="laplace")
    objective, opt = _global(random_association(y, beta=beta, coding=coding), "laplace",
                             (0.5, 1.5))
    # the engine's single search may stop at a local maximum; global ML is at least as high
    assert opt.final_loglik >= ref.loglik - 1e-8
    name = f"association_gllmm_{'free_beta' if free_beta else 'beta0'}"
    p = get_estimator(name + ("" if coding == "centred" else "_cumulative"))(y, SCORES)
    mu = objective.design.family.mean(objective.posterior(opt.final)["eta_mode"])
    np.testing.assert_allclose(p.ravel(), mu.ravel() / y.sum(), atol=1e-12)
    if abs(opt.final_loglik - ref.loglik) < 1e-6:
        np.testing.assert_allclose(p.ravel(), ref.fitted_counts() / y.sum(), atol=1e-6)


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
def test_association_zero_sd_gives_the_glm(coding):
    y = TABLES[1]
    _, opt = _global(random_association(y, coding=coding), "laplace", (0.5, 1.5))
    assert opt.boundary == ("sd(odds_ratio)",)
    name = "association_gllmm_free_beta" + ("" if coding == "centred" else "_cumulative")
    np.testing.assert_allclose(get_estimator(name)(y, SCORES),
                               get_estimator("glm_uniform_association")(y, SCORES), atol=1e-8)


def test_centred_coding_is_symmetric_and_cumulative_is_not():
    y = TABLES[0]
    flipped = y[::-1, :]
    a, b = (get_estimator("association_gllmm_beta0")(t, SCORES) for t in (y, flipped))
    np.testing.assert_allclose(a[::-1, :], b, atol=1e-7)
    c, d = (get_estimator("association_gllmm_beta0_cumulative")(t, SCORES) for t in (y, flipped))
    assert np.max(np.abs(c[::-1, :] - d)) > 1e-4  # a different model once the rows are reversed


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


@pytest.mark.parametrize("name", TABLE1_ESTIMATORS)
def test_every_table1_estimator_returns_probabilities(name):
    est = get_estimator(name)
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


def test_smooth_adapter_raises_a_clear_error_when_its_module_is_missing(monkeypatch):
    # hide the module (a None entry in sys.modules makes importing it raise ImportError)
    monkeypatch.setitem(sys.modules, "gllmm.smooth._cellwise", None)
    est = get_estimator("cellwise_gllmm_independence_smooth")
    assert not est.available()
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
    fast = get_estimator(f"cellwise_gllmm_{base}")
    for y in TABLES:
        np.testing.assert_allclose(fast(y, SCORES), est(y, SCORES), atol=1e-6)


def test_loess_gam_estimator_is_r_gam_at_the_aicc_span():
    """The LL (loess GAM) estimator against R's gam::gam(y ~ lo(x1, x2)) on 3 x 3 tables
    (tests/fixtures/r/loess_gam_fits.json): R's fits at every span class up to 1, the
    minimum of D + 2 K (df + 1) / (K - df - 2) among them, fitted counts over their total;
    tolerance 1e-6 (fits agree to 1e-7)."""
    import json
    from pathlib import Path

    fits = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "r" /
                       "loess_gam_fits.json").read_text())["fits"]
    tables = {}
    for rec in fits:
        if rec["label"].startswith("table3x3") and rec["span"] <= 1:
            tables.setdefault(rec["label"], []).append(rec)
    assert len(tables) == 4
    estimator = get_estimator("loess_gam")
    for records in tables.values():
        aicc = [r["deviance"] + 2 * 9 * (r["df"] + 1) / (9 - r["df"] - 2) if r["df"] < 7
                else np.inf for r in records]
        best = records[int(np.argmin(aicc))]
        y = np.reshape(best["data"]["y"], (3, 3))
        expected = np.reshape(best["fitted"], (3, 3)) / np.sum(best["fitted"])
        np.testing.assert_allclose(estimator(y, SCORES), expected, atol=1e-6)
