"""Compiled (numba) kernels: the AGQ objective for one random effect per cluster, the GLM
Newton iteration and the projected BFGS loop specialised to these objectives.

All compiled code lives in this one file because numba's on-disk cache is invalidated only
by changes to the file of the cached function, not to the files of its callees.

AGQ objective for one random effect per cluster:

The same formulas as ``_agq_scalar.py`` (and ``_agq.py`` with q = 1), written as loops over
clusters, blocks and nodes so that one call does the inner Newton search for every mode, the
quadrature sum and the exact gradient without temporaries: on small tables (tens of cells)
the numpy version spends its time in per-call overhead, not arithmetic.

Families the kernel knows (``family_code``): 0 Poisson (log link), 1 binomial (logit),
2 multinomial with cumulative logits ``pi = D F(eta) + c`` (F logistic). Any other family
uses the numpy path.
"""

from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path

import numpy as np

try:  # numba is a dependency, but the numpy path stays correct without it
    import numba

    _njit = numba.njit(cache=True, nogil=True)
    _njit_inline = numba.njit(cache=True, nogil=True)
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

    def _njit(f):  # type: ignore[no-redef]
        return f

    _njit_inline = _njit


def cache_is_cold() -> bool:
    """Whether numba's on-disk cache holds none of this file's kernels yet (a first run).

    Looks where numba writes: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside this
    file; False when that place is not writable (numba then uses a user-wide directory we
    do not search, so say nothing rather than something wrong)."""
    stem = Path(__file__).stem
    env = os.environ.get("NUMBA_CACHE_DIR")
    place = Path(env) if env else Path(__file__).parent / "__pycache__"
    if place.is_dir():
        return next(place.rglob(f"{stem}.*.nbi"), None) is None
    return os.access(place.parent, os.W_OK)


if HAVE_NUMBA and cache_is_cold():  # a new user's first fit: say why it takes a minute
    print("gllmm: compiling the numerical kernels for their first use (about a minute, "
          "once; later runs load them from the cache)", file=sys.stderr, flush=True)


POISSON, BINOMIAL, CUMULATIVE_LOGIT = 0, 1, 2

# status codes returned by the kernel
OK, NONFINITE_CURVATURE, NOT_POSITIVE = 0, 1, 2


@_njit
def _block(Y, D, C, bi, eta, order, g, H, T, W):  # pragma: no cover - compiled
    """Cumulative-logit log-likelihood of block ``bi`` at ``eta`` (J,), filling g (J,),
    H (J,J), T (J,J,J); ``W`` (4, max(D.shape)) is scratch space (no allocation per call).

    The one-predictor families (Poisson, binomial) never come here: ``scalar_agq`` and
    ``glm_derivatives`` hand them to the scalar ``_glm_l`` (a generic block call cost ~8x
    the arithmetic it wraps)."""
    y = Y[bi]
    # cumulative logit: pi_k = sum_j D_kj F(eta_j) + c_k
    nk, nj = D.shape
    f1 = W[0]
    f2 = W[1]
    f3 = W[2]
    pi = W[3]
    for k in range(nk):
        pi[k] = C[bi, k]
    for j in range(nj):
        e = eta[j]
        p = 1.0 / (1.0 + math.exp(-e)) if e >= 0 else math.exp(e) / (1.0 + math.exp(e))
        a = p * (1.0 - p)
        f1[j] = a
        f2[j] = a * (1.0 - 2.0 * p)
        f3[j] = a * (1.0 - 6.0 * p + 6.0 * p * p)
        for k in range(nk):
            pi[k] += D[k, j] * p
    ll = 0.0
    for k in range(nk):
        if y[k] > 0:
            if pi[k] <= 0:
                return -np.inf
            ll += y[k] * math.log(pi[k])
    if order >= 1:
        for a in range(nj):
            g[a] = 0.0
            for b in range(nj):
                H[a, b] = 0.0
                for cc in range(nj):
                    T[a, b, cc] = 0.0
        for k in range(nk):
            if y[k] == 0:
                continue
            w1 = y[k] / pi[k]
            w2 = w1 / pi[k]
            w3 = 2.0 * w2 / pi[k]
            for a in range(nj):
                da = D[k, a] * f1[a]
                g[a] += w1 * da
                if order >= 2:
                    H[a, a] += w1 * D[k, a] * f2[a]
                    for b in range(nj):
                        db = D[k, b] * f1[b]
                        H[a, b] -= w2 * da * db
                        if order >= 3:
                            for cc in range(nj):
                                dc = D[k, cc] * f1[cc]
                                t = w3 * da * db * dc
                                # pi_kab is diagonal: the cross terms need a == b etc.
                                if a == b:
                                    t -= w2 * D[k, a] * f2[a] * dc
                                if a == cc:
                                    t -= w2 * D[k, a] * f2[a] * db
                                if b == cc:
                                    t -= w2 * D[k, b] * f2[b] * da
                                if a == b and b == cc:
                                    t += w1 * D[k, a] * f3[a]
                                T[a, b, cc] += t
    return ll


