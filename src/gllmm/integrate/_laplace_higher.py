"""Second-order Laplace approximation of the marginal log-likelihood (``method="laplace2"``).

For cluster c, with the spherical effects ``v ~ N(0, I)`` and
``h(v) = l_c(X beta + Z Lambda v) - |v|^2 / 2``, mode ``v_hat``, ``K = -h''(v_hat)``,
``A = K^{-1}`` and ``h_ijk``, ``h_ijkl`` the third and fourth derivatives of h at the mode
(the prior contributes none), the log of the integral is

    log L_c = [Laplace] + eps_c + O(n^-2),
    eps_c = 1/8 sum h_ijkl A_ij A_kl + 1/8 sum h_ijk h_lmn A_ij A_kl A_mn
            + 1/12 sum h_ijk h_lmn A_il A_jm A_kn,

the O(1/n) term of the expansion of ``E exp(h3 z^3 / 6 + h4 z^4 / 24)``, ``z ~ N(0, A)``
(Shun & McCullagh 1995, eq. 2.3; Raudenbush, Yang & Yosef 2000, who carry it to 6th order for
GLMMs; Steele 1996 uses it inside EM; glmmsr's ``find_epsilon_1`` has the same three terms with
gamma = -h). In one dimension it is ``h4 / (8 K^2) + 5 h3^2 / (24 K^3)``.

Because the linear predictor is linear in v, ``h_ijk = sum_b T_b[M_b, M_b, M_b]`` and
``h_ijkl = sum_b F_b[M_b, M_b, M_b, M_b]`` with ``M_b = Z_b Lambda`` (J x q) and ``T_b``,
``F_b`` the family's third and fourth derivatives in eta. The fourth-derivative term is
contracted block by block in eta space (``S_b = M_b A M_b'``), the third-derivative terms in
v space (a q^3 tensor per cluster).

The correction's gradient is by central differences (step ``1e-4 max(1, |x|)``, error about
1e-9): its exact form would need fifth derivatives of the family and the mode's second
derivatives, and the correction is small and smooth. The Laplace part keeps its exact gradient.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..errors import FitError
from ..links import Binomial, ContinuationRatio, Multinomial, Poisson
from ..spec._design import Design
from ._agq import MarginalLikelihood

#: step of the central differences of the correction, relative to max(1, |x|)
REL_STEP = 1e-4
#: step of the central differences of a family's third derivative (families without a closed
#: fourth derivative): truncation ~1e-8 relative
ETA_STEP = 1e-4


def fourth_derivative(family: object, eta: np.ndarray) -> np.ndarray:
    """``d^4 l / d eta_a d eta_b d eta_c d eta_d`` per block, (B, J, J, J, J), at ``eta`` (B, J).

    Closed forms: Poisson ``-mu``; binomial logit ``-n v (1 - 6 v)``, ``v = p (1 - p)`` (and
    the continuation-ratio binomials); multinomial / baseline logit ``-n kappa_4``, the fourth
    cumulant of a one-hot draw with probabilities p, the eta-derivative of the third
    (``_families.Multinomial``). Other families: central differences of their exact third
    derivative.
    """
    kind = type(family)
    if kind is Poisson:
        return -np.exp(eta)[..., None, None, None]
    if kind in (Binomial, ContinuationRatio):
        if kind is Binomial:
            r = family.y.sum(axis=1, keepdims=True)
        else:
            r = family._at_risk
        p = expit(eta)
        v = p * (1.0 - p)
        d = -r * v * (1.0 - 6.0 * v)
        eye = np.eye(eta.shape[-1])
        diag4 = eye[:, :, None, None] * eye[None, :, :, None] * eye[None, None, :, :]
        return d[:, :, None, None, None] * diag4
    if kind is Multinomial:
        n = family.y.sum(axis=1)
        lse = eta.max(axis=-1, keepdims=True)
        p = np.exp(eta - lse)
        p /= p.sum(axis=-1, keepdims=True)
        e = np.eye(eta.shape[-1])
        pa = p[:, :, None, None, None]
        pb = p[:, None, :, None, None]
        pc = p[:, None, None, :, None]
        pd = p[:, None, None, None, :]
        d_ab = e[:, :, None, None]
        d_ac = e[:, None, :, None]
        d_ad = e[:, None, None, :]
        d_bc = e[None, :, :, None]
        d_bd = e[None, :, None, :]
        d_cd = e[None, None, :, :]
        # d/d eta_d of kappa_3 = d_ab p_a (d_ac - p_c) - p_a p_b (d_ac + d_bc - 2 p_c),
        # with d p_a / d eta_d = p_a (d_ad - p_d)
        k4 = (d_ab * pa * ((d_ad - pd) * (d_ac - pc) - pc * (d_cd - pd))
              - pa * pb * (d_ad + d_bd - 2.0 * pd) * (d_ac + d_bc - 2.0 * pc)
              + 2.0 * pa * pb * pc * (d_cd - pd))
        return -n[:, None, None, None, None] * k4
    jn = eta.shape[-1]
    out = np.empty(eta.shape + (jn,) * 3)
    for a in range(jn):
        step = ETA_STEP * np.maximum(1.0, np.abs(eta[:, a]))
        up, down = eta.copy(), eta.copy()
        up[:, a] += step
        down[:, a] -= step
        t_up = family.derivatives(up[:, None, :], 3)[3][:, 0]  # type: ignore[attr-defined]
        t_down = family.derivatives(down[:, None, :], 3)[3][:, 0]  # type: ignore[attr-defined]
        out[..., a] = (t_up - t_down) / (2.0 * step[:, None, None, None])
    # T is symmetric in its three indices: averaging over where the differenced index sits
    # makes the estimate symmetric in all four
    return (out + np.swapaxes(out, -1, -2) + np.swapaxes(out, -1, -3)
            + np.swapaxes(out, -1, -4)) / 4.0


def laplace_correction(obj: MarginalLikelihood, params: np.ndarray) -> np.ndarray:
    """``eps_c`` per cluster (C,): the O(1/n) term added to Laplace's log-integral (module
    docstring), at the posterior modes of ``params``."""
    d = obj.design
    params = np.asarray(params, dtype=float)
    if d.n_random == 1 and d.n_theta == 1:
        from ._agq_scalar import scalar_modes

        info = scalar_modes(obj, params)
    else:
        info = obj.modes(params)
    _, theta = obj.split(params)
    M = d.Z @ obj._factor(theta)  # (B, J, q)
    cl = d.cluster
    T = d.family.derivatives(info.eta[:, None, :], 3)[3][:, 0]  # (B, J, J, J)
    F = fourth_derivative(d.family, info.eta)  # (B, J, J, J, J)
    chol_inv = np.linalg.inv(info.chol)
    A = np.swapaxes(chol_inv, -1, -2) @ chol_inv  # K^{-1}, (C, q, q)
    S = np.einsum("bjq,bqr,bkr->bjk", M, A[cl], M)  # M A M' per block
    quartic = obj._csum(np.einsum("bjklm,bjk,blm->b", F, S, S, optimize=True))
    # sum h_ijk A_ij = sum_b M_b' (T_b : S_b)
    t = obj._csum(np.einsum("bjkl,bjk,blq->bq", T, S, M, optimize=True))
    cubic_a = np.einsum("cq,cqr,cr->c", t, A, t)
    h3 = obj._csum(np.einsum("bjkl,bjq,bkr,bls->bqrs", T, M, M, M, optimize=True))
    h3a = np.einsum("cijk,cil->cljk", h3, A)
    h3a = np.einsum("cljk,cjm->clmk", h3a, A)
    h3a = np.einsum("clmk,ckn->clmn", h3a, A)
    cubic_b = np.einsum("clmn,clmn->c", h3a, h3)
    return quartic / 8.0 + cubic_a / 8.0 + cubic_b / 12.0


class HigherOrderLaplace(MarginalLikelihood):
    """The Laplace log-likelihood plus the second-order correction ``sum_c eps_c`` (module
    docstring), with its gradient: Laplace's exact one plus central differences of the
    correction.

    Parameters
    ----------
    design : Design
        Stacked arrays of the model (any family with third derivatives; fourth derivatives in
        closed form for Poisson, binomial, continuation-ratio and multinomial logits).

    Notes
    -----
    Evaluated cluster by cluster with dense q x q algebra (the ``scalar`` or ``product``
    strategy); the sparse (crossed) and cell-wise strategies have no correction.
    """

    def __init__(self, design: Design, inner_tol: float = 1e-10) -> None:
        super().__init__(design, 1, inner_tol)
        self.sparse = False

    @property
    def use_kernel(self) -> bool:
        """Never: the compiled kernels' BFGS loop and exact Hessians are those of plain
        Laplace, so the corrected objective is evaluated and differenced in numpy."""
        return False

    @use_kernel.setter
    def use_kernel(self, value: bool) -> None:
        pass  # strategy='scalar' is this class's numpy scalar path already

    @property
    def strategy(self) -> str:
        d = self.design
        return "scalar" if d.n_random == 1 and d.n_theta == 1 else "product"

    def with_counts(self, y: np.ndarray) -> HigherOrderLaplace:
        new = super().with_counts(y)
        new.__class__ = HigherOrderLaplace
        return new  # type: ignore[return-value]

    def correction(self, params: np.ndarray) -> float:
        """The correction ``sum_c eps_c`` at ``params``."""
        if self.design.n_random == 0:
            return 0.0
        return float(laplace_correction(self, params).sum())

    def value_and_gradient(
        self, params: np.ndarray, gradient: bool = True
    ) -> tuple[float, np.ndarray | None]:
        """Corrected marginal log-likelihood (full scale) and, optionally, its gradient."""
        if self.sparse:
            raise FitError("method='laplace2' corrects each cluster's integral with dense "
                           "q x q algebra and has no sparse strategy; use strategy='product' "
                           "or method='laplace'")
        params = np.asarray(params, dtype=float)
        value, grad = super().value_and_gradient(params, gradient)
        eps = self.correction(params)
        if not gradient or grad is None:
            return value + eps, None
        deps = np.zeros(len(params))
        for k in range(len(params)):
            step = REL_STEP * max(1.0, abs(params[k]))
            up, down = params.copy(), params.copy()
            up[k] += step
            down[k] -= step
            deps[k] = (self.correction(up) - self.correction(down)) / (2.0 * step)
        return value + eps, grad + deps
