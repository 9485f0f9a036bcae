"""Random local-association model (2.1) on one small two-way table, by Laplace.

Model (2.1): ``log theta_ij = beta + u_ij``, ``u_ij ~ N(0, sigma^2)`` independent, for the
(I-1)(J-1) local log odds ratios of an I x J table, counts multinomial given n (reference note,
Section 4). With L the local log odds-ratio contrasts (``L log p = log theta``) and S a right
inverse of L (``L S = I``), the log-linear form is

    log p = lambda_row + lambda_col + S (beta 1 + sigma v) - log(norm),

so ``eta = X beta + sigma Z v`` with ``Z = S`` and the beta column ``S 1``: at sigma = 0 this is
the uniform association (L x L) model with equally spaced scores, and with beta = 0 it smooths
toward independence. For fixed effects every S gives the same model (S's differ by row and
column effects), but random effects in ``S v`` also move the margins, so the fit depends on S:

- ``coding="centred"`` (default): ``S = L'(L L')^{-1}``, orthogonal to the row and column
  effects (Lang, McDonald & Smith 1999): symmetric in the rows, the columns and their order.
  It reproduces the published beta = 0 column of Table 1 (docs/simulation.md).
- ``coding="cumulative"``: ``S[(a, b), (i, j)] = 1{i < a, j < b}``: each odds ratio accumulates
  into the cells below and right of it, so cell (1, 1) is privileged.

The random effects form one q = (I-1)(J-1)-dimensional vector, so the marginal likelihood is
the Laplace approximation (the reference note: 625-node AGQ agrees with it to 5e-5 in p_hat):

    log L = h(v_hat) - log det K / 2,  h(v) = y' eta - n log sum exp(eta) - |v|^2 / 2 + const,
    K = I + sigma^2 Z' W Z,  W = n (diag p - p p').

Its exact gradient: the envelope theorem for ``h(v_hat)``, and for the log-determinant
``tr(K^{-1} dK)`` with ``dK = 2 sigma dsigma Z'WZ + sigma^2 Z' dW Z`` and
``tr(Z K^{-1} Z' dW) = a' d eta``, ``a = W (diag M - 2 M p)``, ``M = Z K^{-1} Z'``, along the
total move of ``eta_hat`` (mode included: ``d v_hat = K^{-1} d(dh/dv)``).

Fitted probabilities use the posterior modes. ``fit_association_laplace`` is global ML: the
boundary fit (sigma = 0, the GLM) and interior fits from several starting SDs are compared, since
the likelihood in sigma can be bimodal (reference note, Section 4).

Glossary: C cells, q random effects, P parameters ``(beta, sigma)``, ``p`` cell probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from ._small_tables import _near_boundary, design_matrix, maximize_bfgs, poisson_loglinear

#: Inner Newton stops after a step below this (max abs); Newton's quadratic convergence leaves
#: an error of order its square.
MODE_TOL = 1e-7
#: The boundary fit sigma = 0 is kept unless an interior fit beats it by more than this.
FTOL_ZERO = 1e-8
#: Starting SDs of the interior searches.
SIGMA_STARTS = (0.5, 1.5)


#: Codings of the odds ratios into log probabilities (see the module docstring).
CODINGS = ("centred", "cumulative")


def local_odds_ratio_contrasts(size_rows: int, size_cols: int) -> np.ndarray:
    """``L = D_I (x) D_J`` ((I-1)(J-1), I J): ``L log p`` are the local log odds ratios."""
    return np.kron(np.diff(np.eye(size_rows), axis=0), np.diff(np.eye(size_cols), axis=0))


def association_design(size_rows: int, size_cols: int, free_beta: bool = True,
                       coding: str = "centred") -> tuple[np.ndarray, np.ndarray]:
    """``(X, Z)`` of model (2.1) for an I x J table, cells in C order.

    ``X`` (C, I-1 + J-1 [+ 1]): row and column effects (no intercept: multinomial sampling),
    plus the beta column ``S 1`` when ``free_beta``; ``Z = S`` (C, (I-1)(J-1)), see
    :data:`CODINGS`.
    """
    if coding == "cumulative":
        rows, cols = np.divmod(np.arange(size_rows * size_cols), size_cols)
        i, j = np.divmod(np.arange((size_rows - 1) * (size_cols - 1)), size_cols - 1)
        Z = ((rows[:, None] > i[None, :]) & (cols[:, None] > j[None, :])).astype(float)
    elif coding == "centred":
        L = local_odds_ratio_contrasts(size_rows, size_cols)
        Z = L.T @ np.linalg.inv(L @ L.T)
    else:
        raise ValueError(f"unknown coding {coding!r}; valid: {', '.join(CODINGS)}")
    X = design_matrix(size_rows, size_cols, None, intercept=False)
    if free_beta:
        X = np.hstack([X, Z.sum(axis=1, keepdims=True)])
    return X, Z


def _softmax(eta: np.ndarray) -> np.ndarray:
    e = np.exp(eta - eta.max())
    return e / e.sum()


class AssociationObjective:
    """Laplace marginal log-likelihood of model (2.1) and its exact gradient in (beta, sigma).

    The last posterior mode is kept as the next inner start; it affects nothing beyond the
    inner tolerance, and one objective serves one table only.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, Z: np.ndarray) -> None:
        self.y = np.asarray(y, dtype=float).ravel()
        self.n = float(self.y.sum())
        self.X, self.Z = X, Z
        self.constant = float(gammaln(self.n + 1.0) - gammaln(self.y + 1.0).sum())
        self._v = np.zeros(Z.shape[1])
        self._eye = np.eye(Z.shape[1])
        self.n_evaluations = 0

    def mode(self, eta0: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Posterior mode ``v_hat`` of h, ``p`` there and ``h(v_hat)`` (damped Newton)."""
        y, n, Z = self.y, self.n, self.Z
        q = Z.shape[1]
        if sigma == 0.0:
            p = _softmax(eta0)
            return np.zeros(q), p, float(y @ np.log(p))
        v = self._v.copy()

        def h_of(v_: np.ndarray) -> tuple[float, np.ndarray]:
            eta = eta0 + sigma * (Z @ v_)
            top = eta.max()
            lse = top + np.log(np.exp(eta - top).sum())
            return float(y @ eta - n * lse - 0.5 * v_ @ v_), np.exp(eta - lse)

        h, p = h_of(v)
        if not np.isfinite(h):
            v = np.zeros(q)
            h, p = h_of(v)
        for _ in range(200):
            grad = sigma * (Z.T @ (y - n * p)) - v
            Wz = n * (p[:, None] * Z - np.outer(p, p @ Z))
            K = self._eye + sigma * sigma * (Z.T @ Wz)
            step = np.linalg.solve(K, grad)
            t = 1.0
            for _half in range(50):
                h_new, p_new = h_of(v + t * step)
                if h_new >= h - 1e-12 * (1.0 + abs(h)):
                    break
                t *= 0.5
            v = v + t * step
            h, p = h_new, p_new
            if np.max(np.abs(t * step)) < MODE_TOL:
                break
        self._v = v
        return v, p, h + 0.5 * float(v @ v)  # return the log-likelihood part only

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Laplace log-likelihood and gradient; ``(-inf, 0)`` where they cannot be computed
        (a trial point far outside the data's range: overflow), so a line search backs off."""
        self.n_evaluations += 1
        try:
            with np.errstate(all="ignore"):
                value, grad = self._value_and_gradient(params)
        except np.linalg.LinAlgError:
            value, grad = -np.inf, np.zeros(len(params))
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return -np.inf, np.zeros(len(params))
        return value, grad

    def _value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        y, n, X, Z = self.y, self.n, self.X, self.Z
        beta, sigma = params[:-1], float(params[-1])
        eta0 = X @ beta
        v, p, loglik_y = self.mode(eta0, sigma)
        W = n * (np.diag(p) - np.outer(p, p))
        ZWZ = Z.T @ W @ Z
        K = self._eye + sigma * sigma * ZWZ
        chol = np.linalg.cholesky(K)
        log_det = 2.0 * float(np.log(np.diag(chol)).sum())
        value = loglik_y - 0.5 * float(v @ v) - 0.5 * log_det + self.constant
        resid = y - n * p
        Zv = Z @ v
        # envelope part
        D0 = np.hstack([X, Zv[:, None]])  # d eta / d phi at fixed v
        g = D0.T @ resid
        # mode movement: d v_hat = K^{-1} B
        B = np.hstack([-sigma * (Z.T @ W @ X), (Z.T @ resid - sigma * (ZWZ @ v))[:, None]])
        Kinv = np.linalg.inv(K)
        D = D0 + sigma * (Z @ (Kinv @ B))  # total d eta_hat / d phi
        M = Z @ Kinv @ Z.T
        a = W @ (np.diag(M) - 2.0 * (M @ p))
        g = g - 0.5 * sigma * sigma * (D.T @ a)
        g[-1] -= sigma * float(np.sum(Kinv * ZWZ))
        return value, g

    def fitted_probabilities(self, params: np.ndarray) -> np.ndarray:
        """``softmax(X beta + sigma Z v_hat)`` (C,)."""
        beta, sigma = params[:-1], float(params[-1])
        eta0 = self.X @ beta
        v, p, _ = self.mode(eta0, sigma)
        return p


@dataclass(frozen=True)
class AssociationFit:
    """Global ML fit of model (2.1): ``beta`` (row, column effects [, beta]), ``sigma``,
    Laplace log-likelihood (multinomial, with coefficients), fitted probabilities at the
    posterior modes, whether the boundary won, and every candidate's (sigma, loglik)."""

    beta: np.ndarray
    sigma: float
    loglik: float
    probabilities: np.ndarray
    boundary: bool
    candidates: tuple[tuple[float, float], ...]
    converged: bool


def fit_association_laplace(
    counts: np.ndarray,
    free_beta: bool = True,
    coding: str = "centred",
    sigma_starts: tuple[float, ...] = SIGMA_STARTS,
    gtol: float = 1e-9,
) -> AssociationFit:
    """Global ML of model (2.1) on one I x J table by Laplace (see module docstring).

    Parameters
    ----------
    counts : ndarray (I, J)
    free_beta : bool
        False fixes beta = 0 (smoothing toward independence).
    coding : {"centred", "cumulative"}
        Right inverse S of the odds-ratio contrasts (module docstring).
    sigma_starts : tuple of float
        Starting SDs of the interior searches (each from the GLM's fixed effects).
    """
    y = np.asarray(counts, dtype=float)
    size_rows, size_cols = y.shape
    X, Z = association_design(size_rows, size_cols, free_beta, coding)
    yv = y.ravel()
    glm = poisson_loglinear(yv, np.hstack([np.ones((yv.size, 1)), X]))
    beta0 = glm.beta[1:]
    mu = np.maximum(glm.fitted, 1e-8)
    info = (X * mu[:, None]).T @ X - np.outer(X.T @ mu, X.T @ mu) / mu.sum()
    h0 = np.zeros((X.shape[1] + 1,) * 2)
    h0[:-1, :-1] = np.linalg.pinv(info)
    h0[-1, -1] = 0.1
    boundary_params = np.r_[beta0, 0.0]
    best_params = boundary_params
    best_ll = AssociationObjective(yv, X, Z).value_and_gradient(boundary_params)[0]
    candidates = [(0.0, best_ll)]
    converged = True
    boundary = True
    for s0 in sigma_starts:
        obj = AssociationObjective(yv, X, Z)
        res = maximize_bfgs(obj.value_and_gradient, np.r_[beta0, s0], h0, gtol=gtol,
                            stop=_near_boundary)
        x = res.x.copy()
        x[-1] = abs(x[-1])  # the Laplace likelihood is even in sigma
        candidates.append((float(x[-1]), res.value))
        if x[-1] > 0.0 and res.value > best_ll + FTOL_ZERO:
            best_params, best_ll, boundary, converged = x, res.value, False, res.converged
    probs = AssociationObjective(yv, X, Z).fitted_probabilities(best_params)
    return AssociationFit(best_params[:-1], float(best_params[-1]), float(best_ll),
                          probs.reshape(y.shape), boundary, tuple(candidates), converged)
