"""Laplace approximation over a large joint random-effect vector with a sparse factorisation.

Crossed terms ``(1 | a) + (1 | b)`` put every random effect into one cluster, so ``q`` is the
total number of levels and the dense path of ``_agq.py`` (q x q matrices per block) is out of
reach. For one linear predictor per block (J = 1: Poisson, binomial) this module evaluates the
same Laplace approximation and its exact gradient with sparse matrices.

All clusters are stacked into one vector ``v`` (cluster c owns positions ``c q .. c q + q - 1``;
positions that no block touches have mode 0 and unit curvature and are dropped). With ``M = Z
Lambda`` (B x n, a few non-zeros per row) and ``W = diag(-H)``:

    h(v) = sum_b l_b(eta0_b + m_b' v) - |v|^2 / 2,      K = I + M' W M = L D L',
    log L ~= h(v_hat) - (1/2) log det K + constants       (the n_nodes = 1 value of _agq.py).

``K`` is factorised by an up-looking sparse LDL' (T. Davis's LDL algorithm, compiled with numba)
in a fill-reducing order (SuperLU's multiple minimum degree on ``K + K'``, or the natural order
when its factor is cheaper; chosen once per design). Eliminating one of two crossed factors
fills the other's block, so a trailing block whose part of L is (nearly) full is not
eliminated sparsely: the sparse pass leaves its Schur complement, which LAPACK factorises
(``potrf``) and inverts (``potri``). ``log det K = sum log D + log det S``. The gradient is
``_agq.py``'s specialised to J = 1:

    dv = K^{-1} dF,   d(-1/2 log det K)/dphi = (1/2) sum_b T_b dzeta_b s_b + sum_b H_b r_b,

with ``s_b = m_b' K^{-1} m_b`` and ``r_b = m_b' K^{-1} dm_b``. Both only need ``K^{-1}`` on the
pattern of ``K``, which the selected inverse (Takahashi, Fagan & Chin 1973) gives from the
factor on the pattern of ``L`` at about the cost of the factorisation (the dense block's
entries come from ``potri``).

SciPy has no sparse Cholesky and scikit-sparse (CHOLMOD) has no wheels here, hence the small
LDL' below. It is not supernodal: apart from the dense trailing block, columns are eliminated
at scalar speed, which is what crossed designs need (the larger factor's columns are sparse).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve
from scipy.linalg.lapack import dpotrf, dpotri
from scipy.sparse.linalg import splu

from .._jit import njit as _njit
from ..errors import FitError
from ..links._jets import glm_jets
from ._newton import halving_step
from ._sparse_factor import (
    _assemble_k,
    _ldl_numeric,
    _ldl_pattern,
    _ldl_solve,
    _ldl_symbolic,
    _lsolve,
    _ltsolve,
    _order_cost,
    _permuted_upper,
    _positions,
    _selected_inverse,
    _symmetric_pattern,
    _upper_to_full,
)

if TYPE_CHECKING:
    from ._agq import MarginalLikelihood



#: designs whose clusters hold more random effects than this use the sparse Laplace path
#: (n_nodes = 1, one linear predictor per block); ``MarginalLikelihood.sparse = True/False``
#: forces or forbids it for one objective. Measured (benchmarks/crossed.py and the dense
#: einsum path): the sparse path is faster from q = 2 per cluster on (0.18 against 0.32 ms
#: for (1 + x | g) with 8 clusters; 0.2 against 12 ms for 10 x 10 crossed levels; 5.3 s
#: against 18 ms for a whole 30 x 20 crossed fit); one effect per cluster has its own kernel.
SPARSE_MIN_Q = 1

#: the largest trailing block of the permuted K whose part of L is at least DENSE_FILL full
#: and which has at least DENSE_MIN rows is factorised dense (LAPACK) after the sparse
#: columns: eliminating one of two crossed factors leaves the other's block full
DENSE_MIN = 32
DENSE_FILL = 0.9

#: the mode search keeps solving with an old factor of K while its steps shrink at least by
#: this factor per iteration (linear convergence at least this fast), else refactorises
CHORD_RATE = 0.25

#: a Newton step (from a fresh factor) below SETTLED * inner_tol ends the compiled mode search
#: untaken: v is then the mode to ~1e-14, and the factor just computed is the final one (an
#: evaluation near the last one needs a single factorisation)
SETTLED = 1e-4

#: two full Newton steps s0 >= s1, s0 below QUADRATIC, with s1^3 / s0^2 (quadratic
#: convergence's next step) below SETTLED * inner_tol: s1 is the last step; below inner_tol,
#: a chord step by s1's factor follows (the last step where it leaves v within SETTLED *
#: inner_tol of the mode: one factorisation fewer than a Newton step and a last full one)
QUADRATIC = 1e-2

#: a first-order prediction of the modes that moves none by this much is used without
#: comparing it with the last modes and 0
TRUST_MOVE = 0.5


def use_sparse(obj: MarginalLikelihood) -> bool:
    """Whether ``obj`` (a MarginalLikelihood) evaluates by the sparse Laplace path."""
    d = obj.design
    if obj.n_nodes != 1 or d.n_eta != 1 or d.n_random == 0:
        return False
    flag = getattr(obj, "sparse", None)
    if flag is not None:
        return bool(flag)
    return d.n_random > SPARSE_MIN_Q


# ---------------------------------------------------------------------- compiled kernels
@_njit
def _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, v, eta, g, w, T,
           h):  # pragma: no cover - compiled
    """eta = eta0 + M v; per block g = l', w = -l'', T = l'''; per cluster
    h = sum l - |v_c|^2 / 2."""
    B = eta0.shape[0]
    for b in range(B):
        eta[b] = eta0[b]
    for e in range(m_row.shape[0]):
        eta[m_row[e]] += m_data[e] * v[m_col[e]]
    h[:] = 0.0
    for b in range(B):
        lb, g[b], hb, T[b] = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0, eta[b],
                                      3)
        w[b] = -hb
        h[row_cluster[b]] += lb
    for i in range(v.shape[0]):
        h[col_cluster[i]] -= 0.5 * v[i] * v[i]


@_njit
def _h_gradient(m_row, m_col, m_data, g, v, grad):  # pragma: no cover - compiled
    """grad = M' g - v, the gradient of h in v."""
    for i in range(v.shape[0]):
        grad[i] = -v[i]
    for e in range(m_row.shape[0]):
        grad[m_col[e]] += m_data[e] * g[m_row[e]]


@_njit
def _newton_step(l_indptr, l_indices, Lx, D, perm, grad, x, step):  # pragma: no cover
    """step = K^{-1} grad (original order) by the factor (Lx, D) of the permuted K; returns
    its largest absolute entry."""
    n = D.shape[0]
    for i in range(n):
        x[i, 0] = grad[perm[i]]
    _ldl_solve(l_indptr, l_indices, Lx, D, x)
    biggest = 0.0
    for i in range(n):
        step[perm[i]] = x[i, 0]
        biggest = max(biggest, abs(x[i, 0]))
    return biggest


@_njit
def _glm_factor(w, m_data, ia, fa, kx, Lx, D):  # pragma: no cover - compiled
    """Factor (Lx, D) of K = I + M' diag(w) M by the sparse LDL' over all its columns; False
    when K is not finite or not positive definite."""
    m_row, _, m_pcol, _, _, pair_k, pair_row, pair_e1, pair_e2 = ia
    k_diag, k_indptr, k_indices, l_indptr, l_indices, r_ptr, r_col, r_pos, _ = fa
    n = D.shape[0]
    if not _assemble_k(w, m_data, m_row, m_pcol, pair_k, pair_row, pair_e1, pair_e2, k_diag,
                       0.0, kx):
        return False
    return _ldl_numeric(n, n, k_indptr, k_indices, kx, l_indptr, l_indices, r_ptr, r_col, r_pos,
                        Lx, D, np.zeros((0, 0))) == n


@_njit
def _trial(code, Y, eta0, m_data, ia, v, step, t, factor, h, vn, etan, gn, wn, Tn,
           hn):  # pragma: no cover - compiled
    """The point ``vn = v + t_c step`` (t per cluster) and its eta, g, w, T, h into the
    ``n`` arrays; clusters whose h drops below ``h`` have t multiplied by ``factor`` (0.5:
    halve the step, 0: keep the modes). Returns whether none dropped."""
    m_row, m_col, _, row_cluster, col_cluster, _, _, _, _ = ia
    for i in range(v.shape[0]):
        vn[i] = v[i] + t[col_cluster[i]] * step[i]
    _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, vn, etan, gn, wn, Tn,
           hn)
    none = True
    for c in range(h.shape[0]):
        if t[c] > 0.0 and not hn[c] >= h[c] - 1e-12 * (1.0 + abs(h[c])):
            t[c] *= factor
            none = False
    return none


@_njit
def _swap(v, eta, g, w, T, h, vn, etan, gn, wn, Tn, hn):  # pragma: no cover - compiled
    """Take the trial point: copy the ``n`` arrays over the current ones."""
    v[:] = vn
    eta[:] = etan
    g[:] = gn
    w[:] = wn
    T[:] = Tn
    h[:] = hn