@_njit_inline
def _cluster_h(Y, D, Cc, eta0, M, b0, nb, v, eta, gb, Hb, Tb, W):  # pragma: no cover
    """``h(v)``, ``h'(v)`` and ``K = -h''(v)`` of one cluster (blocks b0 .. b0 + nb - 1)."""
    J = eta.shape[0]
    h = -0.5 * v * v
    gr = -v
    K = 1.0
    for i in range(nb):
        b = b0 + i
        for j in range(J):
            eta[j] = eta0[b, j] + M[b, j] * v
        h += _block(Y, D, Cc, b, eta, 2, gb, Hb, Tb, W)
        if not np.isfinite(h):
            return h, gr, K
        for j in range(J):
            gr += gb[j] * M[b, j]
            for k in range(J):
                K -= M[b, j] * Hb[j, k] * M[b, k]
    return h, gr, K


@_njit_inline
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


@_njit_inline
def _glm_l(code, y, n, e, order):  # pragma: no cover - compiled
    """Poisson (code 0: y, log mu = e) or binomial (code 1: y of n, logit p = e): the
    log-likelihood and its first ``order`` derivatives in e (up to 3; unused ones are 0)."""
    if code == 0:
        mu = math.exp(e)
        return y * e - mu, y - mu, -mu, -mu
    if e > 0:
        q = math.exp(-e)
        pr = 1.0 / (1.0 + q)
        ll = y * e - n * (e + math.log1p(q))
    else:
        q = math.exp(e)
        pr = q / (1.0 + q)
        ll = y * e - n * math.log1p(q)
    if order == 0:
        return ll, 0.0, 0.0, 0.0
    w = pr * (1.0 - pr)
    return ll, y - n * pr, -n * w, -n * w * (1.0 - 2.0 * pr)


@_njit
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
        # ---- mode by damped Newton
        v = v_start[c]
        for attempt in range(2):
            h, gr, K = -0.5 * v * v, -v, 1.0
            for b in range(b0, b1):
                mb = M[b, 0]
                lb, gb, Hb, _ = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                       eta0[b, 0] + mb * v, 2)
                h += lb
                gr += gb * mb
                K -= mb * Hb * mb
            if np.isfinite(h) or attempt == 1:
                break
            v = 0.0
        for it in range(max_iter + 1):
            if not np.isfinite(K):
                return 0.0, NONFINITE_CURVATURE
            if it == max_iter:
                break
            step = gr / (K if K > 1e-6 else abs(K) + 1e-3)
            last = abs(step) < tol
            t = 1.0
            for _half in range(40):
                vnew = v + t * step
                hn, grn, Kn = -0.5 * vnew * vnew, -vnew, 1.0
                for b in range(b0, b1):
                    mb = M[b, 0]
                    lb, gb, Hb, _ = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
                                           eta0[b, 0] + mb * vnew, 2)
                    hn += lb
                    grn += gb * mb
                    Kn -= mb * Hb * mb
                # the last (full) step is taken as it is: quadratic convergence puts it
                # within ~tol^2 of the mode, so gradients carry no mode error
                if last or hn >= h - 1e-12 * (1.0 + abs(h)):
                    break
                t *= 0.5
            v, h, gr, K = vnew, hn, grn, Kn
            if last:
                break
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
                lb, gb, _, _ = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
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
            _, gb, Hb, _ = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
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
            _, _, Hb, Tb = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0,
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



