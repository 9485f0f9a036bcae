"""Compiled inversion of ``C log(A pi) = eta`` and the derivatives through it, per point.

One call solves every (block, node) point by Newton's method and returns the log-likelihood
and its derivatives in eta (``links.ImplicitMultinomial``; formulas there). Loops, not numpy,
because each point is a small (K cells, K - 1 constraints) problem: vectorised numpy spends its
time building K^3 cumulant tensors and in per-call overhead.

Derivatives in eta through the inverse ``theta(eta)`` (implicit function theorem), written in
the eta directions ``u_a = column a of U = G1^{-1}``: with ``omega = C' g``, ``Omega = sum
omega`` and ``Cov_p``, ``k3_p`` the covariance and third cumulant of the categorical
distribution ``p`` evaluated along ``u`` (last cell 0),

    g = U' (y - n pi)[:K-1]
    H = -(n - Omega) Cov_pi - sum_r omega_r Cov_{p_r}
    S_j = sum_r C_jr Cov_{p_r} - (sum_r C_jr) Cov_pi              (= G2_j[u, u])
    T_abc = -(n - Omega) k3_pi - sum_r omega_r k3_{p_r}
            - sum_j (H_ja S_j,bc + H_jb S_j,ac + H_jc S_j,ab).

(``H = U'(L2 - g.G2)U`` and T its derivative, with ``dU/deta_c = -U S(., c)``.) So no tensor
of order above ``m^3`` is built and nothing is differenced.

The Newton line search is the compiled form of ``integrate._newton.halving_step``, as in the
integrate kernels: ``backtrack`` takes a Python callback per trial, which cannot run inside the
compiled loop over points (and would cost a call per point and trial). The step is halved
while the merit ``|eta - G(theta)|^2 / 2`` increases by more than ``ASCENT_TOL (1 + merit)``.
"""

from __future__ import annotations

import math

import numpy as np

from .._halving import ASCENT_TOL
from .._jit import njit
from .._small_linalg import LU, LU_TRANSPOSED, factor_solve, inverse_into, lu_into

#: point status codes
CONVERGED, FAILED = 0, 1


@njit
def _forward(theta, C, aptr, aidx, aval, e, pi, w, G):  # pragma: no cover - compiled
    """``G = C log(A pi)`` at ``theta``; fills ``e`` (exp), ``pi``, ``w = A e``; returns
    ``(max theta~, log sum e)``, or ``lse = nan`` when some ``A_r pi`` is zero."""
    m = theta.shape[0]
    mx = 0.0
    for k in range(m):
        if theta[k] > mx:
            mx = theta[k]
    s = 0.0
    for k in range(m):
        e[k] = math.exp(theta[k] - mx)
        s += e[k]
    e[m] = math.exp(-mx)
    s += e[m]
    for k in range(m + 1):
        pi[k] = e[k] / s
    ls = math.log(s)
    for j in range(m):
        G[j] = 0.0
    for r in range(aptr.shape[0] - 1):
        acc = 0.0
        for t in range(aptr[r], aptr[r + 1]):
            acc += aval[t] * e[aidx[t]]
        w[r] = acc
        if acc <= 0.0:
            return mx, math.nan
        hr = math.log(acc) - ls
        for j in range(m):
            G[j] += C[j, r] * hr
    return mx, ls


@njit
def _jacobian(C, aptr, aidx, aval, e, pi, w, csum, G1):  # pragma: no cover - compiled
    """``G1[j, a] = sum_r C_jr (p_r[a] - pi[a])``, ``p_r = A_r. e / w_r``."""
    m = G1.shape[0]
    for j in range(m):
        for a in range(m):
            G1[j, a] = -csum[j] * pi[a]
    for r in range(aptr.shape[0] - 1):
        for t in range(aptr[r], aptr[r + 1]):
            k = aidx[t]
            if k < m:
                pr = aval[t] * e[k] / w[r]
                for j in range(m):
                    G1[j, k] += C[j, r] * pr


@njit
def _residual(theta, eta, C, aptr, aidx, aval, e, pi, w, G):  # pragma: no cover - compiled
    """``(|eta - G|^2 / 2, max |eta - G|)`` at ``theta`` (inf where G is not defined)."""
    _, ls = _forward(theta, C, aptr, aidx, aval, e, pi, w, G)
    if not math.isfinite(ls):
        return math.inf, math.inf
    merit = 0.0
    big = 0.0
    for j in range(theta.shape[0]):
        rj = eta[j] - G[j]
        merit += 0.5 * rj * rj
        big = max(big, abs(rj))
    if not math.isfinite(merit):
        return math.inf, math.inf
    return merit, big


