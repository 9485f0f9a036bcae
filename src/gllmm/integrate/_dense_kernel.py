"""Compiled (numba) Laplace value and gradient of ``MarginalLikelihood`` (n_nodes = 1) for
multinomial blocks and q random effects per cluster: the same formulas as its numpy path,
which on small tables (the simulation's one-cluster association model) spends its time in
per-call overhead, not arithmetic."""

from __future__ import annotations

import math

import numpy as np

from .._jit import bind, njit
from .._small_linalg import CHOLESKY, cholesky_into, cholesky_solve, inverse_into
from ..links._jets import softmax_block
from ._mode_newton import NOT_POSITIVE, OK, cholesky_step, mode_newton_template
from ._scalar_kernel import fixed_predictor


@njit(inline=True)
def _multinomial_h(args, v):  # pragma: no cover - compiled
    """``h(v) = sum_b [y_b' eta_b - n_b logsumexp(eta_b)] - |v|^2 / 2`` of one cluster (blocks
    b0 .. b1 - 1), its gradient F and ``K = -h''`` (``W_b = n_b (diag p_b - p_b p_b')``);
    ``args = (Y, eta0, M, b0, b1, eta, pr, pm)``, the last three scratch space."""
    Y, eta0, M, b0, b1, eta, pr, pm = args
    J = eta0.shape[1]
    q = v.shape[0]
    F = np.empty(q)
    K = np.empty((q, q))
    h = 0.0
    for a in range(q):
        h -= 0.5 * v[a] * v[a]
        F[a] = -v[a]
        for r in range(q):
            K[a, r] = 1.0 if a == r else 0.0
    for b in range(b0, b1):
        top = -np.inf
        for j in range(J):
            e = eta0[b, j]
            for a in range(q):
                e += M[b, j, a] * v[a]
            eta[j] = e
            top = max(top, e)
        tot = 0.0
        n = 0.0
        for j in range(J):
            tot += math.exp(eta[j] - top)
            n += Y[b, j]
        lse = top + math.log(tot)
        for j in range(J):
            pr[j] = math.exp(eta[j] - lse)
            h += Y[b, j] * eta[j]
        h -= n * lse
        for a in range(q):
            s = 0.0
            for j in range(J):
                F[a] += M[b, j, a] * (Y[b, j] - n * pr[j])
                s += pr[j] * M[b, j, a]
            pm[a] = s  # p_b' M_b, its entries r < a kept from earlier passes
            for r in range(a + 1):
                w = 0.0
                for j in range(J):
                    w += pr[j] * M[b, j, a] * M[b, j, r]
                K[a, r] += n * (w - s * pm[r])
                K[r, a] = K[a, r]
    return h, F, K


multinomial_mode = njit(bind(mode_newton_template, "multinomial_mode", EVAL=_multinomial_h,
                             STEP=cholesky_step), inline=True)


@njit
def _dot_pm(pr, M, b, r):  # pragma: no cover - compiled
    s = 0.0
    for j in range(pr.shape[0]):
        s += pr[j] * M[b, j, r]
    return s


