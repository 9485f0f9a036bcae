"""The general path (inversion nested in quadrature) against closed forms and the reference.

Reference values: shared/reference/paper_numbers.md Section 5.2 (global odds ratios, plug-in
and full ML).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quiet_fit
from scipy.special import logit

from gllmm import models
from gllmm.errors import SpecError
from gllmm.links import cumulative_logit_family
from gllmm.links._implicit import ImplicitMultinomial
from gllmm.models._general import dale_matrices, general_design


@pytest.fixture(scope="module")
def dale_setup(trial):
    dg = models.stratified_global_association(trial, "center", "treatment", "response")
    y = dg.family.y
    tab = y.reshape(8, 2, 3)
    n = tab.sum((1, 2))
    rc = np.cumsum(tab.sum(2), 1)[:, :-1] / n[:, None]
    cc = np.cumsum(tab.sum(1), 1)[:, :-1] / n[:, None]
    off = np.zeros((8, 5))
    off[:, 0] = logit(rc[:, 0])
    off[:, 1:3] = logit(cc)
    return dg, y, off


def test_implicit_cumulative_equals_closed_form():
    # cumulative logits written as C log(A pi): A sums cells below/above each cut
    k = 4
    A, C = [], np.zeros((3, 6))
    for j in range(3):
        A.append([1.0 if c <= j else 0.0 for c in range(k)])
        A.append([1.0 if c > j else 0.0 for c in range(k)])
        C[j, 2 * j], C[j, 2 * j + 1] = 1.0, -1.0
    rng = np.random.default_rng(7)
    y = rng.poisson(4, size=(5, k)).astype(float)
    eta = np.sort(rng.normal(size=(5, 2, 3)), axis=-1) + np.array([-1.0, 0.0, 1.0])
    a = ImplicitMultinomial(y, C, np.array(A)).derivatives(eta, 3)
    b = cumulative_logit_family(y).derivatives(eta, 3)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-7, atol=1e-8)


def test_general_path_equals_closed_form_dale(dale_setup):
    """Plug-in Dale model: inversion nested in AGQ gives the closed-form estimates (1e-6)."""
    dg, y, off = dale_setup
    ref = quiet_fit(dg)
    C, A, _ = dale_matrices(2, 3)
    X = np.zeros((8, 5, 1))
    X[:, 3:, 0] = 1.0
    d = general_design(y, C, A, X, X.copy(), offset=off, fixed_names=("beta",),
                       random_names=("b",), group="center")
    r = quiet_fit(d)
    np.testing.assert_allclose(r.params, ref.params, atol=1e-6)
    assert abs(r.loglik - ref.loglik) < 1e-6


def test_full_ml_dale_reference(dale_setup):
    """Marginals estimated jointly: beta 0.8279 (0.4756), sigma 1.0278 (0.4789), -407.0853."""
    _, y, off = dale_setup
    C, A, _ = dale_matrices(2, 3)
    p = 1 + 8 * 3
    X = np.zeros((8, 5, p))
    X[:, 3:, 0] = 1.0
    for b in range(8):
        X[b, 0:3, 1 + 3 * b: 4 + 3 * b] = np.eye(3)
    Z = np.zeros((8, 5, 1))
    Z[:, 3:, 0] = 1.0
    start = np.r_[0.8, off[:, :3].ravel()]
    d = general_design(y, C, A, X, Z, fixed_names=("beta",) + tuple(f"m{i}" for i in range(24)),
                       random_names=("b",), group="center", notes={"start": start})
    r = quiet_fit(d)
    assert abs(r.beta["beta"] - 0.8279) < 1e-3
    assert abs(r.se["beta"] - 0.4756) < 1e-3
    assert abs(r.random_sd["center"] - 1.0278) < 1e-3
    assert abs(r.random_sd_se["center"] - 0.4789) < 1e-3
    assert abs(r.loglik - (-407.0853)) < 1e-3


def test_dependent_constraints_refused():
    C, A, _ = dale_matrices(2, 2)
    C[2] = C[0]  # the odds-ratio row duplicated by a marginal row: pi not determined
    with pytest.raises(SpecError, match="does not determine pi"):
        ImplicitMultinomial(np.ones((1, 4)), C, A)


def test_shape_mismatch_refused():
    C, A, _ = dale_matrices(2, 3)
    with pytest.raises(SpecError, match="C must have shape"):
        ImplicitMultinomial(np.ones((1, 6)), C[:4], A)
    with pytest.raises(SpecError, match="A must have 6 columns"):
        ImplicitMultinomial(np.ones((1, 6)), C, A[:, :5])