@njit
def _newton(eta, theta, C, aptr, aidx, aval, csum, tol, max_iter, e, pi, w, G, G1, piv, step,
            trial):  # pragma: no cover - compiled
    """Newton for ``G(theta) = eta`` from ``theta`` (updated in place); True on convergence
    (max residual below ``tol``, or below 1e-8 when the iterations stall). On return ``e``,
    ``pi``, ``w`` and ``G`` are those at ``theta``."""
    m = theta.shape[0]
    merit, big = _residual(theta, eta, C, aptr, aidx, aval, e, pi, w, G)
    if not math.isfinite(merit):
        return False
    for _ in range(max_iter):
        if big < tol:
            return True
        _jacobian(C, aptr, aidx, aval, e, pi, w, csum, G1)
        for j in range(m):
            step[j] = eta[j] - G[j]
        if not lu_into(G1, piv):
            return False
        factor_solve(G1, piv, step, LU)
        for j in range(m):
            if not math.isfinite(step[j]):
                return False
        t = 1.0
        accepted = False
        # own loop: a shared compiled one could take the merit only as a template bound by
        # _jit.bind, and its trials here fill preallocated work arrays, not new values
        for _half in range(40):
            for j in range(m):
                trial[j] = theta[j] + t * step[j]
            new, nbig = _residual(trial, eta, C, aptr, aidx, aval, e, pi, w, G)
            if new <= merit + ASCENT_TOL * (1.0 + merit):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        for j in range(m):
            theta[j] = trial[j]
        merit, big = new, nbig
    merit, big = _residual(theta, eta, C, aptr, aidx, aval, e, pi, w, G)
    return big < 1e-8


@njit
def _moments(p, U, mu, dev):  # pragma: no cover - compiled
    """Means ``mu_a = sum_k p_k U~_ka`` and deviations ``dev[k, a] = U~_ka - mu_a`` of the
    directions (``U~`` is U with a zero last row)."""
    m = U.shape[1]
    K = p.shape[0]
    for a in range(m):
        acc = 0.0
        for k in range(K - 1):
            acc += p[k] * U[k, a]
        mu[a] = acc
    for k in range(K):
        for a in range(m):
            dev[k, a] = (U[k, a] if k < K - 1 else 0.0) - mu[a]


@njit
def _central(p, dev, cov, k3, k3_scale, third):  # pragma: no cover - compiled
    """``cov = Cov_p`` and, with ``third``, ``k3 += k3_scale * k3_p`` along the directions
    (deviations ``dev``), upper triangles only (a <= b <= c)."""
    m = cov.shape[0]
    cov[:, :] = 0.0
    for k in range(p.shape[0]):
        wk = p[k]
        if wk == 0.0:
            continue
        for a in range(m):
            da = wk * dev[k, a]
            for b in range(a, m):
                dab = da * dev[k, b]
                cov[a, b] += dab
                if third:
                    dab *= k3_scale
                    for c in range(b, m):
                        k3[a, b, c] += dab * dev[k, c]


@njit
def _symmetrize2(M):  # pragma: no cover - compiled
    n = M.shape[0]
    for a in range(n):
        for b in range(a):
            M[a, b] = M[b, a]


@njit
def _directions(C, aptr, aidx, aval, csum, e, pi, w, G1, piv, col, U):  # pragma: no cover
    """``U = G1^{-1}`` (the eta directions in theta); False when G1 is singular."""
    _jacobian(C, aptr, aidx, aval, e, pi, w, csum, G1)
    if not lu_into(G1, piv):
        return False
    inverse_into(G1, piv, LU, col, U)
    return True


@njit
def _curvature(C, aptr, aidx, aval, csum, e, pi, w, U, n_tot, order, gp, h, t3,
               work):  # pragma: no cover - compiled
    """H (into ``h``) and, for ``order`` 3, T (into ``t3``) at one solved point with score
    ``gp``; formulas in the module docstring."""
    pr, mu, dev, omega, covr, S, k3 = work
    m = U.shape[0]
    K = m + 1
    R = aptr.shape[0] - 1
    omega_sum = 0.0
    for r in range(R):
        acc = 0.0
        for j in range(m):
            acc += gp[j] * C[j, r]
        omega[r] = acc
        omega_sum += acc
    third = order >= 3
    if third:
        k3[:, :, :] = 0.0
    _moments(pi, U, mu, dev)
    _central(pi, dev, covr, k3, -(n_tot - omega_sum), third)
    for a in range(m):
        for b in range(a, m):
            h[a, b] = -(n_tot - omega_sum) * covr[a, b]
            if third:
                for j in range(m):
                    S[j, a, b] = -csum[j] * covr[a, b]
    for r in range(R):
        for k in range(K):
            pr[k] = 0.0
        for t in range(aptr[r], aptr[r + 1]):
            pr[aidx[t]] = aval[t] * e[aidx[t]] / w[r]
        _moments(pr, U, mu, dev)
        _central(pr, dev, covr, k3, -omega[r], third)
        for a in range(m):
            for b in range(a, m):
                h[a, b] -= omega[r] * covr[a, b]
        if third:
            for j in range(m):
                c = C[j, r]
                if c != 0.0:
                    for a in range(m):
                        for b in range(a, m):
                            S[j, a, b] += c * covr[a, b]
    _symmetrize2(h)
    if order < 3:
        return
    for j in range(m):
        _symmetrize2(S[j])
    for a in range(m):
        for b in range(a, m):
            for c in range(b, m):
                acc = k3[a, b, c]
                for j in range(m):
                    acc -= h[j, a] * S[j, b, c] + h[j, b] * S[j, a, c] + h[j, c] * S[j, a, b]
                t3[a, b, c] = acc
                t3[a, c, b] = acc
                t3[b, a, c] = acc
                t3[b, c, a] = acc
                t3[c, a, b] = acc
                t3[c, b, a] = acc


