"""Random association models (paper Sections 2.1, 3.1, 5.2) and Dale's full-ML family.

Reference values: ../shared/reference/paper_numbers.md, Section 5.2 (clinical trial). Tolerances:
1e-3 on estimates, SEs and log-likelihoods (the note's 4-decimal values); analytic derivatives
against central differences with rtol 5e-5 (STYLE.md item 12).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import assert_derivatives_match_differences

import gllmm
from gllmm.errors import SpecError
from gllmm.links import dale_plugin_family
from gllmm.links._dale_full import dale_full_family, plackett_partials
from gllmm.models._association_gllmm import (
    association_from_contrasts,
    local_coding,
    random_association,
    stratified_random_association,
)
from gllmm.spec import local_odds_ratios

SCORES = np.array([1.0, 2.0, 3.0])


def local_contrasts(n_rows, n_cols):
    """The local log odds-ratio contrasts D_I (x) D_J, dense (spec's builder)."""
    return local_odds_ratios((n_rows, n_cols), sparse=False).C


def section4_table(seed: int = 9, beta: float = 0.4, n: int = 200) -> np.ndarray:
    """A 3 x 3 table from the Section 4 model, p_ij ~ exp(beta (s_i - 2)(s_j - 2))."""
    p = np.exp(beta * np.outer(SCORES - 2, SCORES - 2))
    p /= p.sum()
    return np.random.default_rng(seed).multinomial(n, p.ravel()).reshape(3, 3)


def _fit(design, method="agq", n_nodes=15):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, method=method, n_nodes=n_nodes)


def _check(res, name, est, se=None, tol=1e-3):
    i = res.names.index(name)
    assert abs(res.params[i] - est) < tol, (name, res.params[i], est)
    if se is not None:
        assert abs(np.sqrt(res.cov[i, i]) - se) < tol, (name, np.sqrt(res.cov[i, i]), se)


# ---------------------------------------------------------------------- Dale, full ML
def _dale_eta(rng, fam, n_blocks=3, n_nodes=2):
    """Ordered marginal cut points and moderate log odds ratios giving valid probabilities
    (Dale's model does not guarantee positive cells for arbitrary odds ratios)."""
    ni, nj = fam.shape
    while True:
        x = np.cumsum(0.8 + 0.3 * rng.random((n_blocks, n_nodes, ni - 1)), axis=-1) - 1.0
        y = np.cumsum(0.8 + 0.3 * rng.random((n_blocks, n_nodes, nj - 1)), axis=-1) - 1.2
        lp = 0.3 * rng.normal(size=(n_blocks, n_nodes, (ni - 1) * (nj - 1)))
        eta = np.concatenate([x, y, lp], axis=-1)
        if np.all(fam.probabilities(eta) > 1e-3):
            return eta


@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (3, 3), (3, 4)])
def test_dale_full_derivatives_match_differences(shape):
    rng = np.random.default_rng(sum(shape))
    fam = dale_full_family(rng.poisson(5, size=(3,) + shape) + 1)
    eta = _dale_eta(rng, fam)
    assert np.all(np.isfinite(fam.derivatives(eta, 0)[0]))
    assert_derivatives_match_differences(fam, eta, atol=(1e-6, 1e-5, 1e-4))


def test_plackett_partials_match_differences():
    rng = np.random.default_rng(5)
    z = np.stack([rng.normal(size=20), rng.uniform(0.2, 0.8, 20), rng.uniform(0.2, 0.8, 20)], 1)
    f, f1, f2, f3 = plackett_partials(z[:, 0], z[:, 1], z[:, 2])
    eps = 1e-6
    for a in range(3):
        h = np.zeros(3)
        h[a] = eps
        fp = plackett_partials(*(z + h).T)
        fm = plackett_partials(*(z - h).T)
        np.testing.assert_allclose((fp[0] - fm[0]) / (2 * eps), f1[:, a], rtol=5e-5, atol=1e-8)
        np.testing.assert_allclose((fp[1] - fm[1]) / (2 * eps), f2[:, a], rtol=5e-5, atol=1e-7)
        np.testing.assert_allclose((fp[2] - fm[2]) / (2 * eps), f3[:, a], rtol=5e-5, atol=1e-6)