@_njit
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
        # ---- mode by damped Newton (value, gradient and curvature in one pass per trial)
        v = v_start[c]
        h, gr, K = _cluster_h(Y, D, Cc, eta0, M, b0, nb, v, eta, gb, Hb, Tb, W)
        if not np.isfinite(h):
            v = 0.0
            h, gr, K = _cluster_h(Y, D, Cc, eta0, M, b0, nb, v, eta, gb, Hb, Tb, W)
        for it in range(max_iter + 1):
            if not np.isfinite(K):
                return 0.0, NONFINITE_CURVATURE
            if it == max_iter:
                break
            step = gr / (K if K > 1e-6 else abs(K) + 1e-3)
            if abs(step) < tol:
                # one last full step: Newton's quadratic convergence puts v within ~tol^2 of
                # the mode, so gradients (and differences of them) carry no mode error
                v += step
                h, gr, K = _cluster_h(Y, D, Cc, eta0, M, b0, nb, v, eta, gb, Hb, Tb, W)
                break
            t = 1.0
            vnew, hnew, grnew, Knew = v, h, gr, K
            for _half in range(40):
                vnew = v + t * step
                hnew, grnew, Knew = _cluster_h(Y, D, Cc, eta0, M, b0, nb, vnew, eta, gb,
                                               Hb, Tb, W)
                if hnew >= h - 1e-12 * (1.0 + abs(h)):
                    break
                t *= 0.5
            v, h, gr, K = vnew, hnew, grnew, Knew
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
                sn += _block(Y, D, Cc, b, eta, 1 if want_grad else 0, gb, Hb, Tb, W)
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
            _block(Y, D, Cc, b, eta, 3, gb, Hb, Tb, W)
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


@_njit
def _fixed_predictor(X, offset, params, eta0):  # pragma: no cover - compiled
    """``eta0 = X beta + offset`` (B, J), beta the first p entries of ``params``."""
    B, J, p = X.shape
    for b in range(B):
        for j in range(J):
            e = offset[b, j]
            for a in range(p):
                e += X[b, j, a] * params[a]
            eta0[b, j] = e


@_njit
def _predictors(X, offset, Z, lam_vec, params, eta0, M):  # pragma: no cover - compiled
    """``eta0 = X beta + offset`` and ``M = Z Lambda`` (q = 1) from ``params = (beta, theta)``."""
    B, J, p = X.shape
    lam = 0.0
    for k in range(lam_vec.shape[0]):
        lam += params[p + k] * lam_vec[k]
    _fixed_predictor(X, offset, params, eta0)
    for b in range(B):
        for j in range(J):
            M[b, j] = Z[b, j] * lam
    return lam


@_njit
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


@_njit
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


@_njit
def scalar_agq_hessian(code, Y, D, Cc, X, offset, Z, lam_vec, dM, starts, z, logw, half_z2,
                       v_start, tol, max_iter, params, free, rel_step,
                       hess):  # pragma: no cover - compiled
    """Forward differences of the exact gradient over the ``free`` parameters:
    ``hess[i, j] = (g_free[j](x + h_i e_i) - g_free[j](x)) / h_i``, ``h_i = rel_step max(1,
    |x_i|)`` (unsymmetrised); returns the worst status of the P + 1 evaluations."""
    B, J, p = X.shape
    P = params.shape[0]
    n_cl = starts.shape[0] - 1
    eta0 = np.empty((B, J))
    M = np.empty((B, J))
    g0 = np.empty(P)
    g1 = np.empty(P)
    L = np.empty(n_cl)
    post = np.empty((n_cl, 2))
    _predictors(X, offset, Z, lam_vec, params, eta0, M)
    _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2, v_start,
                           tol, max_iter, True, g0, L, post)
    if status != OK:
        return status
    x = params.copy()
    for i in range(free.shape[0]):
        a = free[i]
        h = rel_step * max(1.0, abs(params[a]))
        x[a] = params[a] + h
        _predictors(X, offset, Z, lam_vec, x, eta0, M)
        _, status = scalar_agq(code, Y, D, Cc, eta0, M, X, dM, starts, z, logw, half_z2,
                               v_start, tol, max_iter, True, g1, L, post)
        x[a] = params[a]
        if status != OK:
            return status
        for j in range(free.shape[0]):
            hess[i, j] = (g1[free[j]] - g0[free[j]]) / h
    return OK


