"""Compiled (numba) AGQ objective for one random effect per cluster.

The same formulas as ``_agq_scalar.py`` (and ``_agq.py`` with q = 1), written as loops over
clusters, blocks and nodes so that one call does the inner Newton search for every mode, the
quadrature sum and the exact gradient without temporaries: on small tables (tens of cells)
the numpy version spends its time in per-call overhead, not arithmetic. The family enters by
its code (``links._jets``).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import bind, njit
from ..links._jets import cumulative_logit_block, glm_jets
from ._mode_newton import NOT_POSITIVE, OK, damped_scalar_step, mode_newton_template


@njit(inline=True)
def _glm_cluster_h(args, v):  # pragma: no cover - compiled
    """``h(v)``, ``h'(v)`` and ``K = -h''(v)`` of one cluster of Poisson or binomial blocks
    (J = 1); ``args = (code, Y, eta0, M, b0, b1)``."""
    code, Y, eta0, M, b0, b1 = args
    h, gr, K = -0.5 * v * v, -v, 1.0
    for b in range(b0, b1):
        mb = M[b, 0]
        lb, gb, Hb, _ = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                 eta0[b, 0] + mb * v, 2)
        h += lb
        gr += gb * mb
        K -= mb * Hb * mb
    return h, gr, K


@njit(inline=True)
def _logit_cluster_h(args, v):  # pragma: no cover - compiled
    """``_glm_cluster_h`` for cumulative-logit blocks; ``args = (Y, D, Cc, eta0, M, b0, nb,
    eta, gb, Hb, Tb, W)`` (the last five scratch space of ``cumulative_logit_block``)."""
    Y, D, Cc, eta0, M, b0, nb, eta, gb, Hb, Tb, W = args
    J = eta.shape[0]
    h = -0.5 * v * v
    gr = -v
    K = 1.0
    for i in range(nb):
        b = b0 + i
        for j in range(J):
            eta[j] = eta0[b, j] + M[b, j] * v
        h += cumulative_logit_block(Y, D, Cc, b, eta, 2, gb, Hb, Tb, W)
        if not np.isfinite(h):
            return h, gr, K
        for j in range(J):
            gr += gb[j] * M[b, j]
            for k in range(J):
                K -= M[b, j] * Hb[j, k] * M[b, k]
    return h, gr, K


glm_mode = njit(bind(mode_newton_template, "glm_mode", EVAL=_glm_cluster_h,
                     STEP=damped_scalar_step), inline=True)
logit_mode = njit(bind(mode_newton_template, "logit_mode", EVAL=_logit_cluster_h,
                       STEP=damped_scalar_step), inline=True)


@njit
def _node_weights(s, smax, vn, post, c):  # pragma: no cover - compiled
    """Turn the log node terms ``s`` (N,) into ``exp(s - smax)`` in place, store the posterior
    mean and SD of v under the rule (nodes ``vn``) in ``post[c]``; returns the sum of the
    weights (the log-likelihood term is ``smax + log(sum)``)."""
    N = s.shape[0]
    tot = 0.0
    for n in range(N):
        s[n] = math.exp(s[n] - smax)
        tot += s[n]
    pm = 0.0
    for n in range(N):
        pm += s[n] * vn[n]
    pm /= tot
    pv = 0.0
    for n in range(N):
        pv += s[n] * (vn[n] - pm) ** 2
    post[c, 0] = pm
    post[c, 1] = math.sqrt(max(pv / tot, 0.0))
    return tot


@njit
def scalar_agq_glm(code, Y, eta0, M, X, dM, starts, z, logw, half_z2, v_start, tol, max_iter,
                   want_grad, grad, L_out, post):  # pragma: no cover - compiled
    """``scalar_agq`` for one linear predictor per block (J = 1) and a Poisson or binomial
    response, with the family inlined: the same formulas as ``scalar_agq``, ~3x faster
    because every per-block quantity is a scalar (no block arrays, no generic family call).
    The binomial index ``Y[b, 0] + Y[b, 1]`` is written out at each call: a helper taking
    the array Y made the whole fit 40% slower (measured)."""
    n_cl = starts.shape[0] - 1
    p = X.shape[2]
    m = dM.shape[2]
    P = p + m
    N = z.shape[0]
    maxb = 0
    for c in range(n_cl):
        maxb = max(maxb, starts[c + 1] - starts[c])
    gn = np.empty((maxb, N))
    s = np.empty(N)
    vn = np.empty(N)
    dF = np.empty(P)
    dK = np.empty(P)
    acc = np.empty(P)
    value = 0.0
    for a in range(P):
        grad[a] = 0.0
    for c in range(n_cl):
        b0, b1 = starts[c], starts[c + 1]
        v, _, _, K, status = glm_mode((code, Y, eta0, M, b0, b1), v_start[c], 0.0, tol,
                                      max_iter)
        if status != OK:
            return 0.0, status
        if not K > 0:
            return 0.0, NOT_POSITIVE
        v_start[c] = v
        L = math.sqrt(K)
        L_out[c] = L
        # ---- nodes
        smax = -np.inf
        for n in range(N):
            vv = v + z[n] / L
            vn[n] = vv
            sn = logw[n] - 0.5 * vv * vv + half_z2[n]
            for b in range(b0, b1):
                lb, gb, _, _ = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                        eta0[b, 0] + M[b, 0] * vv, 1 if want_grad else 0)
                sn += lb
                gn[b - b0, n] = gb
            s[n] = sn
            smax = max(smax, sn)
        tot = _node_weights(s, smax, vn, post, c)
        value += smax + math.log(tot) - math.log(L)
        if not want_grad:
            continue
        # ---- derivatives of the mode (dF = dv) and of the curvature (dK)
        for a in range(P):
            dF[a] = 0.0
            dK[a] = 0.0
        for b in range(b0, b1):
            mb = M[b, 0]
            _, gb, Hb, _ = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                    eta0[b, 0] + mb * v, 2)
            hm = Hb * mb
            for a in range(p):
                dF[a] += hm * X[b, 0, a]
            for a in range(m):
                dF[p + a] += (hm * v + gb) * dM[b, 0, a]
        for a in range(P):
            dF[a] /= K
        for b in range(b0, b1):
            mb = M[b, 0]
            _, _, Hb, Tb = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                    eta0[b, 0] + mb * v, 3)
            mt = mb * Tb * mb
            for a in range(p):
                dK[a] -= mt * (X[b, 0, a] + mb * dF[a])
            for a in range(m):
                dK[p + a] -= mt * (dM[b, 0, a] * v + mb * dF[p + a]) + 2.0 * dM[b, 0, a] * Hb * mb
        # ---- node-weighted scores
        for a in range(P):
            acc[a] = 0.0
        rgv = 0.0
        rgvz = 0.0
        for n in range(N):
            rho = s[n] / tot
            gv = -vn[n]
            for b in range(b0, b1):
                gj = gn[b - b0, n]
                gv += gj * M[b, 0]
                rg = rho * gj
                for a in range(p):
                    acc[a] += rg * X[b, 0, a]
                for a in range(m):
                    acc[p + a] += rg * dM[b, 0, a] * vn[n]
            rgv += rho * gv
            rgvz += rho * gv * z[n]
        for a in range(P):
            grad[a] += (acc[a] - 0.5 * dK[a] / K + rgv * dF[a]
                        - 0.5 * rgvz * dK[a] / (K * L))
    return value, OK


@njit
def scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2, v_start,
               tol, max_iter, want_grad, grad, L_out, post):  # pragma: no cover - compiled
    """Value (without the family constant) and gradient of the AGQ log-likelihood, q = 1.

    Per cluster: damped Newton for the mode of ``h(v) = sum_b l_b(eta0_b + M_b v) - v^2/2``,
    ``K = -h''``, nodes ``v_n = v_hat + z_n / sqrt(K)``, value ``logsumexp_n(log w_n + h(v_n)
    + z_n^2/2) - log sqrt(K)``; the gradient as in ``_agq_scalar.scalar_value_and_gradient``.
    ``v_start`` is updated in place with the modes, ``L_out`` (C,) gets ``sqrt(K)`` and
    ``post`` (C, 2) the posterior mean and SD of v under the quadrature rule; returns
    (value, status).
    """
    B, J = eta0.shape
    if code <= 1:  # Poisson / binomial: one linear predictor per block
        return scalar_agq_glm(code, Y, eta0, M, X, dM, starts, z, logw, half_z2, v_start, tol,
                              max_iter, want_grad, grad, L_out, post)
    n_cl = starts.shape[0] - 1
    p = X.shape[2]
    m = dM.shape[2]
    P = p + m
    N = z.shape[0]
    maxb = 0
    for c in range(n_cl):
        maxb = max(maxb, starts[c + 1] - starts[c])
    eta = np.empty(J)
    gb = np.empty(J)
    Hb = np.empty((J, J))
    Tb = np.empty((J, J, J))
    W = np.empty((4, max(D.shape[0], D.shape[1])))
    gh = np.empty((maxb, J))
    Hh = np.empty((maxb, J, J))
    Th = np.empty((maxb, J, J, J))
    gn = np.empty((maxb, N, J))
    s = np.empty(N)
    vn = np.empty(N)
    dF = np.empty(P)
    dK = np.empty(P)
    acc = np.empty(P)
    value = 0.0
    for a in range(P):
        grad[a] = 0.0
    for c in range(n_cl):
        b0, b1 = starts[c], starts[c + 1]
        nb = b1 - b0
        v, _, _, K, status = logit_mode((Y, D, Cc, eta0, M, b0, nb, eta, gb, Hb, Tb, W),
                                        v_start[c], 0.0, tol, max_iter)
        if status != OK:
            return 0.0, status
        if not K > 0:
            return 0.0, NOT_POSITIVE
        v_start[c] = v
        L = math.sqrt(K)
        L_out[c] = L
        # ---- nodes: log-sum-exp and the node scores
        smax = -np.inf
        for n in range(N):
            vv = v + z[n] / L
            vn[n] = vv
            sn = logw[n] - 0.5 * vv * vv + half_z2[n]
            for i in range(nb):
                b = b0 + i
                for j in range(J):
                    eta[j] = eta0[b, j] + M[b, j] * vv
                sn += cumulative_logit_block(Y, D, Cc, b, eta, 1 if want_grad else 0, gb, Hb,
                                             Tb, W)
                if want_grad:
                    for j in range(J):
                        gn[i, n, j] = gb[j]
            s[n] = sn
            smax = max(smax, sn)
        tot = _node_weights(s, smax, vn, post, c)
        value += smax + math.log(tot) - math.log(L)
        if not want_grad:
            continue
        # ---- derivatives of the mode (dv) and curvature (dK) in (beta, theta)
        for i in range(nb):
            b = b0 + i
            for j in range(J):
                eta[j] = eta0[b, j] + M[b, j] * v
            cumulative_logit_block(Y, D, Cc, b, eta, 3, gb, Hb, Tb, W)
            for j in range(J):
                gh[i, j] = gb[j]
                for k in range(J):
                    Hh[i, j, k] = Hb[j, k]
                    for l3 in range(J):
                        Th[i, j, k, l3] = Tb[j, k, l3]
        for a in range(P):
            dF[a] = 0.0
        for i in range(nb):
            b = b0 + i
            for j in range(J):
                hm = 0.0
                for k in range(J):
                    hm += Hh[i, j, k] * M[b, k]
                for a in range(p):
                    dF[a] += hm * X[b, j, a]
                for a in range(m):
                    dF[p + a] += (hm * v + gh[i, j]) * dM[b, j, a]
        for a in range(P):
            dF[a] /= K
            dK[a] = 0.0
        # dK = -sum M'T[dzeta]M - 2 dM'HM, dzeta = dzeta_fixed + M dv
        for i in range(nb):
            b = b0 + i
            for l3 in range(J):
                mt = 0.0
                for j in range(J):
                    for k in range(J):
                        mt += M[b, j] * Th[i, j, k, l3] * M[b, k]
                for a in range(p):
                    dK[a] -= mt * (X[b, l3, a] + M[b, l3] * dF[a])
                for a in range(m):
                    dK[p + a] -= mt * (dM[b, l3, a] * v + M[b, l3] * dF[p + a])
            for j in range(J):
                hm = 0.0
                for k in range(J):
                    hm += Hh[i, j, k] * M[b, k]
                for a in range(m):
                    dK[p + a] -= 2.0 * dM[b, j, a] * hm
        # node-weighted scores
        for a in range(P):
            acc[a] = 0.0
        rgv = 0.0
        rgvz = 0.0
        for n in range(N):
            rho = s[n] / tot
            gv = -vn[n]
            for i in range(nb):
                b = b0 + i
                for j in range(J):
                    gj = gn[i, n, j]
                    gv += gj * M[b, j]
                    for a in range(p):
                        acc[a] += rho * gj * X[b, j, a]
                    for a in range(m):
                        acc[p + a] += rho * gj * dM[b, j, a] * vn[n]
            rgv += rho * gv
            rgvz += rho * gv * z[n]
        for a in range(P):
            grad[a] += (acc[a] - 0.5 * dK[a] / K + rgv * dF[a]
                        - 0.5 * rgvz * dK[a] / (K * L))
    return value, OK


@njit
def fixed_predictor(X, offset, params, eta0):  # pragma: no cover - compiled
    """``eta0 = X beta + offset`` (B, J), beta the first p entries of ``params``."""
    B, J, p = X.shape
    for b in range(B):
        for j in range(J):
            e = offset[b, j]
            for a in range(p):
                e += X[b, j, a] * params[a]
            eta0[b, j] = e


@njit
def _predictors(X, offset, Z, lam_vec, params, eta0, M):  # pragma: no cover - compiled
    """``eta0 = X beta + offset`` and ``M = Z Lambda`` (q = 1) from ``params = (beta, theta)``."""
    B, J, p = X.shape
    lam = 0.0
    for k in range(lam_vec.shape[0]):
        lam += params[p + k] * lam_vec[k]
    fixed_predictor(X, offset, params, eta0)
    for b in range(B):
        for j in range(J):
            M[b, j] = Z[b, j] * lam
    return lam


@njit
def scalar_agq_at(code, Y, D, Cc, X, offset, Z, lam_vec, dM, starts, z, logw, half_z2, v_start,
                  tol, max_iter, params, want_grad, grad, L_out,
                  post):  # pragma: no cover - compiled
    """``scalar_agq`` at ``params = (beta, theta)``."""
    B, J, _ = X.shape
    eta0 = np.empty((B, J))
    M = np.empty((B, J))
    _predictors(X, offset, Z, lam_vec, params, eta0, M)
    return scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2, v_start, tol,
                      max_iter, want_grad, grad, L_out, post)


@njit
def negative_scalar_agq(data, x, g):  # pragma: no cover - compiled
    """``-(log-likelihood)`` and its gradient into g, for the compiled BFGS (fitting._bfgs);
    a point where the modes cannot be found is rejected (+1e300), as in fitting._optimize."""
    (code, Y, D, Cc, X, offset, Z, lam_vec, dM, starts, z, logw, half_z2, v, tol, max_inner,
     constant, L, post) = data
    value, status = scalar_agq_at(code, Y, D, Cc, X, offset, Z, lam_vec, dM, starts, z, logw,
                                  half_z2, v, tol, max_inner, x, True, g, L, post)
    if status != OK or not np.isfinite(value):
        g[:] = 0.0
        return 1e300
    for i in range(g.shape[0]):
        g[i] = -g[i]
    return -(value + constant)


@njit
def scalar_agq_hessian(code, Y, D, Cc, X, offset, Z, lam_vec, dM, starts, z, logw, half_z2,
                       v_start, tol, max_iter, params, free, rel_step,
                       hess):  # pragma: no cover - compiled
    """Forward differences of the exact gradient over the ``free`` parameters:
    ``hess[i, j] = (g_free[j](x + h_i e_i) - g_free[j](x)) / h_i``, ``h_i = rel_step max(1,
    |x_i|)`` (unsymmetrised); returns the worst status of the evaluations.

    The gradient is a sum over clusters, and moving parameter i changes only the clusters
    with a non-zero entry in its column of X (of ``Z E_k`` for a covariance parameter): their
    difference is evaluated cluster by cluster, the others' is exactly 0 (a factor's
    indicator moves only its level's cells: a third of the evaluations on the MBA table).
    Every evaluation starts its modes from those at ``params``.
    """
    B, J, p = X.shape
    P = params.shape[0]
    nf = free.shape[0]
    n_cl = starts.shape[0] - 1
    moves = np.zeros((nf, n_cl), dtype=np.bool_)
    n_moved = np.zeros(nf, dtype=np.int64)
    split = False
    for i in range(nf):
        a = free[i]
        for c in range(n_cl):
            for b in range(starts[c], starts[c + 1]):
                for j in range(J):
                    w = X[b, j, a] if a < p else dM[b, j, a - p]
                    if w != 0.0:
                        moves[i, c] = True
            if moves[i, c]:
                n_moved[i] += 1
        if n_moved[i] < n_cl:
            split = True
    eta0 = np.empty((B, J))
    M = np.empty((B, J))
    g0 = np.zeros(P)
    g1 = np.empty(P)
    g0c = np.empty((n_cl if split else 0, P))  # per-cluster gradients at params
    L = np.empty(n_cl)
    post = np.empty((n_cl, 2))
    vt = np.empty(n_cl)
    _predictors(X, offset, Z, lam_vec, params, eta0, M)
    if split:
        for c in range(n_cl):
            _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts[c:c + 2], z, logw,
                                   half_z2, v_start[c:c + 1], tol, max_iter, True, g0c[c],
                                   L[c:c + 1], post[c:c + 1])
            if status != OK:
                return status
            for k in range(P):
                g0[k] += g0c[c, k]
    else:
        _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2,
                               v_start, tol, max_iter, True, g0, L, post)
        if status != OK:
            return status
    x = params.copy()
    for i in range(nf):
        a = free[i]
        h = rel_step * max(1.0, abs(params[a]))
        x[a] = params[a] + h
        _predictors(X, offset, Z, lam_vec, x, eta0, M)
        x[a] = params[a]
        for j in range(nf):
            hess[i, j] = 0.0
        if n_moved[i] == n_cl:  # every cluster moves: one call over all of them
            for c in range(n_cl):
                vt[c] = v_start[c]
            _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2,
                                   vt, tol, max_iter, True, g1, L, post)
            if status != OK:
                return status
            for j in range(nf):
                hess[i, j] = g1[free[j]] - g0[free[j]]
        else:
            for c in range(n_cl):
                if not moves[i, c]:
                    continue
                vt[c] = v_start[c]
                _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts[c:c + 2], z,
                                       logw, half_z2, vt[c:c + 1], tol, max_iter, True, g1,
                                       L[c:c + 1], post[c:c + 1])
                if status != OK:
                    return status
                for j in range(nf):
                    hess[i, j] += g1[free[j]] - g0c[c, free[j]]
        for j in range(nf):
            hess[i, j] /= h
    return OK
