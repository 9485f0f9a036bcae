"""Monte Carlo EM with an importance-sampling E-step (Booth & Hobert 1999; paper Section 3.3).

Complete data are ``(y, v)`` with the spherical random effects ``v ~ N(0, I_q)`` per cluster and
``u = Lambda(theta) v``; the complete-data log-likelihood is ``l(y | X beta + Z Lambda v)`` plus
a term free of the parameters, so

    Q(beta, theta) = sum_c sum_l w_cl l_c(X beta + offset + Z Lambda(theta) v_cl),

a weighted GLM-type log-likelihood whose linear predictor is linear in ``(beta, theta)``: its
exact gradient and Hessian come from the family's derivatives in eta (``A' g`` and
``A' H A`` with ``A = [X, Z E_k v]``), and the M-step is a projected Newton iteration with
``theta >= lower``.

E-step. For cluster c at the current parameters, ``v_cl`` are drawn from a multivariate t
(``df`` degrees of freedom) centred at the posterior mode ``v_hat`` with scale ``K^{-1}``, the
Laplace curvature (``MarginalLikelihood.modes``); self-normalised weights
``w_cl ~ exp(h_c(v_cl)) / t(v_cl)``, ``h_c(v) = l_c(v) + log phi(v)``. Samples are fresh and
independent at every iteration.

Monte Carlo sample size (Booth & Hobert 1999, Section 2.3). The M-step estimate ``x_new`` is
approximately normal around the exact EM update with covariance ``Q''^{-1} V Q''^{-1}``, ``V``
the importance-sampling variance of ``Q'`` (delta method for the ratio estimator,
``V = sum_c sum_l w_cl^2 (s_cl - s_bar_c)(s_cl - s_bar_c)'``). If the previous value lies inside
the ``1 - alpha`` (alpha = 0.25) confidence ellipsoid around ``x_new`` the step was swamped by
Monte Carlo error and ``m`` grows to ``m (1 + growth)``. Booth & Hobert treat the previous value
as fixed; here both iterates are Monte Carlo estimates, so the ellipsoid uses the sum of their
covariances: with a fast EM (below) the change between iterates is mostly the previous
iterate's own noise, and the one-sided ellipsoid would then never call the step swamped.
Booth & Hobert's ``m <- m + m / 3`` is ``growth = 1/3``; the default doubles ``m``.

Parameter expansion (PX-EM, Liu, Rubin & Wu 1998; see ``_Expansion``) removes the slow EM
directions where beta trades off with the mean of v (a random slope and its fixed effect, the
odds-ratio models' ``beta`` and ``mean(u)``) and theta with the scale of v: on a 3 x 3 model
(2.1) with cumulative coding, plain EM stopped 0.17 SE from the MLE after 46 iterations, the
expanded one is within 0.05 SE after 6 (docs/methods/mcem_pql.md).

Stopping rules, each required at ``n_consecutive`` (3) successive iterations:

- ``stopping="se"`` (default): ``max_i |x_i^(r+1) - x_i^(r)| / se_i < se_tol`` (0.02), ``se_i``
  from the complete-data information ``-Q''`` (smaller than the observed-data SE, so the rule is
  conservative); invariant to the scale of each parameter;
- ``stopping="relative"`` (Booth & Hobert 1999, eq. 2.5):
  ``max_i |x_i^(r+1) - x_i^(r)| / (|x_i^(r)| + delta1) < delta2`` (0.001, 0.002); parameters
  near zero then demand very large Monte Carlo samples.

After convergence one large importance sample (``final_samples`` per cluster) at the estimate
gives the log-likelihood ``sum_c log mean_l exp(h_c - log t) + constant`` on the full scale (the
same scale as AGQ and Laplace; its Monte Carlo SE is reported), the observed information by
Louis' (1982) formula, ``I = -E[d2 l_c] - Var[d l_c]`` under the weighted sample, and posterior
means and SDs; ``loglik="laplace"`` or ``"agq"`` evaluates the log-likelihood by quadrature
instead. Everything is reproducible from ``seed`` (one ``numpy.random.Generator``).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from scipy.linalg import null_space
from scipy.special import gammaln, logsumexp

from .._distributions import chi2_ppf
from ..errors import BoundaryWarning, ConvergenceWarning, FitError, SpecError
from ..integrate import MarginalLikelihood
from ..integrate._newton import State, damped_newton_direction, newton
from ..results import FitResult
from ..spec._design import Design
from ..tables._validate import check_integer
from ._glm import check_full_rank
from ._optimize import OptSummary, inverse_information
from ._start import default_start


class _Sampler:
    """Importance samples of the spherical random effects and their Q-function pieces."""

    chunk_elements = 4_000_000  # bound on B * chunk * J * J per derivative call

    def __init__(self, design: Design) -> None:
        self.design = design
        self.laplace = MarginalLikelihood(design, 1)
        self.templates = design.covariance.templates
        # dM[b, j, r, k] = (Z E_k)[b, j, r]
        self.dM = np.einsum("bjq,kqr->bjrk", design.Z, self.templates)
        self.starts = design.starts()
        self.one_per_cluster = design.X.shape[0] == design.n_clusters
        self.constant = float(design.family.constant().sum())
        bounds = np.r_[self.starts, design.X.shape[0]]
        self.cluster_columns = []
        for c in range(design.n_clusters):
            blocks = np.arange(bounds[c], bounds[c + 1])
            cols = np.flatnonzero(np.any(design.X[blocks] != 0, axis=(0, 1)))
            self.cluster_columns.append((blocks, cols))

    def csum(self, a: np.ndarray) -> np.ndarray:
        return a if self.one_per_cluster else np.add.reduceat(a, self.starts, axis=0)

    def draw(self, params: np.ndarray, m: int, df: float, rng: np.random.Generator) -> dict:
        """``m`` t-distributed draws per cluster at ``params`` with normalised log weights."""
        d = self.design
        info = self.laplace.modes(params)
        C, q = d.n_clusters, d.n_random
        z = rng.standard_normal((C, m, q))
        scale = np.sqrt(rng.chisquare(df, size=(C, m, 1)) / df)
        t = z / scale  # L' (v - v_hat)
        LinvT = np.swapaxes(np.linalg.inv(info.chol), -1, -2)
        v = info.v[:, None, :] + np.einsum("cqr,cnr->cnq", LinvT, t)
        log_det = np.log(np.diagonal(info.chol, axis1=1, axis2=2)).sum(axis=1)
        log_t = (gammaln((df + q) / 2) - gammaln(df / 2) - 0.5 * q * np.log(df * np.pi)
                 + log_det[:, None] - 0.5 * (df + q) * np.log1p((t**2).sum(-1) / df))
        l = self.loglik_nodes(params, v)
        h = l - 0.5 * (v**2).sum(-1) - 0.5 * q * np.log(2 * np.pi)
        log_w = h - log_t
        lse = logsumexp(log_w, axis=1, keepdims=True)
        return {"v": v, "log_w": log_w, "w": np.exp(log_w - lse), "info": info}

    def cluster_scores(self, g: np.ndarray) -> np.ndarray:
        """Fixed-effects scores per cluster and sample, ``sum_b X_b' g_b`` (C, m, p).

        Each cluster only touches a few columns of X (its own nuisance effects and the shared
        ones), so the products run over those columns only.
        """
        d = self.design
        out = np.zeros((d.n_clusters, g.shape[1], d.n_fixed))
        for c, (blocks, cols) in enumerate(self.cluster_columns):
            out[c][:, cols] = np.einsum("bnj,bjp->np", g[blocks], d.X[blocks][:, :, cols])
        return out

    def eta(self, params: np.ndarray, v: np.ndarray) -> np.ndarray:
        d = self.design
        beta, theta = params[: d.n_fixed], params[d.n_fixed:]
        M = d.Z @ np.tensordot(theta, self.templates, axes=1)
        eta0 = d.X @ beta + d.offset
        return eta0[:, None, :] + np.einsum("bjq,bnq->bnj", M, v[d.cluster])

    def loglik_nodes(self, params: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Conditional log-likelihood per cluster and sample (C, m), without the constant."""
        l = self.design.family.derivatives(self.eta(params, v), 0)[0]
        return self.csum(l)

    def q_function(self, params: np.ndarray, v: np.ndarray, w: np.ndarray, order: int = 2,
                   scores: bool = False) -> tuple:
        """Q, its gradient and Hessian in (beta, theta); optionally per-sample cluster scores.

        Samples are processed in chunks so that the Hessian arrays (B, chunk, J, J) stay small.
        """
        d = self.design
        nb, nj = d.X.shape[:2]
        m = v.shape[1]
        size = max(1, int(self.chunk_elements // (nb * nj * max(nj, 1)))) if order >= 2 else m
        total = 0.0
        n_par = d.n_fixed + d.n_theta
        grad = np.zeros(n_par) if order >= 1 else None
        hess = np.zeros((n_par, n_par)) if order >= 2 else None
        parts = []
        for lo in range(0, m, size):
            sl = slice(lo, min(lo + size, m))
            val, g, h, sc = self._q_chunk(params, v[:, sl], w[:, sl], order, scores)
            if not np.isfinite(val):
                return -np.inf, None, None, None
            total += val
            if order >= 1:
                grad += g
            if order >= 2:
                hess += h
            if scores:
                parts.append(sc)
        return total, grad, hess, (np.concatenate(parts, axis=1) if scores else None)

    def _q_chunk(self, params: np.ndarray, v: np.ndarray, w: np.ndarray, order: int,
                 scores: bool) -> tuple:
        d = self.design
        eta = self.eta(params, v)
        l, g, H, _ = d.family.derivatives(eta, order)
        wb = w[d.cluster]  # (B, m)
        # draws with zero weight (e.g. Dale odds ratios giving a negative cell) drop out
        dead = wb == 0
        l = np.where(dead, 0.0, l)
        if order >= 1:
            g = np.where(dead[..., None], 0.0, g)
        if order >= 2:
            H = np.where(dead[..., None, None], 0.0, H)
        val = float(np.sum(wb * l))
        if order == 0 or not np.isfinite(val):
            return val, None, None, None
        v_b = v[d.cluster]
        At = np.einsum("bjrk,bnr->bnjk", self.dM, v_b)  # (B, m, J, m_theta)
        gw = g * wb[..., None]
        grad = np.r_[np.einsum("bj,bjp->p", gw.sum(axis=1), d.X),
                     np.einsum("bnj,bnjk->k", gw, At)]
        hess = None
        if order >= 2:
            Hw = H * wb[..., None, None]
            xx = np.einsum("bjp,bjr->pr", d.X, np.einsum("bjk,bkr->bjr", Hw.sum(axis=1), d.X))
            HA = np.einsum("bnjk,bnkt->bnjt", Hw, At)
            xt = np.einsum("bjp,bjt->pt", d.X, HA.sum(axis=1))
            tt = np.einsum("bnjs,bnjt->st", At, HA)
            hess = np.block([[xx, xt], [xt.T, tt]])
        s = None
        if scores:
            s = np.concatenate([self.cluster_scores(g), self.csum(
                np.einsum("bnj,bnjk->bnk", g, At))], axis=2)
        return val, grad, hess, s


def _m_step(sampler: _Sampler, x0: np.ndarray, v: np.ndarray, w: np.ndarray,
            lower: np.ndarray, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """Projected Newton on the concave-in-practice Q with bounds ``x >= lower``: parameters at
    their bound with the gradient pointing out stay fixed, trial points are clipped to the
    bounds, Levenberg damping where Q is not concave (e.g. Dale)."""

    def evaluate(x: np.ndarray, order: int) -> State:
        val, grad, hess, _ = sampler.q_function(x, v, w, order=order)
        return State(x, val, order, grad, hess)

    def direction(state: State) -> np.ndarray | None:
        x, grad = state.params, state.grad
        free = ~(np.isfinite(lower) & (x <= lower + 1e-12) & (grad < 0))
        step_f = damped_newton_direction(grad[free], state.extra[np.ix_(free, free)])
        if step_f is None:
            return None
        step = np.zeros_like(x)
        step[free] = step_f
        return step

    res = newton(evaluate, direction, x0, stop=lambda st, dec: dec < tol * (1.0 + abs(st.value)),
                 max_iter=max_iter, max_trials=60, armijo=False, final_step=True,
                 min_step=1e-12, project=lambda z: np.maximum(z, lower))
    if res.n_iter == 0 and not np.isfinite(res.state.value):
        raise FitError("the Monte Carlo Q function is not finite at the current parameters")
    return res.state.params


class _Expansion:
    """Parameter expansion of the E-step's random effects (PX-EM; Liu, Rubin & Wu 1998).

    The expanded model lets ``v ~ N(mu, Psi)``. Its M-step adds ``mu_hat`` (the weighted mean of
    v over clusters, restricted to directions where ``Z Lambda mu`` is a fixed-effects shift, so
    that it reduces to ``beta += delta`` with ``X delta = Z Lambda mu``) and, when every template
    of Lambda is diagonal with disjoint support, ``Psi_hat`` (the weighted second moment about
    mu_hat per template, reducing to ``theta_k *= sqrt(psi_k)``); mu then Psi is a conditional
    maximisation (PX-ECM). At the MLE ``mu_hat = 0`` and ``Psi_hat = I``, so the fixed points are
    those of plain EM; the expansion removes the slow EM directions where beta and the mean of v
    (or theta and the scale of v) trade off.
    """

    def __init__(self, design: Design) -> None:
        self.design = design
        p = design.n_fixed
        self.Xf = design.X.reshape(design.X.shape[0] * design.X.shape[1], p)
        self.Qx = np.linalg.qr(self.Xf)[0] if p else np.zeros((self.Xf.shape[0], 0))
        tm = design.covariance.templates
        diag = all(np.allclose(t, np.diag(np.diag(t))) for t in tm)
        support = np.array([np.diag(t) != 0 for t in tm])
        self.supports = support if diag and np.all(support.sum(axis=0) <= 1) else None

    def reduce(self, x: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Expanded M-step for (mu, Psi) given the weighted sample, then the reduction."""
        d = self.design
        p, q, n_c = d.n_fixed, d.n_random, d.n_clusters
        x = x.copy()
        lam = np.tensordot(x[p:], d.covariance.templates, axes=1)
        ZL = (d.Z @ lam).reshape(-1, q)
        resid = ZL - self.Qx @ (self.Qx.T @ ZL)
        N = null_space(resid, rcond=1e-10)
        mu = np.zeros(q)
        if N.shape[1]:
            vbar = np.einsum("cn,cnq->q", w, v) / n_c
            mu = N @ (N.T @ vbar)
            x[:p] += np.linalg.lstsq(self.Xf, ZL @ mu, rcond=None)[0]
        if self.supports is not None:
            second = np.einsum("cn,cnq->q", w, (v - mu) ** 2) / n_c
            for k, sup in enumerate(self.supports):
                if sup.any():
                    x[p + k] *= np.sqrt(second[sup].mean())
        return x


def _louis(sampler: _Sampler, x: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Observed information by Louis' formula from a weighted sample of v."""
    _, _, hess, s = sampler.q_function(x, v, w, scores=True)
    sbar = np.einsum("cn,cnp->cp", w, s)
    ws = s * np.sqrt(w)[..., None]
    second = np.einsum("cnp,cnr->pr", ws, ws) - np.einsum("cp,cr->pr", sbar, sbar)
    return -hess - second


def _mc_covariance(hess: np.ndarray, s: np.ndarray, w: np.ndarray,
                   free: np.ndarray) -> np.ndarray:
    """Monte Carlo covariance ``H^{-1} V H^{-1}`` of the M-step estimate (NaN off ``free``).

    ``V = sum_c sum_l w_cl^2 (s_cl - s_bar_c)(s_cl - s_bar_c)'``: the variance of the
    self-normalised importance estimate of the score (delta method for a ratio), clusters
    independent.
    """
    sbar = np.einsum("cn,cnp->cp", w, s)
    wd = (s - sbar[:, None, :]) * w[..., None]
    V = np.einsum("cnp,cnr->pr", wd, wd)
    full = np.full(hess.shape, np.nan)
    try:
        hinv = np.linalg.inv(-hess[np.ix_(free, free)])
    except np.linalg.LinAlgError:
        return full
    cov = hinv @ V[np.ix_(free, free)] @ hinv
    full[np.ix_(free, free)] = (cov + cov.T) / 2
    return full


def _swamped(cov: np.ndarray, diff: np.ndarray, free: np.ndarray,
             alpha: float) -> tuple[float, bool]:
    """Is ``diff`` inside the ``1 - alpha`` Monte Carlo confidence ellipsoid ``cov``?

    A generalised inverse with its rank as degrees of freedom, since some score combinations
    have no Monte Carlo error (e.g. cells that no random effect touches).
    """
    sub = cov[np.ix_(free, free)]
    if not np.all(np.isfinite(sub)):
        return float("nan"), True
    u, sv, _ = np.linalg.svd(sub)
    keep = sv > 1e-10 * max(sv.max(initial=0.0), 1e-300)
    rank = int(keep.sum())
    if rank == 0:
        return float("nan"), False
    proj = u[:, keep].T @ diff[free]
    stat = float(np.sum(proj**2 / sv[keep]))
    return stat, bool(stat < chi2_ppf(1 - alpha, rank))


def fit_mcem(
    design: Design,
    seed: int | np.random.Generator | None = None,
    start: np.ndarray | None = None,
    *,
    n_samples: int = 500,
    df: float = 10.0,
    alpha: float = 0.25,
    growth: float = 1.0,
    stopping: str = "se",
    se_tol: float = 0.02,
    delta1: float = 0.001,
    delta2: float = 0.002,
    n_consecutive: int = 3,
    max_iter: int = 300,
    max_samples: int = 200_000,
    final_samples: int = 20_000,
    loglik: str = "importance",
    n_nodes: int | None = None,
    expand: bool = True,
    keep_log: bool = True,
) -> FitResult:
    """Fit a GLLMM by Monte Carlo EM with importance sampling (Booth & Hobert 1999).

    See the module docstring for the E-step, M-step, sample-size rule and stopping rules.

    Parameters
    ----------
    design : Design
        Any design with random effects and a closed-form conditional likelihood.
    seed : int or Generator
        Seed of the ``numpy.random.Generator`` used for every draw (reproducible fits).
    start : ndarray (p + m,), optional
        Start; default the GLLM fit with SDs 0.5 (as ``fit``).
    n_samples : int
        Initial Monte Carlo sample size per cluster.
    df : float
        Degrees of freedom of the multivariate t proposal.
    alpha, growth : float
        Sample-size rule: ``m <- m (1 + growth)`` when the change is inside the ``1 - alpha``
        Monte Carlo confidence ellipsoid (Booth & Hobert's ``m + m / k`` is ``growth = 1/k``).
    stopping : {"se", "relative"}
        ``se``: every change below ``se_tol`` complete-data standard errors;
        ``relative``: Booth & Hobert's rule with ``delta1``, ``delta2``. Either must hold at
        ``n_consecutive`` successive iterations.
    max_iter, max_samples : int
        Limits on EM iterations and on the per-cluster Monte Carlo sample size.
    final_samples : int
        Importance sample size per cluster for the final log-likelihood, information and
        posterior summaries.
    loglik : {"importance", "laplace", "agq"}
        How the reported log-likelihood is evaluated at the estimate (``n_nodes`` per dimension
        for AGQ, default 5). All are the full log-likelihood with constants.
    expand : bool
        Parameter-expanded M-step (PX-EM, see ``_Expansion``); False gives plain MCEM.

    Returns
    -------
    FitResult
        ``method == "mcem"``; ``extra`` holds ``loglik_method``, ``loglik_importance`` and its
        ``loglik_mc_se``, ``mc_se`` (Monte Carlo SE of the last M-step estimate, from the
        sandwich of the sample-size rule; NaN on the boundary), ``n_samples`` (last E-step
        size), ``ess`` (effective size of the final sample, smallest over clusters) and
        ``stopping``. ``opt.log`` has one entry per EM iteration.

    References
    ----------
    Booth, J. G. and Hobert, J. P. (1999), JRSS B 61, 265-285. Liu, C., Rubin, D. B. and Wu,
    Y. N. (1998), Biometrika 85, 755-770. Louis, T. A. (1982), JRSS B 44, 226-233. Coull &
    Agresti (2003), Section 3.3.
    """
    if not isinstance(design, Design):
        raise SpecError(f"fit_mcem needs a Design (from gllmm.build_design or gllmm.models), "
                        f"got {type(design).__name__}")
    if design.n_random == 0:
        raise FitError("the design has no random effects: fit it by ML with gllmm.fit")
    if stopping not in ("relative", "se"):
        raise FitError(f"unknown stopping {stopping!r}; use 'se' or 'relative'")
    if loglik not in ("importance", "laplace", "agq"):
        raise FitError(f"unknown loglik {loglik!r}; use 'importance', 'laplace' or 'agq'")
    check_full_rank(design)
    if seed is not None and not isinstance(seed, np.random.Generator):
        seed = check_integer(seed, "seed", minimum=0)  # numpy's own ValueError otherwise
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    t0 = time.perf_counter()
    sampler = _Sampler(design)
    expansion = _Expansion(design) if expand else None
    x0 = default_start(design) if start is None else np.asarray(start, dtype=float).copy()
    x = x0.copy()
    lower = design.param_lower
    tol = delta2 if stopping == "relative" else se_tol
    m = int(n_samples)
    prev_cov: np.ndarray | None = None
    mc_cov = np.full((len(x), len(x)), np.nan)
    log: list[dict[str, Any]] = []
    small, converged, it = 0, False, 0
    for it in range(1, max_iter + 1):
        draw = sampler.draw(x, m, df, rng)
        w = draw["w"]
        new = _m_step(sampler, x, draw["v"], w, lower)
        _, _, hess, s = sampler.q_function(new, draw["v"], w, scores=True)
        if expansion is not None:
            new = expansion.reduce(new, draw["v"], w)
        free = ~(np.isfinite(lower) & (new <= lower + 1e-12))
        mc_cov = _mc_covariance(hess, s, w, free)
        # both iterates carry Monte Carlo error: compare with the sum of their covariances
        both = mc_cov if prev_cov is None else mc_cov + np.nan_to_num(prev_cov)
        stat, swamped = _swamped(both, x - new, free, alpha)
        prev_cov = mc_cov
        if stopping == "relative":
            change = float(np.max(np.abs(new - x) / (np.abs(x) + delta1)))
        else:
            se = np.sqrt(np.maximum(np.diag(np.linalg.pinv(-hess[np.ix_(free, free)])), 1e-300))
            change = float(np.max(np.abs(new - x)[free] / se, initial=0.0))
        if keep_log:
            log.append({"stage": "mcem", "iteration": it, "n_samples": m, "params": new.copy(),
                        "change": change, "ellipsoid_statistic": stat,
                        "ess": float(np.min(1.0 / np.sum(w**2, axis=1)))})
        x = new
        small = small + 1 if change < tol else 0
        if small >= n_consecutive:
            converged = True
            break
        if swamped:
            m = min(int(np.ceil(m * (1.0 + growth))), max_samples)
    t_em = time.perf_counter() - t0

    t1 = time.perf_counter()
    final = sampler.draw(x, int(final_samples), df, rng)
    ll_is, ll_se = _importance_loglik(sampler, final)
    if loglik == "importance":
        value, method = ll_is, f"importance sampling ({final_samples} draws per cluster)"
    else:
        nodes = 1 if loglik == "laplace" else (5 if n_nodes is None else int(n_nodes))
        value = MarginalLikelihood(design, nodes).value_and_gradient(x, gradient=False)[0]
        method = "laplace" if nodes == 1 else f"agq ({nodes} nodes per dimension)"
    names = design.param_names
    boundary = tuple(names[k] for k in range(len(x))
                     if np.isfinite(lower[k]) and x[k] <= lower[k] + 1e-12)
    free = [k for k in range(len(x)) if names[k] not in boundary]
    louis = _louis(sampler, x, final["v"], final["w"])
    cov = inverse_information(louis[np.ix_(free, free)], free, len(x), "Louis", stacklevel=2)
    opt = OptSummary(
        method="mcem", optimizer="MCEM (t importance sampling, projected Newton M-step)",
        n_nodes=0, initial=x0, final=x, initial_loglik=float("nan"), final_loglik=value,
        n_evaluations=it, n_iterations=it,
        return_code="converged" if converged else "iteration limit", converged=converged,
        tolerances={"se_tol": se_tol, "delta1": delta1, "delta2": delta2,
                    "n_consecutive": n_consecutive, "alpha": alpha, "growth": growth,
                    "df": df},
        log=log, timings={"em": t_em, "final": time.perf_counter() - t1}, boundary=boundary,
    )
    if not converged:
        warnings.warn(f"MCEM stopped after {max_iter} iterations without meeting the stopping "
                      "rule; estimates may be inaccurate", ConvergenceWarning, stacklevel=2)
    if boundary:
        warnings.warn("variance estimated as zero (boundary fit) for " + ", ".join(boundary),
                      BoundaryWarning, stacklevel=2)
    extra = {"loglik_method": method, "loglik_importance": ll_is, "loglik_mc_se": ll_se,
             "mc_se": np.sqrt(np.maximum(np.diag(mc_cov), 0.0)), "n_samples": m,
             "ess": float(np.min(1.0 / np.sum(final["w"] ** 2, axis=1))), "stopping": stopping,
             "seed": None if isinstance(seed, np.random.Generator) else seed}
    return FitResult(design=design, params=x, cov=cov, loglik=value, opt=opt,
                     posterior=_posterior(sampler, x, final), extra=extra)


def _importance_loglik(sampler: _Sampler, draw: dict) -> tuple[float, float]:
    """Importance-sampling log-likelihood (full scale) and its Monte Carlo SE (delta method).

    ``log L_c = log mean_l exp(log_w_cl)``; the relative variance of the mean weight is
    ``n sum_l wn_l^2 - 1`` over n with ``wn`` the normalised weights.
    """
    n = draw["log_w"].shape[1]
    value = float(np.sum(logsumexp(draw["log_w"], axis=1) - np.log(n))) + sampler.constant
    rel_var = np.maximum(n * np.sum(draw["w"] ** 2, axis=1) - 1.0, 0.0) / n
    return value, float(np.sqrt(np.sum(rel_var)))


def _posterior(sampler: _Sampler, x: np.ndarray, draw: dict) -> dict[str, np.ndarray]:
    """Posterior modes (Laplace) and importance-sampling means and SDs of ``u = Lambda v``."""
    from ..integrate._agq import posterior_summary

    d = sampler.design
    lam = np.tensordot(x[d.n_fixed:], sampler.templates, axes=1)
    return posterior_summary(lam, draw["v"], draw["w"], draw["info"])