@_njit
def glm_derivatives(code, Y, D, Cc, X, offset, beta, order, score,
                    info):  # pragma: no cover - compiled
    """Log-likelihood (without constants) of ``eta = X beta + offset``, its score and the
    information ``-X' H X`` (order 2)."""
    B, J, p = X.shape
    for a in range(p):
        score[a] = 0.0
        for c in range(p):
            info[a, c] = 0.0
    ll = 0.0
    if code <= 1:
        # Poisson / binomial: one predictor per block, the family inlined (as scalar_agq_glm)
        for b in range(B):
            e = offset[b, 0]
            for a in range(p):
                e += X[b, 0, a] * beta[a]
            lb, gb0, hb0, _ = _glm_l(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0, e,
                                     min(order, 2))
            ll += lb
            if order >= 1:
                for a in range(p):
                    score[a] += gb0 * X[b, 0, a]
            if order >= 2:
                for a in range(p):
                    xa = hb0 * X[b, 0, a]
                    if xa == 0.0:
                        continue
                    for c in range(a + 1):
                        info[a, c] -= xa * X[b, 0, c]
        if order >= 2:
            for a in range(p):
                for c in range(a):
                    info[c, a] = info[a, c]
        return ll
    eta = np.empty(J)
    gb = np.empty(J)
    Hb = np.empty((J, J))
    Tb = np.empty((J, J, J))
    W = np.empty((4, max(D.shape[0], D.shape[1])))
    for b in range(B):
        for j in range(J):
            e = offset[b, j]
            for a in range(p):
                e += X[b, j, a] * beta[a]
            eta[j] = e
        ll += _block(Y, D, Cc, b, eta, order, gb, Hb, Tb, W)
        if order >= 1:
            for j in range(J):
                for a in range(p):
                    score[a] += gb[j] * X[b, j, a]
        if order >= 2:
            for j in range(J):
                for k in range(J):
                    h = Hb[j, k]
                    if h == 0.0:
                        continue
                    for a in range(p):
                        xa = h * X[b, j, a]
                        if xa == 0.0:
                            continue
                        for c in range(p):
                            info[a, c] -= xa * X[b, k, c]
    return ll


@_njit
def glm_derivatives_cb(data, beta, order, score, info):  # pragma: no cover - compiled
    """``glm_derivatives`` with its arrays in one tuple (the callback of fit._glm)."""
    code, Y, D, Cc, X, offset = data
    return glm_derivatives(code, Y, D, Cc, X, offset, beta, order, score, info)


def family_arrays(family) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """(code, Y, D, c) for a family the kernel knows, else None."""
    from .links._families import Binomial, Poisson
    from .links._separable import AffineSeparable, logistic_jets

    empty = np.zeros((1, 1))
    B = family.y.shape[0]
    if type(family) is Poisson:
        return POISSON, np.ascontiguousarray(family.y, dtype=float), empty, np.zeros((B, 1))
    if type(family) is Binomial:
        return BINOMIAL, np.ascontiguousarray(family.y, dtype=float), empty, np.zeros((B, 2))
    if type(family) is AffineSeparable and family.jets is logistic_jets:
        return (CUMULATIVE_LOGIT, np.ascontiguousarray(family.y, dtype=float),
                np.ascontiguousarray(family.D, dtype=float),
                np.ascontiguousarray(family.c, dtype=float))
    return None


