"""Ordinal logit GLLMMs: equivalences that pin the builders down."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import quiet_fit

import gllmm
from gllmm import models


@pytest.fixture(scope="module")
def trial_x(trial):
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    return df


def test_continuation_ratio_equals_binomial_glmm(trial_x):
    """Continuation-ratio logits factor into binomials (Agresti 2002, 7.4.3): the random-
    intercept model equals a binomial GLMM on the expanded data (1e-6)."""
    cr = quiet_fit(models.ordinal_mixed(trial_x, "response ~ x + (1 | center)",
                                   link="continuation", individual=False), n_nodes=15)
    wide = trial_x.pivot_table(index=["center", "x"], columns="response", values="count",
                               observed=True).reset_index()
    wide.columns = ["center", "x", "mb", "b", "u"]
    rows = []
    for _, r in wide.iterrows():
        rows.append({"center": r.center, "x": r.x, "step": "1", "s": r.mb, "f": r.b + r.u})
        rows.append({"center": r.center, "x": r.x, "step": "2", "s": r.b, "f": r.u})
    long = pd.DataFrame(rows)
    long["a1"] = (long.step == "1").astype(float)
    long["a2"] = (long.step == "2").astype(float)
    bi = quiet_fit(gllmm.build_design(long, "cbind(s, f) ~ 0 + a1 + a2 + x + (1 | center)",
                                 family="binomial"), n_nodes=15)
    np.testing.assert_allclose(cr.params, bi.params, atol=1e-6)
    # the binomial constants sum the log-binomial coefficients of the sequential splits,
    # which equal the multinomial coefficient of each block
    assert abs(cr.loglik - bi.loglik) < 1e-6


def test_baseline_two_categories_is_binary_logit(trial_x):
    """With K = 2 the baseline-category model is the binary logit GLMM (1e-6)."""
    df = trial_x.copy()
    df["resp2"] = np.where(df["response"] == "much_better", "yes", "no")
    df = df.groupby(["center", "x", "resp2"], as_index=False)["count"].sum()
    df["resp2"] = pd.Categorical(df["resp2"], ["yes", "no"], ordered=True)
    base = quiet_fit(models.ordinal_mixed(df, "resp2 ~ x + (1 | center)", link="baseline",
                                     individual=False), n_nodes=15)
    wide = df.pivot_table(index=["center", "x"], columns="resp2", values="count",
                          observed=True).reset_index()
    wide.columns = ["center", "x", "yes", "no"]
    bi = quiet_fit(gllmm.build_design(wide, "cbind(yes, no) ~ x + (1 | center)", family="binomial"),
              n_nodes=15)
    np.testing.assert_allclose(base.params, bi.params, atol=1e-6)
    assert abs(base.loglik - bi.loglik) < 1e-6
