"""gllmm against R fits recorded as fixtures by validation/*.R (R 4.2.2, lme4 1.1.31,
glmmTMB 1.1.5, ordinal 2022.11.16; see validation/README.md). CI needs no R.

Tolerances: Laplace log-likelihoods vs glmmTMB 1e-3 (issue 10; observed <1e-4); AGQ estimates vs
glmer(nAGQ = 15) 1e-3 on the parameters of interest (glmer stops before the optimum on some
models: its fixed effects can be up to 5e-3 off, so intercept-type nuisance parameters are
compared with the validation's direct maximisation instead, 1e-4); clmm2(nAGQ = 15) 1e-3.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import models

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "r"


def load(name: str) -> dict:
    return json.loads((FIX / f"{name}.json").read_text())


def _fit(design, method, n_nodes=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, method=method, n_nodes=n_nodes)


def _loglik(fx: dict) -> float:
    ll = fx["loglik"]
    return ll["value"] if isinstance(ll, dict) else ll


def _sd(fx: dict, term: str) -> float:
    v = fx["random_sd"][term]
    return next(iter(v.values())) if isinstance(v, dict) else v


@pytest.fixture(scope="module")
def mba_designs(mba):
    return {
        "mba_2_5": models.cellwise_smoothing(mba, "statistics", "economics"),
        "mba_2_6": models.cellwise_smoothing(mba, "statistics", "economics",
                                             base="linear_by_linear"),
    }


@pytest.mark.parametrize("name", ["mba_2_5", "mba_2_6"])
def test_mba_laplace_equals_glmmtmb(mba_designs, name):
    fx = load(f"{name}_glmmtmb")
    res = _fit(mba_designs[name], "laplace")
    assert abs(res.loglik - _loglik(fx)) < 1e-3
    # same design columns in the same order as R's treatment contrasts
    np.testing.assert_allclose(res.params[: len(fx["estimates"])],
                               list(fx["estimates"].values()), atol=2e-3)


@pytest.mark.parametrize("name", ["mba_2_5", "mba_2_6"])
def test_mba_agq_equals_glmer_nagq15(mba_designs, name):
    fx = load(f"{name}_glmer_nagq15")
    direct = load(f"{name}_direct_agq15")
    res = _fit(mba_designs[name], "agq", 15)
    assert abs(res.random_sd["statistics:economics"] - _sd(fx, "cell")) < 1e-3
    np.testing.assert_allclose(res.params[: len(direct["estimates"])],
                               list(direct["estimates"].values()), atol=1e-4)
    if name == "mba_2_6":
        assert abs(res.beta["statistics_score:economics_score"]
                   - fx["estimates"]["I(statistics * economics)"]) < 1e-3


@pytest.mark.parametrize("coding", ["centred", "uncentred"])
def test_clinical_local_against_r(trial, coding):
    kw = {} if coding == "centred" else dict(row_scores=[1, 0], col_scores=[3, 2, 1],
                                             centre=False)
    d = models.stratified_local_association(trial, "center", "treatment", "response", **kw)
    tmb = load(f"clinical_local_or_{coding}_glmmtmb")
    glmer15 = load(f"clinical_local_or_{coding}_glmer_nagq15")
    lap = _fit(d, "laplace")
    assert abs(lap.loglik - _loglik(tmb)) < 1e-3
    agq = _fit(d, "agq", 15)
    b_r = [v for k, v in glmer15["estimates"].items() if k in ("x:s", "x1:s1")][0]
    assert abs(agq.beta["beta"] - b_r) < 1e-3
    assert abs(agq.random_sd["center"] - _sd(glmer15, "center")) < 1e-3


def test_binary_logit_against_r(trial):
    wide = trial.pivot_table(index=["center", "treatment"], columns="response",
                             values="count", observed=True).reset_index()
    wide["x"] = (wide["treatment"] == "drug").astype(float)
    wide["yes"] = wide["much_better"]
    wide["no"] = wide["better"] + wide["unchanged_or_worse"]
    d = gllmm.build_design(wide, "cbind(yes, no) ~ x + (1 | center)", family="binomial")
    tmb = load("clinical_binary_logit_glmmtmb")
    glmer15 = load("clinical_binary_logit_glmer_nagq15")
    lap = _fit(d, "laplace")
    assert abs(lap.loglik - _loglik(tmb)) < 1e-3
    agq = _fit(d, "agq", 15)
    assert abs(agq.beta["x"] - glmer15["estimates"]["x"]) < 1e-3
    assert abs(agq.beta["Intercept"] - glmer15["estimates"]["(Intercept)"]) < 1e-3
    assert abs(agq.random_sd["center"] - _sd(glmer15, "center")) < 1e-3


def test_cumulative_random_intercept_equals_clmm2(trial):
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    fx = load("clinical_cumlogit_ri_clmm2_agq15")
    res = _fit(models.ordinal_mixed(df, "response ~ x + (1 | center)"), "agq", 15)
    # clmm: logit P(Y <= j) = theta_j - beta x; gllmm (paper): alpha_j + beta x
    assert abs(res.beta["x"] - (-fx["estimates"]["x"])) < 1e-3
    cuts = [fx["estimates"]["much_better|better"], fx["estimates"]["better|unchanged_or_worse"]]
    np.testing.assert_allclose(res.params[:2], cuts, atol=1e-3)
    assert abs(res.random_sd["center"] - _sd(fx, "center")) < 1e-3
    assert abs(res.loglik - _loglik(fx)) < 1e-3


def test_sparse30_laplace_equals_glmmtmb():
    tab = pd.read_csv(FIX / "sparse30.csv")
    fx = load("sparse30_glmmtmb_centred")
    df = tab.copy()
    df["cell"] = np.arange(len(df))
    df["rc"] = (df["row"] - 15.5) * (df["col"] - 15.5)
    d = gllmm.build_design(df, "count ~ C(row) + C(col) + rc + (1 | cell)")
    res = _fit(d, "laplace")
    assert abs(res.loglik - _loglik(fx)) < 1e-3
    assert abs(res.beta["rc"] - list(fx["estimates"].values())[-1]) < 1e-4
    assert abs(res.random_sd["cell"] - _sd(fx, "cell")) < 1e-3


def test_cumulative_random_slope_laplace_equals_clmm(trial):
    """(1 + x | center) by Laplace: ordinal::clmm gives -0.9239 (0.5196) in its own sign
    convention and log-likelihood -282.2594 (reference note, Section 5.2)."""
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    fx = load("clinical_cumlogit_rs_clmm_laplace")
    res = _fit(models.ordinal_mixed(df, "response ~ x + (1 + x | center)"), "laplace")
    assert abs(res.loglik - _loglik(fx)) < 1e-3
    assert abs(res.beta["x"] - (-fx["estimates"]["x"])) < 2e-3
    assert abs(res.se["x"] - fx["se"]["x"]) < 5e-3


CROSSED = {
    "crossed_poisson": ("count ~ x + (1 | a) + (1 | b)", "poisson", ("a", "b")),
    "crossed_binomial": ("cbind(succ, fail) ~ x + (1 | a) + (1 | b)", "binomial", ("a", "b")),
    "nested_poisson": ("count ~ x + (1 | a) + (1 | a:b)", "poisson", ("a", "a:b")),
}


@pytest.fixture(scope="module")
def crossed_data():
    df = pd.read_csv(FIX / "crossed.csv")  # made by validation/crossed.R
    return df.assign(a=df["a"].astype(str), b=df["b"].astype(str))


@pytest.mark.parametrize("name", sorted(CROSSED))
def test_crossed_and_nested_laplace_equal_glmmtmb(crossed_data, name):
    """Crossed / nested random intercepts (600 rows, 50 or more effects in one cluster: the
    sparse joint Laplace path) against glmmTMB: log-likelihood 1e-3 (observed ~1e-9),
    estimates and SDs 1e-4 (observed ~1e-6), SEs of the fixed effects 1e-3 relative."""
    formula, family, terms = CROSSED[name]
    tmb = load(f"{name}_glmmtmb")
    res = _fit(gllmm.build_design(crossed_data, formula, family=family), "laplace")
    assert res.converged
    assert abs(res.loglik - _loglik(tmb)) < 1e-3
    assert abs(res.beta["Intercept"] - tmb["estimates"]["(Intercept)"]) < 1e-4
    assert abs(res.beta["x"] - tmb["estimates"]["x"]) < 1e-4
    for term in terms:
        assert abs(res.random_sd[term] - _sd(tmb, term)) < 1e-4
    np.testing.assert_allclose(res.se[["Intercept", "x"]],
                               [tmb["se"]["(Intercept)"], tmb["se"]["x"]], rtol=1e-3)
    # glmer (nAGQ = 1, bobyqa) reaches the same optimum less tightly: 5e-4 on estimates
    glmer = load(f"{name}_glmer_nagq1")
    assert abs(res.beta["x"] - glmer["estimates"]["x"]) < 5e-4
    assert abs(res.loglik - _loglik(glmer)) < 1e-3
