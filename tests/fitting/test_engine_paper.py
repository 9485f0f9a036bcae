"""The GLLMM engine against the paper's numbers as reproduced in the reference note.

Reference: ../shared/reference/paper_numbers.md (Sections 5.1, 5.2). Tolerances: 1e-3 on
estimates, SEs and log-likelihoods unless stated; Table 2/4 within 0.01; Table 5 within 0.05.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import models

REF = Path(__file__).resolve().parents[1] / "fixtures" / "paper"


def test_mba_independence(mba_independence):
    r = mba_independence
    assert abs(r.random_sd["statistics:economics"] - 0.2515) < 1e-3
    assert abs(r.loglik - (-45.8562)) < 1e-3
    assert r.converged and not r.boundary


def test_mba_lxl_boundary(mba_lxl):
    r = mba_lxl
    name = "statistics_score:economics_score"
    assert abs(r.beta[name] - 0.4398) < 1e-3
    assert abs(r.se[name] - 0.1422) < 1e-3
    assert r.boundary == ("sd(statistics:economics)",)
    assert r.random_sd["statistics:economics"] == 0.0
    assert abs(r.loglik - (-39.2366)) < 1e-3


def test_mba_lr_for_beta(mba_independence, mba_lxl):
    lr = mba_lxl.lr_test(mba_independence)
    assert abs(lr.statistic - 13.239) < 1e-2


def test_table2_columns(mba_independence, mba_lxl):
    ref = pd.read_csv(REF / "table2_fitted.csv")
    a = mba_independence.fitted_counts()
    b = mba_lxl.fitted_counts()
    assert np.max(np.abs(a - ref["cellwise_independence"])) < 0.01
    assert np.max(np.abs(b - ref["cellwise_linear_by_linear"])) < 0.01


def test_laplace_matches_glmer_laplace_scale(mba):
    # glmer nAGQ = 1 prints -45.8424 for (2.5) (reference note, log-likelihood scale)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = gllmm.fit(models.cellwise_smoothing(mba, "statistics", "economics"), "laplace")
    assert abs(r.loglik - (-45.8424)) < 1e-3


def _assert_paper(r, beta, se, sd, sd_se, loglik):
    """The association fit's beta, its SE, the center SD, its SE and the log-likelihood
    against the reference note's numbers, to 1e-3."""
    assert abs(r.beta["beta"] - beta) < 1e-3
    assert abs(r.se["beta"] - se) < 1e-3
    assert abs(r.random_sd["center"] - sd) < 1e-3
    assert abs(r.random_sd_se["center"] - sd_se) < 1e-3
    assert abs(r.loglik - loglik) < 1e-3


def test_clinical_local(clinical_local):
    _assert_paper(clinical_local, beta=0.5923, se=0.2408, sd=0.3438, sd_se=0.3633,
                  loglik=-86.7884)


def test_clinical_global(clinical_global):
    _assert_paper(clinical_global, beta=0.8274, se=0.4758, sd=1.0303, sd_se=0.4781,
                  loglik=-407.0976)


def test_clinical_global_lr(trial, clinical_global):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r0 = gllmm.fit(models.stratified_global_association(
            trial, "center", "treatment", "response", random=False))
    lr = clinical_global.lr_test(r0)
    assert abs(lr.statistic - 3.716) < 1e-2
    assert abs(lr.p_value - 0.027) < 1e-3


def test_table4_random_columns(clinical_local, clinical_global):
    ref = pd.read_csv(REF / "table4_center_log_or.csv")
    loc = clinical_local.cluster_coefficients("beta").to_numpy()
    glo = clinical_global.cluster_coefficients("beta").to_numpy()
    assert np.max(np.abs(loc - ref["random_local"])) < 0.01
    assert np.max(np.abs(glo - ref["random_global"])) < 0.01


def test_table5(clinical_local, clinical_global, trial):
    ref = pd.read_csv(REF / "table5_predicted_counts.csv")
    loc = clinical_local.fitted_counts()
    glo = clinical_global.fitted_counts()
    d_loc = np.abs(loc - ref["local_model"].to_numpy())
    d_glo = np.abs(glo - ref["global_model"].to_numpy())
    # reference note: 46 of 48 within 0.05; the exceptions are center 3 placebo
    # unchanged/worse (local, 2.90 vs printed 3.0) and center 7 placebo unchanged/worse
    # (global, 10.61 vs a misprinted 11.0)
    exc_loc = (ref.center == 3) & (ref.treatment == "placebo") & (
        ref.response == "unchanged_or_worse")
    exc_glo = (ref.center == 7) & (ref.treatment == "placebo") & (
        ref.response == "unchanged_or_worse")
    # printed to one decimal: half a rounding unit (0.05) plus 0.005 for the fitted
    # parameters' own 1e-3 agreement with the reference
    assert np.all(d_loc[~exc_loc] < 0.055)
    assert np.all(d_glo[~exc_glo] < 0.055)
    assert np.mean(np.r_[d_loc, d_glo] < 0.05) > 0.85
    assert abs(loc[exc_loc.to_numpy()][0] - 2.90) < 0.01
    assert abs(glo[exc_glo.to_numpy()][0] - 10.61) < 0.01


def test_table4_fixed_columns(trial):
    import warnings

    ref = pd.read_csv(REF / "table4_center_log_or.csv")
    loc, glo = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in ref.center:
            sub = trial[trial.center == c]
            loc.append(gllmm.fit(models.stratified_local_association(
                sub, "center", "treatment", "response", random=False)).beta["beta"])
            glo.append(gllmm.fit(models.stratified_global_association(
                sub, "center", "treatment", "response", random=False)).beta["beta"])
    assert np.max(np.abs(np.array(loc) - ref["fixed_local"])) < 0.01
    assert np.max(np.abs(np.array(glo) - ref["fixed_global"])) < 0.01
    assert abs(loc[0] - 1.7226) < 1e-3


def test_cumulative_logit_2d_agq(clinical_cumulative):
    r = clinical_cumulative
    assert abs(r.beta["x"] - 0.9229) < 1e-3
    assert abs(r.se["x"] - 0.5261) < 1e-3
    assert abs(r.loglik - (-282.137)) < 1e-3


def test_adjacent_logit_2d_agq(clinical_adjacent):
    r = clinical_adjacent
    assert abs(r.beta["x"] - 0.6325) < 1e-3
    assert abs(r.se["x"] - 0.3417) < 1e-3
    assert abs(r.loglik - (-283.190)) < 1e-3


@pytest.mark.parametrize("coding,expect_boundary", [("centred", False), ("uncentred", True)])
def test_score_coding_matters(trial, coding, expect_boundary):
    """Reference note 5.2: x = 1/0, s = 3/2/1 gives sigma = 0 and beta 0.645."""
    import warnings

    kw = {} if coding == "centred" else dict(row_scores=[1, 0], col_scores=[3, 2, 1],
                                             centre=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = gllmm.fit(models.stratified_local_association(
            trial, "center", "treatment", "response", **kw))
    assert bool(r.boundary) is expect_boundary
    if expect_boundary:
        assert abs(r.beta["beta"] - 0.645) < 1e-3
