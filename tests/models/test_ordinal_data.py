"""Ordinal and multinomial data in the layouts people have: the same model from each layout.

References: the clinical trial's clmm fit (``validation/clinical_cumlogit.R``), VGAM's
multinomial-scale log-likelihood of pneumo (``validation/ordinal_data.R``), and equivalences
(layouts, sign conventions) at 1e-8 / 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import quiet_fit

from gllmm import LevelOrderWarning, SpecError, models
from gllmm.models._ordinal_data import response_columns

FIX = Path(__file__).parents[1] / "fixtures" / "r"
ORDER = ["much_better", "better", "unchanged_or_worse"]


@pytest.fixture(scope="module")
def counts(trial):
    df = trial.copy()
    df["response"] = pd.Categorical(df["response"].astype(str), ORDER, ordered=True)
    return df


@pytest.fixture(scope="module")
def one_row_each(counts):
    """One row per patient (272 rows), in shuffled order, responses as plain text."""
    rows = counts.loc[counts.index.repeat(counts["count"])].drop(columns="count")
    rows = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)
    rows["response"] = rows["response"].astype(str)
    return rows


@pytest.fixture(scope="module")
def clmm_fit(counts):
    return quiet_fit(models.ordinal_mixed(counts, "response ~ treatment + (1 | center)"),
                method="laplace")


def test_string_factor_covariate_equals_clmm(clmm_fit):
    """``response ~ treatment + (1 | center)`` with treatment as text (no longer refused as
    rank deficient): clmm's Laplace fit, with drug the reference level, 1e-3 (clmm stops
    2.6e-4 below gllmm's log-likelihood here)."""
    fx = json.loads((FIX / "clinical_cumlogit_ri_clmm_laplace.json").read_text())
    assert 0 <= clmm_fit.loglik - fx["loglik"]["value"] < 1e-3
    # clmm: theta_j - beta x, x = 1 for drug; here: alpha_j + b [placebo] = alpha'_j + ...
    beta = clmm_fit.beta
    assert abs(beta["treatment[T.placebo]"] - fx["estimates"]["x"]) < 1e-3
    assert abs(beta["alpha[much_better|better]"]
               - (fx["estimates"]["much_better|better"] - fx["estimates"]["x"])) < 1e-3


def test_one_row_per_observation_equals_counts(one_row_each, counts, clmm_fit):
    """272 rows of single ratings (text response, --levels order) give the counts' fit."""
    df = one_row_each.copy()
    df["response"] = pd.Categorical(df["response"], ORDER, ordered=True)
    res = quiet_fit(models.ordinal_mixed(df, "response ~ treatment + (1 | center)"),
               method="laplace")
    assert abs(res.loglik - clmm_fit.loglik) < 1e-8
    np.testing.assert_allclose(res.params, clmm_fit.params, atol=1e-6)


def test_wide_counts_equal_long_counts(counts, clmm_fit):
    wide = counts.pivot_table(index=["center", "treatment"], columns="response",
                              values="count", observed=True).reset_index()
    res = quiet_fit(models.ordinal_mixed(
        wide, "cbind(much_better, better, unchanged_or_worse) ~ treatment + (1 | center)"),
        method="laplace")
    assert abs(res.loglik - clmm_fit.loglik) < 1e-8
    np.testing.assert_allclose(res.params, clmm_fit.params, atol=1e-6)


def test_weights_is_the_count_column(counts, clmm_fit):
    df = counts.rename(columns={"count": "Freq"})
    res = quiet_fit(models.ordinal_mixed(df, "response ~ treatment + (1 | center)",
                                    weights="Freq"), method="laplace")
    assert abs(res.loglik - clmm_fit.loglik) < 1e-8


def test_text_levels_sorted_alphabetically_warn(one_row_each):
    with pytest.warns(LevelOrderWarning, match="sorted alphabetically.*--levels response"):
        d = models.ordinal_mixed(one_row_each, "response ~ treatment")
    assert d.notes["response_levels"] == sorted(ORDER)


def test_ordered_levels_do_not_warn(counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LevelOrderWarning)
        d = models.ordinal_mixed(counts, "response ~ treatment")
    assert d.notes["response_levels"] == ORDER


def test_clmm_convention_flips_beta_and_says_so(counts):
    paper = quiet_fit(models.ordinal_mixed(counts, "response ~ treatment"))
    clmm = quiet_fit(models.ordinal_mixed(counts, "response ~ treatment", convention="clmm"))
    assert abs(paper.loglik - clmm.loglik) < 1e-10
    assert abs(paper.beta["treatment[T.placebo]"] + clmm.beta["treatment[T.placebo]"]) < 1e-8
    assert "alpha_j + x'beta" in paper.summary() and "theta_j - x'beta" in paper.summary()
    assert "Sign convention: logit P(Y <= j) = theta_j - x'beta" in clmm.summary()


def test_no_random_effect_has_no_variance_parameters(counts):
    d = models.ordinal_mixed(counts, "response ~ treatment", link="adjacent")
    assert d.n_random == 0 and d.covariance is None
    assert d.notes["title"] == "Adjacent-categories logit model"


def test_pneumo_multinomial_scale_equals_vgam():
    """``individual=False`` adds the multinomial coefficients: VGAM's logLik (1e-6)."""
    fx = json.loads((FIX / "pneumo_vglm_cumulative.json").read_text())
    df = pd.read_csv(FIX / "pneumo.csv").rename(columns={"exposure.time": "exposure"})
    res = quiet_fit(models.ordinal_mixed(df, "cbind(normal, mild, severe) ~ log(exposure)",
                                    individual=False))
    assert abs(res.loglik - fx["loglik"]["vgam_loglik"]) < 1e-6
    assert abs(res.beta["log(exposure)"] - fx["estimates"]["log(exposure.time)"]) < 1e-6


@pytest.mark.parametrize(("call", "needle"), [
    (lambda d: models.ordinal_mixed(d, "response ~ treatment + (1 | center) + (1 | treatment)"),
     "at most one random term"),
    (lambda d: models.ordinal_mixed(d, "cbind(a, b) ~ 1", count="count"), "unknown column"),
    (lambda d: models.ordinal_mixed(d, "response ~ treatment", count="count", weights="w"),
     "give the frequency column once"),
    (lambda d: models.ordinal_mixed(d, "response ~ treatment", convention="polr"),
     "unknown convention"),
    (lambda d: models.ordinal_mixed(d, "response ~ treatment", link="baseline",
                                    convention="clmm"), "one sign only"),
])
def test_refusals_name_the_fix(counts, call, needle):
    with pytest.raises(SpecError, match=needle):
        call(counts)


def test_wide_counts_with_back_quoted_names(counts, clmm_fit):
    # names holding a comma, parentheses and spaces: cbind() is split at its top-level commas
    wide = counts.pivot_table(index=["center", "treatment"], columns="response",
                              values="count", observed=True).reset_index()
    wide = wide.rename(columns={"much_better": "much better", "better": "better (a, b)",
                                "unchanged_or_worse": "unchanged,worse"})
    assert response_columns("cbind(`much better`, `better (a, b)`, `unchanged,worse`)") \
        == ["much better", "better (a, b)", "unchanged,worse"]
    res = quiet_fit(models.ordinal_mixed(
        wide, "cbind(`much better`, `better (a, b)`, `unchanged,worse`) ~ treatment "
              "+ (1 | center)"), method="laplace")
    # the same counts as the long layout's clmm-checked fit: equal to 1e-8 / 1e-6
    assert abs(res.loglik - clmm_fit.loglik) < 1e-8
    np.testing.assert_allclose(res.params, clmm_fit.params, atol=1e-6)
