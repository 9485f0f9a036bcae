"""Parameter names users read (summaries, ``params``, warnings, JSON) never carry a leading
underscore: every builder of ``gllmm.models`` and the ``gllmm smooth`` command name parameters
after the data's own factors, as a formula with those names would (issue 15)."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import datasets, models, tables
from gllmm.cli import main
from gllmm.errors import SpecError

#: a name starting with "_", alone or inside a name such as "sd(_cell)" or "I(_rs * _cs)"
PRIVATE = re.compile(r"(?<![A-Za-z0-9_.])_[A-Za-z]")
#: functions of gllmm.models that are not builders (they return scores or matrices)
NOT_BUILDERS = {"centred_scores", "local_coding", "dale_matrices"}


def _pairs() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"id": np.repeat(np.arange(10), 6),
                         "y1": rng.integers(0, 2, 60), "y2": rng.integers(0, 2, 60)})


def _general() -> gllmm.Design:
    C, A, _ = models.dale_matrices(2, 2)
    counts = np.array([[5, 3, 2, 6], [4, 4, 3, 5], [6, 2, 1, 7]], dtype=float)
    X = np.tile(np.eye(3), (3, 1, 1))
    Z = np.zeros((3, 3, 1))
    Z[:, 2, 0] = 1.0
    return models.general_design(counts, C, A, X, Z=Z, cluster=np.arange(3))


def _designs(mba: pd.DataFrame, trial: pd.DataFrame) -> dict[str, list[gllmm.Design]]:
    stats_econ = ("statistics", "economics")
    trial_args = (trial, "center", "treatment", "response")
    center1 = trial[trial.center == 1]
    return {
        "cellwise_smoothing": [
            models.cellwise_smoothing(mba, *stats_econ),
            models.cellwise_smoothing(mba, *stats_econ, base="linear_by_linear"),
            models.cellwise_smoothing(tables.from_long(mba, list(stats_econ)), *stats_econ,
                                      base="linear_by_linear")],
        "stratified_local_association": [
            models.stratified_local_association(*trial_args),
            models.stratified_local_association(*trial_args, random=False)],
        "stratified_global_association": [models.stratified_global_association(*trial_args)],
        "stratified_random_association": [
            models.stratified_random_association(*trial_args),
            models.stratified_random_association(*trial_args, odds_ratio="global")],
        "random_association": [
            models.random_association(center1, "treatment", "response"),
            models.random_association(center1, "treatment", "response", odds_ratio="global")],
        "association_from_contrasts": [
            models.association_from_contrasts([5, 3, 2, 6, 4, 4], [[1, -1, 0, -1, 1, 0],
                                                                   [0, 1, -1, 0, -1, 1]],
                                              fixed=np.ones((2, 1)), random=np.eye(2))],
        "ordinal_mixed": [models.ordinal_mixed(
            trial.assign(x=(trial["treatment"] == "drug").astype(float)),
            "response ~ x + (1 | center)")],
        "bivariate_ordinal": [models.bivariate_ordinal(_pairs(), "y1", "y2", "id")],
        "general_design": [_general()],
    }


def test_every_builder_names_its_parameters_without_underscores(mba, trial):
    designs = _designs(mba, trial)
    assert set(designs) == set(models.__all__) - NOT_BUILDERS  # a new builder is checked too
    for builder, made in designs.items():
        for design in made:
            names = design.param_names + design.random_names
            private = [n for n in names if PRIVATE.search(n)]
            assert not private, f"{builder}: {private}"


def test_cellwise_names_are_the_formula_names(mba):
    """The builder's design is the formula it notes, with the factors' own names: the same
    parameter names, random-effect names and log-likelihood (1e-8) as ``build_design`` of that
    formula on the data with the ``<factor>_score`` columns."""
    d = models.cellwise_smoothing(mba, "statistics", "economics", base="linear_by_linear")
    assert d.notes["formula"] == ("count ~ C(statistics) + C(economics) "
                                  "+ statistics_score:economics_score "
                                  "+ (1 | statistics:economics)")
    scored = mba.assign(statistics_score=mba.statistics.astype(float),
                        economics_score=mba.economics.astype(float))
    ref = gllmm.build_design(scored, d.notes["formula"])
    assert d.param_names == ref.param_names
    assert d.param_names[-2:] == ("statistics_score:economics_score", "sd(statistics:economics)")
    assert d.random_names == ref.random_names == ("statistics:economics:Intercept",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sigma is on the boundary here (paper: 0.0)
        fits = [gllmm.fit(x, method="laplace") for x in (d, ref)]
    assert abs(fits[0].loglik - fits[1].loglik) < 1e-8


def test_score_column_collision(mba, trial):
    """A data column named like a generated score column must hold those scores."""
    same = mba.assign(statistics_score=mba.statistics.astype(float))
    d = models.cellwise_smoothing(same, "statistics", "economics", base="linear_by_linear")
    assert d.fixed_names[-1] == "statistics_score:economics_score"
    other = mba.assign(statistics_score=1.0)
    with pytest.raises(SpecError, match="column 'statistics_score' is not the scores of "
                                        "'statistics'.*rename the column"):
        models.cellwise_smoothing(other, "statistics", "economics", base="linear_by_linear")
    # the independence base has no score term: the column is just data
    models.cellwise_smoothing(other, "statistics", "economics")
    with pytest.raises(SpecError, match="column 'response_score' is not the scores"):
        models.stratified_local_association(trial.assign(response_score="x"), "center",
                                            "treatment", "response")


@pytest.mark.parametrize("extra", [[], ["--engine", "general"]])
def test_smooth_command_names(tmp_path, capsys, extra):
    """``gllmm smooth`` (both engines, with --compare): JSON keys and text lines."""
    path = tmp_path / "mba.csv"
    datasets.load("mba").to_csv(path, index=False)
    argv = ["smooth", str(path), "--row", "statistics", "--col", "economics",
            "--base", "linear_by_linear", "--compare", *extra]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [*out["params"], *out["se"], *out["random_sd"], *out["random_sd_se"],
             *out["boundary"], *out.get("optimizer", {}).get("boundary", [])]
    assert "beta" in names and "cell" in names
    assert not [n for n in names if PRIVATE.search(n)], names
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "sd(cell)" in text and not PRIVATE.search(text), text
