"""Compiled sparse LDL' of ``K = I + M' diag(w) M`` for the sparse Laplace path.

An up-looking LDL' (T. Davis's LDL algorithm) over a fixed pattern: the elimination tree, the
column counts and the rows of L are found once per design (``_ldl_symbolic``, ``_ldl_pattern``)
and every numeric factorisation walks the stored rows of L instead of the elimination tree.
Columns from ``t`` on may be left as a dense Schur complement (for LAPACK); the selected inverse
(Takahashi, Fagan & Chin 1973) gives ``K^{-1}`` on the pattern of L from the factor. See
``_sparse_laplace`` for how they are used.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit as _njit


@_njit
def _symmetric_pattern(n, ki, kj):  # pragma: no cover - compiled
    """CSC (indptr, indices; rows sorted, no repeats) of the n x n symmetric pattern with the
    diagonal and the entries (ki, kj) and (kj, ki)."""
    # the entries column by column, unsorted and with repeats
    start = np.ones(n + 1, dtype=np.int64)
    start[0] = 0
    for e in range(ki.shape[0]):
        start[kj[e] + 1] += 1
        start[ki[e] + 1] += 1
    for j in range(n):
        start[j + 1] += start[j]
    fill = start[:-1].copy()
    rows = np.empty(start[n], dtype=np.int64)
    for j in range(n):
        rows[fill[j]] = j
        fill[j] += 1
    for e in range(ki.shape[0]):
        rows[fill[kj[e]]] = ki[e]
        fill[kj[e]] += 1
        rows[fill[ki[e]]] = kj[e]
        fill[ki[e]] += 1
    # transposing (the same pattern: it is symmetric) visits the columns in order, so each
    # column of the transpose comes sorted; repeats are then adjacent
    sorted_rows = np.empty(start[n], dtype=np.int64)
    fill[:] = start[:-1]
    for j in range(n):
        for p in range(start[j], start[j + 1]):
            i = rows[p]
            sorted_rows[fill[i]] = j
            fill[i] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    c = 0
    for j in range(n):
        for p in range(start[j], start[j + 1]):
            if p == start[j] or sorted_rows[p] != sorted_rows[p - 1]:
                rows[c] = sorted_rows[p]
                c += 1
        indptr[j + 1] = c
    return indptr, rows[:c].copy()


@_njit
def _permuted_upper(n, Ap, Ai, perm):  # pragma: no cover - compiled
    """CSC (indptr, indices; rows sorted) of the upper triangle with the diagonal of the
    symmetric pattern (Ap, Ai) (both triangles stored) permuted by perm (new -> old).

    Row a of the result is column perm[a] of the pattern (symmetry); visiting the rows in
    order fills every column sorted."""
    iperm = np.empty(n, dtype=np.int64)
    iperm[perm] = np.arange(n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    for a in range(n):
        j = perm[a]
        for p in range(Ap[j], Ap[j + 1]):
            b = iperm[Ai[p]]
            if a <= b:
                indptr[b + 1] += 1
    for j in range(n):
        indptr[j + 1] += indptr[j]
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[n], dtype=np.int64)
    for a in range(n):
        j = perm[a]
        for p in range(Ap[j], Ap[j + 1]):
            b = iperm[Ai[p]]
            if a <= b:
                indices[fill[b]] = a
                fill[b] += 1
    return indptr, indices


@_njit
def _positions(indptr, indices, rows, cols):  # pragma: no cover - compiled
    """Positions of the entries (rows[e], cols[e]) in the CSC pattern (indptr, indices; rows
    sorted in each column), by bisection; every entry must be stored."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    for e in range(rows.shape[0]):
        r = rows[e]
        lo = indptr[cols[e]]
        hi = indptr[cols[e] + 1]
        end = hi
        while lo < hi:
            mid = (lo + hi) >> 1
            if indices[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        if lo == end or indices[lo] != r:
            raise AssertionError("sparse Laplace: entry outside the stored pattern")
        out[e] = lo
    return out


@_njit
def _order_cost(n, Ap, Ai, perm, dense_min, dense_fill):  # pragma: no cover - compiled
    """Flops of the LDL' of the symmetric pattern (Ap, Ai) in the order ``perm`` (sum of
    squared column counts of L), and whether all its fill lies in a trailing block dense
    enough for the dense path (at least ``dense_min`` columns, its part of L at least
    ``dense_fill`` full): no order can then do much better."""
    indptr, indices = _permuted_upper(n, Ap, Ai, perm)
    _, Lp = _ldl_symbolic(n, indptr, indices)
    below = np.zeros(n, dtype=np.int64)  # K's strictly lower pattern per column
    for j in range(n):
        for p in range(indptr[j], indptr[j + 1] - 1):  # rows sorted: the diagonal is last
            below[indices[p]] += 1
    flops = 0.0
    first = -1
    in_block = 0
    for j in range(n):
        c = Lp[j + 1] - Lp[j]
        flops += float(c) * float(c)
        if first < 0 and c > below[j]:
            first = j
        if first >= 0:
            in_block += c
    if first < 0:
        return flops, True
    size = n - first
    return flops, size >= dense_min and in_block >= dense_fill * 0.5 * size * (size - 1)


@_njit
def _ldl_symbolic(n, Ap, Ai):  # pragma: no cover - compiled
    """Elimination tree and column pointers of L for the symmetric CSC pattern (Ap, Ai) (its
    upper triangle is read)."""
    parent = np.full(n, -1, dtype=np.int64)
    flag = np.empty(n, dtype=np.int64)
    lnz = np.zeros(n, dtype=np.int64)
    for k in range(n):
        flag[k] = k
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            if i < k:
                while flag[i] != k:
                    if parent[i] == -1:
                        parent[i] = k
                    lnz[i] += 1
                    flag[i] = k
                    i = parent[i]
    Lp = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        Lp[k + 1] = Lp[k] + lnz[k]
    return parent, Lp


@_njit
def _ldl_pattern(n, Ap, Ai, parent, Lp):  # pragma: no cover - compiled
    """The pattern of L: row indices ``Li`` (sorted in each column) and its rows as CSR
    (``r_ptr``, columns ``r_col`` ascending in each row, ``r_pos`` their positions in Li).

    Row k of L is the set of nodes met walking the elimination tree up from each i < k of
    column k of K; the numeric factorisation visits it in ascending order (a topological
    order of the tree: parents have larger indices), which the transpose of the columns
    gives."""
    nl = Lp[n]
    Li = np.empty(nl, dtype=np.int64)
    flag = np.empty(n, dtype=np.int64)
    lnz = np.zeros(n, dtype=np.int64)
    r_ptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        flag[k] = k
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            if i < k:
                while flag[i] != k:
                    Li[Lp[i] + lnz[i]] = k
                    lnz[i] += 1
                    r_ptr[k + 1] += 1
                    flag[i] = k
                    i = parent[i]
    for k in range(n):
        r_ptr[k + 1] += r_ptr[k]
    fill = r_ptr[:-1].copy()
    r_col = np.empty(nl, dtype=np.int64)
    r_pos = np.empty(nl, dtype=np.int64)
    for i in range(n):
        for p in range(Lp[i], Lp[i + 1]):
            k = Li[p]
            r_col[fill[k]] = i
            r_pos[fill[k]] = p
            fill[k] += 1
    return Li, r_ptr, r_col, r_pos


@_njit
def _ldl_numeric(n, t, Ap, Ai, Ax, Lp, Li, r_ptr, r_col, r_pos, Lx, D,
                 S):  # pragma: no cover - compiled
    """Up-looking LDL' of the symmetric CSC matrix K (its upper triangle is read) in its first
    t columns, and the Schur complement of that block.

    Fills Lx (on the pattern ``Li``; columns below t only) and D[:t], and the upper triangle of
    ``S = K22 - L21 D1 L21'`` (n - t square, Fortran order); returns the first column with a
    non-positive pivot, or n. Row k of L solves ``L11 D1 l_k = K[:k, k]`` over the stored
    row pattern; rows k >= t do the same restricted to the first t columns, and S is K22 less
    one outer product ``d_i l_i l_i'`` per column i < t (its rows >= t): the same flops as
    leaving the Schur updates in the solve, but down contiguous columns of S instead of
    scattered through the work vector (0.215 -> 0.05 s per factorisation at 10^4 x 10^3
    crossed levels).
    """
    y = np.zeros(n)
    for k in range(n):
        for p in range(Ap[k], Ap[k + 1]):
            i = Ai[p]
            if i <= k:
                if i >= t:  # K22 (k >= t too): straight into S
                    S[i - t, k - t] = Ax[p]
                else:
                    y[i] += Ax[p]
        dk = 0.0
        if k < t:
            dk = y[k]
            y[k] = 0.0
        for r in range(r_ptr[k], r_ptr[k + 1]):
            i = r_col[r]
            if i >= t:
                break
            yi = y[i]
            y[i] = 0.0
            p2 = r_pos[r]
            for p in range(Lp[i], p2):
                row = Li[p]
                if row >= t:  # rows sorted: the rest are Schur-complement updates
                    break
                y[row] -= Lx[p] * yi
            lki = yi / D[i]
            dk -= lki * yi
            Lx[p2] = lki
        if k < t:
            D[k] = dk
            if not dk > 0.0:
                return k
    for i in range(t):
        p1 = Lp[i + 1]
        p0 = p1
        while p0 > Lp[i] and Li[p0 - 1] >= t:
            p0 -= 1
        di = D[i]
        for q in range(p0, p1):
            c = Li[q] - t
            lq = Lx[q] * di
            for p in range(p0, q + 1):
                S[Li[p] - t, c] -= Lx[p] * lq
    return n


@_njit
def _assemble_k(w, m_data, m_row, m_pcol, pair_k, pair_row, pair_e1, pair_e2, k_diag,
                shift, kx):  # pragma: no cover - compiled
    """The upper triangle of K = (1 + shift) I + M' diag(w) M into ``kx`` (permuted CSC data):
    the diagonal from each non-zero of M (``m_pcol``: its permuted column), the rest from
    each pair of non-zeros in one row of M; False when an entry is not finite."""
    kx[:] = 0.0
    for i in range(k_diag.shape[0]):
        kx[k_diag[i]] = 1.0 + shift
    for e in range(m_row.shape[0]):
        kx[k_diag[m_pcol[e]]] += w[m_row[e]] * m_data[e] * m_data[e]
    for q in range(pair_k.shape[0]):
        kx[pair_k[q]] += w[pair_row[q]] * m_data[pair_e1[q]] * m_data[pair_e2[q]]
    for p in range(kx.shape[0]):
        if not np.isfinite(kx[p]):
            return False
    return True


@_njit
def _lsolve(Lp, Li, Lx, t, X):  # pragma: no cover - compiled
    """X <- L^{-1} X over the first t columns of the unit lower factor (rows >= t get the
    L21 update); all columns of X in one sweep over L."""
    P = X.shape[1]
    for j in range(t):
        for p in range(Lp[j], Lp[j + 1]):
            r = Li[p]
            lx = Lx[p]
            for c in range(P):
                X[r, c] -= lx * X[j, c]


@_njit
def _ltsolve(Lp, Li, Lx, t, X):  # pragma: no cover - compiled
    """X <- L^{-T} X over the first t columns (rows >= t already solved)."""
    P = X.shape[1]
    for j in range(t - 1, -1, -1):
        for p in range(Lp[j], Lp[j + 1]):
            r = Li[p]
            lx = Lx[p]
            for c in range(P):
                X[j, c] -= lx * X[r, c]


@_njit
def _ldl_solve(Lp, Li, Lx, D, X):  # pragma: no cover - compiled
    """X <- K^{-1} X for the whole sparse factor (no dense block), in the permuted order."""
    n = D.shape[0]
    _lsolve(Lp, Li, Lx, n, X)
    for i in range(n):
        d = D[i]
        for c in range(X.shape[1]):
            X[i, c] /= d
    _ltsolve(Lp, Li, Lx, n, X)


@_njit
def _upper_to_full(A):  # pragma: no cover - compiled
    """A symmetric matrix from its upper triangle, in place (np.triu and a transpose took 15
    ms of a 1000 x 1000 block's 50 ms inverse)."""
    m = A.shape[0]
    for j in range(m):
        for i in range(j):
            A[j, i] = A[i, j]
    return A


@_njit
def _selected_inverse(Lp, Li, Lx, D, t, S22):  # pragma: no cover - compiled
    """K^{-1} on the pattern of L (Takahashi recursion): ``[diagonal (n), strictly lower
    entries in L's storage order]``; ``S22`` is the dense inverse of the trailing block's Schur
    complement (= K^{-1} there).

    ``Sigma_ij = -sum_{k > i} L_ki Sigma_kj`` (j > i in the pattern of column i) and
    ``Sigma_ii = 1/d_i - sum_{k > i} L_ki Sigma_ki``; every Sigma_kj needed lies in the pattern
    of column min(k, j) (the rows of a column of L form a clique of the filled graph).
    """
    n = D.shape[0]
    out = np.zeros(n + Lx.shape[0])
    Sd = out[:n]
    S = out[n:]
    for j in range(t, n):
        Sd[j] = S22[j - t, j - t]
        for p in range(Lp[j], Lp[j + 1]):
            S[p] = S22[Li[p] - t, j - t]  # S22 in Fortran order: down a column
    acc = np.zeros(n)
    for i in range(t - 1, -1, -1):
        p0 = Lp[i]
        p1 = Lp[i + 1]
        for a in range(p0, p1):
            acc[a - p0] = Lx[a] * Sd[Li[a]]
        for a in range(p0, p1):
            j = Li[a]
            if j >= t:
                for b in range(a + 1, p1):
                    v = S22[Li[b] - t, j - t]
                    acc[a - p0] += Lx[b] * v
                    acc[b - p0] += Lx[a] * v
                continue
            q = Lp[j]
            qend = Lp[j + 1]
            la = Lx[a]
            if qend > q and Li[qend - 1] - Li[q] == qend - 1 - q:
                # column j's rows are contiguous (a filled trailing block: every column of
                # two crossed factors' second one): row k sits at q + k - Li[q], no search
                off = q - Li[q]
                for b in range(a + 1, p1):
                    v = S[off + Li[b]]
                    acc[a - p0] += Lx[b] * v
                    acc[b - p0] += la * v
                continue
            for b in range(a + 1, p1):
                k = Li[b]
                while q < qend and Li[q] != k:
                    q += 1
                if q == qend:
                    raise RuntimeError("selected inverse: pattern of L is not closed")
                v = S[q]
                acc[a - p0] += Lx[b] * v
                acc[b - p0] += la * v
        s = 1.0 / D[i]
        for a in range(p0, p1):
            S[a] = -acc[a - p0]
            s -= Lx[a] * S[a]
        Sd[i] = s
    return out
