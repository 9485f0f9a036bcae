"""Validation of a constrained GLLM specification ``C log(A mu) = offset + X beta``.

Checks, each with a SpecError naming the failed condition: shapes; X of full column rank;
C of full row rank relative to X (rank [C X] = r, else some constraints U'C log(A mu) = 0 are
identically zero); span(X) inside span(C) (else beta is restricted); rows of A non-zero (A mu
must be positive); the sampling plan known; and, with fixed totals, MPH homogeneity (Lang 2004):
each row of A within one stratum and the stratum indicators, pushed through C log(A .), inside
span(X). The nonlinear condition (Jacobian of the constraints of full rank) is checked where
the fit starts (see ``_constrained``).

Glossary: c cells, r rows of C, rA rows of A, p columns of X, q = r - p constraints, K strata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError, TableError

# Rank decisions use singular values relative to the largest, like numpy.linalg.matrix_rank.
_RANK_RTOL = 1e-10


def _stratum_matrix_poisson(n_cells: int, strata: np.ndarray | None) -> np.ndarray | None:
    if strata is not None:
        raise SpecError("strata are only used with sampling='product-multinomial'")
    return None


def _stratum_matrix_multinomial(n_cells: int, strata: np.ndarray | None) -> np.ndarray | None:
    if strata is not None:
        raise SpecError(
            "sampling='multinomial' has one stratum (all cells); for several strata use "
            "sampling='product-multinomial'"
        )
    return np.ones((n_cells, 1))


def _stratum_matrix_product(n_cells: int, strata: np.ndarray | None) -> np.ndarray | None:
    if strata is None:
        raise SpecError("sampling='product-multinomial' needs strata (one label per cell)")
    labels = np.asarray(strata).reshape(-1)
    if labels.shape[0] != n_cells:
        raise SpecError(f"strata has {labels.shape[0]} labels but there are {n_cells} cells")
    _, index = np.unique(labels, return_inverse=True)
    z = np.zeros((n_cells, int(index.max()) + 1))
    z[np.arange(n_cells), index] = 1.0
    return z


# Registry, not if/elif: name -> builder of the c x K stratum indicator matrix (None = no
# fixed totals).
SAMPLING_SCHEMES: dict[str, Callable[[int, np.ndarray | None], np.ndarray | None]] = {
    "poisson": _stratum_matrix_poisson,
    "multinomial": _stratum_matrix_multinomial,
    "product-multinomial": _stratum_matrix_product,
}


@dataclass(frozen=True)
class Problem:
    """Validated, read-only arrays of one constrained fit."""

    y: np.ndarray  # (c,)
    C: np.ndarray  # (r, rA)
    A: np.ndarray  # (rA, c)
    X: np.ndarray  # (r, p)
    offset: np.ndarray  # (r,)
    U: np.ndarray  # (r, q) orthonormal basis of the orthogonal complement of span(X)
    G: np.ndarray  # (rA, q) = C' U, so that H = A' D(A mu)^-1 G
    Z: np.ndarray | None  # (c, K) fixed-total strata, None for Poisson sampling
    sampling: str
    strata: np.ndarray | None
    names: tuple[str, ...]


def constraint_jacobian(problem: Problem, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(h, H)``: h(mu) = U'(C log(A mu) - offset) and H = dh'/dmu = A'D(A mu)^-1 C'U."""
    am = problem.A @ m
    h = problem.U.T @ (problem.C @ np.log(am) - problem.offset)
    H = problem.A.T @ (problem.G / am[:, None])
    return h, H


def _as_matrix(name: str, value: object, column: bool = False) -> np.ndarray:
    arr = np.array(value, dtype=np.float64)
    if arr.ndim == 1 and column:
        arr = arr.reshape(-1, 1)  # a single model-matrix column given as a vector
    if arr.ndim != 2:
        raise SpecError(f"{name} must be a 2-D matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{name} has non-finite entries")
    return arr


def matrix_rank(mat: np.ndarray) -> int:
    if mat.size == 0:
        return 0
    sv = np.linalg.svd(mat, compute_uv=False)
    return int(np.sum(sv > _RANK_RTOL * sv[0])) if sv[0] > 0 else 0


def orthogonal_complement(X: np.ndarray) -> np.ndarray:
    """Orthonormal U (r x (r - p)) with U'X = 0; X has full column rank p."""
    r, p = X.shape
    if p == 0:
        return np.eye(r)
    q_full, _ = np.linalg.qr(X, mode="complete")
    return q_full[:, p:]


