"""Families whose cell probabilities have no closed form in eta: inversion nested in quadrature.

Each block is a multinomial with probabilities ``pi`` defined implicitly by the generalized
log-linear model ``C log(A pi) = eta`` (paper eq. 1.1-1.2; Sections 3 and 6): with ``K`` cells
and ``K - 1`` rows of C the model determines pi. Parametrise ``pi = softmax(theta~)``,
``theta~ = (theta, 0)``; then ``h(theta) = log(A pi) = log(A exp(theta~)) - lse(theta~)`` and
its derivatives are the cumulants of the categorical distributions ``p_r ∝ A_r. exp(theta~)``
minus those of ``pi`` (all tensors exact):

    dh_r/dtheta = p_r - pi,   d2 = Cov(p_r) - Cov(pi),   d3 = kappa3(p_r) - kappa3(pi).

The inversion ``G(theta) = C h(theta) = eta`` is solved by Newton's method at every block and
quadrature node; derivatives of ``theta(eta)`` follow from the inverse function theorem,

    T1 = G1^{-1},  T2 = -T1 G2[T1, T1],
    T3 = -T1 (G3[T1, T1, T1] + G2[T2_ab, T1_c] + G2[T2_ac, T1_b] + G2[T1_a, T2_bc]),

and the log-likelihood ``l = y' theta~ - n lse(theta~)`` is chained through them. So the
engine's AGQ with exact gradients works unchanged for models such as marginal cumulative logits
with global odds ratios (model 6.1-6.3), for which no package offers random effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError, SpecError
from ._families import Derivs, Family, multinomial_constant


def _cumulants(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, covariance and third cumulant of categorical distributions with probs ``w``."""
    k = w.shape[-1]
    eye = np.eye(k)
    k2 = w[..., :, None] * eye - w[..., :, None] * w[..., None, :]
    wi = w[..., :, None, None]
    wj = w[..., None, :, None]
    wk = w[..., None, None, :]
    d_ijk = eye[:, :, None] * eye[None, :, :]
    k3 = (d_ijk * wi - eye[:, :, None] * wi * wk - eye[:, None, :] * wi * wj
          - eye[None, :, :] * wj * wi + 2 * wi * wj * wk)
    return w, k2, k3


