"""Monte Carlo EM (Booth & Hobert 1999) against AGQ, on the paper's model (2.1) and (5.1).

"Agreement within Monte Carlo error" is tested as
``|MCEM - AGQ| <= 4 * mc_se + se_tol * SE``: four Monte Carlo standard errors of the final
M-step (``extra["mc_se"]``, the sandwich of the sample-size rule) plus the stopping tolerance
(changes below ``se_tol`` complete-data SEs at 3 successive iterations; default 0.02). The
importance-sampling log-likelihood must be within 4 of its own Monte Carlo SEs of AGQ's; Louis'
standard errors within 10% of AGQ's (their Monte Carlo error; 20% for the cumulative coding,
whose larger fraction of missing information makes Louis' difference noisier).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gllmm
from gllmm.errors import FitError
from gllmm.fitting._mcem import _importance_loglik, _Sampler, fit_mcem
from gllmm.models._association_gllmm import random_association, stratified_random_association

SCORES = np.array([1.0, 2.0, 3.0])


def section4_table(seed: int = 9, beta: float = 0.4, n: int = 200) -> np.ndarray:
    """Section 4 model: multinomial(n, p), p_ij ~ exp(beta (s_i - 2)(s_j - 2)), s = 1, 2, 3."""
    p = np.exp(beta * np.outer(SCORES - 2, SCORES - 2))
    p /= p.sum()
    return np.random.default_rng(seed).multinomial(n, p.ravel()).reshape(3, 3)


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def _agree(mc, ref, se_rtol=0.10):
    se = np.sqrt(np.diag(ref.cov))
    tol = 4 * mc.extra["mc_se"] + mc.opt.tolerances["se_tol"] * se
    assert np.all(np.abs(mc.params - ref.params) <= tol), (mc.params, ref.params, tol)
    assert abs(mc.extra["loglik_importance"] - ref.loglik) <= 4 * mc.extra["loglik_mc_se"]
    np.testing.assert_allclose(np.sqrt(np.diag(mc.cov)), se, rtol=se_rtol)


@pytest.fixture(scope="module")
def model21():
    """(2.1) with beta = 0 on the 3 x 3 table (4-dimensional u, one cluster)."""
    return random_association(section4_table(), beta=0, coding="cumulative")


@pytest.fixture(scope="module")
def model21_agq(model21):
    return _quiet(gllmm.fit, model21, "agq", 7)  # 7^4 = 2401 nodes


def test_mcem_matches_agq_and_laplace_model21(model21, model21_agq):
    """(2.1), beta = 0, cumulative coding (sigma 0.711): Laplace, AGQ and MCEM agree."""
    mc = _quiet(fit_mcem, model21, seed=20030)
    assert mc.method == "mcem" and mc.converged
    _agree(mc, model21_agq, se_rtol=0.20)
    lap = _quiet(gllmm.fit, model21, "laplace")
    se = np.sqrt(np.diag(model21_agq.cov))
    assert np.all(np.abs(mc.params - lap.params) <= 4 * mc.extra["mc_se"] + 0.03 * se)
    # the sample size grew automatically and the rule is recorded
    sizes = [e["n_samples"] for e in mc.opt.log]
    assert sizes[-1] > sizes[0] and mc.extra["stopping"] == "se"
    assert mc.extra["ess"] > 0.8 * 20_000  # t proposal at the Laplace mode fits well


@pytest.mark.parametrize("beta,seed", [(0, 4), ("free", 7)])
def test_mcem_centred_model21(beta, seed):
    """(2.1), centred coding, beta = 0 (sigma 0.784) and free beta (interior sigma 0.566)."""
    d = random_association(section4_table(), beta=beta, coding="centred")
    ref = _quiet(gllmm.fit, d, "agq", 5)
    assert ref.random_sd["odds_ratio"] > 0.5
    mc = _quiet(fit_mcem, d, seed=seed)
    _agree(mc, ref)


def test_mcem_clinical_global_plugin(trial):
    """Model (5.1), global odds ratios, plug-in marginals: 8 clusters of one dimension."""
    d = stratified_random_association(trial, "center", "treatment", "response",
                                      odds_ratio="global", within=False, marginals="plug-in",
                                      individual=True)
    ref = _quiet(gllmm.fit, d, "agq", 15)
    mc = _quiet(fit_mcem, d, seed=3, se_tol=0.03)  # looser: 8 clusters cost more per draw
    _agree(mc, ref)
    assert abs(mc.params[0] - 0.8274) < 0.01  # reference note, 0.8274 (SE 0.4758)


def test_mcem_is_reproducible(model21):
    a = _quiet(fit_mcem, model21, seed=11, max_iter=4, final_samples=2000)
    b = _quiet(fit_mcem, model21, seed=11, max_iter=4, final_samples=2000)
    c = _quiet(fit_mcem, model21, seed=12, max_iter=4, final_samples=2000)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.loglik == b.loglik
    assert not np.array_equal(a.params, c.params)


def test_importance_loglik_matches_agq(model21, model21_agq):
    """At the AGQ optimum, the importance-sampling log-likelihood (full scale) agrees with AGQ
    within 4 Monte Carlo SEs."""
    sampler = _Sampler(model21)
    draw = sampler.draw(model21_agq.params, 20_000, 10.0, np.random.default_rng(1))
    value, se = _importance_loglik(sampler, draw)
    assert 0 < se < 0.01
    assert abs(value - model21_agq.loglik) < 4 * se


def test_mcem_loglik_by_quadrature(model21, model21_agq):
    mc = _quiet(fit_mcem, model21, seed=5, loglik="agq", n_nodes=5, final_samples=2000)
    assert mc.extra["loglik_method"] == "agq (5 nodes per dimension)"
    assert abs(mc.loglik - model21_agq.loglik) < 1e-3  # flat at the optimum


def test_mcem_refuses_designs_without_random_effects():
    d = random_association(section4_table(), random="none")
    with pytest.raises(FitError, match="no random effects"):
        fit_mcem(d, seed=1)
    with pytest.raises(FitError, match="unknown stopping"):
        fit_mcem(random_association(section4_table()), seed=1, stopping="never")
