"""Tests after the fit: LR tests with boundary-corrected references, anova, Wald tests,
intervals, residuals and the step-by-step pipeline's equality with ``fit``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import gllmm
from gllmm.errors import BoundaryWarning, FitError


@pytest.fixture(scope="module")
def slopes():
    """Poisson counts with a random intercept and a random slope in x per group (seed 11)."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(30), 10)
    x = rng.normal(size=g.size)
    u = rng.normal(size=(30, 2)) * [0.5, 0.4]
    y = rng.poisson(np.exp(0.5 + 0.3 * x + u[g, 0] + u[g, 1] * x))
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.fixture(scope="module")
def slope_fits(slopes):
    full = gllmm.fit(gllmm.build_design(slopes, "y ~ x + (1 + x | g)"), method="laplace")
    null = gllmm.fit(gllmm.build_design(slopes, "y ~ x + (1 | g)"), method="laplace")
    return full, null


def test_lr_random_slope_uses_chibar_mixture(slope_fits):
    # (1 + x | g) against (1 | g): one variance (the slope's Cholesky diagonal) and one
    # covariance added, so the reference is 0.5 chi2(1) + 0.5 chi2(2) (Self & Liang 1987)
    full, null = slope_fits
    t = full.lr_test(null)
    stat = 2 * (full.loglik - null.loglik)
    assert t.df == 2 and t.boundary_components == 1
    assert abs(t.statistic - stat) < 1e-12
    mixture = 0.5 * stats.chi2.sf(stat, 1) + 0.5 * stats.chi2.sf(stat, 2)
    assert abs(t.p_value - mixture) < 1e-12
    assert t.p_value < stats.chi2.sf(stat, 2)  # the plain chi-square(2) tail is larger


def test_chibar_closed_form():
    # one variance and no other parameter: half the chi-square(1) tail; 2 variances, 0 others:
    # 1/4 point mass + 1/2 chi2(1) + 1/4 chi2(2)
    assert abs(gllmm.results.chibar_sf(2.71, 1, 1) - 0.5 * stats.chi2.sf(2.71, 1)) < 1e-15
    s = 3.3
    expected = 0.5 * stats.chi2.sf(s, 1) + 0.25 * stats.chi2.sf(s, 2)
    assert abs(gllmm.results.chibar_sf(s, 2, 2) - expected) < 1e-15


def test_lr_test_either_order(slope_fits):
    full, null = slope_fits
    a, b = full.lr_test(null), null.lr_test(full)
    assert (a.statistic, a.df, a.p_value) == (b.statistic, b.df, b.p_value)
    assert np.isfinite(b.p_value) and b.df == 2


def test_lr_test_same_size_refused(slope_fits):
    full, _ = slope_fits
    with pytest.raises(FitError, match="same number of parameters"):
        full.lr_test(full)


def test_anova_orders_by_complexity(slope_fits):
    full, null = slope_fits
    table = gllmm.anova(full, null)
    assert list(table["npar"]) == [null.n_params, full.n_params]
    assert abs(table["logLik"].iloc[0] - null.loglik) < 1e-12
    assert abs(table["deviance"].iloc[1] - (-2 * full.loglik)) < 1e-9
    assert abs(table["Pr(>Chisq)"].iloc[1] - full.lr_test(null).p_value) < 1e-15
    assert np.isnan(table["Chisq"].iloc[0])
    assert list(table.index) == ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"]


def test_parameter_roles_from_structure(slope_fits):
    full, null = slope_fits
    assert full.param_roles == ("fixed", "fixed", "cholesky_diagonal", "cholesky_offdiagonal",
                                "cholesky_diagonal")
    assert null.param_roles == ("fixed", "fixed", "sd")


def test_wald_test_by_name_is_z_squared(slope_fits):
    full, _ = slope_fits
    t = full.wald_test(["x"])
    z = full.beta["x"] / full.se["x"]
    assert t.df == 1 and abs(t.statistic - z**2) < 1e-9
    assert abs(t.p_value - 2 * stats.norm.sf(abs(z))) < 1e-12


def test_wald_conf_int_covers_every_parameter(slope_fits):
    full, _ = slope_fits
    ci = full.conf_int()
    assert list(ci.index) == list(full.names)
    se = np.sqrt(np.diag(full.cov))
    k = list(full.names).index("x")
    assert abs(ci.iloc[k, 1] - (full.params[k] + stats.norm.ppf(0.975) * se[k])) < 1e-12
    assert np.all(ci.iloc[:, 0].to_numpy() <= full.params)


def test_pipeline_equals_fit_with_label_and_warnings(mba):
    design = gllmm.models.cellwise_smoothing(mba, "statistics", "economics",
                                             base="linear_by_linear")
    with warnings.catch_warnings(record=True) as w_fit:
        warnings.simplefilter("always")
        by_fit = gllmm.fit(design, method="laplace")
    with warnings.catch_warnings(record=True) as w_steps:
        warnings.simplefilter("always")
        obj = gllmm.make_objective(design, "laplace")
        by_steps = gllmm.make_result(design, obj, gllmm.optimize(obj, design))
    assert by_steps.method_label == by_fit.method_label == "LAPLACE"
    assert by_steps.strategy == by_fit.strategy == "scalar"
    assert abs(by_steps.loglik - by_fit.loglik) < 1e-12
    np.testing.assert_allclose(by_steps.params, by_fit.params, rtol=0, atol=1e-12)
    # the linear-by-linear model's cell SD is on the boundary: both routes warn the same way
    kinds = sorted(str(x.category.__name__) for x in w_fit)
    assert kinds == sorted(str(x.category.__name__) for x in w_steps)
    assert BoundaryWarning.__name__ in kinds


def _glm_data():
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    n = rng.integers(3, 12, size=40)
    s = rng.binomial(n, 1 / (1 + np.exp(-(0.2 + 0.8 * x))))
    return pd.DataFrame({"x": x, "s": s, "f": n - s, "y": rng.poisson(np.exp(1 + 0.5 * x))})


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_residuals_equal_statsmodels(family):
    # statsmodels' GLM deviance and Pearson residuals; response residuals on R's scale
    # (binomial: y/n - p, statsmodels gives n times that); rows fed in shuffled order must
    # come back indexed by their data row. Tolerance 1e-6.
    df = _glm_data().sample(frac=1.0, random_state=3).reset_index(drop=True)
    X = sm.add_constant(df[["x"]])
    if family == "poisson":
        ours = gllmm.fit("y ~ x", data=df)
        ref = sm.GLM(df["y"], X, family=sm.families.Poisson()).fit(tol=1e-12)
        response = df["y"] - ref.mu
    else:
        ours = gllmm.fit("cbind(s, f) ~ x", data=df, family="binomial")
        ref = sm.GLM(df[["s", "f"]], X, family=sm.families.Binomial()).fit(tol=1e-12)
        response = df["s"] / (df["s"] + df["f"]) - ref.mu
    for kind, theirs in (("deviance", ref.resid_deviance), ("pearson", ref.resid_pearson),
                         ("response", response)):
        r = ours.residuals(kind)
        np.testing.assert_allclose(r.to_numpy(), np.asarray(theirs), rtol=1e-6, atol=1e-7)
    assert abs(ours.goodness_of_fit()["G2"] - ref.deviance) < 1e-6
    assert ours.nobs == len(df)
    assert abs(ours.bic - (-2 * ref.llf + np.log(len(df)) * 2)) < 1e-6