@njit
def implicit_points(y, C, aptr, aidx, aval, csum, eta, theta, chain, order, tol, max_iter,
                    ell, g, H, T, status):  # pragma: no cover - compiled
    """Solve every point of ``eta`` (B, N, m) and evaluate ``l`` and its derivatives to
    ``order`` (0-3) into ``ell`` (B, N), ``g`` (B, N, m), ``H`` (B, N, m, m), ``T`` (B, N, m,
    m, m).

    ``theta`` (B, N, m) holds the starting points and receives the solutions. With ``chain``,
    node n > 0 of a block starts from node n - 1's solution instead. A point whose Newton
    fails restarts from the uniform table; ``status`` (B, N) flags the points that still fail
    (their outputs are nan).
    """
    nb, nn, m = eta.shape
    K = m + 1
    R = aptr.shape[0] - 1
    e, pi, w, G = np.empty(K), np.empty(K), np.empty(R), np.empty(m)
    G1, U = np.empty((m, m)), np.empty((m, m))
    piv = np.empty(m, dtype=np.int64)
    step, trial, th = np.empty(m), np.empty(m), np.empty(m)
    work = (np.empty(K), np.empty(m), np.empty((K, m)), np.empty(R), np.empty((m, m)),
            np.empty((m, m, m)), np.empty((m, m, m)))
    no_t3 = np.empty((m, m, m))  # T's place when order < 3
    for b in range(nb):
        n_tot = 0.0
        for k in range(K):
            n_tot += y[b, k]
        for nd in range(nn):
            src = nd - 1 if chain and nd > 0 and status[b, nd - 1] == CONVERGED else nd
            for j in range(m):
                th[j] = theta[b, src, j]
            ok = _newton(eta[b, nd], th, C, aptr, aidx, aval, csum, tol, max_iter, e, pi, w,
                         G, G1, piv, step, trial)
            if not ok:
                th[:] = 0.0
                ok = _newton(eta[b, nd], th, C, aptr, aidx, aval, csum, tol, max_iter, e, pi,
                             w, G, G1, piv, step, trial)
            theta[b, nd, :] = th
            if ok:
                mx, ls = _forward(th, C, aptr, aidx, aval, e, pi, w, G)
                val = 0.0
                for k in range(m):
                    val += y[b, k] * th[k]
                ell[b, nd] = val - n_tot * (mx + ls)
                if order == 1:  # the score alone: one solve with G1', no inverse
                    _jacobian(C, aptr, aidx, aval, e, pi, w, csum, G1)
                    ok = lu_into(G1, piv)
                    for k in range(m):
                        step[k] = y[b, k] - n_tot * pi[k]
                    factor_solve(G1, piv, step, LU_TRANSPOSED)
                    g[b, nd, :] = step
                elif order >= 2:
                    ok = _directions(C, aptr, aidx, aval, csum, e, pi, w, G1, piv, step, U)
            if not ok:
                status[b, nd] = FAILED
                ell[b, nd] = math.nan
                continue
            status[b, nd] = CONVERGED
            if order >= 2:
                for a in range(m):
                    acc = 0.0
                    for k in range(m):
                        acc += (y[b, k] - n_tot * pi[k]) * U[k, a]
                    g[b, nd, a] = acc
                _curvature(C, aptr, aidx, aval, csum, e, pi, w, U, n_tot, order, g[b, nd],
                           H[b, nd], T[b, nd] if order >= 3 else no_t3, work)


@njit
def jacobian_at(theta, C, aptr, aidx, aval, csum):  # pragma: no cover - compiled
    """``G1 = dG / dtheta`` at one ``theta`` (m,)."""
    m = theta.shape[0]
    e = np.empty(m + 1)
    pi = np.empty(m + 1)
    w = np.empty(aptr.shape[0] - 1)
    G = np.empty(m)
    G1 = np.empty((m, m))
    _forward(theta, C, aptr, aidx, aval, e, pi, w, G)
    _jacobian(C, aptr, aidx, aval, e, pi, w, csum, G1)
    return G1
