"""Model comparison and profile intervals against lme4 on its cbpp data (fixtures written by
validation/cbpp_inference.R: glmer, Laplace). Tolerance 1e-3 (absolute on the log-likelihood
scale and on interval ends; relative on the P-value)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "r"
R = json.loads((FIXTURES / "cbpp_inference.json").read_text())
NAMES = {".sig01": "sd(herd)", "(Intercept)": "Intercept", "period2": "C(period)[T.2]",
         "period3": "C(period)[T.3]", "period4": "C(period)[T.4]"}


@pytest.fixture(scope="module")
def cbpp_fits():
    df = pd.read_csv(FIXTURES / "cbpp.csv")
    df = df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # row order must not matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = gllmm.fit("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", data=df,
                       family="binomial", method="laplace")
        m1 = gllmm.fit("cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)",
                       data=df, family="binomial", method="laplace")
    return m0, m1


def test_fits_equal_glmer(cbpp_fits):
    for fit, ref in zip(cbpp_fits, (R["m0"], R["m1"]), strict=True):
        assert abs(fit.loglik - ref["loglik"]) < 1e-3
        assert fit.nobs == ref["nobs"]
        assert abs(fit.aic - ref["aic"]) < 1e-3 and abs(fit.bic - ref["bic"]) < 1e-3
        assert abs(fit.random_sd["herd"] - ref["sd_herd"]) < 1e-3


def test_anova_equals_lme4(cbpp_fits):
    m0, m1 = cbpp_fits
    table = gllmm.anova(m1, m0)  # either order: rows sorted by complexity
    ref = R["anova"]
    assert list(table["npar"]) == ref["npar"]
    for col in ("AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(table[col].to_numpy(), ref[col], rtol=0, atol=1e-3)
    assert abs(table["Chisq"].iloc[1] - ref["Chisq"]) < 1e-3
    assert table["Df"].iloc[1] == ref["Df"]
    assert abs(table["Pr(>Chisq)"].iloc[1] / ref["p_value"] - 1) < 1e-3


def test_profile_intervals_equal_lme4(cbpp_fits):
    _, m1 = cbpp_fits
    ci = m1.conf_int(method="profile")
    for row in R["confint_profile"]:
        ours = ci.loc[NAMES[row["parameter"]]].to_numpy()
        np.testing.assert_allclose(ours, [row["lower"], row["upper"]], rtol=0, atol=1e-3,
                                   err_msg=row["parameter"])


def test_ranef_by_herd_equals_lme4(cbpp_fits):
    _, m1 = cbpp_fits
    ours = m1.ranef()["herd"]
    ref = R["ranef_herd"]
    assert sorted(map(str, ours.index)) == sorted(ref)
    for level, value in ref.items():
        assert abs(ours.loc[level].iloc[0] - value) < 1e-3, level


def test_nested_ranef_labelled_by_levels_equals_lme4():
    # (1 | LOCATION/BROOD): lme4 names the inner groups BROOD:LOCATION, gllmm LOCATION:BROOD
    df = pd.read_csv(FIXTURES / "grouseticks.csv")
    ref = R["grouseticks"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = gllmm.fit("TICKS ~ factor(YEAR) + cHEIGHT + (1 | LOCATION/BROOD)", data=df,
                        method="laplace")
    assert abs(fit.loglik - ref["loglik"]) < 1e-3
    re = fit.ranef()
    loc, brood = re["LOCATION"], re["LOCATION:BROOD"]
    assert len(loc) == len(ref["ranef_location"]) and len(brood) == len(
        ref["ranef_brood_in_location"])
    for level, value in ref["ranef_location"].items():
        assert abs(loc.loc[level].iloc[0] - value) < 1e-3, level
    for level, value in ref["ranef_brood_in_location"].items():
        b, location = level.split(":")
        assert abs(brood.loc[f"{location}:{b}"].iloc[0] - value) < 1e-3, level