@_njit
def _glm_modes(code, Y, eta0, m_data, ia, fa, v, eta, g, w, T, h, tol, max_iter, Lx, D, Lx_old,
               D_old):  # pragma: no cover - compiled
    """``sparse_modes``' damped Newton for Poisson / binomial blocks, all in compiled code
    (the whole factor by the sparse LDL'; no dense trailing block).

    ``ia`` = (m_row, m_col, m_pcol, row_cluster, col_cluster, pair_k, pair_row, pair_e1,
    pair_e2), ``fa`` = (k_diag, k_indptr, k_indices, l_indptr, l_indices, r_ptr, r_col, r_pos,
    perm) (``_Structure.entry_arrays``, ``factor_arrays``). ``v`` is updated in place; eta,
    g, w, T, h (per cluster) get their values at the final v and ``Lx``, ``D`` the factor
    of K there. A factor (Lx_old, D_old) of K at the last evaluation's modes (empty arrays:
    none) gives a first step (a chord step, kept per cluster where h does not drop): from the
    first-order prediction of the modes near that point it leaves ~1e-18, so the first
    factor's Newton step is below ``SETTLED * tol`` and that factor is the final one.
    Returns 0 converged, 1 iteration limit, 2 K not positive definite (the caller's shifted
    Python iteration takes over), 3 no finite start."""
    m_row, m_col, _, row_cluster, col_cluster, _, _, _, _ = ia
    l_indptr, l_indices, perm = fa[3], fa[4], fa[8]
    B = eta0.shape[0]
    n = v.shape[0]
    n_cl = h.shape[0]
    _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, v, eta, g, w, T, h)
    if not np.all(np.isfinite(h)):
        v[:] = 0.0
        _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, v, eta, g, w, T,
               h)
        if not np.all(np.isfinite(h)):
            return 3
    kx = np.empty(fa[2].shape[0])
    x = np.empty((n, 1))
    step = np.empty(n)
    vn = np.empty(n)
    etan = np.empty(B)
    gn = np.empty(B)
    wn = np.empty(B)
    Tn = np.empty(B)
    hn = np.empty(n_cl)
    t = np.empty(n_cl)
    grad = np.empty(n)
    settled = SETTLED * tol
    if D_old.shape[0] == n and Lx_old.shape[0] == Lx.shape[0]:
        _h_gradient(m_row, m_col, m_data, g, v, grad)
        size = _newton_step(l_indptr, l_indices, Lx_old, D_old, perm, grad, x, step)
        t[:] = 1.0 if size > settled and np.isfinite(size) else 0.0
        while np.any(t > 0.0):  # clusters where h drops keep their modes
            if _trial(code, Y, eta0, m_data, ia, v, step, t, 0.0, h, vn, etan, gn, wn, Tn, hn):
                _swap(v, eta, g, w, T, h, vn, etan, gn, wn, Tn, hn)
                break
    status = 1
    final = False  # (Lx, D) is the factor at v
    prev = np.inf  # the last full Newton step
    for _it in range(max_iter):
        _h_gradient(m_row, m_col, m_data, g, v, grad)
        if not _glm_factor(w, m_data, ia, fa, kx, Lx, D):
            return 2
        size = _newton_step(l_indptr, l_indices, Lx, D, perm, grad, x, step)
        if size <= settled:  # v is the mode to this step: this factor is the final one
            status = 0
            final = True
            break
        if size < tol or (prev <= QUADRATIC and size ** 3 <= settled * prev ** 2):
            # a last full step: Newton's quadratic convergence leaves v within about
            # size^3 / prev^2 (or tol^2) of the mode
            for i in range(n):
                v[i] += step[i]
            _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, v, eta, g,
                   w, T, h)
            status = 0
            break
        t[:] = 1.0
        for _half in range(40):
            if _trial(code, Y, eta0, m_data, ia, v, step, t, 0.5, h, vn, etan, gn, wn, Tn, hn):
                break
        _swap(v, eta, g, w, T, h, vn, etan, gn, wn, Tn, hn)
        full = np.all(t == 1.0)
        if full and prev <= QUADRATIC and size ** 3 <= tol * prev ** 2:
            # v is now about e = size^3 / prev^2 from the mode: a chord step by this factor
            # (from about size away) costs a solve instead of a factorisation and leaves
            # about 2 (size / prev^2) size e; below SETTLED * tol, it is the last step
            _h_gradient(m_row, m_col, m_data, g, v, grad)
            chord = _newton_step(l_indptr, l_indices, Lx, D, perm, grad, x, step)
            if chord < tol:
                for i in range(n):
                    v[i] += step[i]
                _glm_h(code, Y, eta0, m_row, m_col, m_data, row_cluster, col_cluster, v, eta,
                       g, w, T, h)
                if 2.0 * size * size * chord <= settled * prev ** 2:
                    status = 0
                    break
        prev = size if full else np.inf
    if not final and not _glm_factor(w, m_data, ia, fa, kx, Lx, D):
        return 2
    return status


@_njit
def _glm_derivatives(code, Y, eta, g, w, T):  # pragma: no cover - compiled
    """sum l over the blocks at eta, with g = l', w = -l'', T = l''' per block."""
    total = 0.0
    for b in range(eta.shape[0]):
        lb, g[b], hb, T[b] = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0, eta[b],
                                      3)
        w[b] = -hb
        total += lb
    return total


@_njit
def _glm_rhs(X, v, m_row, m_col, cols, md, mv, g, w, out):  # pragma: no cover - compiled
    """``dM v`` (B, m), returned, and into ``out`` (n, P) the right-hand sides of dv/dparams,
    ``dF = M' H dzf + [0, dM' g]`` (H = -w), with ``dzf = [X, dM v]`` the derivative of eta
    at fixed v; non-zero e of M adds to row ``cols[e]`` (``m_col``: original order,
    ``m_pcol``: permuted)."""
    B, p = X.shape
    m = mv.shape[1]
    dmv = np.zeros((B, m))
    for e in range(m_row.shape[0]):
        b = m_row[e]
        vj = v[m_col[e]]
        for k in range(m):
            dmv[b, k] += mv[e, k] * vj
    out[:] = 0.0
    for e in range(m_row.shape[0]):
        b = m_row[e]
        j = cols[e]
        hm = -md[e] * w[b]
        gb = g[b]
        for a in range(p):
            out[j, a] += hm * X[b, a]
        for k in range(m):
            out[j, p + k] += hm * dmv[b, k] + mv[e, k] * gb
    return dmv


@_njit
def _glm_gradient(X, dmv, g, w, T, dv, v, ia, md, mv, pair_sigma, sigma,
                  grad):  # pragma: no cover - compiled
    """The Laplace gradient into ``grad`` from the mode-dependent parts (``_glm_rhs``),
    ``dv = K^{-1} dF`` (n, P; original order) and the selected inverse ``sigma``:

        grad = dzf' c + dv' (M' c - v) - [0, w' r],   c = g + T s / 2,

    with ``s_b = m_b' K^{-1} m_b``, ``r_bk = m_b' K^{-1} dm_bk`` (``sparse_value_and_gradient``'s
    ``g' dzf + T s dzeta / 2 + [0, H' r] + (M'g - v)' dv`` with dzeta = dzf + M dv regrouped,
    so that no (B, P) array is formed). Each non-zero gives the diagonal term of its column,
    each pair of non-zeros in a row the two off-diagonal ones."""
    m_row, m_col, m_pcol, _, _, _, pair_row, pair_e1, pair_e2 = ia
    B, p = X.shape
    m = mv.shape[1]
    P = p + m
    s_b = np.zeros(B)
    r_b = np.zeros((B, m))
    for e in range(m_row.shape[0]):
        b = m_row[e]
        ms = md[e] * sigma[m_pcol[e]]
        s_b[b] += ms * md[e]
        for k in range(m):
            r_b[b, k] += ms * mv[e, k]
    for q in range(pair_row.shape[0]):
        b = pair_row[q]
        e1 = pair_e1[q]
        e2 = pair_e2[q]
        sg = sigma[pair_sigma[q]]
        a1 = md[e1] * sg
        a2 = md[e2] * sg
        s_b[b] += 2.0 * a1 * md[e2]
        for k in range(m):
            r_b[b, k] += a1 * mv[e2, k] + a2 * mv[e1, k]
    grad[:] = 0.0
    c = np.empty(B)
    for b in range(B):
        cb = g[b] + 0.5 * T[b] * s_b[b]
        c[b] = cb
        for a in range(p):
            grad[a] += cb * X[b, a]
        for k in range(m):
            grad[p + k] += cb * dmv[b, k] - w[b] * r_b[b, k]
    z = -v
    for e in range(m_row.shape[0]):
        z[m_col[e]] += md[e] * c[m_row[e]]
    for j in range(v.shape[0]):
        for a in range(P):
            grad[a] += z[j] * dv[j, a]


@_njit
def _glm_laplace(code, Y, X, eta0, m_data, mv, ia, fa, pair_sigma, v, tol, max_iter, grad, dv,
                 Lx, D, Lx_old, D_old, n_cl):  # pragma: no cover - compiled
    """One evaluation of the sparse Laplace objective for Poisson / binomial blocks without a
    dense trailing block, all compiled: the modes (``_glm_modes``), then ``log det K`` and the
    gradient as in ``sparse_value_and_gradient``. ``v`` (modes), ``grad``, ``dv =
    dv/dparams`` (n, P) and the factor (Lx, D) are written in place; returns (status of the
    mode search, sum l - |v|^2 / 2, log det K)."""
    n = v.shape[0]
    B = eta0.shape[0]
    eta = np.empty(B)
    g = np.empty(B)
    w = np.empty(B)
    T = np.empty(B)
    h = np.empty(n_cl)
    status = _glm_modes(code, Y, eta0, m_data, ia, fa, v, eta, g, w, T, h, tol, max_iter, Lx, D,
                        Lx_old, D_old)
    if status >= 2:
        return status, 0.0, 0.0
    l_indptr, l_indices, perm = fa[3], fa[4], fa[8]
    P = dv.shape[1]
    x = np.empty((n, P))
    dmv = _glm_rhs(X, v, ia[0], ia[1], ia[2], m_data, mv, g, w, x)
    _ldl_solve(l_indptr, l_indices, Lx, D, x)
    for i in range(n):
        for a in range(P):
            dv[perm[i], a] = x[i, a]
    sigma = _selected_inverse(l_indptr, l_indices, Lx, D, n, np.zeros((0, 0)))
    _glm_gradient(X, dmv, g, w, T, dv, v, ia, m_data, mv, pair_sigma, sigma, grad)
    log_det = 0.0
    for i in range(n):
        log_det += math.log(D[i])
    return status, h.sum(), log_det