@njit
def dense_laplace_multinomial(Y, X, offset, Z, templates, starts, logw0, params, v_start,
                              tol, max_iter, want_grad, grad):  # pragma: no cover - compiled
    """Laplace log-likelihood (without the family constant) of multinomial blocks with q
    random effects per cluster, and its exact gradient; returns (value, status).

    Per cluster: damped Newton (step halving) for the mode of h, ``K = -h''``, value
    ``h(v_hat) - log det chol(K) + logw0``; gradient as ``MarginalLikelihood.value_and_gradient``
    with one node: ``dv = K^{-1} dF``, ``d(-log det K / 2) = -tr(K^{-1} dK) / 2`` with
    ``dK = -M' (T . dzeta) M - (dM' H M + M' H dM)``, where for the multinomial
    ``(T . d)_ab = -n [delta_ab p_a (d_a - p'd) - p_a p_b (d_a + d_b - 2 p'd)]``.
    ``v_start`` (C, q) is updated in place with the modes.
    """
    B, J, p = X.shape
    q = Z.shape[2]
    m = templates.shape[0]
    P = p + m
    n_cl = starts.shape[0] - 1
    lam = np.zeros((q, q))
    for k in range(m):
        for a in range(q):
            for r in range(q):
                lam[a, r] += params[p + k] * templates[k, a, r]
    eta0 = np.empty((B, J))
    fixed_predictor(X, offset, params, eta0)
    M = np.zeros((B, J, q))
    for b in range(B):
        for j in range(J):
            for a in range(q):
                s = 0.0
                for r in range(q):
                    s += Z[b, j, r] * lam[r, a]
                M[b, j, a] = s
    eta = np.empty(J)
    pr = np.empty(J)
    pm = np.empty(q)
    L = np.empty((q, q))
    step = np.empty(q)
    zero = np.zeros(q)
    dF = np.empty((q, P))
    dv = np.empty((q, P))
    col = np.empty(q)
    Kinv = np.empty((q, q))
    no_pivots = np.empty(0, dtype=np.int64)  # a Cholesky factor has none
    dzf = np.empty((J, P))
    HM = np.empty((J, q))
    dK = np.empty((q, q))
    ZE = np.empty((J, q))
    TD = np.empty((J, J))
    value = 0.0
    for a in range(P):
        grad[a] = 0.0
    for c in range(n_cl):
        b0, b1 = starts[c], starts[c + 1]
        v, h, F, K, status = multinomial_mode((Y, eta0, M, b0, b1, eta, pr, pm), v_start[c],
                                              zero, tol, max_iter)
        if status != OK:
            return 0.0, status
        if not cholesky_into(K, L):
            return 0.0, NOT_POSITIVE
        for a in range(q):
            v_start[c, a] = v[a]
        log_det_l = 0.0
        for a in range(q):
            log_det_l += math.log(L[a, a])
        value += h + logw0 - log_det_l
        if not want_grad:
            continue
        # ---- mode derivative dv = K^{-1} dF and the envelope part of the gradient
        for a in range(q):
            for P_ in range(P):
                dF[a, P_] = 0.0
        for b in range(b0, b1):
            n = _block_terms(Y, X, Z, templates, eta0, M, b, v, p, eta, pr, dzf, ZE, HM)
            for P_ in range(P):
                s_env = 0.0
                for j in range(J):
                    s_env += (Y[b, j] - n * pr[j]) * dzf[j, P_]
                grad[P_] += s_env
                for a in range(q):
                    s = 0.0
                    for j in range(J):
                        s += HM[j, a] * dzf[j, P_]
                    dF[a, P_] += s
            for k in range(m):
                _template_columns(Z, templates, b, k, ZE)
                for a in range(q):
                    s = 0.0
                    for j in range(J):
                        s += ZE[j, a] * (Y[b, j] - n * pr[j])
                    dF[a, p + k] += s
        for P_ in range(P):
            for a in range(q):
                col[a] = dF[a, P_]
            cholesky_solve(L, col, step)
            for a in range(q):
                dv[a, P_] = step[a]
                grad[P_] += F[a] * step[a]  # grad_v h at the node (~0 at the mode) . dv
        inverse_into(L, no_pivots, CHOLESKY, col, Kinv)
        # ---- d(-log det K / 2) = -tr(K^{-1} dK) / 2
        for P_ in range(P):
            for a in range(q):
                for r in range(q):
                    dK[a, r] = 0.0
            for b in range(b0, b1):
                n = _block_terms(Y, X, Z, templates, eta0, M, b, v, p, eta, pr, dzf, ZE, HM)
                # dzeta = dzf + M dv; TD = T . dzeta
                pd = 0.0
                for j in range(J):
                    d = dzf[j, P_]
                    for a in range(q):
                        d += M[b, j, a] * dv[a, P_]
                    eta[j] = d  # reuse as dzeta
                    pd += pr[j] * d
                for j in range(J):
                    for l_ in range(J):
                        t_ = -pr[j] * pr[l_] * (eta[j] + eta[l_] - 2.0 * pd)
                        if j == l_:
                            t_ += pr[j] * (eta[j] - pd)
                        TD[j, l_] = -n * t_
                for a in range(q):
                    for r in range(q):
                        s = 0.0
                        for j in range(J):
                            mj = M[b, j, a]
                            if mj == 0.0:
                                continue
                            for l_ in range(J):
                                s += mj * TD[j, l_] * M[b, l_, r]
                        dK[a, r] -= s
                if P_ >= p:
                    _template_columns(Z, templates, b, P_ - p, ZE)
                    for a in range(q):
                        for r in range(q):
                            s = 0.0
                            for j in range(J):
                                s += ZE[j, a] * HM[j, r] + HM[j, a] * ZE[j, r]
                            dK[a, r] -= s
            tr = 0.0
            for a in range(q):
                for r in range(q):
                    tr += Kinv[a, r] * dK[r, a]
            grad[P_] -= 0.5 * tr
    return value, OK


@njit
def _block_terms(Y, X, Z, templates, eta0, M, b, v, p, eta, pr, dzf, ZE,
                 HM):  # pragma: no cover - compiled
    """Block b at v: ``p_b`` into pr, ``d eta_b / d phi`` at fixed v into dzf and
    ``H_b M_b`` into HM (``H = -n (diag p - p p')``); returns ``n_b``."""
    J, q = HM.shape
    softmax_block(Y, eta0, M, b, v, eta, pr)
    n = 0.0
    for j in range(J):
        n += Y[b, j]
    _fixed_directions(X, Z, templates, b, v, p, dzf, ZE)
    for a in range(q):
        pm = _dot_pm(pr, M, b, a)
        for j in range(J):
            HM[j, a] = -n * pr[j] * (M[b, j, a] - pm)
    return n


@njit
def _template_columns(Z, templates, b, k, ZE):  # pragma: no cover - compiled
    """``ZE = Z_b E_k`` (J, q): the derivative of ``M_b = Z_b Lambda`` in theta_k."""
    J, q = ZE.shape
    for j in range(J):
        for a in range(q):
            s = 0.0
            for r in range(q):
                s += Z[b, j, r] * templates[k, r, a]
            ZE[j, a] = s


@njit
def _fixed_directions(X, Z, templates, b, v, p, dzf, ZE):  # pragma: no cover - compiled
    """``d eta_b / d phi`` at fixed v (J, P): X_b, then ``Z_b E_k v`` per theta_k."""
    J = X.shape[1]
    for j in range(J):
        for a in range(p):
            dzf[j, a] = X[b, j, a]
    for k in range(templates.shape[0]):
        _template_columns(Z, templates, b, k, ZE)
        for j in range(J):
            s = 0.0
            for a in range(v.shape[0]):
                s += ZE[j, a] * v[a]
            dzf[j, p + k] = s
