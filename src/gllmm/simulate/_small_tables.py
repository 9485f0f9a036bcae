"""Fast estimators for small two-way tables, reusing one design across replicates.

A simulation fits the same few models to thousands of 3 x 3 (or 6 x 6) tables, so the general
engine's per-fit setup (formula parsing, design building, information matrix) would dominate.
These functions take the counts as an array and a fixed model matrix, and are pure: nothing is
kept between calls, so a replicate's result never depends on the replicates before it.

- :func:`poisson_loglinear`: ML of ``log mu = X beta`` by Newton's method (GLM columns).
- :func:`fit_cellwise_agq`: ML of the cell-wise GLLMM (2.5)/(2.6),
  ``log mu_c = x_c' beta + sigma v_c``, ``v_c ~ N(0, 1)``, by adaptive Gauss-Hermite quadrature;
  the likelihood factors into one 1-D integral per cell, whose mode is in closed form
  (Wright omega function), and the exact gradient (mode and curvature moves included) drives
  L-BFGS-B. Fitted counts use the posterior modes, as the paper's tables.

Glossary: C cells, N quadrature nodes, p fixed effects, ``eta = X beta``, ``v`` spherical
random effect of a cell, ``u = sigma v``, ``K = -h''(v_hat) = 1 + sigma^2 exp(eta + u_hat)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, wrightomega, xlogy

from ..integrate import gauss_hermite

#: Newton stops when the decrement ``g' H^{-1} g`` is below this (log-likelihood units).
NEWTON_TOL = 1e-12
#: The boundary fit sigma = 0 is kept unless an interior fit beats it by more than this.
FTOL_ZERO = 1e-8
#: An interior search whose SD falls below this is abandoned for the boundary fit.
SIGMA_ZERO = 1e-5


def design_matrix(size_rows: int, size_cols: int, scores: np.ndarray | None = None,
                  intercept: bool = True) -> np.ndarray:
    """Model matrix (I J, p) of independence (``scores=None``) or linear-by-linear
    association ``x_i y_j beta`` (row scores = column scores = ``scores``), treatment coding,
    cells in C order (row-major)."""
    rows, cols = np.divmod(np.arange(size_rows * size_cols), size_cols)
    parts = [np.ones((rows.size, 1))] if intercept else []
    parts.append((rows[:, None] == np.arange(1, size_rows)[None, :]).astype(float))
    parts.append((cols[:, None] == np.arange(1, size_cols)[None, :]).astype(float))
    if scores is not None:
        s = np.asarray(scores, dtype=float)
        if s.size != max(size_rows, size_cols) or size_rows != size_cols:
            raise ValueError("linear-by-linear design needs a square table and one score per level")
        parts.append((s[rows] * s[cols])[:, None])
    return np.hstack(parts)


@dataclass(frozen=True)
class GlmFit:
    """Poisson log-linear ML fit: coefficients, fitted means, log-likelihood, iterations."""

    beta: np.ndarray
    fitted: np.ndarray
    loglik: float
    n_iterations: int
    converged: bool


def _poisson_loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(np.sum(y * eta - np.exp(eta)))


def poisson_loglinear(y: np.ndarray, X: np.ndarray, max_iter: int = 100) -> GlmFit:
    """ML of ``y_c ~ Poisson(exp(x_c' beta))`` by Newton with step halving.

    Parameters
    ----------
    y : ndarray (C,)
    X : ndarray (C, p), full column rank, with an intercept column (so the fit keeps the total)

    Notes
    -----
    Where a sampling zero makes the ML estimate infinite (a zero margin), the iterations follow
    the likelihood's ascent and stop at ``max_iter``: the fitted means are then the limit (0 on
    the zero margin), which is the usual extended ML estimate.
    """
    y = np.asarray(y, dtype=float).ravel()
    beta = np.linalg.lstsq(X, np.log(y + 0.5), rcond=None)[0]
    eta = X @ beta
    ll = _poisson_loglik(y, eta)
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        mu = np.exp(eta)
        score = X.T @ (y - mu)
        info = (X * mu[:, None]).T @ X
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        decrement = float(score @ step)
        t = 1.0
        for _ in range(60):
            new_eta = X @ (beta + t * step)
            new_ll = _poisson_loglik(y, new_eta)
            if new_ll >= ll - 1e-12 * abs(ll):
                break
            t *= 0.5
        beta, eta, ll = beta + t * step, new_eta, new_ll
        if decrement < NEWTON_TOL * (1.0 + abs(ll)):
            converged = True
            break
    const = -float(np.sum(gammaln(y + 1.0)))
    return GlmFit(beta, np.exp(eta), ll + const, it, converged)


# ---------------------------------------------------------------------------------------------
# a small dense BFGS (scipy's L-BFGS-B wrapper costs about 1 ms per iteration, far more than
# these objectives)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BfgsResult:
    x: np.ndarray
    value: float
    gradient: np.ndarray
    n_iterations: int
    converged: bool


def maximize_bfgs(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    inverse_hessian: np.ndarray | None = None,
    gtol: float = 1e-9,
    max_iter: int = 500,
    stop: Callable[[np.ndarray], bool] | None = None,
) -> BfgsResult:
    """Maximise a smooth function by BFGS (Nocedal & Wright 2006, Alg. 6.1) with Armijo
    backtracking; stops when ``max |gradient| < gtol (1 + |f|)`` or no step improves ``f``.

    ``inverse_hessian`` is the initial approximation of ``(-f'')^{-1}`` (default identity).
    ``stop(x)``, when given, ends the search early (``converged`` is then True): used to
    abandon a search that has entered the boundary's neighbourhood.
    """
    x = np.asarray(start, dtype=float).copy()
    f, g = value_and_gradient(x)
    if not np.isfinite(f):
        raise FloatingPointError("the objective is not finite at the start")
    n = x.size
    H = np.eye(n) if inverse_hessian is None else np.array(inverse_hessian, dtype=float)
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        if np.max(np.abs(g)) < gtol * (1.0 + abs(f)) or (stop is not None and stop(x)):
            converged = True
            break
        d = H @ g
        slope = float(g @ d)
        if not slope > 0:
            H = np.eye(n)
            d, slope = g.copy(), float(g @ g)
        t = 1.0
        for _ in range(60):
            x_new = x + t * d
            f_new, g_new = value_and_gradient(x_new)
            if np.isfinite(f_new) and f_new >= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            converged = np.max(np.abs(g)) < 1e3 * gtol * (1.0 + abs(f))
            break
        s, yv = x_new - x, g - g_new  # yv: change of the negative gradient
        sy = float(s @ yv)
        if sy > 1e-12 * float(np.sqrt((s @ s) * (yv @ yv))):
            rho = 1.0 / sy
            Hy = H @ yv
            H = H - rho * (np.outer(s, Hy) + np.outer(Hy, s)) + (
                rho * rho * float(yv @ Hy) + rho) * np.outer(s, s)
        improved = f_new - f
        x, f, g = x_new, f_new, g_new
        if improved <= 1e-15 * (1.0 + abs(f)) and t < 1.0:
            converged = np.max(np.abs(g)) < 1e3 * gtol * (1.0 + abs(f))
            break
    return BfgsResult(x, float(f), g, it, converged)


# ---------------------------------------------------------------------------------------------
# cell-wise GLLMM by 1-D adaptive Gauss-Hermite quadrature
# ---------------------------------------------------------------------------------------------


def cellwise_modes(y: np.ndarray, eta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Posterior modes ``v_hat`` of ``h(v) = y (eta + sigma v) - exp(eta + sigma v) - v^2 / 2``
    and ``omega = sigma^2 exp(eta + sigma v_hat)`` (so ``K = 1 + omega``).

    The mode solves ``sigma (y - e^{eta + sigma v}) = v``; with ``w = sigma y - v`` this is
    ``sigma w exp(sigma w) = sigma^2 exp(eta + sigma^2 y)``, so ``sigma w = W(.)`` (Lambert W)
    ``= omega(2 log sigma + eta + sigma^2 y)`` with omega the Wright omega function, evaluated
    without overflow. Valid for either sign of sigma (``h(v; sigma) = h(-v; -sigma)``).
    """
    if sigma == 0.0:
        return np.zeros_like(eta), np.zeros_like(eta)
    om = wrightomega(2.0 * np.log(abs(sigma)) + eta + sigma * sigma * y).real
    return sigma * y - om / sigma, om


class CellwiseObjective:
    """AGQ marginal log-likelihood of the cell-wise GLLMM and its exact gradient.

    ``log L = sum_c [-log(K_c) / 2 + logsumexp_j(log w_j + h_c(v_cj) + z_j^2 / 2)] - sum log y!``,
    ``v_cj = v_hat_c + z_j / sqrt(K_c)`` (Liu & Pierce 1994; paper Section 3.1, eq. 2.5/2.6).
    Parameters are ``(beta, sigma)``; one node is the Laplace approximation.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, n_nodes: int = 15) -> None:
        self.y = np.asarray(y, dtype=float).ravel()
        self.X = X
        z, w = gauss_hermite(int(n_nodes))
        self.z = np.asarray(z)
        self.log_w = np.log(np.asarray(w))
        self.half_z2 = 0.5 * self.z**2
        self.constant = -float(np.sum(gammaln(self.y + 1.0)))
        self.n_evaluations = 0

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        self.n_evaluations += 1
        y, X, z = self.y, self.X, self.z
        beta, sigma = params[:-1], float(params[-1])
        eta = X @ beta
        v_hat, om = cellwise_modes(y, eta, sigma)
        K = 1.0 + om
        root_k = np.sqrt(K)
        v = v_hat[:, None] + z[None, :] / root_k[:, None]  # (C, N)
        a = eta[:, None] + sigma * v
        ea = np.exp(a)
        s = self.log_w + y[:, None] * a - ea - 0.5 * v * v + self.half_z2
        top = s.max(axis=1)
        lse = top + np.log(np.exp(s - top[:, None]).sum(axis=1))
        value = float(np.sum(lse - 0.5 * np.log(K))) + self.constant
        # gradient: d(-log K / 2) + sum_j rho_j (ds_j at fixed v_j + h'(v_j) dv_j)
        rho = np.exp(s - lse[:, None])
        r = y[:, None] - ea
        hv = sigma * r - v
        e_hat = np.exp(eta + sigma * v_hat)
        dv_eta = -sigma * e_hat / K
        dv_sig = ((y - e_hat) - sigma * e_hat * v_hat) / K
        dk_eta = sigma * sigma * e_hat * (1.0 + sigma * dv_eta)
        dk_sig = sigma * sigma * e_hat * (v_hat + sigma * dv_sig) + 2.0 * sigma * e_hat
        c = -0.5 * z[None, :] / (K * root_k)[:, None]
        dvj_eta = dv_eta[:, None] + c * dk_eta[:, None]
        dvj_sig = dv_sig[:, None] + c * dk_sig[:, None]
        g_eta = -0.5 * dk_eta / K + np.sum(rho * (r + hv * dvj_eta), axis=1)
        g_sig = float(np.sum(-0.5 * dk_sig / K + np.sum(rho * (r * v + hv * dvj_sig), axis=1)))
        return value, np.r_[X.T @ g_eta, g_sig]

    def fitted_modes(self, params: np.ndarray) -> np.ndarray:
        """Fitted means ``exp(x_c' beta + sigma v_hat_c)`` at the posterior modes (C,)."""
        beta, sigma = params[:-1], float(params[-1])
        eta = self.X @ beta
        v_hat, _ = cellwise_modes(self.y, eta, sigma)
        return np.exp(eta + sigma * v_hat)


def _near_boundary(x: np.ndarray) -> bool:
    """A search whose SD (last parameter) has fallen below ``SIGMA_ZERO`` is converging to the
    boundary: there ``l(sigma) - l(0) = O(sigma^2)`` is far below ``FTOL_ZERO``."""
    return abs(float(x[-1])) < SIGMA_ZERO


@dataclass(frozen=True)
class CellwiseFit:
    """ML fit of the cell-wise GLLMM: ``beta``, ``sigma``, AGQ log-likelihood, fitted counts at
    the posterior modes, and whether the boundary fit ``sigma = 0`` (the GLM) won."""

    beta: np.ndarray
    sigma: float
    loglik: float
    fitted: np.ndarray
    boundary: bool
    n_evaluations: int
    converged: bool


def fit_cellwise_agq(
    y: np.ndarray,
    X: np.ndarray,
    n_nodes: int = 15,
    sigma_start: float = 0.5,
    gtol: float = 1e-9,
) -> CellwiseFit:
    """Global ML of the cell-wise GLLMM ``log mu_c = x_c' beta + u_c``, ``u_c ~ N(0, sigma^2)``.

    The boundary fit (sigma = 0: the Poisson GLM, whose log-likelihood AGQ reproduces exactly)
    and an interior L-BFGS-B fit from ``(beta_GLM, sigma_start)`` are compared and the larger
    log-likelihood wins (paper eqs. 2.5, 2.6; Section 4's cell-wise columns).

    Parameters
    ----------
    y : ndarray (C,)
        Counts (Poisson sampling, free intercept in X).
    X : ndarray (C, p)
        Fixed-effects design, e.g. :func:`design_matrix`.
    n_nodes : int
        Adaptive Gauss-Hermite nodes per cell (1 = Laplace).
    """
    y = np.asarray(y, dtype=float).ravel()
    glm = poisson_loglinear(y, X)
    obj = CellwiseObjective(y, X, n_nodes)
    boundary_params = np.r_[glm.beta, 0.0]
    boundary_ll = obj.value_and_gradient(boundary_params)[0]

    # l is even in sigma, so the interior search runs unconstrained and reports |sigma|
    start = np.r_[glm.beta, sigma_start]
    h0 = np.zeros((start.size, start.size))
    info = (X * np.maximum(glm.fitted, 1e-8)[:, None]).T @ X
    h0[:-1, :-1] = np.linalg.pinv(info)
    h0[-1, -1] = 0.1
    res = maximize_bfgs(obj.value_and_gradient, start, h0, gtol=gtol, stop=_near_boundary)
    res_x = res.x.copy()
    res_x[-1] = abs(res_x[-1])
    interior_ll = res.value
    if res_x[-1] > 0.0 and interior_ll > boundary_ll + FTOL_ZERO:
        params, ll, boundary = res_x, interior_ll, False
    else:
        params, ll, boundary = boundary_params, boundary_ll, True
    return CellwiseFit(params[:-1], float(params[-1]), ll, obj.fitted_modes(params), boundary,
                       obj.n_evaluations, res.converged or boundary)


def multinomial_loglik(y: np.ndarray, p: np.ndarray) -> float:
    """``log(n! / prod y!) + sum y log p`` (used in tests and diagnostics)."""
    y = np.asarray(y, dtype=float).ravel()
    return float(gammaln(y.sum() + 1) - gammaln(y + 1).sum() + xlogy(y, np.ravel(p)).sum())
