"""Small dense linear algebra for the compiled loops: Cholesky and pivoted LU factorisations,
their solves by one pair of triangular substitutions, inverses column by column, and the
identity and rank-2 update of the BFGS loop, the last three in two versions: numpy's (fast
in Python) and explicit loops (fast to compile: numba takes seconds to compile
``np.linalg.lstsq`` or ``np.outer``)."""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit


@njit
def cholesky_into(K, L, shift=0.0):  # pragma: no cover - compiled
    """Lower Cholesky factor of ``K + shift I`` (q x q) into L; False if it is not positive
    definite (L then holds the columns before the failing one)."""
    q = K.shape[0]
    for j in range(q):
        d = K[j, j] + shift
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 0:
            return False
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, q):
            s = K[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
        for i in range(j):
            L[i, j] = 0.0
    return True


#: what a factor in :func:`factor_solve` holds
CHOLESKY, LU, LU_TRANSPOSED = 0, 1, 2


@njit(inline=True)
def _entry(M, i, k, transposed):  # pragma: no cover - compiled
    return M[k, i] if transposed else M[i, k]


@njit(inline=True)
def forward_substitution(M, b, unit, transposed):  # pragma: no cover - compiled
    """``b = T^{-1} b`` in place, T the lower triangle of M (of M' when ``transposed``), its
    diagonal taken as ones when ``unit``."""
    n = M.shape[0]
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= _entry(M, i, k, transposed) * b[k]
        b[i] = s if unit else s / M[i, i]


@njit(inline=True)
def back_substitution(M, b, unit, transposed):  # pragma: no cover - compiled
    """``b = T^{-1} b`` in place, T the upper triangle of M (of M' when ``transposed``), its
    diagonal taken as ones when ``unit``."""
    n = M.shape[0]
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= _entry(M, i, k, transposed) * b[k]
        b[i] = s if unit else s / M[i, i]


@njit
def cholesky_solve(L, b, out):  # pragma: no cover - compiled
    """``out = (L L')^{-1} b`` for a vector b."""
    out[:] = b
    forward_substitution(L, out, False, False)
    back_substitution(L, out, False, True)


@njit
def lu_into(M, piv):  # pragma: no cover - compiled
    """``P M = L U`` in place (L unit lower, U upper, both in M; row k swapped with
    ``piv[k]``) by partial pivoting; False when M is singular."""
    n = M.shape[0]
    for k in range(n):
        p = k
        big = abs(M[k, k])
        for i in range(k + 1, n):
            if abs(M[i, k]) > big:
                big = abs(M[i, k])
                p = i
        if big == 0.0 or not math.isfinite(big):
            return False
        piv[k] = p
        if p != k:
            for c in range(n):
                M[k, c], M[p, c] = M[p, c], M[k, c]
        for i in range(k + 1, n):
            M[i, k] /= M[k, k]
            f = M[i, k]
            for c in range(k + 1, n):
                M[i, c] -= f * M[k, c]
    return True


@njit
def factor_solve(M, piv, b, kind):  # pragma: no cover - compiled
    """``b = A^{-1} b`` in place (``A'^{-1} b`` for ``LU_TRANSPOSED``) from A's factor M: the
    Cholesky factor L of ``A = L L'`` (``kind`` CHOLESKY; ``piv`` unused) or the factors and
    pivots of :func:`lu_into` (LU, LU_TRANSPOSED)."""
    n = M.shape[0]
    if kind == CHOLESKY:
        forward_substitution(M, b, False, False)
        back_substitution(M, b, False, True)
    elif kind == LU:
        for k in range(n):
            p = piv[k]
            if p != k:
                b[k], b[p] = b[p], b[k]
        forward_substitution(M, b, True, False)
        back_substitution(M, b, False, False)
    else:  # P A = L U: A' = U' L' P, so solve with U' (lower), then L' (unit upper), then P'
        forward_substitution(M, b, False, True)
        back_substitution(M, b, True, True)
        for k in range(n - 1, -1, -1):
            p = piv[k]
            if p != k:
                b[k], b[p] = b[p], b[k]


@njit
def inverse_into(M, piv, kind, col, out):  # pragma: no cover - compiled
    """``out = A^{-1}`` column by column from A's factor M (see :func:`factor_solve`); ``col``
    is an n-vector of work space."""
    n = M.shape[0]
    for r in range(n):
        for a in range(n):
            col[a] = 1.0 if a == r else 0.0
        factor_solve(M, piv, col, kind)
        for a in range(n):
            out[a, r] = col[a]


def solve_numpy(A, b):
    """``(A + ridge I)^{-1} b`` with a tiny ridge; least squares if singular."""
    p = len(b)
    ridge = 1e-12 * np.trace(A) / max(p, 1)
    try:
        return np.linalg.solve(A + ridge * np.eye(p), b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, b, rcond=None)[0]


def eye_numpy(n, scale):
    return np.eye(n) * scale


def rank2_numpy(H, a, s, b):
    """``H + a s' + s b'`` (broadcast products: np.outer's checks cost more at this size)."""
    return H + (a[:, None] * s + s[:, None] * b)


@njit
def solve_loops(A, b):  # pragma: no cover - compiled
    """As ``solve_numpy``, by a Cholesky factorisation; where A is not positive definite the
    ridge grows (1e-12, 1e-8, 1e-4, 1 times the mean diagonal) until it is."""
    p = b.shape[0]
    tr = 0.0
    for i in range(p):
        tr += A[i, i]
    scale = abs(tr) / max(p, 1) + 1e-300
    L = np.zeros((p, p))
    for ridge in (1e-12, 1e-8, 1e-4, 1.0):
        if cholesky_into(A, L, ridge * scale):
            break
    x = np.empty(p)
    cholesky_solve(L, b, x)
    return x


@njit
def eye_loops(n, scale):  # pragma: no cover - compiled
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i] = scale
    return out


@njit
def rank2_loops(H, a, s, b):  # pragma: no cover - compiled
    out = H.copy()
    for i in range(a.shape[0]):
        for j in range(a.shape[0]):
            out[i, j] += a[i] * s[j] + s[i] * b[j]
    return out