@dataclass
class ImplicitMultinomial(Family):
    """Multinomial blocks with ``C log(A pi) = eta``, pi solved numerically.

    Parameters
    ----------
    y : ndarray (B, K)
    C : ndarray (K - 1, R)
    A : ndarray (R, K), non-negative, every row with a positive entry
    """

    y: np.ndarray
    C: np.ndarray
    A: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "implicit-multinomial"
    coefficient: bool = True
    tol: float = 1e-12
    max_iter: int = 100

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        self.C = np.asarray(self.C, dtype=float)
        self.A = np.asarray(self.A, dtype=float)
        k = self.y.shape[1]
        if self.A.ndim != 2 or self.A.shape[1] != k:
            raise SpecError(f"A must have {k} columns (one per cell), got shape {self.A.shape}")
        if self.C.ndim != 2 or self.C.shape != (k - 1, self.A.shape[0]):
            raise SpecError(f"C must have shape ({k - 1}, {self.A.shape[0]}) for {k} cells and "
                            f"{self.A.shape[0]} rows of A, got {self.C.shape}")
        if np.any(self.A < 0) or np.any(self.A.sum(axis=1) <= 0):
            raise SpecError("A must be non-negative with a positive entry in every row")
        self.n_eta = k - 1
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)
        # G is invertible near pi uniform only if C d log(A pi) / d theta has full rank
        g1 = self._g_derivs(np.zeros((1, k - 1)), 1)[1][0]
        if np.linalg.matrix_rank(g1) < k - 1:
            raise SpecError("C log(A pi) does not determine pi: its Jacobian at the uniform "
                            "table has rank "
                            f"{np.linalg.matrix_rank(g1)} < {k - 1} (constraints dependent)")
        self._theta_cache: np.ndarray | None = None

    # --------------------------------------------------------------- G and its derivatives
    def _g_derivs(self, theta: np.ndarray, order: int) -> tuple:
        full = np.concatenate([theta, np.zeros(theta.shape[:-1] + (1,))], axis=-1)
        full = full - full.max(axis=-1, keepdims=True)
        e = np.exp(full)
        pi = e / e.sum(axis=-1, keepdims=True)
        aw = e[..., None, :] * self.A  # (..., R, K)
        w = aw.sum(axis=-1)
        g0 = np.log(w) - np.log(e.sum(axis=-1))[..., None]
        G = g0 @ self.C.T
        if order == 0:
            return (G,)
        p = aw / w[..., None]
        m = self.n_eta
        mp, k2p, k3p = _cumulants(p) if order >= 2 else (p, None, None)
        mpi, k2pi, k3pi = _cumulants(pi) if order >= 2 else (pi, None, None)
        h1 = (mp - mpi[..., None, :])[..., :m]  # (..., R, m)
        G1 = np.einsum("jr,...ra->...ja", self.C, h1)
        if order == 1:
            return G, G1, pi
        h2 = (k2p - k2pi[..., None, :, :])[..., :m, :m]
        G2 = np.einsum("jr,...rab->...jab", self.C, h2)
        G3 = None
        if order >= 3:
            h3 = (k3p - k3pi[..., None, :, :, :])[..., :m, :m, :m]
            G3 = np.einsum("jr,...rabc->...jabc", self.C, h3)
        return G, G1, pi, G2, G3

    def solve(self, eta: np.ndarray) -> np.ndarray:
        """theta with ``C log(A softmax(theta, 0)) = eta`` by damped Newton, all blocks at once.

        Starts from the last solution (when shapes match), then from the uniform table for
        blocks that failed.
        """
        shape = eta.shape
        flat = eta.reshape(-1, shape[-1])
        if not np.all(np.isfinite(flat)):
            raise FitError("non-finite linear predictor in the inversion C log(A pi) = eta")
        start = np.zeros_like(flat)
        if self._theta_cache is not None and self._theta_cache.shape == flat.shape:
            start = self._theta_cache
        theta, ok = self._newton(flat, start.copy())
        if not ok.all():
            retry, ok2 = self._newton(flat[~ok], np.zeros((int((~ok).sum()), flat.shape[1])))
            theta[~ok] = retry
            if not ok2.all():
                raise FitError("the inversion C log(A pi) = eta did not converge: the linear "
                               "predictor may lie outside the model's range")
        self._theta_cache = theta.copy()
        return theta.reshape(shape)

    def _newton(self, flat: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            for _ in range(self.max_iter):
                G, G1, _ = self._g_derivs(theta, 1)
                r = flat - G
                err = np.abs(r).max(axis=-1)
                err = np.where(np.isfinite(err), err, np.inf)
                if np.all(err < self.tol):
                    break
                try:
                    step = np.linalg.solve(G1, r[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    step = np.linalg.lstsq(G1.reshape(-1, G1.shape[-1]), r.reshape(-1),
                                           rcond=None)[0].reshape(r.shape) if len(r) == 1 \
                        else np.zeros_like(r)
                step = np.where(np.isfinite(step), step, 0.0)
                t = np.ones(len(theta))
                for _half in range(30):
                    trial = theta + t[:, None] * step
                    new_err = np.abs(flat - self._g_derivs(trial, 0)[0]).max(axis=-1)
                    bad = ~(new_err < err) & (err >= self.tol)
                    if not bad.any():
                        break
                    t = np.where(bad, t / 2, t)
                theta = theta + t[:, None] * step
            G = self._g_derivs(theta, 0)[0]
            resid = np.abs(flat - G).max(axis=-1)
        ok = np.isfinite(resid) & (resid < 1e-8) & np.all(np.isfinite(theta), axis=-1)
        return theta, ok

    # --------------------------------------------------------------- family interface
    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        theta = self.solve(eta)
        y = self.y[:, None, :]
        n = y.sum(axis=-1)
        full = np.concatenate([theta, np.zeros(theta.shape[:-1] + (1,))], axis=-1)
        mx = full.max(axis=-1, keepdims=True)
        lse = (mx + np.log(np.exp(full - mx).sum(axis=-1, keepdims=True)))[..., 0]
        l = (y * full).sum(axis=-1) - n * lse
        if order == 0:
            return l, None, None, None
        m = self.n_eta
        out = self._g_derivs(theta, max(order, 2) if order >= 2 else 1)
        G1, pi = out[1], out[2]
        T1 = np.linalg.inv(G1)  # d theta / d eta: (..., m, m)
        m1 = (y - n[..., None] * pi)[..., :m]
        g = np.einsum("...i,...ia->...a", m1, T1)
        if order == 1:
            return l, g, None, None
        G2, G3 = out[3], out[4]
        _, k2, k3 = _cumulants(pi)
        m2 = -n[..., None, None] * k2[..., :m, :m]
        T2 = -np.einsum("...ir,...rst,...sa,...tb->...iab", T1, G2, T1, T1)
        H = (np.einsum("...ij,...ia,...jb->...ab", m2, T1, T1)
             + np.einsum("...i,...iab->...ab", m1, T2))
        T = None
        if order >= 3:
            inner = (np.einsum("...rstu,...sa,...tb,...uc->...rabc", G3, T1, T1, T1)
                     + np.einsum("...rst,...sab,...tc->...rabc", G2, T2, T1)
                     + np.einsum("...rst,...sac,...tb->...rabc", G2, T2, T1)
                     + np.einsum("...rst,...sa,...tbc->...rabc", G2, T1, T2))
            T3 = -np.einsum("...ir,...rabc->...iabc", T1, inner)
            m3 = -n[..., None, None, None] * k3[..., :m, :m, :m]
            T = (np.einsum("...ijk,...ia,...jb,...kc->...abc", m3, T1, T1, T1)
                 + np.einsum("...ij,...iac,...jb->...abc", m2, T2, T1)
                 + np.einsum("...ij,...ia,...jbc->...abc", m2, T1, T2)
                 + np.einsum("...ij,...iab,...jc->...abc", m2, T2, T1)
                 + np.einsum("...i,...iabc->...abc", m1, T3))
        return l, g, H, T

    def probabilities(self, eta: np.ndarray) -> np.ndarray:
        theta = self.solve(eta)
        full = np.concatenate([theta, np.zeros(theta.shape[:-1] + (1,))], axis=-1)
        e = np.exp(full - full.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return self.y.sum(axis=1, keepdims=True) * self.probabilities(eta)

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def subset(self, blocks: np.ndarray) -> ImplicitMultinomial:
        return ImplicitMultinomial(self.y[blocks], self.C, self.A, self.cells[blocks],
                                   self.name, self.coefficient, self.tol, self.max_iter)
