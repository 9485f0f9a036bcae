"""Every model family from the command line, each checked against a reference number.

References: R fixtures under ``tests/fixtures/r`` (validation/*.R) and the paper's numbers
(``shared/reference/paper_numbers.md``); tolerances stated per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm import datasets
from gllmm.cli import main

FIX = Path(__file__).parents[1] / "fixtures" / "r"


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture()
def trial_long(tmp_path):
    """The clinical trial, one row per patient (272 rows), response collapsed to improved."""
    df = datasets.load("clinical_trial")
    df = df.loc[df.index.repeat(df["count"])].drop(columns="count")
    df["improved"] = (df["response"].astype(str) == "much_better").map({True: "yes",
                                                                         False: "no"})
    df["x"] = (df["treatment"].astype(str) == "drug").astype(float)
    path = tmp_path / "trial_long.csv"
    df.sample(frac=1.0, random_state=5).to_csv(path, index=False)
    return str(path)


def test_binomial_from_a_two_level_factor(trial_long, capsys):
    """One row per patient, ``improved ~ x + (1 | center)`` (yes/no: R's glm models the
    second level): the binary logit GLMM of validation/clinical_poisson.R (direct AGQ 15 fit,
    compared at 1e-3)."""
    fx = json.loads((FIX / "clinical_binary_logit_direct_agq15.json").read_text())
    out = run_json(capsys, ["fit", trial_long, "--family", "binomial", "--formula",
                            "improved ~ x + (1 | center)", "--json"])
    assert abs(out["params"]["x"] - fx["estimates"]["x"]) < 1e-3
    assert abs(out["params"]["Intercept"] - fx["estimates"]["(Intercept)"]) < 1e-3
    assert abs(out["random_sd"]["center"] - fx["random_sd"]["center"]["(Intercept)"]) < 1e-3


# ---------------------------------------------------------------------- constrained ML
COFFEE = [[93, 17, 44, 7, 10], [9, 46, 11, 0, 9], [17, 11, 155, 9, 12], [6, 4, 9, 15, 2],
          [10, 4, 12, 2, 27]]


def _long_table(path: Path, table: list[list[float]], row: str, col: str) -> str:
    rows = [{row: f"c{i + 1}", col: f"c{j + 1}", "count": v}
            for i, line in enumerate(table) for j, v in enumerate(line)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_marginal_homogeneity_coffee(tmp_path, capsys):
    """Agresti (2002, Section 10.3): G^2 = 12.6 on 4 df for the coffee table (printed
    precision 0.05; tests/fitting/test_constrained.py holds 12.5788 to 1e-3)."""
    path = _long_table(tmp_path / "coffee.csv", COFFEE, "first", "second")
    out = run_json(capsys, ["marginal", path, "--row", "first", "--col", "second", "--json"])
    assert out["df"] == 4
    assert abs(out["g2"] - 12.6) < 0.05
    assert abs(out["g2"] - 12.5788) < 1e-3


def test_marginal_cumulative_logit_2x2_closed_form(tmp_path, capsys):
    """I = 2: saturated, beta = logit P(row <= 1) - logit P(col <= 1) (1e-8)."""
    path = _long_table(tmp_path / "pairs.csv", [[20, 7], [3, 13]], "before", "after")
    out = run_json(capsys, ["marginal", path, "--row", "before", "--col", "after", "--model",
                            "cumulative", "--json"])
    expected = np.log(27 / 16) - np.log(23 / 20)
    assert abs(out["params"]["beta[row - column]"] - expected) < 1e-8


def test_marginal_refuses_different_categories(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"a": ["x", "y"], "b": ["x", "z"], "count": [1, 2]}).to_csv(path, index=False)
    assert main(["marginal", str(path), "--row", "a", "--col", "b"]) == 2
    assert "same categories" in capsys.readouterr().err


# ---------------------------------------------------------------------- association models
TRIAL_LEVELS = ["--levels", "treatment=drug,placebo",
                "--levels", "response=much_better,better,unchanged_or_worse"]


def test_association_model_51_clinical_trial(trial_csv, capsys):
    """Model (5.1) = (2.4) without u_ijk: the paper's beta 0.5923 (0.2408), sigma 0.3438,
    log-likelihood -86.7884 (reference note 5.2; 1e-3)."""
    out = run_json(capsys, ["association", trial_csv, "--stratum", "center", "--row",
                            "treatment", "--col", "response", "--model", "5.1", *TRIAL_LEVELS,
                            "--json"])
    assert abs(out["params"]["beta"] - 0.5923) < 1e-3
    assert abs(out["se"]["beta"] - 0.2408) < 1e-3
    assert abs(out["random_sd"]["center"] - 0.3438) < 1e-3
    assert abs(out["loglik"] - (-86.7884)) < 1e-3


def test_association_global_plugin_clinical_trial(trial_csv, capsys):
    """Global odds ratios, plug-in margins: the reference note's 0.8274 (0.4758), -407.0976."""
    out = run_json(capsys, ["association", trial_csv, "--stratum", "center", "--row",
                            "treatment", "--col", "response", "--model", "5.1", "--odds-ratio",
                            "global", "--marginals", "plug-in", *TRIAL_LEVELS, "--json"])
    assert abs(out["params"]["beta"] - 0.8274) < 1e-3
    assert abs(out["loglik"] - (-407.0976)) < 1e-3


