"""The GLM Newton iteration and the projected BFGS loop, each written once as a template in
the subset of numpy that numba compiles: bound to a compiled objective (``_jit.bind``) the
whole loop runs compiled (one cached machine-code function per objective); bound to a Python
objective it runs as Python (``fitting._glm``, ``fitting._bfgs``). Also the compiled
log-likelihood of a GLM with its score and information, the Newton loop's compiled objective.
"""

from __future__ import annotations

import numpy as np

from .._jit import HAVE_NUMBA, bind, njit
from .._small_linalg import eye_loops, rank2_loops, solve_loops
from ..integrate._scalar_kernel import negative_scalar_agq
from ..integrate._sparse_laplace import negative_sparse_laplace
from ..links._jets import cumulative_logit_block, glm_jets


@njit
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
            lb, gb0, hb0, _ = glm_jets(code, Y[b, 0], Y[b, 0] + Y[b, 1] if code else 0.0, e,
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
        ll += cumulative_logit_block(Y, D, Cc, b, eta, order, gb, Hb, Tb, W)
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


@njit
def glm_derivatives_cb(data, beta, order, score, info):  # pragma: no cover - compiled
    """``glm_derivatives`` with its arrays in one tuple (the callback of fit._glm)."""
    code, Y, D, Cc, X, offset = data
    return glm_derivatives(code, Y, D, Cc, X, offset, beta, order, score, info)


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


def bfgs_template(data, x0, lower, fixed, hinv0, scaled, gtol, ftol, max_iter, out_g,
                  xtol=0.0):
    """Projected BFGS; returns (x, f, Hinv, nit, nfev, success, message code, f at the
    start); ``out_g`` gets the gradient at x. ``OBJECTIVE(data, x, g)`` returns f and writes
    the gradient into g; variables where ``fixed`` is True keep their start values.
    ``xtol > 0`` also stops (code 4) when the quasi-Newton step is below ``xtol max(1, |x|)``
    in every component, for a caller that finishes with an exact Newton step
    (``fitting._optimize``)."""
    n = x0.shape[0]
    x = np.maximum(x0, lower)  # lower is -inf where unbounded
    g = np.empty(n)
    g_new = np.empty(n)
    f = OBJECTIVE(data, x, g)
    f0 = f
    nfev = 1
    Hinv = hinv0.copy()
    small_steps = 0
    code = 0
    success = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count reported after the loop)
        free = np.where(fixed | ((x <= lower) & (g > 0)), 0.0, 1.0)
        pg = g * free
        if np.max(np.abs(pg)) < gtol:
            success, code = True, 1
            break
        d = -(Hinv @ pg) * free
        slope = np.dot(g, d)
        if not np.isfinite(slope) or slope >= 0:
            Hinv = EYE(n, 1.0)
            d = -g * free
        elif xtol > 0 and np.all(np.abs(d) < xtol * np.maximum(1.0, np.abs(x))):
            success, code = True, 4
            break
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
    return x, f, Hinv, it, nfev, success, code, f0


if HAVE_NUMBA:
    newton_glm = njit(bind(newton_template, "newton_glm", DERIVS=glm_derivatives_cb,
                           SOLVE=solve_loops))
    bfgs_scalar_agq = njit(bind(bfgs_template, "bfgs_scalar_agq",
                                OBJECTIVE=negative_scalar_agq, EYE=eye_loops,
                                RANK2=rank2_loops))
    bfgs_sparse_laplace = njit(bind(bfgs_template, "bfgs_sparse_laplace",
                                    OBJECTIVE=negative_sparse_laplace, EYE=eye_loops,
                                    RANK2=rank2_loops))
