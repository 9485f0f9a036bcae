"""Penalized quasi-likelihood (Breslow & Clayton 1993; paper Section 3.4).

PQL linearises the conditional log-likelihood at the current ``eta = X beta + offset + Z u``:
per block, weights ``W = -E[d2 l / d eta2]`` (Fisher; or the observed ``-H``) and the working
response ``z = eta - offset + W^+ g`` (``g = dl/d eta``) turn the GLLMM into the linear mixed model

    z ~ N(X beta + Z Lambda v, W^{-1}),   v ~ N(0, I),

whose parameters are estimated, then ``eta`` is recomputed at the new estimates and the BLUPs,
until ``(beta, theta)`` stop changing. Only the family's gradient and Hessian in eta are used, so
every family with a closed-form conditional likelihood works (Poisson, binomial, multinomial
log-linear, cumulative logits, Dale's global odds ratios). ``W`` may be singular (a multinomial's
softmax is invariant to adding a constant to eta): only ``W`` itself, never ``W^{-1}``, enters.

The linear mixed model step (lme4's formulation with the spherical v). For cluster c with
``M_c = Z_c Lambda``, ``K_c = I + M_c' W_c M_c``, the profiled log-likelihoods are

    l_ML(theta)   = -1/2 [sum_c log|K_c| + PRSS(theta)],
    l_REML(theta) = l_ML(theta) - 1/2 log|X' V^{-1} X|,

with ``PRSS = min_{beta, v} (z - X beta - M v)' W (z - X beta - M v) + |v|^2`` (beta by GLS,
dispersion fixed at 1). Their exact gradients in theta follow from ``d log|K| = tr(K^{-1} dK)``
and the envelope theorem, ``d PRSS / d theta_k = -2 e' W Z E_k v_hat`` (e the residual). The
default criterion is ML (as ``MASS::glmmPQL``); ``criterion="reml"`` is Breslow & Clayton's.

At convergence the BLUPs satisfy ``v = M' g``: they are the exact posterior modes at the PQL
estimates. The reported log-likelihood (``loglik``) is, by default, the Laplace marginal
log-likelihood at the PQL estimates (full scale, comparable with ML fits); ``extra`` also holds
PQL's own approximation ``sum_c [l_c(eta_hat) - |v_c|^2 / 2 - log|K_c| / 2]`` (Laplace's formula
with the PQL weights) under ``pql_loglik``. Standard errors come from the observed information of
the final linear mixed model (ML form, central differences of its exact gradient).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np

from ..errors import BoundaryWarning, ConvergenceWarning, FitError, SpecError
from ..integrate import MarginalLikelihood
from ..results import FitResult
from ..spec._design import Design
from ._bfgs import minimize_bfgs
from ._glm import check_full_rank
from ._optimize import OptSummary
from ._start import default_start


class WorkingModel:
    """The linear mixed model of one PQL iteration, with exact ML/REML objectives.

    Parameters
    ----------
    design : Design
    W : ndarray (B, J, J)
        Working weights per block.
    z : ndarray (B, J)
        Working response minus the offset.
    """

    def __init__(self, design: Design, W: np.ndarray, z: np.ndarray) -> None:
        self.design = design
        self.W, self.z = W, z
        self.starts = design.starts()
        self.one = design.X.shape[0] == design.n_clusters
        X = design.X
        self.WX = np.einsum("bjk,bkp->bjp", W, X)
        self.Wz = np.einsum("bjk,bk->bj", W, z)
        self.XWX = np.einsum("bjp,bjr->pr", X, self.WX)
        self.XWz = np.einsum("bjp,bj->p", X, self.Wz)
        self.zWz = float(np.einsum("bj,bj->", z, self.Wz))
        # dM[b, j, r, k] = (Z E_k)[b, j, r]
        self.dM = np.einsum("bjq,kqr->bjrk", design.Z, design.covariance.templates)

    def _csum(self, a: np.ndarray) -> np.ndarray:
        return a if self.one else np.add.reduceat(a, self.starts, axis=0)

    def _pieces(self, theta: np.ndarray) -> dict[str, Any]:
        d = self.design
        lam = np.tensordot(theta, d.covariance.templates, axes=1)
        M = d.Z @ lam  # (B, J, q)
        WM = np.einsum("bjk,bkq->bjq", self.W, M)
        K = np.eye(d.n_random) + self._csum(np.einsum("bjq,bjr->bqr", M, WM))
        Bx = self._csum(np.einsum("bjq,bjp->bqp", WM, d.X))  # M' W X per cluster
        bz = self._csum(np.einsum("bjq,bj->bq", WM, self.z))  # M' W z
        L = np.linalg.cholesky(K)
        Kinv_Bx = np.linalg.solve(K, Bx)
        Kinv_bz = np.linalg.solve(K, bz[..., None])[..., 0]
        S = self.XWX - np.einsum("cqp,cqr->pr", Bx, Kinv_Bx)
        rhs = self.XWz - np.einsum("cqp,cq->p", Bx, Kinv_bz)
        beta = np.linalg.solve(S, rhs)
        v = Kinv_bz - np.einsum("cqp,p->cq", Kinv_Bx, beta)
        prss = self.zWz - float(np.einsum("cq,cq->", bz, Kinv_bz)) - float(rhs @ beta)
        logdet = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
        return {"M": M, "WM": WM, "K": K, "Bx": Bx, "Kinv_Bx": Kinv_Bx, "S": S, "beta": beta,
                "v": v, "prss": prss, "logdet": logdet}

    def profiled(self, theta: np.ndarray, reml: bool) -> tuple[float, np.ndarray, dict]:
        """Profiled ML or REML log-likelihood (without constants) and its exact gradient."""
        d = self.design
        pc = self._pieces(theta)
        value = -0.5 * (pc["logdet"] + pc["prss"])
        v_b = pc["v"][d.cluster]
        e = self.z - d.X @ pc["beta"] - np.einsum("bjq,bq->bj", pc["M"], v_b)
        We = np.einsum("bjk,bk->bj", self.W, e)
        # dK_k = dM' W M + M' W dM
        cross = self._csum(np.einsum("bjrk,bjq->brqk", self.dM, pc["WM"]))
        dK = cross + np.swapaxes(cross, 1, 2)  # (C, q, q, m)
        Kinv = np.linalg.inv(pc["K"])
        grad = -0.5 * np.einsum("cqr,crqk->k", Kinv, dK)
        grad += np.einsum("bj,bjrk,br->k", We, self.dM, v_b)
        if reml:
            sign, logdet_s = np.linalg.slogdet(pc["S"])
            value -= 0.5 * logdet_s
            dBx = self._csum(np.einsum("bjrk,bjp->brpk", self.dM, self.WX))  # dM' W X
            Kinv_dK_Kinv_Bx = np.einsum("cqr,crsk,csp->cqpk", Kinv, dK, pc["Kinv_Bx"])
            t1 = np.einsum("cqpk,cqr->prk", dBx, pc["Kinv_Bx"])
            dS = -(t1 + np.swapaxes(t1, 0, 1)) + np.einsum("cqp,cqrk->prk", pc["Bx"],
                                                            Kinv_dK_Kinv_Bx)
            grad -= 0.5 * np.einsum("pr,rpk->k", np.linalg.inv(pc["S"]), dS)
        return value, grad, pc

    def loglik(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Unprofiled ML log-likelihood in (beta, theta) and its exact gradient (for SEs)."""
        d = self.design
        p = d.n_fixed
        beta, theta = params[:p], params[p:]
        lam = np.tensordot(theta, d.covariance.templates, axes=1)
        M = d.Z @ lam
        WM = np.einsum("bjk,bkq->bjq", self.W, M)
        K = np.eye(d.n_random) + self._csum(np.einsum("bjq,bjr->bqr", M, WM))
        r = self.z - d.X @ beta
        v = np.linalg.solve(K, self._csum(np.einsum("bjq,bj->bq", WM, r))[..., None])[..., 0]
        v_b = v[d.cluster]
        e = r - np.einsum("bjq,bq->bj", M, v_b)
        We = np.einsum("bjk,bk->bj", self.W, e)
        value = -0.5 * (float(np.linalg.slogdet(K)[1].sum()) + float(np.sum(e * We))
                        + float(np.sum(v**2)))
        cross = self._csum(np.einsum("bjrk,bjq->brqk", self.dM, WM))
        dK = cross + np.swapaxes(cross, 1, 2)
        g_theta = -0.5 * np.einsum("cqr,crqk->k", np.linalg.inv(K), dK)
        g_theta += np.einsum("bj,bjrk,br->k", We, self.dM, v_b)
        g_beta = np.einsum("bjp,bj->p", d.X, We)
        return value, np.r_[g_beta, g_theta]


