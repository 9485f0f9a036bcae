"""Fixtures of the smoother tests."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def mba() -> np.ndarray:
    """The MBA statistics x economics counts as a 6 x 7 array (for the smoothers that take an
    array; the top conftest's ``mba`` is the data frame)."""
    path = files("gllmm") / "data" / "mba_statistics_economics.csv"
    with path.open() as handle:
        data = pd.read_csv(handle)
    table = data.pivot(index="statistics", columns="economics", values="count")
    return table.to_numpy(dtype=np.float64)
