"""Bad arguments to the model builders, gllmm.datasets, the formula parser, predict and
gllmm.smooth raise gllmm's errors naming the problem (were TypeError, ValueError, KeyError or
AttributeError, or a silently wrong fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import datasets, models, smooth
from gllmm.errors import SpecError, TableError

TEXT = np.array([["a", "b"], ["c", "d"]])


@pytest.fixture(scope="module")
def ordinal_data(trial):
    return trial.assign(x=(trial["treatment"] == "drug").astype(float))


CASES = [
    ("unknown data set", lambda d: datasets.load("nosuch"), SpecError,
     "unknown data set 'nosuch'; available: clinical_trial, mba"),
    ("local_coding text size", lambda d: models.local_coding("3", 3), SpecError,
     "n_rows must be an integer"),
    ("local_coding negative size", lambda d: models.local_coding(-1, 3), SpecError,
     "n_rows must be at least 2"),
    ("dale_matrices text size", lambda d: models.dale_matrices(3, "a"), SpecError,
     "n_cols must be an integer"),
    ("dale_matrices one row", lambda d: models.dale_matrices(1, 3), SpecError,
     "n_rows must be at least 2"),
    ("ordinal_mixed unknown covariance",
     lambda d: models.ordinal_mixed(d, "response ~ x + (1 | center)", covariance="bogus"),
     SpecError, "unknown covariance 'bogus'"),
    ("ordinal_mixed list data", lambda d: models.ordinal_mixed([1, 2], "response ~ x"),
     SpecError, "expected a pandas DataFrame, got list"),
    ("ordinal_mixed formula number", lambda d: models.ordinal_mixed(d, 3), SpecError,
     "formula must be a string"),
    ("build_design formula number", lambda d: gllmm.build_design(d, 3), SpecError,
     "formula must be a string"),
    ("local_likelihood text", lambda d: smooth.local_likelihood("abc"), TableError,
     "counts must hold numbers"),
    ("penalized_smoother text", lambda d: smooth.penalized_smoother(TEXT), TableError,
     "counts must hold numbers"),
    ("fit_cellwise text", lambda d: smooth.fit_cellwise(TEXT), TableError,
     "counts must hold numbers"),
    ("fit_cellwise long text counts", lambda d: smooth.fit_cellwise(
        (np.array([1, 2]), np.array([1, 2]), np.array(["a", "b"]))), TableError,
     "counts must hold numbers"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_arguments(ordinal_data, call, error, match):
    with pytest.raises(error, match=match):
        call(ordinal_data)


def test_fit_cellwise_long_frame_is_not_a_crosstab(mba):
    """A long DataFrame was read as a 42 x 3 table of counts (its label columns fitted as
    counts); now its columns are the long arrays, and it fits as the crosstab does."""
    with pytest.raises(SpecError, match="unknown column.*'row'.*columns="):
        smooth.fit_cellwise(mba)  # has 'count', not 'row' and 'col'
    with pytest.raises(SpecError, match="unknown column.*'a'"):
        smooth.fit_cellwise(mba, columns=("a", "b", "c"))
    long = smooth.fit_cellwise(mba, columns=("statistics", "economics", "count"))
    wide = smooth.fit_cellwise(mba.pivot(index="statistics", columns="economics",
                                         values="count"))
    assert long.fitted().shape == wide.fitted().shape == (6, 7)
    np.testing.assert_allclose(long.loglik, wide.loglik, rtol=0, atol=1e-8)
    np.testing.assert_allclose(long.fitted(), wide.fitted(), rtol=1e-8, atol=0)


def test_predict_missing_group_value(mba):
    data = mba.assign(cell=np.arange(len(mba)))
    fit = gllmm.fit(gllmm.build_design(data, "count ~ C(statistics) + C(economics) + (1 | cell)"),
                    method="laplace")
    with pytest.raises(SpecError, match="grouping column 'cell' has missing.*rows \\[0, 1"):
        fit.predict(data.assign(cell=np.nan))
    kept = fit.predict(pd.concat([data.iloc[:2], data.iloc[:2]]))
    np.testing.assert_allclose(kept, np.tile(fit.predict()[:2], 2), rtol=0, atol=1e-12)