def test_dale_full_probabilities_margins_and_plugin_agreement():
    rng = np.random.default_rng(11)
    tables = rng.poisson(6, size=(2, 3, 4)).astype(float) + 1
    fam = dale_full_family(tables)
    n = tables.sum(axis=(1, 2))
    rows = np.cumsum(tables.sum(2), 1)[:, :-1] / n[:, None]
    cols = np.cumsum(tables.sum(1), 1)[:, :-1] / n[:, None]
    lp = 0.4 * rng.normal(size=(2, 6))
    eta = np.concatenate([np.log(rows / (1 - rows)), np.log(cols / (1 - cols)), lp], axis=1)
    pi = fam.probabilities(eta).reshape(2, 3, 4)
    np.testing.assert_allclose(pi.sum(axis=(1, 2)), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.cumsum(pi.sum(2), 1)[:, :-1], rows, atol=1e-12)
    np.testing.assert_allclose(np.cumsum(pi.sum(1), 1)[:, :-1], cols, atol=1e-12)
    # global odds ratio after row 1, column 2 of block 0
    F = np.cumsum(np.cumsum(pi[0], 0), 1)
    a, b, f = F[0, -1], F[-1, 1], F[0, 1]
    assert abs(np.log(f * (1 - a - b + f) / ((a - f) * (b - f))) - lp[0, 1]) < 1e-10
    # at the sample margins, full-ML and plug-in Dale give the same log-likelihood
    plug = dale_plugin_family(tables)
    l_full = fam.derivatives(eta[:, None], 0)[0]
    l_plug = plug.derivatives(lp[:, None], 0)[0]
    np.testing.assert_allclose(l_full, l_plug, rtol=1e-12)


# ---------------------------------------------------------------------- clinical trial (5.2)
@pytest.fixture(scope="module")
def global_full(trial):
    d = stratified_random_association(trial, "center", "treatment", "response",
                                      odds_ratio="global", within=False, marginals="ml",
                                      individual=True)
    return _fit(d)


def test_clinical_global_full_ml(global_full):
    """Reference note 5.2: full ML, beta 0.8279 (0.4756), sigma 1.0278 (0.4789), -407.0853."""
    r = global_full
    _check(r, "beta", 0.8279, 0.4756)
    assert abs(r.random_sd["center"] - 1.0278) < 1e-3
    assert abs(r.random_sd_se["center"] - 0.4789) < 1e-3
    assert abs(r.loglik - (-407.0853)) < 1e-3
    assert r.design.notes["marginals"] == "estimated jointly by ML (marginal cumulative logits)"
    assert r.converged and not r.boundary


def test_clinical_global_full_ml_marginals_are_ml(global_full, trial):
    """At the ML fit the fitted margins are close to, but not equal to, the sample margins."""
    fitted = global_full.fitted()
    obs = fitted.groupby(["center", "treatment"], observed=True)[["observed", "fitted"]].sum()
    diff = (obs["fitted"] - obs["observed"]).abs()
    assert diff.max() < 0.5 and diff.max() > 1e-4


def test_clinical_global_plugin(trial):
    """The plug-in version through the new builder: the reference note's 0.8274 (0.4758)."""
    d = stratified_random_association(trial, "center", "treatment", "response",
                                      odds_ratio="global", within=False,
                                      marginals="plug-in", individual=True)
    r = _fit(d)
    _check(r, "beta", 0.8274, 0.4758)
    assert abs(r.random_sd["center"] - 1.0303) < 1e-3
    assert abs(r.random_sd_se["center"] - 0.4781) < 1e-3
    assert abs(r.loglik - (-407.0976)) < 1e-3
    assert r.design.notes["marginals"] == "plug-in sample proportions"


def test_model_24_reduces_to_51_on_clinical_trial(trial):
    """(2.4) with local odds ratios: sigma_u = 0 (boundary), so the fit is model (5.1)
    with centred scores: beta 0.5923 (0.2408), sigma_b 0.3438 (0.3633), loglik -86.7884."""
    d = stratified_random_association(trial, "center", "treatment", "response")
    assert d.notes["model"] == "2.4"
    assert d.covariance.names == ("sd(center)", "sd(center:odds_ratio)")
    assert d.n_random == 3 and d.n_clusters == 8
    r = _fit(d, n_nodes=5)
    assert r.boundary == ("sd(center:odds_ratio)",)
    _check(r, "beta", 0.5923, 0.2408)
    assert abs(r.random_sd["center"] - 0.3438) < 1e-3
    assert abs(r.loglik - (-86.7884)) < 1e-3
    special = _fit(stratified_random_association(trial, "center", "treatment", "response",
                                                 within=False))
    assert abs(special.loglik - r.loglik) < 1e-5  # 15 vs 5 nodes in the b dimension
    assert abs(special.random_sd_se["center"] - 0.3633) < 1e-3


