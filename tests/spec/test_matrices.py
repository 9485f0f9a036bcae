"""C and A builders: C log(A mu) against hand-computed odds ratios and logits; shape checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gllmm.errors import SpecError
from gllmm.spec._matrices import (
    LOGITS,
    adjacent_logits,
    aliased_columns,
    baseline_logits,
    check_conformable,
    check_full_rank,
    continuation_logits,
    cumulative_logits,
    global_odds_ratios,
    local_odds_ratios,
    logits,
    loglinear_matrices,
    margin_matrix,
    marginal_logits,
)
from gllmm.tables import from_array


@pytest.fixture
def mu():
    return np.random.default_rng(7).uniform(0.5, 9.0, size=(3, 4))


def _eta(lm, mu):
    C, A = lm
    return C @ np.log(A @ mu.reshape(-1))


def _local_by_hand(m):
    I, J = m.shape
    return np.array([np.log(m[i, j] * m[i + 1, j + 1] / (m[i, j + 1] * m[i + 1, j]))
                     for i in range(I - 1) for j in range(J - 1)])


def _global_by_hand(m):
    I, J = m.shape
    out = []
    for i in range(I - 1):
        for j in range(J - 1):
            q11, q12 = m[: i + 1, : j + 1].sum(), m[: i + 1, j + 1:].sum()
            q21, q22 = m[i + 1:, : j + 1].sum(), m[i + 1:, j + 1:].sum()
            out.append(np.log(q11 * q22 / (q12 * q21)))
    return np.array(out)


def _cumulative_by_hand(m):
    """Rows: per row i of m, logit P(Y <= j | i) for the column response."""
    p = m / m.sum(axis=1, keepdims=True)
    cum = np.cumsum(p, axis=1)[:, :-1]
    return np.log(cum / (1 - cum)).reshape(-1)


# ---------------------------------------------------------------- odds ratios
def test_local_odds_ratios_3x4(mu):
    lm = local_odds_ratios((3, 4))
    assert lm.C.shape == (6, 12) and lm.A.shape == (12, 12)
    np.testing.assert_array_equal(lm.A, np.eye(12))
    np.testing.assert_allclose(_eta(lm, mu), _local_by_hand(mu), rtol=1e-13)
    np.testing.assert_array_equal(lm.row_index, [[i, j] for i in range(2) for j in range(3)])


def test_local_odds_ratios_of_transposed_axes(mu):
    lm = local_odds_ratios((3, 4), axes=(1, 0))  # same odds ratios: axes order does not matter
    np.testing.assert_allclose(_eta(lm, mu), _local_by_hand(mu), rtol=1e-13)


def test_global_odds_ratios_3x4(mu):
    lm = global_odds_ratios((3, 4))
    assert lm.C.shape == (6, 24) and lm.A.shape == (24, 12)
    np.testing.assert_allclose(_eta(lm, mu), _global_by_hand(mu), rtol=1e-13)
    # four consecutive A rows per split: q11, q12, q21, q22 of split (1, 1)
    np.testing.assert_allclose(lm.A[:4] @ mu.reshape(-1),
                               [mu[0, 0], mu[0, 1:].sum(), mu[1:, 0].sum(), mu[1:, 1:].sum()])
    np.testing.assert_array_equal(lm.C[0, :8], [1, -1, -1, 1, 0, 0, 0, 0])


def test_global_equals_local_for_2x2(mu):
    m = mu[:2, :2]
    np.testing.assert_allclose(_eta(global_odds_ratios((2, 2)), m),
                               _eta(local_odds_ratios((2, 2)), m))


@pytest.mark.parametrize("builder,by_hand", [(global_odds_ratios, _global_by_hand),
                                             (local_odds_ratios, _local_by_hand)])
def test_stratified_odds_ratios_block_diagonal(builder, by_hand):
    m = np.random.default_rng(3).uniform(1, 5, size=(4, 3, 3))
    lm = builder((4, 3, 3), axes=(1, 2))
    expected = np.concatenate([by_hand(m[k]) for k in range(4)])
    np.testing.assert_allclose(_eta(lm, m), expected, rtol=1e-13)
    # block diagonal by stratum: stratum k's rows touch only stratum k's cells
    CA = lm.C @ lm.A
    r, n = CA.shape[0] // 4, 9
    for k in range(4):
        block = np.abs(CA[k * r:(k + 1) * r])
        assert block[:, k * n:(k + 1) * n].sum() > 0
        assert block.sum() == block[:, k * n:(k + 1) * n].sum()


def test_odds_ratio_axis_errors():
    with pytest.raises(SpecError, match="two different axes"):
        local_odds_ratios((3, 3), axes=(1, 1))
    with pytest.raises(SpecError, match="at least 2 levels of 'x2'"):
        global_odds_ratios((3, 1))
    with pytest.raises(SpecError, match="unknown factor 'z'"):
        local_odds_ratios((3, 3), axes=("x1", "z"))


# ---------------------------------------------------------------- logits
def test_cumulative_logits_equal_logit_of_cumulative_proportions(mu):
    lm = cumulative_logits((3, 4), response=1)
    assert lm.C.shape == (9, 18) and lm.A.shape == (18, 12)
    np.testing.assert_allclose(_eta(lm, mu), _cumulative_by_hand(mu), rtol=1e-13)
    np.testing.assert_array_equal(lm.row_index[:, 1], np.tile([0, 1, 2], 3))
    # response along the first axis: cumulative logits of each column's distribution
    np.testing.assert_allclose(_eta(cumulative_logits((3, 4), response=0), mu),
                               _cumulative_by_hand(mu.T).reshape(4, 2).T.reshape(-1))


def test_adjacent_logits(mu):
    lm = adjacent_logits((3, 4))
    np.testing.assert_allclose(_eta(lm, mu), np.log(mu[:, :-1] / mu[:, 1:]).reshape(-1))
    np.testing.assert_array_equal(lm.A, np.eye(12))


@pytest.mark.parametrize("baseline", [-1, 0, 2])
def test_baseline_logits(mu, baseline):
    lm = baseline_logits((3, 4), baseline=baseline)
    b = baseline % 4
    others = [j for j in range(4) if j != b]
    np.testing.assert_allclose(_eta(lm, mu), np.log(mu[:, others] / mu[:, [b]]).reshape(-1))


def test_continuation_logits(mu):
    expected = [np.log(mu[i, j] / mu[i, j + 1:].sum()) for i in range(3) for j in range(3)]
    np.testing.assert_allclose(_eta(continuation_logits((3, 4)), mu), expected, rtol=1e-13)


def test_logit_registry(mu):
    assert set(LOGITS) == {"baseline", "adjacent", "cumulative", "continuation"}
    np.testing.assert_allclose(_eta(logits((3, 4), kind="adjacent"), mu),
                               _eta(adjacent_logits((3, 4)), mu))
    with pytest.raises(SpecError, match=r"unknown logit kind 'probit'; known: \['adjacent'"):
        logits((3, 4), kind="probit")


def test_labels_use_table_names_and_levels():
    t = from_array(np.ones((2, 3)), ["trt", "resp"],
                   levels={"trt": ["drug", "placebo"], "resp": ["good", "fair", "poor"]})
    labels = cumulative_logits(t, "resp").labels()
    assert labels[:2] == ["cumulative_logit[trt=drug, resp<=good]",
                          "cumulative_logit[trt=drug, resp<=fair]"]
    assert global_odds_ratios(t, ("trt", "resp")).labels()[1] == \
        "log_global_or[trt<=drug, resp<=fair]"
    assert local_odds_ratios(t, ("trt", "resp")).labels()[0] == \
        "log_local_or[trt=drug:placebo, resp=good:fair]"


# ---------------------------------------------------------------- marginal and log-linear
def test_margin_matrix_sums_cells():
    m = np.random.default_rng(1).uniform(size=(2, 3, 4))
    np.testing.assert_allclose(margin_matrix(m.shape, [2]) @ m.reshape(-1), m.sum(axis=(0, 1)))
    np.testing.assert_allclose(margin_matrix(m.shape, [0, 2]) @ m.reshape(-1),
                               m.sum(axis=1).reshape(-1))


def test_marginal_cumulative_logits_of_square_table():
    m = np.random.default_rng(5).uniform(1, 5, size=(4, 4))
    lm = marginal_logits((4, 4), responses=(0, 1), kind="cumulative")
    assert lm.C.shape == (6, 12) and lm.A.shape == (12, 16)

    def cum(p):
        c = np.cumsum(p)[:-1] / p.sum()
        return np.log(c / (1 - c))

    expected = np.concatenate([cum(m.sum(axis=1)), cum(m.sum(axis=0))])
    np.testing.assert_allclose(_eta(lm, m), expected, rtol=1e-13)
    # marginal homogeneity: both margins equal <=> eta is [t; t] (X = [I; I])
    sym = m + m.T
    eta = _eta(lm, sym)
    np.testing.assert_allclose(eta[:3], eta[3:], rtol=1e-13)
    np.testing.assert_array_equal(lm.row_index[:3, 1], [-1, -1, -1])


def test_marginal_logits_within_strata():
    m = np.random.default_rng(2).uniform(1, 5, size=(2, 3, 3))
    lm = marginal_logits(m.shape, responses=("x2", "x3"), kind="adjacent", strata=["x1"])
    row = m.sum(axis=2)  # (stratum, x2)
    col = m.sum(axis=1)
    expected = np.concatenate([np.log(row[:, :-1] / row[:, 1:]).reshape(-1),
                               np.log(col[:, :-1] / col[:, 1:]).reshape(-1)])
    np.testing.assert_allclose(_eta(lm, m), expected, rtol=1e-13)
    with pytest.raises(SpecError, match="not among strata"):
        marginal_logits(m.shape, responses=(0, 1), strata=[0])


def test_loglinear_is_identity(mu):
    lm = loglinear_matrices((3, 4))
    np.testing.assert_array_equal(lm.C, np.eye(12))
    np.testing.assert_allclose(_eta(lm, mu), np.log(mu.reshape(-1)))


def test_large_tables_are_sparse_and_agree_with_dense():
    shape = (40, 30)
    m = np.random.default_rng(0).uniform(1, 3, size=shape)
    auto = global_odds_ratios(shape)
    dense = global_odds_ratios(shape, sparse=False)
    assert sp.issparse(auto.C) and sp.issparse(auto.A)
    assert isinstance(dense.C, np.ndarray)
    # log odds ratios near 0 are differences of logs of ~600-term sums: compare absolutely
    np.testing.assert_allclose(_eta(auto, m), _eta(dense, m), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_eta(auto, m), _global_by_hand(m), rtol=0, atol=1e-12)
    C, A = loglinear_matrices((1000, 1000))
    assert sp.issparse(C) and C.shape == (10**6, 10**6) and C.nnz == 10**6


# ---------------------------------------------------------------- checks
def test_check_conformable_accepts_built_matrices():
    C, A = cumulative_logits((3, 4))
    check_conformable(C, A, np.ones((9, 2)), 12, Z=np.ones((9, 3)))
    Cs, As = cumulative_logits((3, 4), sparse=True)
    check_conformable(Cs, As, np.ones((9, 2)), 12)


@pytest.mark.parametrize(
    ("shapes", "pattern"),
    [
        (((9, 18), (18, 11), (9, 2), 12), r"A \(18, 11\) has 11 columns but the table has 12"),
        (((9, 17), (18, 12), (9, 2), 12), r"C \(9, 17\) has 17 columns but A \(18, 12\) has 18"),
        (((9, 18), (18, 12), (8, 2), 12), r"X \(8, 2\) has 8 rows but C \(9, 18\) has 9 rows"),
        (((9, 18), (18, 12), (9,), 12), r"X has shape \(9,\), not 2-D"),
    ],
)
def test_check_conformable_names_mismatched_shapes(shapes, pattern):
    c, a, x, n = shapes
    with pytest.raises(SpecError, match=pattern):
        check_conformable(np.ones(c), np.ones(a), np.ones(x), n)


def test_check_conformable_lists_all_mismatches_and_bad_A():
    with pytest.raises(SpecError, match=r"11 columns.*Z \(4, 1\) has 4 rows"):
        check_conformable(np.ones((9, 18)), np.ones((18, 11)), np.ones((9, 2)), 12,
                          Z=np.ones((4, 1)))
    A = np.eye(3)
    A[1, 1] = 0
    with pytest.raises(SpecError, match=r"all-zero row\(s\).*\[1\]"):
        check_conformable(np.eye(3), A, np.ones((3, 1)), 3)
    with pytest.raises(SpecError, match="negative"):
        check_conformable(np.eye(3), -np.eye(3), np.ones((3, 1)), 3)


def _design():
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=(3, 12))
    return a, b, c


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (lambda a, b, c: {"1": np.ones(12), "a": a, "b": b}, []),
        (lambda a, b, c: {"1": np.ones(12), "a": a, "b": b, "a+b": a + b}, ["a+b"]),
        (lambda a, b, c: {"1": np.ones(12), "2a": 2 * a, "a": a, "c": c}, ["a"]),
        (lambda a, b, c: {"1": np.ones(12), "zero": np.zeros(12), "a": a}, ["zero"]),
        (lambda a, b, c: {"big": 1e6 * a, "1": np.ones(12), "small": 1e-6 * (a - 1)},
         ["small"]),
        (lambda a, b, c: {"a": a, "b": b, "c": c, "a-b": a - b, "3c": 3 * c}, ["a-b", "3c"]),
    ],
    ids=["full-rank", "sum", "rescaled", "zero", "scales", "two"],
)
def test_aliased_columns(columns, expected):
    cols = columns(*_design())
    X = np.column_stack(list(cols.values()))
    assert aliased_columns(X, list(cols)) == expected


def test_aliased_dummy_trap_names_last_dummy():
    g = np.repeat([0, 1, 2], 4)
    X = np.column_stack([np.ones(12), g == 0, g == 1, g == 2]).astype(float)
    assert aliased_columns(X, ["(Intercept)", "g1", "g2", "g3"]) == ["g3"]
    with pytest.raises(SpecError, match=r"rank 3 < 4: columns \['g3'\]"):
        check_full_rank(X, ["(Intercept)", "g1", "g2", "g3"])
    check_full_rank(X[:, :3], ["(Intercept)", "g1", "g2"])


def test_aliased_columns_wide_matrix_and_default_names():
    X = np.random.default_rng(0).normal(size=(2, 4))  # rank 2: the last two are aliased
    assert aliased_columns(X) == ["column 2", "column 3"]
    with pytest.raises(SpecError, match="3 names for the 4 columns"):
        aliased_columns(X, ["a", "b", "c"])