def _weights(design: Design, eta: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Gradient g (B, J) and working weights W (B, J, J) at eta (B, J)."""
    fam = design.family
    _, g, H, _ = fam.derivatives(eta[:, None, :], 2)
    g, H = g[:, 0], H[:, 0]
    if kind == "fisher":
        # every family's log-likelihood is linear in y, so E[H] is H at y = E[y | eta]
        try:
            expected = dataclasses.replace(fam, y=fam.mean(eta))  # type: ignore[type-var]
            H = expected.derivatives(eta[:, None, :], 2)[2][:, 0]
        except (TypeError, ValueError) as exc:
            raise FitError(f"Fisher weights are unavailable for the {fam.name} family; use "
                           "weights='observed'") from exc
    elif kind != "observed":
        raise FitError(f"unknown weights {kind!r}; use 'fisher' or 'observed'")
    return g, -H


def fit_pql(
    design: Design,
    start: np.ndarray | None = None,
    *,
    criterion: str = "ml",
    weights: str = "fisher",
    tol: float = 1e-8,
    max_iter: int = 200,
    loglik: str = "laplace",
    n_nodes: int | None = None,
) -> FitResult:
    """Fit a GLLMM by penalized quasi-likelihood (Breslow & Clayton 1993).

    See the module docstring for the working model and the log-likelihood reported.

    Parameters
    ----------
    design : Design
    start : ndarray (p + m,), optional
        Default: the GLLM fit with SDs 0.5 (as ``fit``).
    criterion : {"ml", "reml"}
        Estimation of (beta, theta) in each working linear mixed model.
    weights : {"fisher", "observed"}
        Expected (Breslow & Clayton's iterative weights) or observed information in eta.
    tol : float
        Stop when ``max |x_new - x| / (1 + |x|) < tol``.
    loglik : {"laplace", "agq", "pql"}
        ``laplace`` / ``agq`` (``n_nodes`` per dimension, default 15): the marginal
        log-likelihood evaluated at the PQL estimates; ``pql``: PQL's own approximation.

    Returns
    -------
    FitResult
        ``method == "pql"``; ``extra`` holds ``loglik_method``, ``pql_loglik``, ``criterion``,
        ``weights``. Posterior modes are the PQL BLUPs (exact posterior modes at the estimates).

    References
    ----------
    Breslow, N. E. and Clayton, D. G. (1993), JASA 88, 9-25. Coull & Agresti (2003), Section 3.4.
    """
    if not isinstance(design, Design):
        raise SpecError(f"fit_pql needs a Design (from gllmm.build_design or gllmm.models), "
                        f"got {type(design).__name__}")
    if design.n_random == 0:
        raise FitError("the design has no random effects: PQL reduces to the GLM; use gllmm.fit")
    if criterion not in ("ml", "reml"):
        raise FitError(f"unknown criterion {criterion!r}; use 'ml' or 'reml'")
    if loglik not in ("laplace", "agq", "pql"):
        raise FitError(f"unknown loglik {loglik!r}; use 'laplace', 'agq' or 'pql'")
    check_full_rank(design)
    t0 = time.perf_counter()
    d = design
    p = d.n_fixed
    x0 = default_start(d) if start is None else np.asarray(start, dtype=float).copy()
    x = x0.copy()
    v = np.zeros((d.n_clusters, d.n_random))
    lower = d.param_lower[p:]
    reml = criterion == "reml"
    log: list[dict[str, Any]] = []
    converged = False
    it = 0
    work = None
    for it in range(1, max_iter + 1):
        lam = np.tensordot(x[p:], d.covariance.templates, axes=1)
        eta = d.X @ x[:p] + d.offset + np.einsum("bjq,bq->bj", d.Z @ lam, v[d.cluster])
        g, W = _weights(d, eta, weights)
        z = eta - d.offset + np.einsum("bjk,bk->bj", np.linalg.pinv(W), g)
        work = WorkingModel(d, W, z)

        def negative(theta: np.ndarray, wm: WorkingModel = work) -> tuple[float, np.ndarray]:
            val, grad, _ = wm.profiled(theta, reml)
            return -val, -grad

        res = minimize_bfgs(negative, x[p:], lower, gtol=1e-10, ftol=1e-14, max_iter=1000)
        theta = res.x
        _, _, pc = work.profiled(theta, reml)
        new = np.r_[pc["beta"], theta]
        change = float(np.max(np.abs(new - x) / (1.0 + np.abs(x))))
        log.append({"stage": "pql", "iteration": it, "params": new.copy(),
                    "max_relative_change": change, "lmm_loglik": -float(res.fun)})
        x, v = new, pc["v"]
        if change < tol:
            converged = True
            break
    t_iter = time.perf_counter() - t0

    # final quantities at the estimates
    lam = np.tensordot(x[p:], d.covariance.templates, axes=1)
    eta = d.X @ x[:p] + d.offset + np.einsum("bjq,bq->bj", d.Z @ lam, v[d.cluster])
    l_blocks = d.family.derivatives(eta[:, None, :], 0)[0][:, 0]
    g, W = _weights(d, eta, weights)
    work_final = WorkingModel(d, W, eta - d.offset + np.einsum("bjk,bk->bj", np.linalg.pinv(W), g))
    K = work_final._pieces(x[p:])["K"]
    pql_ll = (float(l_blocks.sum()) + float(d.family.constant().sum())
              - 0.5 * float(np.sum(v**2)) - 0.5 * float(np.linalg.slogdet(K)[1].sum()))
    names = d.param_names
    boundary = tuple(names[p + k] for k in range(d.n_theta)
                     if np.isfinite(lower[k]) and x[p + k] <= lower[k] + 1e-10)
    cov = _lmm_covariance(work_final, x, [names.index(b) for b in boundary])
    if loglik == "pql":
        objective: Any = MarginalLikelihood(d, 1)
        value, method = pql_ll, "pql approximation (Laplace form with PQL weights)"
    else:
        nodes = 1 if loglik == "laplace" else (15 if n_nodes is None else int(n_nodes))
        objective = MarginalLikelihood(d, nodes)
        value = objective.value_and_gradient(x, gradient=False)[0]
        method = ("laplace" if nodes == 1 else f"agq ({nodes} nodes per dimension)") + \
            " at the PQL estimates"
    posterior = objective.posterior(x)
    opt = OptSummary(
        method="pql", optimizer=f"PQL ({criterion.upper()} working LMM, projected BFGS in theta)",
        n_nodes=0, initial=x0, final=x, initial_loglik=float("nan"), final_loglik=value,
        n_evaluations=it, n_iterations=it,
        return_code="converged" if converged else "iteration limit", converged=converged,
        tolerances={"tol": tol, "max_relative_change": log[-1]["max_relative_change"]},
        log=log, timings={"pql": t_iter, "final": time.perf_counter() - t0 - t_iter},
        boundary=boundary,
    )
    if not converged:
        warnings.warn(f"PQL did not converge in {max_iter} iterations", ConvergenceWarning,
                      stacklevel=2)
    if boundary:
        warnings.warn("variance estimated as zero (boundary fit) for " + ", ".join(boundary),
                      BoundaryWarning, stacklevel=2)
    extra = {"loglik_method": method, "pql_loglik": pql_ll, "criterion": criterion,
             "weights": weights}
    return FitResult(design=d, params=x, cov=cov, loglik=value, opt=opt, posterior=posterior,
                     extra=extra)


def _lmm_covariance(work: WorkingModel, x: np.ndarray, fixed: list[int]) -> np.ndarray:
    """Inverse observed information of the working LMM (central differences of its gradient)."""
    n = len(x)
    free = np.array([i for i in range(n) if i not in fixed], dtype=int)
    hess = np.zeros((len(free), len(free)))
    for a, i in enumerate(free):
        h = 1e-5 * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        hess[a] = (work.loglik(xp)[1][free] - work.loglik(xm)[1][free]) / (2 * h)
    info = -(hess + hess.T) / 2
    cov = np.full((n, n), np.nan)
    try:
        sub = np.linalg.inv(info)
        if np.all(np.diag(sub) > 0):
            cov[np.ix_(free, free)] = sub
    except np.linalg.LinAlgError:
        pass
    return cov
