"""The compiled implicit path reproduces the fits of the numpy implementation it replaced.

Fixture: tests/fixtures/implicit/old_path_6_1.json, recorded by
validation/implicit_old_path.py with the numpy inversion (commit 8363a2b): model (6.1)-(6.3),
3 x 3 pairs, 120 pairs in 15 clusters, random effects in all three parts, by Laplace and by
AGQ with 3^3 nodes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import models

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "implicit" / "old_path_6_1.json"


@pytest.fixture(scope="module")
def recorded():
    rec = json.loads(FIXTURE.read_text())
    design = models.bivariate_ordinal(pd.DataFrame(rec["data"]), **rec["design"])
    return rec, design


@pytest.mark.parametrize("name", ["laplace", "agq3"])
def test_same_fit_as_the_numpy_inversion(recorded, name):
    """Estimates to 2e-5, SEs to 1e-3 relative, log-likelihood to 1e-7 (optimiser tolerances;
    the two paths' log-likelihoods agree to ~1e-11 at equal parameters)."""
    rec, design = recorded
    ref = rec["fits"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = gllmm.fit(design, method=ref["method"], n_nodes=ref["n_nodes"])
    assert list(r.names) == ref["names"]
    np.testing.assert_allclose(r.params, ref["params"], atol=2e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(r.cov)), ref["se"], rtol=1e-3)
    assert abs(r.loglik - ref["loglik"]) < 1e-7


def test_same_loglik_at_the_recorded_estimates(recorded):
    """At the recorded AGQ estimates the objective equals the recorded log-likelihood to 1e-9
    (no optimiser in between: the inversion and quadrature alone)."""
    rec, design = recorded
    ref = rec["fits"]["agq3"]
    obj = gllmm.fit(design, method="agq", n_nodes=3, objective_only=True)
    assert abs(obj(np.array(ref["params"])) - ref["loglik"]) < 1e-9
