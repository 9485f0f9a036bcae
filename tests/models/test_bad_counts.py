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
