"""Options of ``gllmm.fit`` that the chosen method does not take: a SpecError naming them and
the valid ones (not Python's TypeError); valid options still reach the method."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm.errors import SpecError
from gllmm.simulate import ScoreSet, StudySpec, simulate_table

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "r"


@pytest.fixture(scope="module")
def design():
    df = pd.read_csv(FIX / "crossed.csv")
    df = df.assign(a=df["a"].astype(str))
    return gllmm.build_design(df, "count ~ x + (1 | a)")


@pytest.mark.parametrize("method", ["agq", "laplace", "pql", "mcem", "npml"])
def test_unknown_option_is_a_spec_error(design, method):
    with pytest.raises(SpecError, match=r"unknown option\(s\) 'bogus' for method"):
        gllmm.fit(design, method=method, bogus=1)


def test_unknown_option_of_the_cellwise_strategy():
    mba = gllmm.datasets.load("mba")
    d = gllmm.models.cellwise_smoothing(mba, "statistics", "economics")
    with pytest.raises(SpecError, match="'gtol'.*chunk_size"):
        gllmm.fit(d, method="agq", strategy="cellwise", gtol=1e-8)


def test_valid_options_reach_the_method(design):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = gllmm.fit(design, method="laplace")
        tight = gllmm.fit(design, method="laplace", gtol=1e-9, max_iter=500)
    # the same maximum (log-likelihood to 1e-9 relative): the options were accepted
    assert tight.loglik == pytest.approx(base.loglik, rel=1e-9)
    assert np.allclose(tight.params, base.params, atol=1e-4)


def test_simulate_table_refuses_a_number_for_the_scenario():
    with pytest.raises(SpecError, match="needs a Scenario"):
        simulate_table(3, 1, 0)
    spec = StudySpec((ScoreSet("uniform", (1, 2, 3)),), (0.4,), (50,), ("sample_proportions",),
                     replicates=1, seed=1)
    with pytest.raises(SpecError, match="replicate"):
        simulate_table(spec.scenarios[0], 1, -1)
    # a valid call: a table of the scenario's total
    assert simulate_table(spec.scenarios[0], 1, 0).sum() == 50
