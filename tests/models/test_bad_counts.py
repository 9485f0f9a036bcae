"""Every model builder refuses missing, negative and non-integer counts, naming the column."""

from __future__ import annotations

import numpy as np
import pytest

from gllmm import models
from gllmm.errors import SpecError


def _builders(df):
    df = df.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    return [
        lambda d: models.stratified_local_association(d, "center", "treatment", "response"),
        lambda d: models.stratified_global_association(d, "center", "treatment", "response"),
        lambda d: models.ordinal_mixed(d.assign(x=(d["treatment"] == "drug").astype(float)),
                                       "response ~ x + (1 | center)"),
        lambda d: models.random_association(d[d.center == 1], "treatment", "response"),
    ]


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("bad,match", [(-2.0, "negative"), (np.nan, "missing"),
                                       (2.5, "non-integer")])
def test_builders_refuse_bad_counts(trial, which, bad, match):
    df = trial.copy()
    df["count"] = df["count"].astype(float)
    df.loc[0, "count"] = bad  # center 1, drug, much_better
    with pytest.raises(SpecError, match=f"count column 'count' has {match}"):
        _builders(df)[which](df)


@pytest.mark.parametrize("which", range(4))
def test_builders_refuse_all_zero_and_empty_counts(trial, which):
    """All-zero counts would let a fit stop at its start values and report convergence."""
    df = trial.assign(count=0)
    with pytest.raises(SpecError, match="zero in every row"):
        _builders(df)[which](df)
    with pytest.raises(SpecError, match="empty|no rows|zero"):
        _builders(df.iloc[:0])[which](df.iloc[:0])


def test_formula_design_refuses_all_zero_counts():
    import pandas as pd

    import gllmm

    df = pd.DataFrame({"g": list("aabbcc"), "x": np.arange(6.0), "count": 0})
    with pytest.raises(SpecError, match="'count' is zero in every row"):
        gllmm.build_design(df, "count ~ x + (1 | g)")
    df["s"], df["f"] = [0, 0, 0, 0, 0, 0], [1, 2, 1, 2, 1, 2]
    with pytest.raises(SpecError, match="'s' is zero in every row"):
        gllmm.build_design(df, "cbind(s, f) ~ x + (1 | g)", family="binomial")