# ----------------------------------------------------------------------------- loops
# The Newton and BFGS loops are templates calling a global (DERIVS, OBJECTIVE) that ``bind``
# sets: compiled with a kernel here (one cached machine-code function per objective; numba
# cannot cache functions that take functions as arguments), or run as Python with a Python
# objective (fitting._glm, fitting._bfgs).


def DERIVS(data, beta, order, score, info):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError("newton_template runs through bind(..., DERIVS=...)")


def OBJECTIVE(data, x, g):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError("bfgs_template runs through bind(..., OBJECTIVE=...)")


def SOLVE(A, b):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError


def EYE(n, scale):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError


def RANK2(H, a, s, b):  # noqa: N802 - placeholder that bind() replaces
    raise NotImplementedError


# Small linear algebra for the loops, in two versions: numpy's (fast in Python) and explicit
# loops (fast to compile: numba takes seconds to compile np.linalg.lstsq or np.outer).
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


@_njit
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
        if _cholesky_into(A, L, ridge * scale):
            break
    x = np.empty(p)
    _cholesky_solve(L, b, x)
    return x


@_njit
def eye_loops(n, scale):  # pragma: no cover - compiled
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i] = scale
    return out


@_njit
def rank2_loops(H, a, s, b):  # pragma: no cover - compiled
    out = H.copy()
    for i in range(a.shape[0]):
        for j in range(a.shape[0]):
            out[i, j] += a[i] * s[j] + s[i] * b[j]
    return out


def bind(template, name: str, **names):
    """A copy of ``template`` named ``name`` whose globals ``names`` are bound."""
    glob = dict(template.__globals__)
    glob.update(names)
    f = types.FunctionType(template.__code__, glob, name, template.__defaults__)
    f.__qualname__ = name
    f.__module__ = template.__module__
    return f


def newton_template(data, beta, tol, max_iter, info):
    """Damped Newton on ``l(beta)``: returns (beta, l, iterations, converged) and the
    information at beta in ``info``. ``DERIVS(data, beta, order, score, info) -> l`` fills the
    score and information (order 2). Written in the numpy subset numba compiles, so the same
    source runs compiled for the families the kernels know."""
    p = beta.shape[0]
    score = np.empty(p)
    ll = DERIVS(data, beta, 0, score, info)
    if not np.isfinite(ll):
        beta = np.zeros(p)
        ll = DERIVS(data, beta, 0, score, info)
        if not np.isfinite(ll):  # no feasible start: nothing to iterate from
            info[:] = np.nan
            return beta, ll, 0, False
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count reported after the loop)
        DERIVS(data, beta, 2, score, info)
        step = SOLVE(info, score)
        decrement = np.dot(score, step)
        t = 1.0
        new = beta
        ll_new = ll
        for _ in range(50):
            new = beta + t * step
            ll_new = DERIVS(data, new, 0, score, info)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        beta, ll = new, ll_new
        if decrement < tol * (1 + abs(ll)) or decrement < 1e-14:
            converged = True
            break
    DERIVS(data, beta, 2, score, info)
    return beta, ll, it, converged


