"""Small dense linear algebra for the compiled loops: a Cholesky factorisation and solve, and
the identity and rank-2 update of the BFGS loop, the last three in two versions: numpy's (fast
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


@njit
def cholesky_solve(L, b, out):  # pragma: no cover - compiled
    """``out = (L L')^{-1} b`` for a vector b."""
    q = L.shape[0]
    for i in range(q):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * out[k]
        out[i] = s / L[i, i]
    for i in range(q - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, q):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]


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
    """``H + a s' + s b'``."""
    return H + np.outer(a, s) + np.outer(s, b)


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
