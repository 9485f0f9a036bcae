"""GLLMs without random effects: agreement with statsmodels, goodness of fit, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm.errors import InfiniteEstimateWarning, SpecError

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")


@pytest.mark.parametrize("formula", [
    "count ~ C(statistics) + C(economics)",
    "count ~ C(statistics) + C(economics) + I(statistics * economics)",
    "count ~ statistics + economics + I(statistics * economics)",
])
def test_loglinear_equals_statsmodels(mba, formula):
    """Estimates and deviance to 1e-8 (issue 2 acceptance)."""
    ours = gllmm.fit(gllmm.build_design(mba, formula))
    ref = smf.glm(formula, mba, family=sm.families.Poisson()).fit(tol=1e-14)
    np.testing.assert_allclose(ours.beta.to_numpy(), ref.params.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(ours.se.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    gof = ours.goodness_of_fit()
    assert abs(gof["G2"] - ref.deviance) < 1e-8
    assert abs(gof["X2"] - ref.pearson_chi2) < 1e-6
    assert gof["df"] == ref.df_resid
    assert abs(ours.loglik - ref.llf) < 1e-8


def test_binomial_logit_equals_statsmodels(trial):
    df = trial.pivot_table(index=["center", "treatment"], columns="response", values="count",
                           observed=True).reset_index()
    df.columns = ["center", "treatment", "mb", "b", "u"]
    df["no"] = df["b"] + df["u"]
    ours = gllmm.fit(gllmm.build_design(df, "cbind(mb, no) ~ C(treatment) + C(center)",
                                        family="binomial"))
    ref = smf.glm("mb + no ~ C(treatment) + C(center)", df,
                  family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(ours.beta.to_numpy(), ref.params.to_numpy(), atol=1e-7)


def test_lr_between_nested_fits(mba):
    full = gllmm.fit(gllmm.build_design(mba, "count ~ C(statistics) + C(economics) + "
                                             "I(statistics * economics)"))
    ind = gllmm.fit(gllmm.build_design(mba, "count ~ C(statistics) + C(economics)"))
    lr = full.lr_test(ind)
    assert lr.df == 1
    assert abs(lr.statistic - (ind.goodness_of_fit()["G2"]
                                  - full.goodness_of_fit()["G2"])) < 1e-8
    assert 0 < lr.p_value < 0.01


def test_unknown_formula_column(mba):
    with pytest.raises(SpecError, match="unknown column.*nosuch"):
        gllmm.build_design(mba, "count ~ C(statistics) + nosuch")


def test_unknown_grouping_column(mba):
    with pytest.raises(SpecError, match="unknown grouping column.*cellx"):
        gllmm.build_design(mba, "count ~ C(statistics) + (1 | cellx)")


def test_rank_deficient_names_aliased(mba):
    df = mba.copy()
    df["twice"] = 2 * df["statistics"]
    with pytest.raises(SpecError, match="aliased columns: twice"):
        gllmm.fit(gllmm.build_design(df, "count ~ statistics + twice"))


@pytest.mark.parametrize("bad,match", [(-1, "negative"), (np.nan, "missing"),
                                       (1.5, "non-integer")])
def test_bad_counts(mba, bad, match):
    df = mba.copy()
    df["count"] = df["count"].astype(float)
    df.loc[3, "count"] = bad
    with pytest.raises(SpecError, match=match):
        gllmm.build_design(df, "count ~ C(statistics)")


def test_empty_data():
    with pytest.raises(SpecError, match="no rows"):
        gllmm.build_design(pd.DataFrame({"count": []}), "count ~ 1")


def test_sampling_zero_gives_infinite_estimate_warning():
    # a 2 x 2 table with a zero cell: the saturated log-linear model's interaction is infinite
    df = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 0, 1], "count": [10, 5, 0, 7]})
    with pytest.warns(InfiniteEstimateWarning, match="rows \\[2\\]"):
        res = gllmm.fit(gllmm.build_design(df, "count ~ C(a) * C(b)"))
    assert res.extra["infinite_cells"] == [2]
    assert not res.converged


def test_summary_and_json(mba):
    res = gllmm.fit(gllmm.build_design(mba, "count ~ C(statistics) + C(economics)"))
    text = res.summary()
    assert "Log-likelihood" in text and "C(economics)[T.7]" in text
    import json

    d = json.loads(res.to_json())
    assert set(["loglik", "converged", "params", "se", "fitted", "method"]) <= set(d)
    assert len(d["fitted"]) == len(mba)
    np.testing.assert_allclose(res.fitted()["fitted"].sum(), mba["count"].sum(), rtol=1e-10)