def bfgs_template(data, x0, lower, fixed, hinv0, scaled, gtol, ftol, max_iter, out_g):
    """Projected BFGS; returns (x, f, Hinv, nit, nfev, success, message code); ``out_g`` gets
    the gradient at x. ``OBJECTIVE(data, x, g)`` returns f and writes the gradient into g; variables
    where ``fixed`` is True keep their start values."""
    n = x0.shape[0]
    x = np.maximum(x0, lower)  # lower is -inf where unbounded
    g = np.empty(n)
    g_new = np.empty(n)
    f = OBJECTIVE(data, x, g)
    nfev = 1
    Hinv = hinv0.copy()
    small_steps = 0
    code = 0
    success = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count reported after the loop)
        active = fixed | ((x <= lower) & (g > 0))
        pg = g * ~active
        if np.max(np.abs(pg)) < gtol:
            success, code = True, 1
            break
        free = (~active).astype(np.float64)
        d = -(Hinv @ (g * free)) * free
        slope = np.dot(g, d)
        if not np.isfinite(slope) or slope >= 0:
            Hinv = EYE(n, 1.0)
            d = -g * free
        t = 1.0
        accepted = False
        x_new = x
        f_new = f
        for _ in range(60):
            x_new = x + t * d
            x_new = np.maximum(x_new, lower)
            f_new = OBJECTIVE(data, x_new, g_new)
            nfev += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * np.dot(g, x_new - x):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            code = 2
            success = np.max(np.abs(pg)) < 1e3 * gtol * max(1.0, abs(f))
            break
        s = x_new - x
        y = g_new - g
        sy = np.dot(s, y)
        yy = np.dot(y, y)
        if sy > 1e-12 * np.sqrt(np.dot(s, s) * yy):
            if not scaled:
                Hinv = EYE(n, sy / yy)
                scaled = True
            rho = 1.0 / sy
            Hy = Hinv @ y
            # Hinv <- (I - rho s y') Hinv (I - rho y s') + rho s s', as one rank-2 update
            a = (rho * rho * np.dot(y, Hy) + rho) * s - rho * Hy
            Hinv = RANK2(Hinv, a, s, -rho * Hy)
        df = f - f_new
        x, f = x_new, f_new
        g[:] = g_new
        if df < ftol * max(1.0, abs(f)):
            small_steps += 1
            if small_steps >= 3:
                success, code = True, 3
                break
        else:
            small_steps = 0
    out_g[:] = g
    return x, f, Hinv, it, nfev, success, code


if HAVE_NUMBA:
    newton_glm = _njit(bind(newton_template, "newton_glm", DERIVS=glm_derivatives_cb,
                            SOLVE=solve_loops))
    bfgs_scalar_agq = _njit(bind(bfgs_template, "bfgs_scalar_agq",
                                 OBJECTIVE=negative_scalar_agq, EYE=eye_loops,
                                 RANK2=rank2_loops))


# ----------------------------------------------------------------------------- dense Laplace
# The Laplace value and gradient of ``integrate._agq.MarginalLikelihood`` (n_nodes = 1) for
# multinomial blocks and q random effects per cluster: the same formulas as its numpy path,
# which on small tables (the simulation's one-cluster association model) spends its time in
# per-call overhead, not arithmetic.


@_njit
def _cholesky_into(K, L, shift=0.0):  # pragma: no cover - compiled
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


@_njit
def _cholesky_solve(L, b, out):  # pragma: no cover - compiled
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


@_njit
def _multinomial_h(Y, eta0, M, b0, b1, v, eta, pr, F, K):  # pragma: no cover - compiled
    """``h(v) = sum_b [y_b' eta_b - n_b logsumexp(eta_b)] - |v|^2 / 2`` of one cluster (blocks
    b0 .. b1 - 1), its gradient F and ``K = -h''`` (``W_b = n_b (diag p_b - p_b p_b')``)."""
    J = eta0.shape[1]
    q = v.shape[0]
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
            pm = 0.0
            for j in range(J):
                F[a] += M[b, j, a] * (Y[b, j] - n * pr[j])
                pm += pr[j] * M[b, j, a]
            for r in range(a + 1):
                w = 0.0
                for j in range(J):
                    w += pr[j] * M[b, j, a] * M[b, j, r]
                K[a, r] += n * (w - pm * _dot_pm(pr, M, b, r))
                K[r, a] = K[a, r]
    return h


@_njit
def _dot_pm(pr, M, b, r):  # pragma: no cover - compiled
    s = 0.0
    for j in range(pr.shape[0]):
        s += pr[j] * M[b, j, r]
    return s


