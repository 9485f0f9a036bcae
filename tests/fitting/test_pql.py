"""Penalized quasi-likelihood (Breslow & Clayton 1993) against ML (AGQ).

PQL is exact for a linear mixed model and its error in a GLMM shrinks as the counts per cluster
grow (the working model's normal approximation); it is biased towards zero for small counts
(Breslow & Clayton 1993; Breslow & Lin 1995). Tolerances, in units of the ML standard error
(SE), for every parameter: large counts (about 55 per cell), 0.02 SE (observed 0.011, an
intercept, which trades off with sigma through E[mu] = exp(b0 + sigma^2 / 2)); model (2.1) on a
3 x 3 table with n = 200, 0.02 SE (observed 0.016); the paper's local odds-ratio model (5.1) on
the clinical trial (counts 1-23), 0.05 SE overall (observed 0.032, a center intercept) and 1e-3
absolute on beta and sigma; non-canonical Dale global odds ratios with small strata, 0.25 SE
(observed 0.12) with sigma below ML, the known direction; small Poisson counts (about 0.6),
sigma below ML.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm.errors import FitError
from gllmm.fitting._glm import fit_glm
from gllmm.fitting._pql import WorkingModel, _weights, fit_pql
from gllmm.models._association_gllmm import random_association, stratified_random_association
from gllmm.spec import build_design


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def _poisson_glmm(mean_log: float, seed: int = 3, n_clusters: int = 15, size: int = 6):
    """Random-intercept Poisson GLMM, log mu = mean_log + 0.5 x + u_g, sd(u) = 0.5."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 0.5, n_clusters)
    df = pd.DataFrame({"g": np.repeat(np.arange(n_clusters), size),
                       "x": np.tile(np.linspace(-1, 1, size), n_clusters)})
    df["y"] = rng.poisson(np.exp(mean_log + 0.5 * df.x + u[df.g]))
    return build_design(df, "y ~ x + (1 | g)")


def _in_se(pql, ml, tol):
    se = np.sqrt(np.diag(ml.cov))
    return np.all(np.abs(pql.params - ml.params) <= tol * se)


def test_pql_matches_ml_with_large_counts():
    """Counts around exp(4) = 55 per cell: PQL within 0.02 ML SE of AGQ (15 nodes)."""
    d = _poisson_glmm(4.0)
    ml = _quiet(gllmm.fit, d, "agq", 15)
    pql = _quiet(fit_pql, d)
    assert pql.method == "pql" and pql.converged
    assert _in_se(pql, ml, 0.02)
    np.testing.assert_allclose(np.sqrt(np.diag(pql.cov)), np.sqrt(np.diag(ml.cov)), rtol=0.02)
    assert abs(pql.loglik - ml.loglik) < 0.01  # Laplace at PQL estimates vs AGQ optimum


def test_pql_underestimates_sigma_with_small_counts():
    """Counts around exp(-0.5) = 0.6: the known downward bias of PQL's variance estimate."""
    d = _poisson_glmm(-0.5)
    ml = _quiet(gllmm.fit, d, "agq", 15)
    pql = _quiet(fit_pql, d)
    assert pql.theta[0] < ml.theta[0] - 0.01
    assert abs(pql.params[1] - ml.params[1]) < 0.01 * np.sqrt(ml.cov[1, 1])


def test_pql_clinical_local_model_51(trial):
    """Model (5.1), local odds ratios: ML 0.5923 (0.2408), sigma 0.3438 (reference note)."""
    d = stratified_random_association(trial, "center", "treatment", "response", within=False)
    ml = _quiet(gllmm.fit, d, "agq", 15)
    pql = _quiet(fit_pql, d)
    assert _in_se(pql, ml, 0.05)
    assert abs(pql.beta["beta"] - 0.5923) < 1e-3
    assert abs(pql.random_sd["center"] - 0.3438) < 1e-3
    # canonical link: PQL's own approximation equals Laplace at the PQL estimates
    assert abs(pql.extra["pql_loglik"] - pql.loglik) < 1e-6
    assert pql.extra["loglik_method"] == "laplace at the PQL estimates"


def test_pql_dale_global_non_canonical(trial, clinical_global):
    """Dale's global odds ratios (plug-in): PQL works from the family's derivatives alone; it
    shrinks sigma (0.974 against ML 1.030) and stays within 0.25 ML SE."""
    d = stratified_random_association(trial, "center", "treatment", "response",
                                      odds_ratio="global", within=False, marginals="plug-in",
                                      individual=True)
    pql = _quiet(fit_pql, d)
    assert pql.converged
    assert _in_se(pql, clinical_global, 0.25)
    assert pql.theta[0] < clinical_global.theta[0]


def test_pql_model21_multinomial():
    """(2.1), beta = 0, centred coding, one multinomial 3 x 3 table (singular working weights)."""
    p = np.exp(0.4 * np.outer([-1, 0, 1], [-1, 0, 1]))
    tab = np.random.default_rng(9).multinomial(200, (p / p.sum()).ravel()).reshape(3, 3)
    d = random_association(tab, beta=0, coding="centred")
    ml = _quiet(gllmm.fit, d, "agq", 5)
    pql = _quiet(fit_pql, d)
    assert _in_se(pql, ml, 0.02)
    # the PQL BLUPs are the exact posterior modes at the PQL estimates
    lap = gllmm.integrate.MarginalLikelihood(d, 1).posterior(pql.params)
    np.testing.assert_allclose(pql.posterior["mode"], lap["mode"], atol=1e-8)


def test_pql_reml_and_loglik_options():
    d = _poisson_glmm(4.0)
    ml_pql = _quiet(fit_pql, d)
    reml = _quiet(fit_pql, d, criterion="reml")
    assert reml.extra["criterion"] == "reml"
    assert reml.theta[0] > ml_pql.theta[0]  # REML corrects ML's downward bias in sigma
    own = _quiet(fit_pql, d, loglik="pql")
    assert own.loglik == own.extra["pql_loglik"]
    assert own.extra["loglik_method"].startswith("pql approximation")
    with pytest.raises(FitError, match="unknown criterion"):
        fit_pql(d, criterion="mle")
    with pytest.raises(FitError, match="no random effects"):
        fit_pql(build_design(pd.DataFrame({"y": [1, 2, 3], "x": [0.0, 1, 2]}), "y ~ x"))


@pytest.mark.parametrize("reml", [False, True])
def test_working_model_gradients(trial, reml):
    """Exact gradients of the working LMM's profiled and unprofiled log-likelihoods against
    central differences (rtol 1e-5)."""
    d = stratified_random_association(trial, "center", "treatment", "response")
    x = np.r_[fit_glm(d, warn=False).beta, 0.4, 0.3]
    eta = d.X @ x[: d.n_fixed] + d.offset
    g, W = _weights(d, eta, "fisher")
    z = eta - d.offset + np.einsum("bjk,bk->bj", np.linalg.pinv(W), g)
    wm = WorkingModel(d, W, z)
    theta = np.array([0.4, 0.3])
    _, grad, _ = wm.profiled(theta, reml)
    num = [(wm.profiled(theta + h, reml)[0] - wm.profiled(theta - h, reml)[0]) / 2e-6
           for h in np.eye(2) * 1e-6]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)
    _, grad = wm.loglik(x)
    num = [(wm.loglik(x + h)[0] - wm.loglik(x - h)[0]) / 2e-6 for h in np.eye(len(x)) * 1e-6]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)
