"""The GLM start's shortcuts against the general routines they stand in for: the Gram
eigenvalue test of full rank against the pivoted QR (``aliased_columns``), the normal-equation
start against least squares, the cell check from given codes against its own factorization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gllmm.errors import SpecError
from gllmm.fitting._glm import _clearly_full_rank, _default_start, check_full_rank
from gllmm.links import Poisson
from gllmm.spec import Design
from gllmm.spec._matrices import aliased_columns
from gllmm.tables._validate import check_unique_cells


def _dummies(rng: np.random.Generator, n: int, levels: int) -> np.ndarray:
    codes = np.r_[np.arange(levels), rng.integers(0, levels, n - levels)]
    return (codes[:, None] == np.arange(1, levels)).astype(float)


def _designs() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for n, a, b in ((12, 3, 4), (42, 7, 6), (200, 10, 20)):
        X = np.c_[np.ones(n), _dummies(rng, n, a), _dummies(rng, n, b), rng.normal(size=n)]
        out.append(X)
        out.append(np.c_[X, X[:, 1] + X[:, 2]])  # exactly aliased
        out.append(np.c_[X, X[:, 1] + 1e-9 * rng.normal(size=n)])  # nearly aliased
        out.append(np.c_[X, np.zeros(n)])  # a zero column
        out.append(X * 10.0 ** rng.integers(-6, 7, X.shape[1]))  # badly scaled, full rank
    return out


@pytest.mark.parametrize("X", _designs())
def test_clearly_full_rank_implies_no_aliased_column(X):
    """Whenever the eigenvalue test says full rank, the pivoted QR finds no aliased column;
    the clearly full-rank designs here pass it (exact: a boolean)."""
    if _clearly_full_rank(X):
        assert aliased_columns(X) == []
    aliased = aliased_columns(X)
    if not aliased and np.linalg.cond(X / np.linalg.norm(X, axis=0)) < 1e3:
        assert _clearly_full_rank(X)


def _design(X: np.ndarray, y: np.ndarray) -> Design:
    n, p = X.shape
    return Design(Poisson(y, np.arange(n)[:, None]), X[:, None, :], np.zeros((n, 1, 0)),
                  np.zeros((n, 1)), np.arange(n), None, tuple(f"x{k}" for k in range(p)))


@pytest.mark.parametrize("X", _designs())
def test_check_full_rank_names_what_aliased_columns_names(X):
    """The design check raises exactly when aliased_columns finds columns, naming them."""
    y = np.random.default_rng(3).poisson(3.0, X.shape[0]).astype(float)
    aliased = aliased_columns(X, [f"x{k}" for k in range(X.shape[1])])
    if aliased:
        with pytest.raises(SpecError, match="aliased columns: " + ", ".join(aliased)):
            check_full_rank(_design(X, y))
    else:
        check_full_rank(_design(X, y))


@pytest.mark.parametrize("X", _designs())
def test_default_start_is_the_least_squares_solution(X):
    """The Poisson start solves least squares of log(y + 1/2) on X: equal to numpy's lstsq to
    1e-6 relative on well-conditioned X; on rank-deficient X (lstsq's minimum-norm solution)
    the same fitted values to 1e-6."""
    y = np.random.default_rng(5).poisson(3.0, X.shape[0]).astype(float)
    target = np.log(y + 0.5)
    ref = np.linalg.lstsq(X, target, rcond=None)[0]
    got = _default_start(_design(X, y))
    if _clearly_full_rank(X):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(X @ got, X @ ref, rtol=1e-6, atol=1e-6)


def test_unique_cells_from_given_codes_matches_own_factorization():
    """Given codes (as cellwise_smoothing passes them) refuse the same duplicated rows, with
    the same message, as the check's own factorization."""
    df = pd.DataFrame({"a": ["x", "y", "x", "y"], "b": [1, 1, 2, 1]})
    codes = [(np.array([0, 1, 0, 1]), 2), (np.array([0, 0, 1, 0]), 2)]
    msgs = []
    for given in (None, codes):
        with pytest.raises(SpecError, match=r"duplicated cells: rows \[1, 3\]") as err:
            check_unique_cells(df, ["a", "b"], codes=given)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1]
    check_unique_cells(df.iloc[:3], ["a", "b"], codes=[(c[:3], k) for c, k in codes])
