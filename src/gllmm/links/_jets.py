"""Compiled (numba) family maths: the log-likelihood of one block and its derivatives in the
linear predictor, as the compiled kernels of ``integrate`` and ``fitting`` call it.

A family declares what the kernels know of it by its ``compiled()`` hook (``links._families``:
a code and its arrays, or None for the numpy path); each kernel covers some codes. The
elementwise maths is ``links._elementwise``'s, compiled here for scalars: the numpy families
evaluate the same expressions on arrays.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import bind, njit
from . import _elementwise as ew

_logistic_parts = njit(ew.logistic_parts, inline=True)
_poisson = njit(ew.poisson_jets, inline=True)
_binomial = njit(bind(ew.binomial_jets, "binomial_jets", logistic_parts=_logistic_parts),
                 inline=True)
_logistic = njit(bind(ew.logistic_jets, "logistic_jets", logistic_parts=_logistic_parts),
                 inline=True)


@njit
def glm_jets(code, y, n, e, order):  # pragma: no cover - compiled
    """Poisson (code 0: y, log mu = e) or binomial (code 1: y of n, logit p = e): the
    log-likelihood and its first ``order`` derivatives in e (up to 3; 0 for order 0)."""
    if code == 0:
        return _poisson(y, e, order)
    return _binomial(y, n, e, order)


@njit
def cumulative_logit_block(Y, D, C, bi, eta, order, g, H, T, W):  # pragma: no cover - compiled
    """Cumulative-logit log-likelihood of block ``bi`` at ``eta`` (J,), filling g (J,),
    H (J,J), T (J,J,J); ``W`` (4, max(D.shape)) is scratch space (no allocation per call).

    The one-predictor families (Poisson, binomial) never come here: ``scalar_agq`` and
    ``glm_derivatives`` hand them to the scalar ``glm_jets`` (a generic block call cost ~8x
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
        p, a1, a2, a3 = _logistic(eta[j])
        f1[j] = a1
        f2[j] = a2
        f3[j] = a3
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


@njit
def softmax_block(Y, eta0, M, b, v, eta, pr):  # pragma: no cover - compiled
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
