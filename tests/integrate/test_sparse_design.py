"""Sparse designs (``spec/_design.py``): crossed random effects keep Z and the covariance
templates sparse, and the sparse and dense representations of one model give the same
objective.

Tolerances: 1e-10 relative on log-likelihoods and gradients of the same model stored sparse
and dense (the same sparse Laplace arithmetic on the same numbers: only the order of the
pattern's construction differs); exact equality for structural facts (shapes, patterns);
memory bounds a factor 10 or more below what a dense rows x q array would take.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_sparse_laplace import crossed_data  # same directory (pytest's rootdir-less import)

from gllmm.integrate import MarginalLikelihood
from gllmm.spec import CovarianceStructure, Design, block_structure, build_design


def crossed(n_a: int, n_b: int, n: int, seed: int = 0) -> pd.DataFrame:
    return crossed_data(n_a, n_b, n, seed=seed)


def dense_copy(d: Design) -> Design:
    """The same model with dense Z (B, J, q) and dense (m, q, q) templates."""
    cs = d.covariance
    cov = CovarianceStructure(cs.templates.copy(), cs.lower, cs.names, cs.blocks)
    return Design(d.family, d.X, d.Z.copy(), d.offset, d.cluster, cov, d.fixed_names,
                  d.cluster_labels, d.random_names, d.notes)


def test_crossed_design_has_no_dense_rows_by_q_array():
    n, n_a, n_b = 40_000, 3000, 1000
    df = crossed(n_a, n_b, n)
    tracemalloc.start()
    d = build_design(df, "count ~ x + (1 | a) + (1 | b)")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    q = n_a + n_b
    assert d.n_random == q and d.is_sparse
    z = d.z_matrix
    assert sp.issparse(z) and z.shape == (n, q) and z.nnz == 2 * n
    assert d.covariance._templates is None  # the (m, q, q) array was never built
    pat = d.covariance.pattern
    assert len(pat.rows) == q and pat.values.shape == (q, 2)
    # linear in rows (the data frame's copies, the fixed-effects matrix: about 500 bytes a
    # row); a dense Z would be n q 8 bytes = 1.28 GB and the templates 2 q^2 8 = 256 MB
    assert peak < 1000 * n, f"peak {peak / 1e6:.1f} MB while building the design"


def test_sparse_structure_never_densifies():
    formula = "count ~ x + (1 | a) + (1 | b)"
    x = np.array([0.2, 0.4, 0.5, 0.3])
    MarginalLikelihood(build_design(crossed(20, 10, 200), formula), 1).value_and_gradient(x)
    d = build_design(crossed(2000, 500, 20_000, seed=1), formula)
    obj = MarginalLikelihood(d, 1)
    tracemalloc.start()  # after the imports and the compiled kernels' loading
    value, grad = obj.value_and_gradient(x)  # structure, ordering, factorisation
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # dense Z: 20,000 x 2,500 x 8 = 400 MB; the dense trailing block (500 x 500) is 2 MB
    assert peak < 40e6, f"peak {peak / 1e6:.1f} MB in one evaluation"
    assert d.covariance._templates is None and "Z" not in d._cache


@pytest.mark.parametrize("formula", ["count ~ x + (1 | a) + (1 | b)",
                                     "count ~ x + (1 + x | a) + (1 | b)",
                                     "count ~ x + (1 | a) + (1 | a:b)"])
def test_sparse_and_dense_representations_agree(formula):
    df = crossed(12, 9, 160, seed=2)
    sparse = build_design(df, formula)
    dense = dense_copy(sparse)
    assert sparse.is_sparse and not dense.is_sparse
    np.testing.assert_array_equal(sparse.Z, dense.Z)
    x = np.r_[0.1, 0.3, np.resize([0.6, 0.4, 0.1], sparse.n_theta)]
    v1, g1 = MarginalLikelihood(sparse, 1).value_and_gradient(x)
    v2, g2 = MarginalLikelihood(dense, 1).value_and_gradient(x)
    assert v1 == pytest.approx(v2, rel=1e-10)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-10 * np.abs(g2).max())


def test_block_structure_templates_match_dense_construction():
    # (1 + x | g) with 3 groups next to (1 | h) with 2: lower-triangular 2 x 2 blocks
    reps_g = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    reps_h = [np.array([6]), np.array([7])]
    cs = block_structure([("g", ("(Intercept)", "x"), "unstructured", reps_g),
                          ("h", ("(Intercept)",), "identity", reps_h)], 8)
    assert cs.names == ("lambda(g)[0,0]", "lambda(g)[1,0]", "lambda(g)[1,1]", "sd(h)")
    np.testing.assert_array_equal(cs.lower, [0, -np.inf, 0, 0])
    expect = np.zeros((4, 8, 8))
    for r in reps_g:
        expect[0, r[0], r[0]] = expect[1, r[1], r[0]] = expect[2, r[1], r[1]] = 1.0
    for r in reps_h:
        expect[3, r[0], r[0]] = 1.0
    np.testing.assert_array_equal(cs.templates, expect)
    theta = np.array([0.7, -0.2, 0.5, 0.3])
    np.testing.assert_array_equal(cs.factor(theta), np.tensordot(theta, expect, axes=1))
    small = cs.compact()  # the first repetition of each block only
    assert small.dimension == 3
    np.testing.assert_allclose(small.covariance(theta),
                               cs.covariance(theta)[np.ix_([0, 1, 6], [0, 1, 6])], rtol=1e-15)


def test_sparse_x_is_accepted():
    d = build_design(crossed(10, 8, 120, seed=4), "count ~ x + (1 | a) + (1 | b)")
    xs = sp.csr_matrix(d.x_matrix)
    ds = Design(d.family, xs, d.z_matrix, d.offset, d.cluster, d.covariance, d.fixed_names)
    np.testing.assert_array_equal(ds.X, d.X)
    x = np.array([0.1, 0.3, 0.5, 0.4])
    v1, g1 = MarginalLikelihood(ds, 1).value_and_gradient(x)
    v2, g2 = MarginalLikelihood(d, 1).value_and_gradient(x)
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
