"""Nonparametric maximum likelihood (NPML): a discrete random-effects distribution, by EM.

Aitkin (1996, 1999): the normal distribution of the random effects is replaced by K mass
points ``a_1..a_K`` (q-vectors) with masses ``pi_1..pi_K``, estimated with the fixed effects:

    l(beta, a, pi) = sum_c log sum_k pi_k exp l_c(X beta + offset + Z a_k) + constant,

``l_c`` the cluster's conditional log-likelihood (any family with a closed form: Poisson,
binomial, multinomial, the cumulative and continuation-ratio logits), on the same full scale as
AGQ and Laplace: with K = 1 it is the GLM's log-likelihood.

Identifiability. When the columns of Z lie in the span of X (a random intercept with a fixed
intercept, a random slope with its fixed slope), the mixing distribution is centred,
``sum_k pi_k a_k = 0``, exactly as the normal one has mean 0: the fixed effects keep their
meaning and an NPML fit is compared with a normal random-effects fit parameter by parameter.
npmlreg's ``alldist`` reports the uncentred points ``beta_0 + a_k`` instead (it drops the
intercept column); ``NPMLResult.mass_points`` gives both. Otherwise the points are free.

EM (Aitkin 1996, Section 3). E-step: posterior probabilities
``w_ck = pi_k exp(l_ck) / sum_j pi_j exp(l_cj)``. M-step: ``pi_k = mean_c w_ck``, and
``(beta, a)`` maximise the weighted log-likelihood ``sum_c sum_k w_ck l_c(X beta + Z a_k)``
(a weighted GLM with one copy of the data per mass point), by Newton's method with the family's
exact derivatives. EM stops when the log-likelihood rises by less than ``em_tol``; the estimate
is then polished by Newton's method on ``l`` itself (EM is slow near the maximum), and the
covariance is the inverse observed information (forward differences of the exact gradient)
in the free parameters, carried to all points and masses by the delta method.

Start (npmlreg's): the GLM fit, points ``spread * z_k`` along the first random component and
masses ``w_k`` of the K-point Gauss-Hermite rule for N(0, 1) (``spread`` = npmlreg's ``tol``,
0.5). EM finds a local maximum; several ``spread`` values, or a range of K, guard against a
poor one.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ..errors import BoundaryWarning, ConvergenceWarning, FitError, SpecError
from ..integrate import gauss_hermite
from ..integrate._newton import State, damped_newton_direction, newton
from ..results import FitResult
from ..results._result import _jsonable
from ..spec._design import Design
from ._glm import check_full_rank, fit_glm
from ._optimize import OptSummary


class _Mixture:
    """The K-point mixture likelihood of a design and its derivatives."""

    def __init__(self, design: Design, k: int) -> None:
        self.design = design
        self.k = k
        self.q = design.n_random
        self.p = design.n_fixed
        self.starts = design.starts()
        self.one_per_cluster = design.X.shape[0] == design.n_clusters
        self.n_clusters = design.n_clusters
        self.constant = float(design.family.constant().sum())
        # Z in the span of X: the centred parametrisation (the shift D s moves into beta)
        xf = design.X.reshape(-1, self.p)
        zf = design.Z.reshape(-1, self.q)
        if self.p:
            shift, *_ = np.linalg.lstsq(xf, zf, rcond=None)
            resid = np.abs(xf @ shift - zf).max() if zf.size else 0.0
        else:
            shift, resid = np.zeros((0, self.q)), np.inf
        self.centred = bool(resid < 1e-8 * max(1.0, np.abs(zf).max()))
        self.shift = shift  # (p, q): X shift = Z

    # ------------------------------------------------------------------ likelihood
    def eta(self, beta: np.ndarray, a: np.ndarray) -> np.ndarray:
        d = self.design
        eta0 = d.X @ beta + d.offset
        return eta0[:, None, :] + np.einsum("bjq,kq->bkj", d.Z, a)

    def csum(self, x: np.ndarray) -> np.ndarray:
        return x if self.one_per_cluster else np.add.reduceat(x, self.starts, axis=0)

    def cluster_loglik(self, beta: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``l_ck`` without the family constant (C, K)."""
        l = self.design.family.derivatives(self.eta(beta, a), 0)[0]
        return self.csum(l)

    def e_step(self, beta: np.ndarray, a: np.ndarray, pi: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-likelihood and posterior probabilities ``w`` (C, K)."""
        with np.errstate(divide="ignore"):
            lp = self.cluster_loglik(beta, a) + np.log(pi)
        lse = logsumexp(lp, axis=1)
        value = float(lse.sum()) + self.constant
        return value, np.exp(lp - lse[:, None])

    # ------------------------------------------------------------------ M-step
    def basis(self, pi: np.ndarray) -> np.ndarray:
        """Columns spanning the allowed points: ``{a : pi' a = 0}`` when centred, else all."""
        if not self.centred:
            return np.eye(self.k)
        q, _ = np.linalg.qr(np.c_[pi, np.eye(self.k)[:, :-1]])
        return q[:, 1:]  # orthonormal, orthogonal to pi

    def _q(self, x: np.ndarray, basis: np.ndarray, wb: np.ndarray, order: int) -> tuple:
        p, q = self.p, self.q
        beta = x[:p]
        a = basis @ x[p:].reshape(-1, q)
        l, g, H, _ = self.design.family.derivatives(self.eta(beta, a), order)
        value = float(np.sum(wb * l))
        if order == 0 or not np.isfinite(value):
            return value, None, None
        d = self.design
        # A[b, k, j, :] = d eta_bkj / d (beta, t)
        at = np.einsum("bjr,km->bkjmr", d.Z, basis).reshape(*l.shape, d.Z.shape[1], -1)
        A = np.concatenate([np.broadcast_to(d.X[:, None], (*l.shape, *d.X.shape[1:])), at],
                           axis=-1)
        n_par = A.shape[-1]
        flat = A.reshape(-1, n_par)
        grad = (g * wb[..., None]).reshape(-1) @ flat
        HA = np.matmul(H * wb[..., None, None], A)  # (B, K, J, P)
        return value, grad, flat.T @ HA.reshape(-1, n_par)

    def m_step(self, beta: np.ndarray, a: np.ndarray, w: np.ndarray, pi: np.ndarray,
               tol: float = 1e-12, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Newton's method on ``Q(beta, a) = sum_ck w_ck l_c(X beta + Z a_k)``."""
        basis = self.basis(pi)
        if self.centred:  # re-centre at the new masses: same predictors
            mean = pi @ a
            beta = beta + self.shift @ mean
            a = a - mean
        x = np.r_[beta, (basis.T @ a).ravel()]
        wb = w[self.design.cluster] if not self.one_per_cluster else w

        def evaluate(z: np.ndarray, order: int) -> State:
            val, grad, hess = self._q(z, basis, wb, order)
            return State(z, val, order, grad, hess)

        # Levenberg damping where Q is not concave
        res = newton(evaluate, lambda st: damped_newton_direction(st.grad, st.extra), x,
                     stop=lambda st, dec: dec < tol * (1.0 + abs(st.value)), max_iter=max_iter,
                     max_trials=50, armijo=False, final_step=True)
        x = res.state.params
        return x[: self.p], basis @ x[self.p:].reshape(-1, self.q)

    # ------------------------------------------------------------------ free parameters
    # phi = (beta, points but the reference r (q each), logits z_k = log(pi_k / pi_r), k != r);
    # when centred, a_r = -sum_{k != r} pi_k a_k / pi_r, else a_r is free too.
    def to_phi(self, beta: np.ndarray, a: np.ndarray, pi: np.ndarray, r: int) -> np.ndarray:
        keep = np.arange(self.k) != r
        pts = a[keep] if self.centred else a
        return np.r_[beta, pts.ravel(), np.log(pi[keep] / pi[r])]

    def from_phi(self, phi: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, q, k = self.p, self.q, self.k
        keep = np.arange(k) != r
        n_pts = (k - 1 if self.centred else k) * q
        beta = phi[:p]
        z = np.zeros(k)
        z[keep] = phi[p + n_pts:]
        pi = np.exp(z - logsumexp(z))
        if self.centred:
            a = np.zeros((k, q))
            a[keep] = phi[p:p + n_pts].reshape(k - 1, q)
            a[r] = -(pi[keep] @ a[keep]) / pi[r]
        else:
            a = phi[p:p + n_pts].reshape(k, q)
        return beta, a, pi

    def gradient_phi(self, phi: np.ndarray, r: int) -> tuple[float, np.ndarray]:
        """Log-likelihood and its exact gradient in phi (Fisher's identity)."""
        beta, a, pi = self.from_phi(phi, r)
        value, w = self.e_step(beta, a, pi)
        d = self.design
        l, g, _, _ = d.family.derivatives(self.eta(beta, a), 1)
        wb = w[d.cluster] if not self.one_per_cluster else w
        gw = g * wb[..., None]
        g_beta = np.einsum("bkj,bjp->p", gw, d.X)
        g_a = np.einsum("bkj,bjq->kq", gw, d.Z)
        g_z = w.sum(axis=0) - self.n_clusters * pi  # d/dz_m with z_r = 0
        keep = np.arange(self.k) != r
        if self.centred:
            # a_r depends on a_k (-pi_k / pi_r) and on z_m (-pi_m a_m / pi_r)
            g_pts = g_a[keep] - np.outer(pi[keep] / pi[r], g_a[r])
            g_z = g_z[keep] - (pi[keep] / pi[r]) * (a[keep] @ g_a[r])
        else:
            g_pts, g_z = g_a, g_z[keep]
        return value, np.r_[g_beta, g_pts.ravel(), g_z]

    def hessian_phi(self, phi: np.ndarray, r: int, step: float = 1e-6) -> np.ndarray:
        g0 = self.gradient_phi(phi, r)[1]
        n = len(phi)
        hess = np.empty((n, n))
        for i in range(n):
            h = step * max(1.0, abs(phi[i]))
            e = phi.copy()
            e[i] += h
            hess[:, i] = (self.gradient_phi(e, r)[1] - g0) / h
        return (hess + hess.T) / 2


@dataclass
class _State:
    beta: np.ndarray
    a: np.ndarray
    pi: np.ndarray
    loglik: float
    w: np.ndarray
    em_iterations: int
    converged: bool
    trace: list[float]


def _start(mix: _Mixture, design: Design, spread: float) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    beta0 = design.notes.get("start")
    glm = fit_glm(design, beta0=None if beta0 is None else
                  np.asarray(beta0, dtype=float)[: design.n_fixed], warn=False)
    z, w = gauss_hermite(mix.k)
    a = np.zeros((mix.k, mix.q))
    a[:, 0] = spread * z
    return glm.beta.copy(), a, np.array(w, dtype=float)


def _em(mix: _Mixture, beta: np.ndarray, a: np.ndarray, pi: np.ndarray, em_tol: float,
        max_em: int) -> _State:
    value, w = mix.e_step(beta, a, pi)
    trace = [value]
    converged = False
    while len(trace) <= max_em:
        pi = w.mean(axis=0)
        beta, a = mix.m_step(beta, a, w, pi)
        value, w = mix.e_step(beta, a, pi)
        if not np.isfinite(value):
            raise FitError("the NPML log-likelihood is not finite; try another spread or "
                           "fewer mass points")
        trace.append(value)
        if abs(trace[-1] - trace[-2]) < em_tol:
            converged = True
            break
    # the masses' own M-step from the last posterior (npmlreg reports these masses)
    pi = w.mean(axis=0)
    value, w = mix.e_step(beta, a, pi)
    return _State(beta, a, pi, value, w, len(trace) - 1, converged, trace)


def _polish(mix: _Mixture, st: _State, gtol: float = 1e-9, max_iter: int = 50) -> bool:
    """Newton's method on the log-likelihood from the EM estimate; False if it cannot."""
    r = int(np.argmax(st.pi))
    phi = mix.to_phi(st.beta, st.a, st.pi, r)

    def evaluate(z: np.ndarray, order: int) -> State:
        value, grad = mix.gradient_phi(z, r)
        return State(z, value, order, grad)

    def direction(state: State) -> np.ndarray | None:
        if np.max(np.abs(state.grad)) < gtol * max(1.0, abs(state.value)):
            return np.zeros_like(state.grad)  # decrement 0: converged, no Hessian needed
        hess = mix.hessian_phi(state.params, r)
        try:
            np.linalg.cholesky(-hess)
        except np.linalg.LinAlgError:
            return None
        return np.linalg.solve(-hess, state.grad)

    res = newton(evaluate, direction, phi, tol=0.0, max_iter=max_iter + 1, max_trials=30,
                 armijo=False)
    if not res.converged:
        return False
    phi = res.state.params
    st.beta, st.a, st.pi = mix.from_phi(phi, r)
    st.loglik, st.w = mix.e_step(st.beta, st.a, st.pi)
    return True


def _degenerate(a: np.ndarray, pi: np.ndarray, n_clusters: int, merge_tol: float,
                mass_tol: float) -> list[str]:
    """Points that vanished (mass below ``mass_tol`` clusters) or merged (closer than
    ``merge_tol`` on the linear-predictor scale)."""
    out = [f"mass[{k + 1}]" for k in range(len(pi)) if pi[k] * n_clusters < mass_tol]
    for k in range(len(pi)):
        for j in range(k):
            if np.max(np.abs(a[k] - a[j])) < merge_tol:
                out.append(f"point[{k + 1}]-point[{j + 1}]")
    return out


def _covariance(mix: _Mixture, st: _State) -> np.ndarray:
    """Inverse observed information in phi, carried to (beta, points, masses) by the delta
    method (central differences of the smooth map phi -> parameters)."""
    r = int(np.argmax(st.pi))
    phi = mix.to_phi(st.beta, st.a, st.pi, r)
    n_out = mix.p + mix.k * mix.q + mix.k
    info = -mix.hessian_phi(phi, r)
    cov_phi = np.linalg.inv(info)
    if np.any(np.diag(cov_phi) < 0) or not np.all(np.isfinite(cov_phi)):
        raise np.linalg.LinAlgError
    jac = np.empty((n_out, len(phi)))
    for i in range(len(phi)):
        h = 1e-5 * max(1.0, abs(phi[i]))
        up, dn = phi.copy(), phi.copy()
        up[i] += h
        dn[i] -= h
        jac[:, i] = (_flat(*mix.from_phi(up, r)) - _flat(*mix.from_phi(dn, r))) / (2 * h)
    return jac @ cov_phi @ jac.T


def _flat(beta: np.ndarray, a: np.ndarray, pi: np.ndarray) -> np.ndarray:
    return np.r_[beta, a.ravel(), pi]


@dataclass
class NPMLResult(FitResult):
    """A fit with a discrete (nonparametric) random-effects distribution.

    ``params`` is ``(beta, points, masses)``: K q-vectors (row by row) then K masses, named
    ``point[k]`` (``point[k]:component`` when q > 1) and ``mass[k]``. The log-likelihood is on
    the AGQ scale. ``posterior`` adds ``probabilities`` (C, K), the empirical Bayes posterior
    probabilities of the points; ``mean`` is ``sum_k w_ck a_k`` (Aitkin 1996) and ``mode`` the
    point with the largest posterior probability.
    """

    k: int = 1
    points: np.ndarray | None = None
    masses: np.ndarray | None = None
    centred: bool = True
    selection: pd.DataFrame | None = None

    @property
    def names(self) -> tuple[str, ...]:
        d = self.design
        comps = list(d.random_names) or [f"u{i}" for i in range(d.n_random)]
        pts = [f"point[{k + 1}]" + ("" if len(comps) == 1 else f":{c}")
               for k in range(self.k) for c in comps]
        return tuple(d.fixed_names) + tuple(pts) + tuple(f"mass[{k + 1}]" for k in range(self.k))

    @property
    def method(self) -> str:
        return "npml"

    @property
    def method_label(self) -> str:
        return f"NPML ({self.k} mass points)"

    @property
    def param_roles(self) -> tuple[str, ...]:
        """``fixed``, then ``mass_point`` (K q) and ``mass`` (K): no variance parameters."""
        q = self.design.n_random
        return (("fixed",) * self.design.n_fixed + ("mass_point",) * (self.k * q)
                + ("mass",) * self.k)

    @property
    def n_nodes(self) -> int:
        return self.k

    @property
    def n_params(self) -> int:
        """Free parameters: ``p + q (K - 1) + K - 1`` (centred), ``p + q K + K - 1`` else."""
        q = self.design.n_random
        return self.design.n_fixed + q * (self.k - int(self.centred)) + self.k - 1

    def posterior_probabilities(self) -> pd.DataFrame:
        """Empirical Bayes posterior probability of each mass point per cluster (C, K)."""
        labels = list(self.design.cluster_labels) or list(range(self.design.n_clusters))
        return pd.DataFrame(self.posterior["probabilities"], index=labels,
                            columns=[f"point[{k + 1}]" for k in range(self.k)])

    def mass_points(self) -> pd.DataFrame:
        """Points, masses and SEs; with a fixed column equal to the random one (e.g. the
        intercept) also ``point + beta`` (npmlreg's ``alldist`` mass points)."""
        d = self.design
        p, q, k = d.n_fixed, d.n_random, self.k
        se = np.sqrt(np.maximum(np.diag(self.cov), 0.0))
        se = np.where(np.isfinite(np.diag(self.cov)), se, np.nan)
        comps = list(d.random_names) or [f"u{i}" for i in range(q)]
        out = pd.DataFrame({"mass": self.masses, "mass se": se[p + k * q:]},
                           index=[f"point[{j + 1}]" for j in range(k)])
        xf = d.X.reshape(-1, p)
        for i, c in enumerate(comps):
            out[c] = self.points[:, i]
            out[f"{c} se"] = se[p + i: p + k * q: q]
            zc = d.Z[..., i].ravel()
            same = [j for j in range(p) if np.array_equal(xf[:, j], zc)]
            if same:
                out[f"{c} + {d.fixed_names[same[0]]}"] = self.points[:, i] + self.params[same[0]]
        return out

    def variance_components(self) -> pd.DataFrame:
        """SD of the discrete distribution per component, ``sqrt(sum_k pi_k (a_k - abar)^2)``
        (npmlreg's ``rsdev``), with a delta-method SE (central differences)."""
        d = self.design
        p, q, k = d.n_fixed, d.n_random, self.k
        term = d.covariance.blocks[0][0] if d.covariance is not None and d.covariance.blocks \
            else "random"
        comps = list(d.random_names) or [f"u{i}" for i in range(q)]
        rows = []
        for i, c in enumerate(comps):
            idx = np.r_[np.arange(p + i, p + k * q, q), np.arange(p + k * q, p + k * q + k)]
            x0 = self.params[idx]

            def sd(x: np.ndarray) -> float:
                a, w = x[:k], x[k:]
                return float(np.sqrt(max(w @ (a - w @ a) ** 2, 0.0)))

            grad = np.array([(sd(x0 + h) - sd(x0 - h)) / 2e-7
                             for h in np.eye(len(x0)) * 1e-7])
            sub = self.cov[np.ix_(idx, idx)]
            val = float(grad @ sub @ grad) if np.all(np.isfinite(sub)) else np.nan
            rows.append({"term": term, "component": "sd" if q == 1 else f"sd:{c}",
                         "estimate": sd(x0), "se": float(np.sqrt(val)) if val >= 0 else np.nan})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(_jsonable({"k": self.k, "points": self.points, "masses": self.masses,
                             "centred": self.centred}))
        if self.selection is not None:
            out["selection"] = _jsonable(self.selection.to_dict(orient="records"))
        return out


def _fit_k(design: Design, k: int, spread: float, em_tol: float, max_em: int, polish: bool,
           merge_tol: float, mass_tol: float, warn: bool) -> NPMLResult:
    t0 = time.perf_counter()
    mix = _Mixture(design, k)
    beta, a, pi = _start(mix, design, spread)
    start = _flat(beta, a, pi)
    st = _em(mix, beta, a, pi, em_tol, max_em)
    polished = _polish(mix, st) if polish and k > 1 else False
    if mix.centred:  # exact centring (EM centres at the masses of its last M-step)
        mean = st.pi @ st.a
        st.beta, st.a = st.beta + mix.shift @ mean, st.a - mean
        st.loglik, st.w = mix.e_step(st.beta, st.a, st.pi)
    bad = _degenerate(st.a, st.pi, mix.n_clusters, merge_tol, mass_tol)
    params = _flat(st.beta, st.a, st.pi)
    t1 = time.perf_counter()
    try:
        cov = _covariance(mix, st)
    except np.linalg.LinAlgError:
        cov = np.full((len(params), len(params)), np.nan)
        if warn and not bad:
            warnings.warn("observed information of the NPML fit is singular; standard errors "
                          "are unavailable", ConvergenceWarning, stacklevel=4)
    converged = st.converged or polished
    opt = OptSummary(
        method="npml", optimizer="em" + ("+newton" if polished else ""), n_nodes=k,
        initial=start, final=params, initial_loglik=st.trace[0], final_loglik=st.loglik,
        n_evaluations=len(st.trace), n_iterations=st.em_iterations,
        return_code="converged" if converged else "EM iteration limit", converged=converged,
        tolerances={"em_tol": em_tol}, log=[{"loglik": v} for v in st.trace],
        timings={"optimize": t1 - t0, "information": time.perf_counter() - t1},
        boundary=tuple(bad),
    )
    if warn and not converged:
        warnings.warn(f"NPML EM with {k} mass points stopped after {max_em} iterations without "
                      "converging; raise max_em", ConvergenceWarning, stacklevel=4)
    if warn and bad:
        warnings.warn(
            f"NPML with {k} mass points: " + ", ".join(bad) + " (points vanished or merged): "
            "the data support fewer points; refit with a smaller k", BoundaryWarning,
            stacklevel=4)
    d = design
    a_b = st.a
    mean = st.w @ a_b
    var = st.w @ (a_b**2) - mean**2
    eta = d.X @ st.beta + d.offset
    posterior = {
        "probabilities": st.w,
        "mean": mean,
        "sd": np.sqrt(np.maximum(var, 0.0)),
        "mode": a_b[np.argmax(st.w, axis=1)],
        # Aitkin's (1996) empirical Bayes predictor: the posterior mean of the predictor
        "eta_mode": eta + np.einsum("bjq,bq->bj", d.Z, mean[d.cluster]),
    }
    return NPMLResult(design=design, params=params, cov=cov, loglik=st.loglik, opt=opt,
                      posterior=posterior, k=k, points=st.a.copy(), masses=st.pi.copy(),
                      centred=mix.centred)


def fit_npml(
    design: Design,
    k: int | Iterable[int] = 2,
    *,
    select: str = "bic",
    spread: float | Iterable[float] = 0.5,
    em_tol: float = 1e-7,
    max_em: int = 2000,
    polish: bool = True,
    merge_tol: float = 1e-3,
    mass_tol: float = 1e-3,
) -> NPMLResult:
    """Nonparametric ML fit of a GLLMM: K mass points for the random effects (Aitkin 1996).

    Maximises ``sum_c log sum_k pi_k exp l_c(X beta + offset + Z a_k)`` (module docstring) by
    EM, then Newton's method.

    Parameters
    ----------
    design : Design
        Any design with random effects whose family has a closed-form conditional likelihood.
    k : int or iterable of int
        Number of mass points, or several: each is fitted and one chosen by ``select``; the
        table of all is ``result.selection``.
    select : {"bic", "aic", "loglik"}
        Smallest BIC / AIC, or ``"loglik"``: the smallest K whose log-likelihood is within 0.01
        of the largest (the NPML estimate has been reached: more points do not help).
    spread : float or iterable of float
        Start points ``spread * z_k`` (npmlreg's ``tol``); start masses the Gauss-Hermite
        weights. Several: a fit from each, the largest log-likelihood kept (EM finds local
        maxima); ``result.extra["starts"]`` lists them.
    em_tol : float
        EM stops when the log-likelihood rises by less than this (npmlreg: ``EMdev.change / 2``
        = 0.0005 on the log-likelihood scale).
    polish : bool
        Finish with Newton's method on the log-likelihood (the exact maximum, not EM's stopping
        point); with ``polish=False`` and ``em_tol=0.0005`` the fit follows npmlreg's EM.
    merge_tol, mass_tol : float
        Points closer than ``merge_tol`` (linear-predictor scale) have merged, masses below
        ``mass_tol / n_clusters`` have vanished: a BoundaryWarning, listed in ``boundary``.

    Returns
    -------
    NPMLResult

    References
    ----------
    Aitkin, M. (1996). A general maximum likelihood analysis of overdispersion in generalized
    linear models. Statistics and Computing 6, 251-262. Einbeck, Darnell & Hinde, npmlreg.
    """
    check_full_rank(design)
    if design.n_random == 0:
        raise SpecError("NPML needs random effects in the design, e.g. '(1 | cluster)'")
    blocks = design.covariance.blocks
    if blocks and sum(len(b[1]) for b in blocks) != design.n_random:
        raise SpecError("NPML takes one random-effect vector per cluster (random intercepts "
                        "or coefficients of one grouping factor); this design has nested or "
                        "crossed effects: fit it with method='agq' or 'laplace'")
    ks = [k] if np.ndim(k) == 0 else list(k)
    if not ks or any(int(j) != j or j < 1 for j in ks):
        raise SpecError(f"k must be a positive integer or a list of them, got {k!r}")
    if select not in ("bic", "aic", "loglik"):
        raise SpecError(f"select must be 'bic', 'aic' or 'loglik', got {select!r}")
    spreads = [float(spread)] if np.ndim(spread) == 0 else [float(x) for x in spread]
    if not spreads or min(spreads) <= 0:
        raise SpecError(f"spread must be a positive number or a list of them, got {spread!r}")

    def best_start(j: int, warn: bool) -> NPMLResult:
        """The fit with K = j of largest log-likelihood over the start spreads."""
        tried = []
        for x in spreads:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tried.append((_fit_k(design, j, x, em_tol, max_em, polish, merge_tol,
                                     mass_tol, True), list(caught)))
        res, caught = max(tried, key=lambda t: t[0].loglik)
        if len(spreads) > 1:
            res.extra["starts"] = pd.DataFrame({"spread": spreads,
                                                "loglik": [t[0].loglik for t in tried]})
        for w in caught if warn else ():
            warnings.warn(w.message, w.category, stacklevel=3)
        return res

    if len(ks) == 1:
        return best_start(int(ks[0]), True)
    fits = [best_start(j, False) for j in sorted(set(int(j) for j in ks))]
    table = pd.DataFrame({
        "k": [f.k for f in fits], "loglik": [f.loglik for f in fits],
        "n_params": [f.n_params for f in fits], "aic": [f.aic for f in fits],
        "bic": [f.bic for f in fits], "degenerate": [", ".join(f.boundary) for f in fits]})
    if select == "loglik":
        best = int(np.flatnonzero(table.loglik >= table.loglik.max() - 0.01)[0])
    else:
        best = int(np.argmin(table[select]))
    chosen = fits[best]
    chosen.selection = table
    if chosen.boundary:
        warnings.warn(f"NPML with {chosen.k} mass points (chosen by {select}): "
                      + ", ".join(chosen.boundary) + " (points vanished or merged)",
                      BoundaryWarning, stacklevel=2)
    return chosen