def test_model_23_fixed_strata(trial):
    d = stratified_random_association(trial, "center", "treatment", "response", strata="fixed")
    assert d.notes["model"] == "2.3"
    assert [n for n in d.fixed_names if n.startswith("beta")] == [
        f"beta[{c}]" for c in range(1, 9)]
    assert d.covariance.names == ("sd(center:odds_ratio)",)
    r = _fit(d, "laplace")
    # with sigma_u at 0, beta_k are the per-center uniform local association fits; center 1
    # is the reference note's 1.7226 (Table 4, fixed local column)
    assert r.boundary == ("sd(center:odds_ratio)",)
    _check(r, "beta[1]", 1.7226)


# ---------------------------------------------------------------------- two-way model (2.1)
def test_local_codings_are_right_inverses():
    for ni, nj in [(2, 2), (3, 3), (3, 5)]:
        L = local_contrasts(ni, nj)
        for coding in ("centred", "cumulative"):
            S = local_coding(ni, nj, coding)
            np.testing.assert_allclose(L @ S, np.eye(L.shape[0]), atol=1e-12)
        col = local_coding(ni, nj, "centred") @ np.ones(L.shape[0])
        a, b = np.arange(ni) - (ni - 1) / 2, np.arange(nj) - (nj - 1) / 2
        np.testing.assert_allclose(col, np.outer(a, b).ravel(), atol=1e-12)


def test_model_21_design_is_one_cluster():
    tab = section4_table()
    d = random_association(tab)
    assert d.n_clusters == 1 and d.n_random == 4 and d.family.name == "multinomial"
    assert d.covariance.names == ("sd(odds_ratio)",)
    assert d.fixed_names == ("row[2]", "row[3]", "col[2]", "col[3]", "beta")
    assert d.notes["model"] == "2.1" and d.notes["coding"] == "centred"
    assert d.notes["scores"]["row"].tolist() == [-1.0, 0.0, 1.0]
    d0 = random_association(tab, beta=0)
    assert "beta" not in d0.fixed_names and d0.notes["beta"] == 0.0
    rc = random_association(pd.DataFrame({"r": np.repeat([1, 2, 3], 3), "c": np.tile([1, 2, 3], 3),
                                          "count": tab.ravel()}), "r", "c",
                            random="row+column")
    assert rc.covariance.names == ("sd(r)", "sd(c)") and rc.n_random == 4
    g = random_association(tab, odds_ratio="global")
    assert g.family.name == "dale-full" and g.notes["marginals"].startswith("estimated")


@pytest.mark.parametrize("coding,sigma", [("cumulative", 0.7110), ("centred", 0.7843)])
def test_model_21_laplace_and_agq_agree_3x3(coding, sigma):
    """(2.1) with beta = 0 on a Section 4 table (seed 9, beta 0.4, n 200): AGQ with 5 and 7
    nodes per dimension (625 and 2401 nodes) agree to 1e-4; Laplace is within 0.01 SE of AGQ
    (its error, not Monte Carlo error; MCEM is compared in tests/fit/test_mcem.py). The two
    codings are different models once u is integrated out (module docstring)."""
    d = random_association(section4_table(), beta=0, coding=coding)
    lap, agq5, agq7 = _fit(d, "laplace"), _fit(d, "agq", 5), _fit(d, "agq", 7)
    se = np.sqrt(np.diag(agq7.cov))
    assert np.max(np.abs(agq5.params - agq7.params)) < 1e-4
    assert abs(agq5.loglik - agq7.loglik) < 1e-4
    assert np.max(np.abs(lap.params - agq7.params) / se) < 0.01
    assert abs(agq7.random_sd["odds_ratio"] - sigma) < 1e-3


def test_uniform_association_on_mba_table(mba):
    """``random="none"``: the uniform local association model; on the 6 x 7 MBA table its beta
    is the reference note's (2.6) L x L estimate 0.4398 (0.1422) (equal under Poisson and
    multinomial sampling)."""
    d = random_association(mba, "statistics", "economics", random="none", coding="centred")
    r = _fit(d)
    _check(r, "beta", 0.4398, 0.1422)
    assert d.notes["scores"]["statistics"].tolist() == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]


