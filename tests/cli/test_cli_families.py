"""Every model family from the command line, each checked against a reference number.

References: R fixtures under ``tests/fixtures/r`` (validation/*.R) and the paper's numbers
(``shared/reference/paper_numbers.md``); tolerances stated per test.
"""

from __future__ import annotations

import json
from pathlib import Path

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
