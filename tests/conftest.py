"""Shared fixtures: each reference model is fitted once per session (MixedModels modelcache)."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import scipy
from helpers import quiet_fit

from gllmm import datasets, models


def pytest_report_header(config):  # noqa: ARG001
    return f"numpy {np.__version__}, scipy {scipy.__version__}"


def _fit(design, method="agq", n_nodes=15):
    return quiet_fit(design, method=method, n_nodes=n_nodes)


@contextlib.contextmanager
def _local_client():
    """A Dask client of a two-process local cluster (the distributed tests' cluster)."""
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's own start-up notices
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def client():
    with _local_client() as c:
        yield c


@pytest.fixture
def own_client():
    """A cluster of the test's own, for a test that kills one of its workers."""
    with _local_client() as c:
        yield c


@pytest.fixture(scope="session")
def mba():
    return datasets.load("mba")


@pytest.fixture(scope="session")
def trial():
    return datasets.load("clinical_trial")


@pytest.fixture(scope="session")
def mba_independence(mba):
    return _fit(models.cellwise_smoothing(mba, "statistics", "economics"))


@pytest.fixture(scope="session")
def mba_lxl(mba):
    return _fit(models.cellwise_smoothing(mba, "statistics", "economics",
                                          base="linear_by_linear"))


@pytest.fixture(scope="session")
def clinical_local(trial):
    return _fit(models.stratified_local_association(trial, "center", "treatment", "response"))


@pytest.fixture(scope="session")
def clinical_global(trial):
    return _fit(models.stratified_global_association(trial, "center", "treatment", "response"))


@pytest.fixture(scope="session")
def clinical_cumulative(trial):
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    return _fit(models.ordinal_mixed(df, "response ~ x + (1 + x | center)"), n_nodes=10)


@pytest.fixture(scope="session")
def clinical_adjacent(trial):
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    return _fit(models.ordinal_mixed(df, "response ~ x + (1 + x | center)", link="adjacent"),
                n_nodes=10)