def validate(
    counts: object,
    C: object,
    A: object,
    X: object | None,
    offset: object | None,
    sampling: str,
    strata: object | None,
    names: Sequence[str] | None,
) -> Problem:
    y = np.array(counts, dtype=np.float64).reshape(-1)
    if y.size == 0:
        raise TableError("counts is empty")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise TableError("counts must be finite and non-negative")
    if y.sum() <= 0:
        raise TableError("all counts are zero")
    n_cells = y.shape[0]

    A_mat = _as_matrix("A", A)
    if A_mat.shape[1] != n_cells:
        raise SpecError(f"A has {A_mat.shape[1]} columns but there are {n_cells} cells")
    zero_rows = np.flatnonzero(~np.any(A_mat != 0, axis=1))
    if zero_rows.size:
        raise SpecError(
            f"A mu must be positive: rows {zero_rows.tolist()} of A are zero, so log(A mu) is "
            "undefined"
        )
    C_mat = _as_matrix("C", C)
    if C_mat.shape[1] != A_mat.shape[0]:
        raise SpecError(
            f"C has {C_mat.shape[1]} columns but A has {A_mat.shape[0]} rows (C log(A mu) "
            "needs them equal)"
        )
    r = C_mat.shape[0]
    X_mat = np.zeros((r, 0)) if X is None else _as_matrix("X", X, column=True)
    if X_mat.shape[0] != r:
        raise SpecError(f"X has {X_mat.shape[0]} rows but C has {r} (one per eta component)")
    p = X_mat.shape[1]
    if matrix_rank(X_mat) < p:
        raise SpecError(
            f"X must have full column rank: rank {matrix_rank(X_mat)} < {p} columns, so beta is "
            "not identifiable"
        )
    if p > r:
        raise SpecError(f"X has more columns ({p}) than rows ({r})")
    off = np.zeros(r) if offset is None else np.array(offset, dtype=np.float64).reshape(-1)
    if off.shape[0] != r or not np.all(np.isfinite(off)):
        raise SpecError(f"offset must be a finite vector of length {r}")

    # Linear conditions on C relative to X (the nonlinear one is checked at the start values).
    rank_cx = matrix_rank(np.hstack([C_mat, X_mat]))
    if rank_cx < r:
        raise SpecError(
            f"C must have full row rank relative to X: rank([C X]) = {rank_cx} < {r} rows, so "
            "some constraints U'C log(A mu) = 0 are identically zero (redundant); remove the "
            "linearly dependent rows of C"
        )
    if p and matrix_rank(np.hstack([C_mat, X_mat])) > matrix_rank(C_mat):
        raise SpecError(
            "the columns of X must lie in the column space of C: C has linearly dependent rows "
            "that X does not respect, so X beta = C log(A mu) would restrict beta (incompatible "
            "specification)"
        )

    if sampling not in SAMPLING_SCHEMES:
        raise SpecError(
            f"unknown sampling {sampling!r}; valid: {', '.join(sorted(SAMPLING_SCHEMES))}"
        )
    strata_arr = None if strata is None else np.asarray(strata).reshape(-1)
    Z = SAMPLING_SCHEMES[sampling](n_cells, strata_arr)
    U = orthogonal_complement(X_mat)
    if Z is not None:
        _check_homogeneous(A_mat, C_mat, X_mat, U, Z, y)

    if names is None:
        names_t = tuple(f"beta[{j + 1}]" for j in range(p))
    else:
        names_t = tuple(str(n) for n in names)
        if len(names_t) != p:
            raise SpecError(f"names has {len(names_t)} entries but X has {p} columns")
    return Problem(
        y=y, C=C_mat, A=A_mat, X=X_mat, offset=off, U=U, G=C_mat.T @ U, Z=Z,
        sampling=sampling, strata=strata_arr, names=names_t,
    )


def _check_homogeneous(
    A: np.ndarray, C: np.ndarray, X: np.ndarray, U: np.ndarray, Z: np.ndarray, y: np.ndarray
) -> None:
    """MPH condition (Lang 2004): h(mu) unchanged when a stratum's cells are scaled together.

    Each row of A must sum cells of one stratum; then scaling stratum k by t adds
    ``log(t) C W[:, k]`` to eta (W: rows of A -> strata), and h = U'(eta - offset) is invariant
    iff ``U' C W = 0``, i.e. the stratum indicators lie in the model space span(X).
    """
    totals = Z.T @ y
    if np.any(totals <= 0):
        raise TableError("every stratum with a fixed total needs a positive total count")
    support = (A != 0).astype(float) @ Z  # rA x K: how many cells of each stratum a row uses
    mixed = np.flatnonzero(np.count_nonzero(support, axis=1) > 1)
    if mixed.size:
        raise SpecError(
            f"rows {mixed.tolist()} of A add cells from different strata: with fixed stratum "
            "totals each row of A must stay within one stratum (MPH homogeneity, Lang 2004)"
        )
    W = (support > 0).astype(float)
    leak = U.T @ (C @ W)
    scale = max(1.0, float(np.abs(C @ W).max(initial=0.0)))
    if leak.size and np.abs(leak).max() > 1e-8 * scale:
        raise SpecError(
            "the stratum indicators must lie in the model space: C log(A mu) changes with the "
            "fixed stratum totals in a direction outside span(X), so the model is not "
            "homogeneous for this sampling plan (add the totals' effect, e.g. an intercept per "
            "stratum, to X, or use sampling='poisson')"
        )