@_njit
def _linear_parts(X, offset, mv, x, eta0, md):  # pragma: no cover - compiled
    """At the parameters ``x = (beta, theta)``: ``eta0 = X beta + offset`` and the values of
    M = Z Lambda(theta), ``md = mv theta``, written in place."""
    B, p = X.shape
    for b in range(B):
        acc = offset[b]
        for c in range(p):
            acc += X[b, c] * x[c]
        eta0[b] = acc
    for e in range(mv.shape[0]):
        acc = 0.0
        for k in range(mv.shape[1]):
            acc += mv[e, k] * x[p + k]
        md[e] = acc


@_njit
def _glm_points(code, Y, X, offset, mv, ia, fa, pair_sigma, points, starts, tol, max_iter,
                Lx_old, D_old, n_cl, parts, log_dets, grads, v, dv, Lx,
                D):  # pragma: no cover - compiled
    """``_glm_laplace`` at each row of ``points`` (parameter vectors), the modes starting
    from the columns of ``starts`` (n, K) and the first step by the factor (Lx_old, D_old)
    for all: sum l - |v|^2 / 2, log det K and the gradient per point into parts, log_dets,
    grads (K, P); the last point's modes, dv/dparams and factor into v, dv, Lx, D. Returns
    the number of points done (fewer than K: K was not positive definite at the next)."""
    eta0 = np.empty(X.shape[0])
    md = np.empty(mv.shape[0])
    grad = np.empty(points.shape[1])
    for a in range(points.shape[0]):
        _linear_parts(X, offset, mv, points[a], eta0, md)
        v[:] = starts[:, a]
        status, part, log_det = _glm_laplace(code, Y, X, eta0, md, mv, ia, fa, pair_sigma, v, tol,
                                             max_iter, grad, dv, Lx, D, Lx_old, D_old, n_cl)
        if status >= 2:
            return a
        parts[a] = part
        log_dets[a] = log_det
        grads[a] = grad
    return points.shape[0]


@_njit
def _pick_start(code, Y, X, offset, mv, ia, x, cands, n_cl):  # pragma: no cover - compiled
    """Per cluster the column of ``cands`` (n, K) with the largest h at the parameters ``x``
    (non-finite h counts as -inf; the earlier column on ties): ``_start_modes``' comparison
    in one call instead of K NumPy passes."""
    m_row, m_col, _, row_cluster, col_cluster, _, _, _, _ = ia
    B = X.shape[0]
    n = cands.shape[0]
    eta0 = np.empty(B)
    md = np.empty(mv.shape[0])
    _linear_parts(X, offset, mv, x, eta0, md)
    eta, g, w, T = np.empty(B), np.empty(B), np.empty(B), np.empty(B)
    h = np.empty(n_cl)
    best_h = np.full(n_cl, -np.inf)
    pick = np.zeros(n_cl, dtype=np.int64)
    v = np.empty(n)
    for a in range(cands.shape[1]):
        for i in range(n):
            v[i] = cands[i, a]
        _glm_h(code, Y, eta0, m_row, m_col, md, row_cluster, col_cluster, v, eta, g, w, T, h)
        for c in range(n_cl):
            hc = h[c] if np.isfinite(h[c]) else -np.inf
            if a == 0 or hc > best_h[c]:
                best_h[c] = hc
                pick[c] = a
    out = np.empty(n)
    for i in range(n):
        out[i] = cands[i, pick[col_cluster[i]]]
    return out


@_njit
def _start_from(code, Y, X, offset, mv, ia, x, tangent, x0, v0, dv0, v_last,
                n_cl):  # pragma: no cover - compiled
    """``_start_modes`` for Poisson / binomial blocks: the first-order prediction ``v0 + dv0
    (x - x0)`` (when ``tangent``: (x0, v0, dv0) hold the last gradient's) if it moves no mode
    by ``TRUST_MOVE``, else per cluster the best (``_pick_start``) of it, the last modes
    ``v_last`` and 0 (when ``v_last`` is not)."""
    n = v_last.shape[0]
    pred = np.empty(n)
    if tangent:
        near = True
        for i in range(n):
            move = 0.0
            for a in range(x.shape[0]):
                move += dv0[i, a] * (x[a] - x0[a])
            pred[i] = v0[i] + move
            near = near and abs(move) < TRUST_MOVE
        if near:
            return pred
    nonzero = np.any(v_last != 0.0)
    k = (1 if tangent else 0) + (2 if nonzero else 1)
    if k == 1:
        return v_last.copy()
    cands = np.zeros((n, k))
    col = 0
    if tangent:
        cands[:, 0] = pred
        col = 1
    cands[:, col] = v_last
    return _pick_start(code, Y, X, offset, mv, ia, x, cands, n_cl)


@_njit
def negative_sparse_laplace(data, x, g):  # pragma: no cover - compiled
    """``-(log-likelihood)`` and its gradient into g for the compiled BFGS
    (``fitting._loops.bfgs_sparse_laplace``): one evaluation as ``sparse_value_and_gradient``
    makes it on the fused path (modes from ``_start_from``, the first step by the factor of the
    last evaluation, ``_glm_laplace``). ``data``'s ``state`` carries the last evaluation (x,
    modes, dv/dparams, factor, value and gradient) from call to call and back to the objective
    (``sparse_compiled_negative``); a point where the mode search fails is rejected (+1e300),
    as in fitting._optimize. A point equal to ``state``'s known one returns its kept value."""
    (code, Y, X, offset, mv, ia, fa, pair_sigma, tol, max_iter, n_cl, weight, constant, state,
     v, dv, Lx, D) = data
    x0, v0, dv0, Lx0, D0, v_last, fg, flags, xk, fgk, none = state
    P = x.shape[0]
    if flags[3] and np.all(x == xk):
        for a in range(P):
            g[a] = -fgk[1 + a]
        return -fgk[0]
    v[:] = _start_from(code, Y, X, offset, mv, ia, x, flags[0] == 1, x0, v0, dv0, v_last, n_cl)
    eta0 = np.empty(X.shape[0])
    md = np.empty(mv.shape[0])
    _linear_parts(X, offset, mv, x, eta0, md)
    grad = np.empty(P)
    chord = flags[1] == 1
    status, part, log_det = _glm_laplace(code, Y, X, eta0, md, mv, ia, fa, pair_sigma, v, tol,
                                         max_iter, grad, dv, Lx, D, Lx0 if chord else none,
                                         D0 if chord else none, n_cl)
    if status >= 2:
        g[:] = 0.0
        return 1e300
    value = part - 0.5 * log_det + weight + constant  # _laplace_value's order of operations
    # this evaluation is the state now: tangent, chord factor, last modes, value and gradient
    x0[:] = x
    v0[:] = v
    dv0[:] = dv
    Lx0[:] = Lx
    D0[:] = D
    flags[:3] = 1
    v_last[:] = v
    fg[0] = value
    fg[1:] = grad
    if not np.isfinite(value):
        g[:] = 0.0
        return 1e300
    for a in range(P):
        g[a] = -grad[a]
    return -value


@_njit
def _sum_rows_by(index, values, n):  # pragma: no cover - compiled
    """out[i] = sum of values[e] (rows of a 2-D array) over e with index[e] == i."""
    out = np.zeros((n, values.shape[1]))
    for e in range(index.shape[0]):
        for c in range(values.shape[1]):
            out[index[e], c] += values[e, c]
    return out


