"""The paper's data sets (Coull & Agresti 2003, Section 5), shipped with the package."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .errors import SpecError

_FILES = {
    "mba": "mba_statistics_economics.csv",
    "clinical_trial": "clinical_trial.csv",
}

CLINICAL_RESPONSES = ("much_better", "better", "unchanged_or_worse")


def load(name: str) -> pd.DataFrame:
    """Load a data set by name: ``mba`` (Table 2, 6 x 7) or ``clinical_trial`` (8 centers).

    The clinical trial's response is an ordered categorical (much_better < better <
    unchanged_or_worse); treatment has levels drug, placebo.
    """
    if name not in _FILES:
        raise SpecError(f"unknown data set {name!r}; available: {', '.join(sorted(_FILES))}")
    with resources.files("gllmm.data").joinpath(_FILES[name]).open() as fh:
        df = pd.read_csv(fh)
    if name == "clinical_trial":
        df["response"] = pd.Categorical(df["response"], CLINICAL_RESPONSES, ordered=True)
        df["treatment"] = pd.Categorical(df["treatment"], ["drug", "placebo"])
    return df