def test_association_row_column_mba(mba_csv, capsys):
    """Random row + column effects on the MBA table: both SDs at 0, so the fit is uniform
    association, beta 0.4398 (the reference note's (2.6) L x L estimate; 1e-3)."""
    out = run_json(capsys, ["association", mba_csv, "--row", "statistics", "--col",
                            "economics", "--model", "row+column", "--method", "laplace",
                            "--json"])
    assert abs(out["params"]["beta"] - 0.4398) < 1e-3
    assert set(out["boundary"]) == {"sd(statistics)", "sd(economics)"}


def test_association_stratified_model_needs_stratum(mba_csv, capsys):
    assert main(["association", mba_csv, "--row", "statistics", "--col", "economics",
                 "--model", "2.4"]) == 2
    assert "needs --stratum" in capsys.readouterr().err


# ---------------------------------------------------------------------- penalised smoother
@pytest.mark.parametrize("penalty", ["0", "inf"])
def test_penalized_smoother_limits(mba_csv, capsys, penalty):
    """lambda = 0: the sample proportions; lambda = inf: independence y_i+ y_+j / n (1e-8)."""
    out = run_json(capsys, ["smooth", mba_csv, "--row", "statistics", "--col", "economics",
                            "--base", "penalized", "--lambda", penalty, "--json"])
    fitted = pd.DataFrame(out["fitted"])
    if penalty == "0":
        expected = fitted["observed"]
    else:
        n = fitted["observed"].sum()
        rows = fitted.groupby("statistics")["observed"].transform("sum")
        cols = fitted.groupby("economics")["observed"].transform("sum")
        expected = rows * cols / n
    np.testing.assert_allclose(fitted["fitted"], expected, atol=1e-8)


def test_ordinal_level_order_warning_on_stderr(trial_csv, capsys):
    """Text levels sorted alphabetically: one 'warning:' line naming --levels; none with it."""
    assert main(["fit", trial_csv, "--family", "ordinal", "--formula",
                 "response ~ treatment"]) == 0
    err = capsys.readouterr().err
    assert "warning: the levels of the ordinal response 'response' were sorted" in err
    assert "--levels response=" in err
    assert main(["fit", trial_csv, "--family", "ordinal", "--formula", "response ~ treatment",
                 *TRIAL_LEVELS]) == 0
    assert "sorted" not in capsys.readouterr().err


def test_binomial_two_level_factor_with_frequencies(tmp_path, capsys):
    """The same binary logit GLMM from 32 rows of (center, x, improved, count): the counts
    are frequency weights (--weights), R's glm(..., weights = Freq)."""
    fx = json.loads((FIX / "clinical_binary_logit_direct_agq15.json").read_text())
    df = datasets.load("clinical_trial")
    df["improved"] = np.where(df["response"].astype(str) == "much_better", "yes", "no")
    df["x"] = (df["treatment"].astype(str) == "drug").astype(float)
    df = df.groupby(["center", "x", "improved"], as_index=False)["count"].sum()
    path = tmp_path / "grouped.csv"
    df.sample(frac=1.0, random_state=7).to_csv(path, index=False)
    out = run_json(capsys, ["fit", str(path), "--family", "binomial", "--weights", "count",
                            "--formula", "improved ~ x + (1 | center)", "--json"])
    assert abs(out["params"]["x"] - fx["estimates"]["x"]) < 1e-3
    assert abs(out["random_sd"]["center"] - fx["random_sd"]["center"]["(Intercept)"]) < 1e-3


def test_fit_profile_intervals_equal_lme4_cbpp(capsys):
    """``gllmm fit --profile``: lme4's confint(glmer, method = "profile") on cbpp, every
    parameter including sd(herd) (validation/cbpp_inference.R; 1e-3)."""
    fx = json.loads((FIX / "cbpp_inference.json").read_text())["confint_profile"]
    names = {".sig01": "sd(herd)", "(Intercept)": "Intercept", "period2": "C(period)[T.2]",
             "period3": "C(period)[T.3]", "period4": "C(period)[T.4]"}
    out = run_json(capsys, ["fit", str(FIX / "cbpp.csv"), "--family", "binomial", "--method",
                            "laplace", "--formula",
                            "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)",
                            "--profile", "--json"])
    for row in fx:
        lower, upper = out["profile_interval"][names[row["parameter"]]]
        assert abs(lower - row["lower"]) < 1e-3, row["parameter"]
        assert abs(upper - row["upper"]) < 1e-3, row["parameter"]