def _sum_by(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``values`` over the entries sharing an ``index`` (M's rows or columns, the
    pairs of a row): what multiplying by a 0/1 selector matrix does, without scipy.sparse's
    per-call overhead (it was half the gradient's time on a 600-row crossed design)."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=n)
    return _sum_rows_by(index, np.ascontiguousarray(values), n)

# ---------------------------------------------------------------------- structure
@_njit
def _m_entries(z_indptr, z_indices, z_data, lam_indptr, lam_cols, lam_vals, cluster,
               q):  # pragma: no cover - compiled
    """The non-zeros of M = Z Lambda (structurally: Z_bi != 0 times each entry Lambda_ij of
    the pattern) at column ``cluster[b] q + j`` of the stacked effects, repeats summed:
    (rows, columns, values (nnz, m) of the templates) sorted by row, then column."""
    B = z_indptr.shape[0] - 1
    m = lam_vals.shape[1]
    total = 0
    for p in range(z_indptr[B]):
        i = z_indices[p]
        total += lam_indptr[i + 1] - lam_indptr[i]
    rows = np.empty(total, dtype=np.int64)
    cols = np.empty(total, dtype=np.int64)
    vals = np.empty((total, m))
    c = 0
    for b in range(B):
        start = c
        off = cluster[b] * q
        for p in range(z_indptr[b], z_indptr[b + 1]):
            zv = z_data[p]
            if zv == 0.0:
                continue
            i = z_indices[p]
            for k in range(lam_indptr[i], lam_indptr[i + 1]):
                col = off + lam_cols[k]
                pos = c  # insertion into the row's sorted entries (a row has a few)
                while pos > start and cols[pos - 1] > col:
                    pos -= 1
                if pos > start and cols[pos - 1] == col:
                    for a in range(m):
                        vals[pos - 1, a] += zv * lam_vals[k, a]
                    continue
                for r in range(c, pos, -1):
                    cols[r] = cols[r - 1]
                    for a in range(m):
                        vals[r, a] = vals[r - 1, a]
                rows[c] = b
                cols[pos] = col
                for a in range(m):
                    vals[pos, a] = zv * lam_vals[k, a]
                c += 1
    return rows[:c].copy(), cols[:c].copy(), vals[:c].copy()


@_njit
def _row_pairs(m_row):  # pragma: no cover - compiled
    """Every unordered pair of two non-zeros in one row of M (entries sorted by row): (row,
    first, second), the first with each later entry of its row."""
    nnz = m_row.shape[0]
    end = np.empty(nnz, dtype=np.int64)  # one past the last entry of the entry's row
    total = 0
    for e in range(nnz - 1, -1, -1):
        end[e] = e + 1 if e == nnz - 1 or m_row[e] != m_row[e + 1] else end[e + 1]
        total += end[e] - e - 1
    row = np.empty(total, dtype=np.int64)
    e1 = np.empty(total, dtype=np.int64)
    e2 = np.empty(total, dtype=np.int64)
    c = 0
    for e in range(nnz):
        for f in range(e + 1, end[e]):
            row[c] = m_row[e]
            e1[c] = e
            e2[c] = f
            c += 1
    return row, e1, e2


@_njit
def _dense_start(l_indptr, dense_min, dense_fill):  # pragma: no cover - compiled
    """The first column of the largest trailing block of at least ``dense_min`` columns whose
    part of L is at least ``dense_fill`` full (n: none)."""
    n = l_indptr.shape[0] - 1
    best = n
    in_block = 0
    for j in range(n - 1, -1, -1):
        in_block += l_indptr[j + 1] - l_indptr[j]
        size = n - j
        if size >= dense_min and in_block >= dense_fill * 0.5 * size * (size - 1):
            best = j
    return best


@dataclass
class _Structure:
    """Everything about the sparsity of M and K that does not depend on the parameters."""

    n: int  # number of active random effects (stacked over clusters)
    q: int
    n_clusters: int
    active: np.ndarray  # (n,) positions in the stacked (C q) vector
    col_cluster: np.ndarray  # (n,) cluster of each active effect
    m_row: np.ndarray  # (nnz,) block of each non-zero of M
    m_col: np.ndarray  # (nnz,) active effect of each non-zero of M
    m_pcol: np.ndarray  # (nnz,) its column in the permuted K (= the diagonal's place in sigma)
    m_values: np.ndarray  # (nnz, m): M.data = m_values @ theta, dM_k.data = m_values[:, k]
    # each unordered pair of two non-zeros in one row of M (K's off-diagonal terms)
    pair_row: np.ndarray  # (npairs,) block of the pair
    pair_e1: np.ndarray  # (npairs,) first non-zero of the pair
    pair_e2: np.ndarray  # (npairs,) second non-zero of the pair
    pair_k: np.ndarray  # (npairs,) position of the pair in the permuted K data (upper)
    pair_sigma: np.ndarray  # (npairs,) position of the pair in the selected inverse
    k_indptr: np.ndarray  # permuted K: CSC pattern of its upper triangle with the diagonal
    k_indices: np.ndarray
    k_diag: np.ndarray  # positions of the diagonal in the K data
    parent: np.ndarray  # elimination tree
    l_indptr: np.ndarray
    l_indices: np.ndarray  # fixed pattern of L (rows sorted per column)
    r_ptr: np.ndarray  # rows of L (CSR): columns r_col ascending, positions r_pos in l_indices
    r_col: np.ndarray
    r_pos: np.ndarray
    perm: np.ndarray  # perm[new] = old: K_perm = K[perm][:, perm]
    dense_start: int  # permuted columns >= dense_start form the dense block
    lam_rows: np.ndarray  # (npl,) pairs of entries in one row of Lambda, for the mode SDs:
    lam_a: np.ndarray  # the row (stacked index) and the two entries (indices into lam_pattern)
    lam_b: np.ndarray
    lam_sigma: np.ndarray  # position in the selected inverse (-1: exactly zero, -2: 1)
    lam_pattern: tuple  # (rows, cols, values (nnzLam, m)) of the q x q factor
    row_cluster: np.ndarray  # (B,) cluster of each block (int64, for the compiled kernels)
    X: np.ndarray  # (B, p) fixed-effects design of the one linear predictor, contiguous
    offset: np.ndarray  # (B,) its offset, contiguous

    @cached_property
    def entry_arrays(self) -> tuple:
        """The compiled kernels' arrays of M's non-zeros and their pairs (``_glm_modes``)."""
        return (self.m_row, self.m_col, self.m_pcol, self.row_cluster, self.col_cluster,
                self.pair_k, self.pair_row, self.pair_e1, self.pair_e2)

    @cached_property
    def factor_arrays(self) -> tuple:
        """The compiled kernels' arrays of the patterns of K and L (``_glm_modes``)."""
        return (self.k_diag, self.k_indptr, self.k_indices, self.l_indptr, self.l_indices,
                self.r_ptr, self.r_col, self.r_pos, self.perm)


#: below this many effects the multiple-minimum-degree order is not tried: the natural and
#: the static degree orders are as good for the designs seen (crossed factors, nested terms,
#: vector effects per cluster) and SuperLU's call cost more than the rest of the structure
MMD_MIN_N = 300


@_njit
def _effects_pattern(z_indptr, z_indices, z_data, lam_rows, lam_cols, lam_vals, cluster, q,
                     C, dense_min, dense_fill):  # pragma: no cover - compiled
    """The sparsity of M = Z Lambda and of K over the active effects, and the cheaper of the
    natural and the static degree orders (``_fill_reducing_order``); one compiled call (the
    NumPy steps and a call per helper cost several times the work on small designs).

    Returns (m_row, m_values, active, m_col, pair_row, pair_e1, pair_e2, la, lb, ga, gb, ca,
    cb, lam_rows_glob, p_indptr, p_indices, order, order_fills_block): M's entries (block,
    active effect, template values); the pairs of entries within M's rows; per cluster c (outer)
    every ordered pair (la, lb) of entries in one row of Lambda, at the stacked effects
    ``ga = c q + lam_cols[la]``, ``gb`` and row ``c q + lam_rows[la]``, with their active
    effects ``ca``, ``cb`` (-1: untouched); K's symmetric pattern (diagonal, pairs within
    rows of M, pairs within rows of Lambda between active effects); the order and whether it
    fills only a dense trailing block."""
    lam_indptr = np.zeros(q + 1, dtype=np.int64)
    for e in range(lam_rows.shape[0]):
        lam_indptr[lam_rows[e] + 1] += 1
    for i in range(q):
        lam_indptr[i + 1] += lam_indptr[i]
    m_row, m_glob, m_values = _m_entries(z_indptr, z_indices, z_data, lam_indptr, lam_cols,
                                         lam_vals, cluster, q)
    col_of_glob = np.full(C * q, -1, dtype=np.int64)
    for e in range(m_glob.shape[0]):
        col_of_glob[m_glob[e]] = 0
    n = 0
    for g in range(C * q):
        if col_of_glob[g] == 0:
            col_of_glob[g] = n
            n += 1
    active = np.empty(n, dtype=np.int64)
    for g in range(C * q):
        if col_of_glob[g] >= 0:
            active[col_of_glob[g]] = g
    m_col = np.empty(m_glob.shape[0], dtype=np.int64)
    for e in range(m_glob.shape[0]):
        m_col[e] = col_of_glob[m_glob[e]]
    pair_row, pair_e1, pair_e2 = _row_pairs(m_row)
    # Lambda-row pairs (the mode SDs of u = Lambda v need K^{-1} there)
    n_lp = 0
    for i in range(q):
        n_lp += (lam_indptr[i + 1] - lam_indptr[i]) ** 2
    la = np.empty(n_lp, dtype=np.int64)
    lb = np.empty(n_lp, dtype=np.int64)
    c = 0
    for i in range(q):
        for a in range(lam_indptr[i], lam_indptr[i + 1]):
            for b in range(lam_indptr[i], lam_indptr[i + 1]):
                la[c] = a
                lb[c] = b
                c += 1
    total = C * n_lp
    ga = np.empty(total, dtype=np.int64)
    gb = np.empty(total, dtype=np.int64)
    rows_glob = np.empty(total, dtype=np.int64)
    ca = np.empty(total, dtype=np.int64)
    cb = np.empty(total, dtype=np.int64)
    n_both = 0
    for k in range(C):
        for e in range(n_lp):
            x = k * n_lp + e
            ga[x] = k * q + lam_cols[la[e]]
            gb[x] = k * q + lam_cols[lb[e]]
            rows_glob[x] = k * q + lam_rows[la[e]]
            ca[x] = col_of_glob[ga[x]]
            cb[x] = col_of_glob[gb[x]]
            if ca[x] >= 0 and cb[x] >= 0:
                n_both += 1
    npairs = pair_e1.shape[0]
    ki = np.empty(npairs + n_both, dtype=np.int64)
    kj = np.empty(npairs + n_both, dtype=np.int64)
    for e in range(npairs):
        ki[e] = m_col[pair_e1[e]]
        kj[e] = m_col[pair_e2[e]]
    c = npairs
    for x in range(total):
        if ca[x] >= 0 and cb[x] >= 0:
            ki[c] = ca[x]
            kj[c] = cb[x]
            c += 1
    p_indptr, p_indices = _symmetric_pattern(n, ki, kj)
    natural = np.arange(n)
    degree = np.argsort(p_indptr[1:] - p_indptr[:-1], kind="mergesort")  # stable
    f0, d0 = _order_cost(n, p_indptr, p_indices, natural, dense_min, dense_fill)
    f1, d1 = _order_cost(n, p_indptr, p_indices, degree, dense_min, dense_fill)
    # the smaller (flops, fills a dense block, candidate), as min() over the tuples
    if f1 < f0 or (f1 == f0 and d0 and not d1):
        natural, d0 = degree, d1
    return (m_row, m_values, active, m_col, pair_row, pair_e1, pair_e2, la, lb, ga, gb, ca,
            cb, rows_glob, p_indptr, p_indices, natural, d0)


@_njit
def _factor_pattern(n, p_indptr, p_indices, perm, m_col, pair_e1, pair_e2, ga, gb, ca, cb,
                    dense_min, dense_fill):  # pragma: no cover - compiled
    """The patterns of the permuted K and of L, and where M's pairs and Lambda's row pairs
    find their entries of K and of its selected inverse (``_build_structure``), in one
    compiled call. Returns (k_indptr, k_indices, k_diag, m_pcol, pair_k, pair_sigma, parent,
    l_indptr, l_indices, r_ptr, r_col, r_pos, dense_start, lam_sigma)."""
    iperm = np.empty(n, dtype=np.int64)
    for a in range(n):
        iperm[perm[a]] = a
    k_indptr, k_indices = _permuted_upper(n, p_indptr, p_indices, perm)
    k_diag = k_indptr[1:] - 1  # rows sorted: the diagonal ends each column
    m_pcol = np.empty(m_col.shape[0], dtype=np.int64)
    for e in range(m_col.shape[0]):
        m_pcol[e] = iperm[m_col[e]]
    npairs = pair_e1.shape[0]
    lo = np.empty(npairs, dtype=np.int64)
    hi = np.empty(npairs, dtype=np.int64)
    for e in range(npairs):
        a, b = m_pcol[pair_e1[e]], m_pcol[pair_e2[e]]  # never equal: duplicates were merged
        lo[e] = min(a, b)
        hi[e] = max(a, b)
    pair_k = _positions(k_indptr, k_indices, lo, hi)
    parent, l_indptr = _ldl_symbolic(n, k_indptr, k_indices)
    l_indices, r_ptr, r_col, r_pos = _ldl_pattern(n, k_indptr, k_indices, parent, l_indptr)
    dense_start = _dense_start(l_indptr, dense_min, dense_fill)
    pair_sigma = n + _positions(l_indptr, l_indices, hi, lo)
    # Lambda's row pairs: -1 where the K^{-1} entry is exactly 0, -2 where it is 1 (an
    # untouched effect), else its position (diagonal, then the strictly lower pattern of L)
    total = ga.shape[0]
    lam_sigma = np.full(total, -1, dtype=np.int64)
    off = 0
    for x in range(total):
        if ca[x] >= 0 and cb[x] >= 0 and ca[x] != cb[x]:
            off += 1
    ol = np.empty(off, dtype=np.int64)
    oh = np.empty(off, dtype=np.int64)
    c = 0
    for x in range(total):
        if ca[x] >= 0 and cb[x] >= 0:
            a, b = iperm[ca[x]], iperm[cb[x]]
            if a == b:
                lam_sigma[x] = a
            else:
                ol[c] = min(a, b)
                oh[c] = max(a, b)
                c += 1
        elif ca[x] < 0 and ga[x] == gb[x]:
            lam_sigma[x] = -2
    found = _positions(l_indptr, l_indices, oh, ol)
    c = 0
    for x in range(total):
        if ca[x] >= 0 and cb[x] >= 0 and ca[x] != cb[x]:
            lam_sigma[x] = n + found[c]
            c += 1
    return (k_indptr, k_indices, k_diag, m_pcol, pair_k, pair_sigma, parent, l_indptr,
            l_indices, r_ptr, r_col, r_pos, dense_start, lam_sigma)


def _fill_reducing_order(probe: Callable[[], sp.csc_matrix], n: int, indptr: np.ndarray,
                         indices: np.ndarray, best: np.ndarray, fills_block: bool) -> np.ndarray:
    """Symmetric fill-reducing order (perm[new] = old), the cheapest (by the symbolic
    factorisation) of: the natural order (terms, then levels), the static degree order
    (fewest neighbours first: for two crossed factors, the one with more levels is eliminated
    first and the other's block fills), and, from ``MMD_MIN_N`` effects on and unless one of
    those fills only a dense trailing block, SuperLU's multiple minimum degree on ``K + K'``
    (in symmetric mode; its factorisation discarded). ``best`` is the cheaper of the first
    two (``_effects_pattern``), ``fills_block`` whether it fills only a dense block."""
    # SuperLU's MMD took 7 of the 19 s of the structure at 10^6 rows with 10^4 x 10^3 crossed
    # levels, where the degree order is already best: skip it when the best order fills only
    # a dense trailing block
    if n < MMD_MIN_N or fills_block:
        return best
    perm_c = splu(probe(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True}).perm_c
    mmd = np.argsort(perm_c)  # SuperLU moves column i to position perm_c[i]
    cost = _order_cost(n, indptr, indices, best, DENSE_MIN, DENSE_FILL)
    # ties keep the earlier candidate, as min() over (flops, fills a block, candidate)
    return mmd if (*_order_cost(n, indptr, indices, mmd, DENSE_MIN, DENSE_FILL), 1) < (
        *cost, 0) else best


def _build_structure(obj: MarginalLikelihood) -> _Structure:
    d = obj.design
    q, C = d.n_random, d.n_clusters
    pat = d.covariance.pattern  # Lambda's pattern, sorted by row then column
    lr, lc, lam_vals = pat.rows, pat.cols, pat.values  # lam_vals (nnzLam, m)
    Zs = d.z_sparse
    cluster = np.ascontiguousarray(d.cluster, dtype=np.int64)
    (m_row, m_values, active, m_col, pair_row, pair_e1, pair_e2, la, lb, ga, gb, ca, cb,
     lam_rows_glob, p_indptr, p_indices, order, fills_block) = _effects_pattern(
        Zs.indptr.astype(np.int64), Zs.indices.astype(np.int64), Zs.data.astype(float),
        lr.astype(np.int64), lc.astype(np.int64), np.ascontiguousarray(lam_vals, dtype=float),
        cluster, q, C, DENSE_MIN, DENSE_FILL)
    n = len(active)

    def probe() -> sp.csc_matrix:
        # a diagonally dominant matrix with K's pattern (positive definite): 1 off the
        # diagonal, column count + 1 on it
        identity = np.arange(n, dtype=np.int64)
        data = np.ones(len(p_indices))
        data[_positions(p_indptr, p_indices, identity, identity)] = np.diff(p_indptr) + 1.0
        return sp.csc_matrix((data, p_indices, p_indptr), shape=(n, n))

    perm = _fill_reducing_order(probe, n, p_indptr, p_indices, order, fills_block)
    (k_indptr, k_indices, k_diag, m_pcol, pair_k, pair_sigma, parent, l_indptr, l_indices,
     r_ptr, r_col, r_pos, dense_start, lam_sigma) = _factor_pattern(
        n, p_indptr, p_indices, perm, m_col, pair_e1, pair_e2, ga, gb, ca, cb, DENSE_MIN,
        DENSE_FILL)
    return _Structure(
        n, q, C, active, active // q, m_row, m_col, m_pcol, m_values,
        pair_row, pair_e1, pair_e2, pair_k, pair_sigma,
        k_indptr, k_indices, k_diag, parent, l_indptr, l_indices, r_ptr, r_col, r_pos, perm,
        dense_start,
        lam_rows_glob, np.tile(la, C), np.tile(lb, C), lam_sigma, (lr, lc, lam_vals),
        cluster, _dense_x(d), np.ascontiguousarray(d.offset[:, 0], dtype=float),
    )


def _dense_x(d) -> np.ndarray:
    """The fixed-effects matrix of the one linear predictor, (B, p) contiguous (a sparse X is
    densified here: its p columns enter every gradient as dense (B, p) derivatives)."""
    x = d.x_matrix
    return np.ascontiguousarray(x.toarray() if sp.issparse(x) else x, dtype=float)


def _structure(obj: MarginalLikelihood) -> _Structure:
    s = getattr(obj, "_sparse_structure", None)
    if s is None:
        s = _build_structure(obj)
        obj._sparse_structure = s
    return s


# ---------------------------------------------------------------------- numerics
@dataclass
class _Factor:
    """K = L D L' in its first t (permuted) columns; the trailing block's Schur complement
    by a dense Cholesky factor ``U'U`` (upper, LAPACK)."""

    Lx: np.ndarray
    D: np.ndarray  # (n,), pivots in [:t]
    U: np.ndarray  # (n - t, n - t)
    t: int

    def log_det(self) -> float:
        return float(np.log(self.D[: self.t]).sum() + 2.0 * np.log(np.diagonal(self.U)).sum())

    def solve(self, s: _Structure, rhs: np.ndarray) -> np.ndarray:
        """K^{-1} rhs for rhs (n,) or (n, P), in the original order."""
        vec = rhs.ndim == 1
        x = np.array(rhs.reshape(len(rhs), -1)[s.perm], dtype=float, order="C")
        t = self.t
        _lsolve(s.l_indptr, s.l_indices, self.Lx, t, x)
        x[:t] /= self.D[:t, None]
        if t < s.n:
            x[t:] = cho_solve((self.U, False), x[t:], check_finite=False)
        _ltsolve(s.l_indptr, s.l_indices, self.Lx, t, x)
        out = np.empty_like(x)
        out[s.perm] = x
        return out[:, 0] if vec else out

    def selected_inverse(self, s: _Structure) -> np.ndarray:
        """K^{-1} at the positions ``[diagonal (n), strictly lower pattern of L]`` (permuted
        order), as indexed by ``pair_sigma`` and ``lam_sigma``."""
        t = self.t
        if t < s.n:
            inv, info = dpotri(self.U, lower=0)
            if info != 0:
                raise FitError("inverse of the curvature failed (dpotri)")
            s22 = _upper_to_full(inv)  # Fortran order, read down columns
        else:
            s22 = np.zeros((0, 0))
        return _selected_inverse(s.l_indptr, s.l_indices, self.Lx, self.D, t, s22)


def _factorize(s: _Structure, m_data: np.ndarray, w: np.ndarray,
               shift: float = 0.0) -> _Factor | None:
    """Factor of K = (1 + shift) I + M' diag(w) M, or None when K is not positive definite."""
    kx = np.empty(len(s.k_indices))
    if not _assemble_k(np.ascontiguousarray(w, dtype=float), np.ascontiguousarray(m_data),
                       s.m_row, s.m_pcol, s.pair_k, s.pair_row, s.pair_e1, s.pair_e2, s.k_diag,
                       shift, kx):
        raise FitError("non-finite curvature while searching for the posterior modes")
    Lx = np.zeros(len(s.l_indices))
    D = np.zeros(s.n)
    t = s.dense_start
    S = np.zeros((s.n - t, s.n - t), order="F")  # filled by columns; LAPACK's order (no copy)
    ok = _ldl_numeric(s.n, t, s.k_indptr, s.k_indices, kx, s.l_indptr, s.l_indices, s.r_ptr,
                      s.r_col, s.r_pos, Lx, D, S)
    if ok != s.n:
        return None
    if t < s.n:
        U, info = dpotrf(S, lower=0, clean=1, overwrite_a=1)
        if info != 0:
            return None
    else:
        U = S
    return _Factor(Lx, D, U, t)


@dataclass
class SparseModes:
    """Posterior modes on the sparse path (``v`` stacked over the active effects)."""

    v: np.ndarray  # (n,)
    eta: np.ndarray  # (B,)
    factor: _Factor
    m_data: np.ndarray
    converged: bool


def _glm_code(obj: MarginalLikelihood) -> int | None:
    """0 (Poisson) or 1 (binomial) where the compiled kernels apply, else None; the counts
    are kept on ``obj`` as ``_glm_y``."""
    if not getattr(obj, "use_kernel", True):
        return None
    if "_glm_y" in obj.__dict__:  # decided at the first evaluation (asked for at every one)
        return obj._glm_code
    from .. import _jit
    from ..links._families import ONE_PREDICTOR

    if not _jit.HAVE_NUMBA:
        return None
    if not hasattr(obj, "_glm_y"):
        fam = obj.design.family.compiled()
        ok = fam is not None and fam.code in ONE_PREDICTOR
        obj._glm_code, obj._glm_y = (fam.code, fam.y) if ok else (None, None)
    return obj._glm_code


def _predictors(obj: MarginalLikelihood, s: _Structure,
                params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``eta0 = X beta + offset`` (B,) and the values of M = Z Lambda(theta) (nnz,)."""
    beta, theta = obj.split(params)
    return s.X @ beta + obj.design.offset[:, 0], s.m_values @ theta


def _start_modes(obj: MarginalLikelihood, s: _Structure, params: np.ndarray) -> np.ndarray:
    """Where the mode search starts, per cluster the best (largest h) of: the first-order
    prediction ``v + dv/dparams (x - x0)`` from the last gradient (about one Newton iteration
    fewer per evaluation along the optimiser's path), the last modes, and 0.

    The prediction alone is poor where the optimiser's line search tries a distant point: on
    a 2000 x 1000 crossed Poisson design it put v 50-90 from the mode, and Newton, which
    gains about 1 per iteration on the exponential's steep side, needed up to 100 iterations
    (about 300 of a fit's 370 factorisations); comparing h costs one pass over the rows each,
    so a prediction that moves no mode by ``TRUST_MOVE`` or more is taken as it is.
    """
    tangent = getattr(obj, "_sparse_tangent", None)
    has_tangent = tangent is not None and tangent[0].shape == params.shape
    v_last = _last_modes(obj, s)
    code = _glm_code(obj)
    if code is not None:  # the rule compiled, as the compiled BFGS's objective applies it
        x = np.ascontiguousarray(params)
        x0, v0, dv = tangent if has_tangent else (x, v_last, np.zeros((s.n, len(x))))
        return _start_from(code, obj._glm_y, s.X, s.offset, s.m_values, s.entry_arrays, x,
                           has_tangent, x0, v0, dv, v_last, s.n_clusters)
    candidates = []
    if has_tangent:
        x0, v0, dv = tangent
        move = dv @ (params - x0)
        if s.n == 0 or abs(move).max() < TRUST_MOVE:
            return v0 + move
        candidates.append(v0 + move)
    candidates.append(v_last)
    if np.any(candidates[-1]):
        candidates.append(np.zeros(s.n))
    if len(candidates) == 1:
        return candidates[0]
    evaluate = _evaluator(obj, s, *_predictors(obj, s, params))
    best, best_h = candidates[0], None
    with np.errstate(over="ignore", invalid="ignore"):
        for cand in candidates:
            h = evaluate(cand)[0]
            h = np.where(np.isfinite(h), h, -np.inf)
            if best_h is None:
                best_h = h
                continue
            better = h > best_h
            best = np.where(better[s.col_cluster], cand, best)
            best_h = np.where(better, h, best_h)
    return best


def _last_modes(obj: MarginalLikelihood, s: _Structure) -> np.ndarray:
    """The modes kept by ``_keep_modes`` (stacked over the active effects; 0 before any)."""
    v = np.asarray(obj._v_start, dtype=float).reshape(-1)
    return np.array(v[s.active]) if v.shape[0] == s.n_clusters * s.q else np.zeros(s.n)


def _keep_modes(obj: MarginalLikelihood, s: _Structure, v: np.ndarray) -> None:
    """Store the modes (stacked over the active effects) as ``obj._v_start`` (C, q)."""
    full = np.zeros(s.n_clusters * s.q)
    full[s.active] = v
    obj._v_start = full.reshape(s.n_clusters, s.q)


def _compiled_modes(obj: MarginalLikelihood, s: _Structure, eta0: np.ndarray,
                    m_data: np.ndarray, v: np.ndarray, max_iter: int) -> tuple | None:
    """(v, eta, converged, factor) by ``_glm_modes`` for Poisson / binomial designs without a dense
    trailing block; None where that kernel does not apply or hands over (indefinite K)."""
    code = _glm_code(obj)
    if s.dense_start < s.n or code is None:
        return None
    v = np.array(v, dtype=float)
    B = len(eta0)
    eta, g, w, T = np.empty(B), np.empty(B), np.empty(B), np.empty(B)
    Lx = np.empty(s.l_indptr[-1])
    D = np.empty(s.n)
    status = _glm_modes(code, obj._glm_y, np.ascontiguousarray(eta0, dtype=float),
                        np.ascontiguousarray(m_data), s.entry_arrays, s.factor_arrays, v, eta,
                        g, w, T, np.empty(s.n_clusters), obj.inner_tol, max_iter, Lx, D,
                        *_chord(obj, s))
    if status >= 2:
        return None
    factor = obj._sparse_chord = _Factor(Lx, D, _NO_BLOCK, s.n)
    return v, eta, status == 0, factor


#: the empty dense block of a factor without one, and no chord factor for ``_glm_modes``
_NO_BLOCK = np.zeros((0, 0))
_NO_CHORD = (np.zeros(0), np.zeros(0))


def _chord(obj: MarginalLikelihood, s: _Structure) -> tuple[np.ndarray, np.ndarray]:
    """(Lx, D) of the factor at the last evaluation's modes for ``_glm_modes``' first step
    (wholly sparse factors only), else empty arrays."""
    f = getattr(obj, "_sparse_chord", None)
    return (f.Lx, f.D) if f is not None and f.t == s.n else _NO_CHORD


def _evaluator(obj: MarginalLikelihood, s: _Structure, eta0: np.ndarray,
               m_data: np.ndarray) -> Callable[[np.ndarray], tuple]:
    """``v -> (h per cluster, eta, g = l', H = l'')`` at ``eta = eta0 + M v`` (compiled for
    Poisson / binomial: a tenth of the NumPy version's time at 10^6 rows)."""
    d = obj.design
    C = s.n_clusters
    code = _glm_code(obj)
    if code is not None:
        eta0 = np.ascontiguousarray(eta0, dtype=float)
        m_data = np.ascontiguousarray(m_data, dtype=float)

        def compiled(v_: np.ndarray) -> tuple:
            B = len(eta0)
            eta_, g_, w_, h_ = np.empty(B), np.empty(B), np.empty(B), np.empty(C)
            _glm_h(code, obj._glm_y, eta0, s.m_row, s.m_col, m_data, s.row_cluster,
                   s.col_cluster, np.ascontiguousarray(v_, dtype=float), eta_, g_, w_,
                   np.empty(B), h_)
            return h_, eta_, g_, -w_

        return compiled
    fam = d.family

    def evaluate(v_: np.ndarray) -> tuple:
        eta_ = eta0 + _sum_by(s.m_row, m_data * v_[s.m_col], len(eta0))
        l_, g_, H_, _ = fam.derivatives(eta_[:, None, None], 2)
        h_ = (np.bincount(d.cluster, weights=l_[:, 0], minlength=C)
              - 0.5 * np.bincount(s.col_cluster, weights=v_ * v_, minlength=C))
        return h_, eta_, g_[:, 0, 0], H_[:, 0, 0, 0]

    return evaluate


def sparse_modes(obj: MarginalLikelihood, params: np.ndarray, max_iter: int = 100) -> SparseModes:
    """Modes of h by damped Newton with sparse solves; clusters halve their steps separately
    (as ``MarginalLikelihood.modes``)."""
    s = _structure(obj)
    params = np.asarray(params, dtype=float)
    eta0, m_data = _predictors(obj, s, params)
    evaluate = _evaluator(obj, s, eta0, m_data)
    v = _start_modes(obj, s, params)
    fast = _compiled_modes(obj, s, eta0, m_data, v, max_iter)
    if fast is not None:
        v, eta, converged, factor = fast
        _keep_modes(obj, s, v)
        return SparseModes(v, eta, factor, m_data, converged)
    h, eta, g, H = evaluate(v)
    if not np.all(np.isfinite(h)):
        v = np.zeros(s.n)
        h, eta, g, H = evaluate(v)
    converged = False
    # Newton with lazy refactorisation: steps solve with the last factor of K (the one at the
    # previous evaluation's mode, else the current point's) while they shrink by CHORD_RATE
    # or more per iteration; otherwise K is factorised afresh at the current point (a Newton
    # step). Any positive definite K gives an ascent direction; the halving keeps h rising.
    # On the 2000 x 1000 crossed design this halved the factorisations of a fit (each a dense
    # Cholesky of the 1000 x 1000 Schur complement).
    factor = getattr(obj, "_sparse_chord", None)
    fresh, last = False, np.inf
    for _ in range(max_iter):
        grad = _sum_by(s.m_col, m_data * g[s.m_row], s.n) - v
        step = None if factor is None else factor.solve(s, grad)
        size = np.inf if step is None else np.max(np.abs(step), initial=0.0)
        if step is None or (not fresh and size >= obj.inner_tol
                            and not size <= CHORD_RATE * last):
            factor = _positive_factor(s, m_data, -H)
            fresh = True
            step = factor.solve(s, grad)
            size = np.max(np.abs(step), initial=0.0)
        if size < obj.inner_tol:
            v = v + step
            h, eta, g, H = evaluate(v)
            converged = True
            break
        v, (h, eta, g, H) = halving_step(evaluate, v, step, h, lambda t: t[s.col_cluster])
        fresh, last = False, size
    factor = _factorize(s, m_data, -H)
    if factor is None:
        raise FitError("curvature at the posterior mode is not positive definite")
    obj._sparse_chord = factor
    _keep_modes(obj, s, v)
    return SparseModes(v, eta, factor, m_data, converged)


def _positive_factor(s: _Structure, m_data: np.ndarray, w: np.ndarray) -> _Factor:
    """Factor of K, or of K + shift I with the smallest shift 10^-3, 10^-2, ... that makes it
    positive definite (Levenberg-Marquardt, as ``_make_positive``)."""
    factor = _factorize(s, m_data, w)
    shift = 1e-3
    while factor is None:
        factor = _factorize(s, m_data, w, shift)
        shift *= 10.0
        if shift > 1e12:
            raise FitError("curvature is not positive definite for any shift")
    return factor


def _laplace_value(obj: MarginalLikelihood, s: _Structure, h_hat: float,
                   log_det: float) -> float:
    """The full-scale Laplace log-likelihood from ``h(v_hat) = sum l - |v|^2 / 2`` and
    ``log det K`` (the one-node rule's weight per cluster and the family constant added)."""
    return h_hat - 0.5 * log_det + s.n_clusters * float(obj.log_weights[0]) + obj._constant


def _compiled_points(obj: MarginalLikelihood, s: _Structure, points: np.ndarray,
                     starts: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Values and gradients at the rows of ``points`` by the compiled ``_glm_points`` (modes
    from the columns of ``starts``), each kept as an evaluation (``_remember``); the last
    point's modes, dv/dparams and factor start the next evaluation. Returns (points done,
    values, gradients); fewer than all where K is not positive definite at the next point."""
    k, P = points.shape
    parts, log_dets, grads = np.empty(k), np.empty(k), np.empty((k, P))
    v, dv = np.empty(s.n), np.empty((s.n, P))
    Lx, D = np.empty(s.l_indptr[-1]), np.empty(s.n)
    done = _glm_points(
        obj._glm_code, obj._glm_y, s.X, s.offset, s.m_values, s.entry_arrays, s.factor_arrays,
        s.pair_sigma, points, starts, obj.inner_tol, 100, *_chord(obj, s), s.n_clusters, parts,
        log_dets, grads, v, dv, Lx, D)
    values = np.empty(k)
    if done:
        seen = obj.__dict__.setdefault("_sparse_seen", {})
        factor = obj._sparse_chord = _Factor(Lx, D, _NO_BLOCK, s.n)
        for a in range(done):
            values[a] = _laplace_value(obj, s, parts[a], log_dets[a])
            _remember(seen, points[a].tobytes(), values[a], grads[a],
                      (v, factor) if a == done - 1 else None)
        obj._sparse_tangent = (points[done - 1].copy(), v, dv)
        _keep_modes(obj, s, v)
    return done, values, grads


def _fused(obj: MarginalLikelihood, s: _Structure) -> bool:
    """Whether evaluations go through the compiled ``_glm_points`` (Poisson / binomial, no
    dense trailing block)."""
    return _glm_code(obj) is not None and s.dense_start == s.n


#: evaluations kept per objective (``sparse_value_and_gradient``): the start's gradient is asked
#: for again after the forward differences of the Newton curvature (one per parameter) and the
#: optimum's after the optimiser's last evaluations
SEEN = 12


def _remember(seen: dict, key: bytes, value: float, grad: np.ndarray,
              state: tuple | None = None) -> None:
    """Keep (value, gradient, state): ``state`` = (modes, factor of K there) for a wholly
    sparse factor (``sparse_posterior`` at an evaluated point needs no mode search)."""
    if len(seen) >= SEEN:
        del seen[next(iter(seen))]  # the oldest (dicts keep insertion order)
    seen[key] = (value, grad.copy(), state)


def sparse_value_and_gradient(
    obj: MarginalLikelihood, params: np.ndarray, gradient: bool = True
) -> tuple[float, np.ndarray | None]:
    """The Laplace log-likelihood (full scale, as ``MarginalLikelihood`` with n_nodes = 1)
    and its exact gradient in (beta, theta)."""
    d = obj.design
    s = _structure(obj)
    params = np.asarray(params, dtype=float)
    # the optimiser's start and end are each also asked for by the curvature around them
    # (forward differences start from the point itself): the last few evaluations are kept
    key = params.tobytes()
    seen = obj.__dict__.setdefault("_sparse_seen", {})
    if key in seen:
        value, grad, _ = seen[key]
        return value, (grad.copy() if gradient else None)
    if gradient and _fused(obj, s):
        done, values, grads = _compiled_points(obj, s, params[None, :],
                                               _start_modes(obj, s, params)[:, None])
        if done:
            return float(values[0]), grads[0]
    info = sparse_modes(obj, params)
    v, f = info.v, info.factor
    code = _glm_code(obj)
    if code is not None and gradient:
        B, P = len(info.eta), len(params)
        md = np.ascontiguousarray(info.m_data)
        g, w, T = np.empty(B), np.empty(B), np.empty(B)
        total = _glm_derivatives(code, obj._glm_y, info.eta, g, w, T)
        value = _laplace_value(obj, s, total - 0.5 * float(v @ v), f.log_det())
        dF = np.empty((s.n, P))
        dmv = _glm_rhs(s.X, v, s.m_row, s.m_col, s.m_col, md, s.m_values, g, w, dF)
        dv = np.ascontiguousarray(f.solve(s, dF))
        obj._sparse_tangent = (params.copy(), v.copy(), dv)
        grad = np.empty(P)
        _glm_gradient(s.X, dmv, g, w, T, dv, v, s.entry_arrays, md, s.m_values, s.pair_sigma,
                      f.selected_inverse(s), grad)
        _remember(seen, key, value, grad)
        return value, grad
    fam = d.family
    l, g, H, T = fam.derivatives(info.eta[:, None, None], 3 if gradient else 0)
    value = _laplace_value(obj, s, float(l.sum()) - 0.5 * float(v @ v), f.log_det())
    if not gradient:
        return value, None
    g, H, T = g[:, 0, 0], H[:, 0, 0, 0], T[:, 0, 0, 0, 0]
    md, mv = info.m_data, s.m_values
    X = s.X
    # derivative of eta at fixed v: X for beta, dM_k v for theta_k
    B = X.shape[0]
    dzf = np.concatenate([X, _sum_by(s.m_row, mv * v[s.m_col][:, None], B)], axis=1)  # (B, P)
    p = X.shape[1]
    dF = _sum_by(s.m_col, md[:, None] * (H[:, None] * dzf)[s.m_row], s.n)  # M' H dzeta
    dF[:, p:] += _sum_by(s.m_col, mv * g[s.m_row][:, None], s.n)  # dM' g
    dv = f.solve(s, dF)  # (n, P)
    dzeta = dzf + _sum_by(s.m_row, md[:, None] * dv[s.m_col], B)
    sigma = f.selected_inverse(s)
    sig_e, sig_p = sigma[s.m_pcol], sigma[s.pair_sigma]
    e1, e2 = s.pair_e1, s.pair_e2
    # m_b' K^{-1} m_b and m_b' K^{-1} dm_bk: a diagonal term per non-zero, two per pair
    s_b = (_sum_by(s.m_row, md * md * sig_e, B)
           + 2.0 * _sum_by(s.pair_row, md[e1] * md[e2] * sig_p, B))
    r_b = (_sum_by(s.m_row, (md * sig_e)[:, None] * mv, B)
           + _sum_by(s.pair_row, sig_p[:, None] * (md[e1][:, None] * mv[e2]
                                                    + md[e2][:, None] * mv[e1]), B))
    grad = g @ dzf + 0.5 * ((T * s_b) @ dzeta)
    grad[p:] += H @ r_b
    # the mode term (zero up to the inner tolerance squared, kept as in _agq.py)
    grad_v = _sum_by(s.m_col, md * g[s.m_row], s.n) - v
    grad += grad_v @ dv
    _remember(seen, key, value, grad)
    return value, grad


def sparse_points(obj: MarginalLikelihood,
                  points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Values and gradients at the rows of ``points`` (k, P) with the evaluations in one
    compiled call (``_glm_points``), each from ``_start_modes``' start by the last
    evaluation's tangent (the first-order prediction of its modes where that moves none by
    ``TRUST_MOVE``) and the first step by the factor there; None where that does not apply
    (not Poisson / binomial, or a dense trailing block). Each evaluation counts and is kept
    as ``value_and_gradient``'s are; the Python iteration takes over from a point where K is
    not positive definite."""
    s = _structure(obj)
    if not _fused(obj, s):
        return None
    k = points.shape[0]
    starts = np.empty((s.n, k))
    for a in range(k):  # every point from the state before this call
        starts[:, a] = _start_modes(obj, s, points[a])
    done, values, grads = _compiled_points(obj, s, points, starts)
    obj.n_evaluations += done
    for a in range(done, k):  # the Python iteration takes over
        values[a], grads[a] = obj.value_and_gradient(points[a])
    return values, grads


def sparse_gradient_jacobian(obj: MarginalLikelihood, params: np.ndarray, free: np.ndarray,
                             rel_step: float) -> np.ndarray | None:
    """``MarginalLikelihood.gradient_jacobian`` (forward differences of the gradient,
    ``h_i = rel_step max(1, |x_i|)``) with the ``len(free)`` shifted evaluations in one
    compiled call (``sparse_points``); None where that does not apply."""
    s = _structure(obj)
    if not _fused(obj, s):
        return None
    g0 = obj.value_and_gradient(params)[1]
    k = len(free)
    steps = rel_step * np.maximum(1.0, np.abs(params[free]))
    points = np.repeat(params[None, :], k, axis=0)
    points[np.arange(k), free] += steps
    grads = sparse_points(obj, points)[1]
    return (grads[:, free] - g0[free]) / steps[:, None]


def sparse_compiled_negative(obj: MarginalLikelihood, start: np.ndarray | None = None
                             ) -> tuple | None:
    """``(name, data, hand_back)`` for ``fitting._bfgs.minimize_bfgs(compiled=...)``: the
    compiled BFGS over ``negative_sparse_laplace`` where evaluations are fused (``_fused``),
    else None. ``data`` starts from the objective's state (the last evaluation's point, modes,
    dv/dparams and factor, the last modes) and ``start``'s value and gradient, evaluated here
    as the Python search's first call would (kept, so usually no evaluation); ``hand_back()``
    gives the compiled search's last evaluation back to the objective as if it had been made
    by ``sparse_value_and_gradient`` (the Newton finish, ``posterior`` and later evaluations
    continue from it)."""
    s = _structure(obj)
    if not _fused(obj, s):
        return None
    n, nl = s.n, len(s.l_indices)
    P = s.X.shape[1] + s.m_values.shape[1]
    known = np.zeros(P + 1)
    xk = np.zeros(P)
    if start is not None:
        xk[:] = start
        try:
            known[0], known[1:] = obj.value_and_gradient(xk)
        except (FitError, np.linalg.LinAlgError, FloatingPointError):
            known[0] = np.nan
        if not np.isfinite(known[0]):
            start = None  # the search's first call evaluates and rejects it
    tangent = getattr(obj, "_sparse_tangent", None)
    has_tangent = tangent is not None and tangent[0].shape == (P,)
    x0, v0, dv0 = ((np.array(a, dtype=float) for a in tangent) if has_tangent
                   else (np.zeros(P), np.zeros(n), np.zeros((n, P))))
    Lx0, D0 = (np.array(a) for a in _chord(obj, s))
    has_chord = len(D0) == n
    if not has_chord:
        Lx0, D0 = np.zeros(nl), np.zeros(n)
    flags = np.array([has_tangent, has_chord, 0, start is not None], dtype=np.int64)
    state = (x0, v0, dv0, Lx0, D0, _last_modes(obj, s), np.empty(P + 1), flags, xk, known,
             np.zeros(0))
    data = (obj._glm_code, obj._glm_y, s.X, s.offset, s.m_values, s.entry_arrays,
            s.factor_arrays, s.pair_sigma, obj.inner_tol, 100, s.n_clusters,
            s.n_clusters * float(obj.log_weights[0]), obj._constant, state, np.empty(n),
            np.empty((n, P)), np.empty(nl), np.empty(n))

    def hand_back() -> None:
        if not flags[2]:  # no evaluation since the last hand-back
            return
        flags[2] = 0
        factor = obj._sparse_chord = _Factor(Lx0.copy(), D0.copy(), _NO_BLOCK, n)
        v = v0.copy()
        obj._sparse_tangent = (x0.copy(), v, dv0.copy())
        fg = state[6]
        _remember(obj.__dict__.setdefault("_sparse_seen", {}), x0.tobytes(), float(fg[0]),
                  fg[1:], (v, factor))
        _keep_modes(obj, s, v)

    return "sparse_laplace", data, hand_back


def sparse_posterior(obj: MarginalLikelihood, params: np.ndarray) -> dict[str, np.ndarray]:
    """``MarginalLikelihood.posterior`` for n_nodes = 1: modes of ``u = Lambda v`` (also the
    means; SDs of the one-node rule are 0) and mode SDs from ``Lambda K^{-1} Lambda'``."""
    s = _structure(obj)
    params = np.asarray(params, dtype=float)
    _, theta = obj.split(params)
    entry = obj.__dict__.get("_sparse_seen", {}).get(params.tobytes())
    if entry is not None and entry[2] is not None:  # evaluated here: its modes and factor
        v_hat, factor = entry[2]
        eta0, m_data = _predictors(obj, s, params)
        info = SparseModes(v_hat, eta0 + _sum_by(s.m_row, m_data * v_hat[s.m_col], len(eta0)),
                           factor, m_data, True)
    else:
        info = sparse_modes(obj, params)
    C, q = s.n_clusters, s.q
    lr, lc, lv = s.lam_pattern
    mode, var = _posterior_moments(np.ascontiguousarray(info.v, dtype=float), s.active,
                                   lv @ theta, lr, lc, s.lam_rows, s.lam_a, s.lam_b,
                                   s.lam_sigma, info.factor.selected_inverse(s), C, q)
    return {
        "mode": mode,
        "mean": mode.copy(),
        "sd": np.zeros_like(mode),
        "mode_sd": np.sqrt(np.maximum(var, 0.0)),
        "eta_mode": info.eta[:, None],
    }


@_njit
def _posterior_moments(v_active, active, lam_e, lr, lc, lam_rows, lam_a, lam_b, lam_sigma,
                       sig_all, C, q):  # pragma: no cover - compiled
    """The modes ``u = Lambda v`` (C, q) and their variances ``diag(Lambda K^{-1} Lambda')``
    per cluster, summed over Lambda's pattern (a scipy matrix for it cost more than the rest
    of the predictions on small designs); ``sig_all`` is K^{-1} on the selected positions,
    indexed by ``lam_sigma`` (-1: exactly 0, -2: 1). Sums run in the entries' order."""
    v = np.zeros(C * q)
    for i in range(active.shape[0]):
        v[active[i]] = v_active[i]
    mode = np.zeros((C, q))
    for c in range(C):
        for e in range(lr.shape[0]):
            mode[c, lr[e]] += v[c * q + lc[e]] * lam_e[e]
    var = np.zeros(C * q)
    for x in range(lam_rows.shape[0]):
        k = lam_sigma[x]
        sig = sig_all[k] if k >= 0 else (1.0 if k == -2 else 0.0)
        var[lam_rows[x]] += lam_e[lam_a[x]] * lam_e[lam_b[x]] * sig
    return mode, var.reshape(C, q)
