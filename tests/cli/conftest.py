"""The paper's two data sets written as CSV files, as a user hands them to the command."""

from __future__ import annotations

import pytest

from gllmm import datasets


@pytest.fixture()
def mba_csv(tmp_path):
    path = tmp_path / "mba.csv"
    datasets.load("mba").to_csv(path, index=False)
    return str(path)


@pytest.fixture()
def trial_csv(tmp_path):
    path = tmp_path / "trial.csv"
    datasets.load("clinical_trial").to_csv(path, index=False)
    return str(path)
