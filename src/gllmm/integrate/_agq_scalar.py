"""The AGQ objective for one random effect per cluster (q = 1), with q-dimensional algebra
written out as scalars.

Same formulas as ``_agq.py`` (the general q case): ``K = 1 - M'HM``, nodes
``v_j = v_hat + z_j / sqrt(K)``, ``d(1/sqrt K) = -dK / (2 K^{3/2})``. Scalar random effects
are the common case (cell-wise smoothing, random odds ratios by stratum), and the batched
q x q linear algebra of the general path costs more than the model itself there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import FitError
from ._newton import ModeInfo, halving_step

if TYPE_CHECKING:
    from ._agq import MarginalLikelihood


def scalar_modes(obj: MarginalLikelihood, params: np.ndarray, max_iter: int = 100) -> ModeInfo:
    d = obj.design
    beta, theta = obj.split(params)
    eta0 = d.X @ beta + d.offset
    cl = d.cluster
    M = d.Z[:, :, 0] * float(obj._factor(theta)[0, 0])  # (B, J)
    fam = d.family

    def evaluate(v_: np.ndarray) -> tuple:
        eta_ = eta0 + M * v_[cl][:, None]
        l_, g_, H_, _ = fam.derivatives(eta_[:, None, :], 2)
        h_ = obj._csum(l_[:, 0]) - 0.5 * v_ * v_
        return h_, eta_, g_[:, 0], H_[:, 0]

    v = obj._v_start[:, 0].copy()
    h, eta, g, H = evaluate(v)
    if not np.all(np.isfinite(h)):
        v = np.zeros_like(v)
        h, eta, g, H = evaluate(v)
    converged = False
    for _ in range(max_iter):
        grad = obj._csum((M * g).sum(axis=1)) - v
        K = 1.0 - obj._csum(np.einsum("bj,bjk,bk->b", M, H, M))
        if not np.all(np.isfinite(K)):
            raise FitError("non-finite curvature while searching for the posterior modes")
        step = grad / np.where(K > 1e-6, K, np.abs(K) + 1e-3)
        if np.max(np.abs(step), initial=0.0) < obj.inner_tol:
            # a last full step puts v within ~tol^2 of the mode (Newton converges
            # quadratically): gradients then carry no mode error
            v = v + step
            h, eta, g, H = evaluate(v)
            converged = True
            break
        v, (h, eta, g, H) = halving_step(evaluate, v, step, h, lambda t: t)
    K = 1.0 - obj._csum(np.einsum("bj,bjk,bk->b", M, H, M))
    if np.any(~(K > 0)):
        raise FitError("curvature at the posterior mode is not positive definite")
    obj._v_start = v[:, None]
    return ModeInfo(v[:, None], np.sqrt(K)[:, None, None], eta, converged)


def _kernel_inputs(obj: MarginalLikelihood) -> dict | None:
    """Arrays the compiled kernel needs, made once per objective (None: use numpy, where numba
    is missing or the family's ``compiled()`` hook gives no code the kernel covers)."""
    cached = getattr(obj, "_kernel_cache", False)
    if cached is not False:
        return cached
    from .. import _jit
    from ..links._families import BINOMIAL, CUMULATIVE_LOGIT, POISSON

    d = obj.design
    fam = d.family.compiled() if _jit.HAVE_NUMBA else None
    out = None
    # Design keeps cluster non-decreasing, so each cluster is one run of blocks
    if (fam is not None and fam.code in (POISSON, BINOMIAL, CUMULATIVE_LOGIT)
            and len(obj._starts) == d.n_clusters):
        c = np.ascontiguousarray
        lam = c(obj._templates[:, 0, 0])  # Lambda = theta . lam (1 x 1)
        z = c(d.Z[:, :, 0])
        out = {
            "family": fam,
            "X": c(d.X), "Z": z, "offset": c(d.offset),
            "dM": z[:, :, None] * lam,  # Z E_k, the dense _dM of q = 1 without its einsum
            "starts": np.append(obj._starts, d.X.shape[0]).astype(np.int64),
            "rule": (c(obj.nodes[:, 0]), c(obj.log_weights), c(obj.half_z2)),
            "lam": lam,
        }
    obj._kernel_cache = out
    return out


def _raise_status(status: int) -> None:
    if status == 0:  # _mode_newton.OK, without an import per kernel call
        return
    from ._mode_newton import NONFINITE_CURVATURE, NOT_POSITIVE

    if status == NONFINITE_CURVATURE:
        raise FitError("non-finite curvature while searching for the posterior modes")
    if status == NOT_POSITIVE:
        raise FitError("curvature at the posterior mode is not positive definite")


def _args(inputs: dict) -> tuple:
    return (*inputs["family"], inputs["X"], inputs["offset"], inputs["Z"], inputs["lam"],
            inputs["dM"], inputs["starts"], *inputs["rule"])


def kernel_evaluate(
    obj: MarginalLikelihood, params: np.ndarray, gradient: bool, inputs: dict
) -> tuple[float, np.ndarray | None, dict]:
    """Value, gradient and per-cluster results (mode, sqrt K, posterior mean/SD of v)."""
    from ._scalar_kernel import scalar_agq_at

    v = obj._v_start[:, 0].copy()
    n_cl = len(v)
    grad = np.empty(len(params))
    L = np.empty(n_cl)
    post = np.empty((n_cl, 2))
    value, status = scalar_agq_at(*_args(inputs), v, obj.inner_tol, 100,
                                  np.ascontiguousarray(params, dtype=float), gradient, grad, L,
                                  post)
    _raise_status(status)
    obj._v_start = v[:, None]
    return float(value) + obj._constant, (grad if gradient else None), {"v": v, "L": L,
                                                                         "post": post}


def kernel_hessian(obj: MarginalLikelihood, params: np.ndarray, free: np.ndarray,
                   rel_step: float, inputs: dict) -> np.ndarray:
    """Forward-difference Jacobian of the exact gradient over ``free`` (one compiled call)."""
    from ._scalar_kernel import scalar_agq_hessian

    v = obj._v_start[:, 0].copy()
    hess = np.empty((len(free), len(free)))
    status = scalar_agq_hessian(*_args(inputs), v, obj.inner_tol, 100,
                                np.ascontiguousarray(params, dtype=float),
                                np.asarray(free, dtype=np.int64), rel_step, hess)
    _raise_status(status)
    obj.n_evaluations += len(free) + 1
    return hess


def kernel_negative(obj: MarginalLikelihood, inputs: dict) -> tuple:
    """(name, data) of the compiled negative log-likelihood; the modes are shared with ``obj``
    (updated in place), so later calls start from where the optimiser left them."""

    v = obj._v_start[:, 0].copy()
    obj._v_start = v[:, None]
    n_cl = len(v)
    data = (*_args(inputs), v, obj.inner_tol, 100, obj._constant, np.empty(n_cl),
            np.empty((n_cl, 2)))
    return "scalar_agq", data


def kernel_posterior(obj: MarginalLikelihood, params: np.ndarray,
                     inputs: dict) -> dict[str, np.ndarray]:
    """``posterior_summary`` of the scalar case from one kernel call."""
    d = obj.design
    _, _, r = kernel_evaluate(obj, np.asarray(params, dtype=float), False, inputs)
    lam = float(params[d.n_fixed:] @ inputs["lam"])
    v = r["v"]
    eta0 = inputs["X"] @ params[: d.n_fixed] + inputs["offset"]
    return {
        "mode": (lam * v)[:, None],
        "mean": (lam * r["post"][:, 0])[:, None],
        "sd": (abs(lam) * r["post"][:, 1])[:, None],
        "mode_sd": (abs(lam) / r["L"])[:, None],
        "eta_mode": eta0 + inputs["Z"] * lam * v[d.cluster][:, None],
    }


def scalar_value_and_gradient(
    obj: MarginalLikelihood, params: np.ndarray, gradient: bool = True
) -> tuple[float, np.ndarray | None]:
    inputs = _kernel_inputs(obj) if getattr(obj, "use_kernel", True) else None
    if inputs is not None:
        return kernel_evaluate(obj, params, gradient, inputs)[:2]
    d = obj.design
    beta, theta = obj.split(params)
    fam = d.family
    cl = d.cluster
    info = scalar_modes(obj, params)
    v_hat = info.v[:, 0]
    L = info.chol[:, 0, 0]  # sqrt(K)
    K = L * L
    lam = float(obj._factor(theta)[0, 0])
    M = d.Z[:, :, 0] * lam
    z = obj.nodes[:, 0]
    v_n = v_hat[:, None] + z[None, :] / L[:, None]  # (C, N)
    eta0 = d.X @ beta + d.offset
    eta_n = eta0[:, None, :] + M[:, None, :] * v_n[cl][:, :, None]
    l_n, g_n, _, _ = fam.derivatives(eta_n, 1 if gradient else 0)
    s = obj.log_weights + obj._csum(l_n) - 0.5 * v_n * v_n + obj.half_z2
    smax = s.max(axis=1)
    es = np.exp(s - smax[:, None])
    tot = es.sum(axis=1)
    lse = smax + np.log(tot)
    value = float((lse - np.log(L)).sum()) + obj._constant
    if not gradient:
        return value, None
    p = d.n_fixed
    dM = obj._dM[:, :, 0, :]  # (B, J, m)
    _, g_h, H_h, T_h = fam.derivatives(info.eta[:, None, :], 3)
    g_h, H_h, T_h = g_h[:, 0], H_h[:, 0], T_h[:, 0]
    vb = v_hat[cl]
    dzeta_fixed = np.concatenate([d.X, dM * vb[:, None, None]], axis=2)  # (B, J, P)
    HM = np.einsum("bjk,bk->bj", H_h, M)
    dF = np.einsum("bj,bjP->bP", HM, dzeta_fixed)
    dF[:, p:] += np.einsum("bjk,bj->bk", dM, g_h)
    dF = obj._csum(dF)
    dv = dF / K[:, None]
    dzeta = dzeta_fixed + M[:, :, None] * dv[cl][:, None, :]
    MT = np.einsum("bj,bjkl,bk->bl", M, T_h, M)  # M' T[.] M as a vector in l
    dK = -np.einsum("bl,blP->bP", MT, dzeta)
    dK[:, p:] -= 2.0 * np.einsum("bjk,bj->bk", dM, HM)
    dK = obj._csum(dK)  # (C, P)
    grad_c = -0.5 * dK / K[:, None]
    dLinv = -0.5 * dK / (K * L)[:, None]
    rho = es / tot[:, None]
    part = obj._csum(np.einsum("bnj,bjp->bnp", g_n, d.X))
    part_t = obj._csum(np.einsum("bnj,bjk->bnk", g_n, dM) * v_n[cl][:, :, None])
    grad_v = obj._csum((g_n * M[:, None, :]).sum(axis=-1)) - v_n  # (C, N)
    rp = rho * grad_v
    grad_c[:, :p] += np.einsum("cn,cnp->cp", rho, part)
    grad_c[:, p:] += np.einsum("cn,cnk->ck", rho, part_t)
    grad_c += rp.sum(axis=1)[:, None] * dv + (rp * z[None, :]).sum(axis=1)[:, None] * dLinv
    return value, grad_c.sum(axis=0)