def test_row_column_model_on_mba_table(mba):
    """R + C random association on the 6 x 7 MBA table: both SDs at 0 (boundary), so the fit
    is the uniform association model (same log-likelihood to 1e-6, beta 0.4398)."""
    d = random_association(mba, "statistics", "economics", random="row+column")
    assert d.n_random == 5 + 6 and d.n_clusters == 1
    r = _fit(d, "laplace")
    u = _fit(random_association(mba, "statistics", "economics", random="none"))
    assert set(r.boundary) == {"sd(statistics)", "sd(economics)"}
    assert abs(r.loglik - u.loglik) < 1e-6
    _check(r, "beta", 0.4398)


def test_two_way_global_full_ml_laplace_and_agq():
    """(2.1) with beta = 0 on global odds ratios (Dale, full ML) for the 3 x 3 table: AGQ with
    5 nodes per dimension and Laplace within 0.01 SE."""
    d = random_association(section4_table(), odds_ratio="global", beta=0)  # coding: local only
    assert d.family.n_eta == 8 and d.n_random == 4
    lap, agq = _fit(d, "laplace"), _fit(d, "agq", 5)
    se = np.sqrt(np.diag(agq.cov))
    assert np.max(np.abs(lap.params - agq.params) / se) < 0.01
    assert abs(agq.random_sd["odds_ratio"] - 0.9086) < 1e-3


def test_association_from_contrasts_matches_builder():
    tab = section4_table()
    L = local_contrasts(3, 3)
    d = association_from_contrasts(tab, L, fixed=np.ones((4, 1)), random=np.eye(4),
                                   fixed_names=("beta",))
    r1 = _fit(d, "laplace")
    r2 = _fit(random_association(tab, coding="centred"), "laplace")
    assert abs(r1.loglik - r2.loglik) < 1e-6
    assert abs(r1.beta["beta"] - r2.beta["beta"]) < 1e-5


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize("build,message", [
    (lambda: random_association(np.array([[3.0, 4.0, 5.0]])), "1 x 3 table has no odds ratios"),
    (lambda: random_association(np.array([[3.0, 4, 5], [0, 0, 0], [2, 6, 1]])),
     "no observations: the odds ratios involving it are undefined"),
    (lambda: random_association(np.array([[3.0, 4], [5, 6]])),
     "more dimensions than the table can identify"),
    (lambda: random_association(np.array([[3.0, 4, 1], [5, 6, 2]]), random="row+column"),
     "3 association parameters (fixed effects and variance components) for only 2 local"),
    (lambda: random_association(np.array([[3.0, 4, 1, 2], [5, 6, 2, 2]]), random="row+column"),
     "the variance of row is not identified"),
    (lambda: association_from_contrasts(np.ones(4), np.vstack([local_contrasts(2, 2)] * 4)),
     "more odds-ratio constraints (4) than the table allows: a table of 4 cells"),
    (lambda: association_from_contrasts(np.ones(4), np.array([[1.0, 0, 0, 0]])),
     "does not sum to zero"),
    (lambda: association_from_contrasts(np.ones(9), np.vstack([local_contrasts(3, 3)[:2]] * 2)),
     "rank 2"),
    (lambda: association_from_contrasts(np.ones(4), local_contrasts(2, 2), fixed=np.ones((1, 1)),
                                        random=np.eye(1)),
     "more dimensions than the table can identify"),
])
def test_non_identifiable_specs_are_refused(build, message):
    with pytest.raises(SpecError) as err:
        build()
    assert message in str(err.value)


def test_stratified_refusals(trial):
    two_by_two = trial[trial.response != "better"].copy()
    two_by_two["response"] = two_by_two["response"].cat.remove_unused_categories()
    with pytest.raises(SpecError, match="not separately identified"):
        stratified_random_association(two_by_two, "center", "treatment", "response")
    with pytest.raises(SpecError, match="at least two strata"):
        stratified_random_association(trial[trial.center == 1], "center", "treatment",
                                      "response", within=False)
    empty = trial.copy()
    empty.loc[(empty.center == 2) & (empty.treatment == "placebo"), "count"] = 0
    with pytest.raises(SpecError, match="treatment 'placebo' in center 2 has no observations"):
        stratified_random_association(empty, "center", "treatment", "response")
    with pytest.raises(SpecError, match="unknown marginals"):
        stratified_random_association(trial, "center", "treatment", "response",
                                      odds_ratio="global", marginals="sample")