@_njit
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
    _fixed_predictor(X, offset, params, eta0)
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
    F = np.empty(q)
    Fn = np.empty(q)
    K = np.empty((q, q))
    Kn = np.empty((q, q))
    L = np.empty((q, q))
    step = np.empty(q)
    v = np.empty(q)
    vn = np.empty(q)
    dF = np.empty((q, P))
    dv = np.empty((q, P))
    col = np.empty(q)
    Kinv = np.empty((q, q))
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
        for a in range(q):
            v[a] = v_start[c, a]
        h = _multinomial_h(Y, eta0, M, b0, b1, v, eta, pr, F, K)
        if not np.isfinite(h):
            v[:] = 0.0
            h = _multinomial_h(Y, eta0, M, b0, b1, v, eta, pr, F, K)
        for it in range(max_iter + 1):
            if not np.all(np.isfinite(K)):
                return 0.0, NONFINITE_CURVATURE
            if it == max_iter:
                break
            if not _cholesky_into(K, L):
                return 0.0, NOT_POSITIVE
            _cholesky_solve(L, F, step)
            last = np.max(np.abs(step)) < tol
            t = 1.0
            hn = h
            for _half in range(40):
                for a in range(q):
                    vn[a] = v[a] + t * step[a]
                hn = _multinomial_h(Y, eta0, M, b0, b1, vn, eta, pr, Fn, Kn)
                # the last (full) step is taken as it is: quadratic convergence puts it within
                # ~tol^2 of the mode, so gradients carry no mode error
                if last or hn >= h - 1e-12 * (1.0 + abs(h)):
                    break
                t *= 0.5
            v[:] = vn
            h = hn
            F[:] = Fn
            K[:] = Kn
            if last:
                break
        if not _cholesky_into(K, L):
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
            _cholesky_solve(L, col, step)
            for a in range(q):
                dv[a, P_] = step[a]
                grad[P_] += F[a] * step[a]  # grad_v h at the node (~0 at the mode) . dv
        for r in range(q):
            for a in range(q):
                col[a] = 1.0 if a == r else 0.0
            _cholesky_solve(L, col, step)
            for a in range(q):
                Kinv[a, r] = step[a]
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


@_njit
def _block_terms(Y, X, Z, templates, eta0, M, b, v, p, eta, pr, dzf, ZE,
                 HM):  # pragma: no cover - compiled
    """Block b at v: ``p_b`` into pr, ``d eta_b / d phi`` at fixed v into dzf and
    ``H_b M_b`` into HM (``H = -n (diag p - p p')``); returns ``n_b``."""
    J, q = HM.shape
    _multinomial_block(Y, eta0, M, b, v, eta, pr)
    n = 0.0
    for j in range(J):
        n += Y[b, j]
    _fixed_directions(X, Z, templates, b, v, p, dzf, ZE)
    for a in range(q):
        pm = _dot_pm(pr, M, b, a)
        for j in range(J):
            HM[j, a] = -n * pr[j] * (M[b, j, a] - pm)
    return n


@_njit
def _multinomial_block(Y, eta0, M, b, v, eta, pr):  # pragma: no cover - compiled
    """``p_b = softmax(eta0_b + M_b v)`` into pr (eta gets the predictor)."""
    J = eta0.shape[1]
    top = -np.inf
    for j in range(J):
        e = eta0[b, j]
        for a in range(v.shape[0]):
            e += M[b, j, a] * v[a]
        eta[j] = e
        top = max(top, e)
    tot = 0.0
    for j in range(J):
        tot += math.exp(eta[j] - top)
    for j in range(J):
        pr[j] = math.exp(eta[j] - top) / tot


@_njit
def _template_columns(Z, templates, b, k, ZE):  # pragma: no cover - compiled
    """``ZE = Z_b E_k`` (J, q): the derivative of ``M_b = Z_b Lambda`` in theta_k."""
    J, q = ZE.shape
    for j in range(J):
        for a in range(q):
            s = 0.0
            for r in range(q):
                s += Z[b, j, r] * templates[k, r, a]
            ZE[j, a] = s


@_njit
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
