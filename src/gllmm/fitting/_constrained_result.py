"""Result of a constrained ML fit of ``C log(A mu) = X beta``: plain arrays plus tests.

Glossary: c cells, r components of eta = C log(A mu), p = len(beta), q = df = r - p constraints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from .._distributions import chi2_sf, norm_ppf, norm_sf
from ..errors import FitError, SpecError
from ..results import FitResult, HypothesisTest
from ._constrained_spec import Problem, constraint_jacobian, orthogonal_complement


@dataclass(frozen=True)
class ConvergenceInfo:
    """How the Lagrange scoring iteration ended.

    ``step_norm`` is ``max_i sqrt(mu_i) |delta log mu_i|`` of the last full scoring step (the
    change of the fitted values in standard-error units), ``score_norm`` the square root of
    ``s' D^-1 s + h' M h`` (projected score plus constraint violation, chi-square scale);
    ``history`` holds (iteration, step length t, step_norm, score_norm) before each update;
    ``boundary_cells`` lists zero-count cells whose fitted values tend to 0 (extended ML).
    """

    converged: bool
    iterations: int
    step_norm: float
    score_norm: float
    n_halvings: int
    tol: float
    max_iter: int
    message: str
    history: tuple[tuple[int, float, float, float], ...] = ()
    boundary_cells: tuple[int, ...] = ()


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


@dataclass(eq=False, kw_only=True)
class ConstrainedFit(FitResult):
    """Constrained ML fit of the GLLM ``C log(A mu) = offset + X beta`` (Lang 2004): a
    :class:`~gllmm.results.FitResult` without a ``Design`` (the model is given by C, A and X).

    Attributes
    ----------
    params (also ``beta``) : ndarray (p,)
        Least-squares solution of ``X beta = C log(A mu_hat) - offset`` (exact at the fit).
    cov (also ``cov_beta``) : ndarray (p, p)
        ``P J cov(mu_hat) J' P'``, P = (X'X)^-1 X', J = C D(A mu)^-1 A (Lang 2004, 2005).
    opt (also ``convergence``) : ConvergenceInfo
    names : tuple of str
        Names of beta's components.
    counts, fitted_values : ndarray (c,)
        Observed counts y and ML fitted means mu_hat (``fitted()`` gives both as a table).
    eta, cov_eta : ndarray (r,), (r, r)
        ``C log(A mu_hat)`` and its asymptotic covariance.
    cov_fitted : ndarray (c, c)
        ``D - D H M H' D`` minus ``mu_k mu_k' / n_k`` for each fixed stratum k.
    lagrange_multipliers : ndarray (q,)
        lambda with ``y - mu_hat + D H lambda = 0``.
    g2, x2 : float
        Likelihood-ratio and Pearson (= Lagrange multiplier score) statistics against the
        saturated model, on ``df = q`` degrees of freedom.
    adjusted_residuals : ndarray (c,)
        ``(y - mu_hat) / sqrt(diag(D H M H' D))``; 0 where that variance vanishes.
    pearson_residuals : ndarray (c,)
        ``(y - mu_hat) / sqrt(mu_hat)``.
    loglik : float
        Full log-likelihood with constants under the sampling plan.
    n_params : int
        Free parameters of the mean model: ``c - q - (number of fixed totals)``.
    """

    design: None = None
    # stored here: FitResult reads them from the Design (the defaults shadow its properties)
    names: tuple[str, ...] = ()
    n_params: int = 0
    counts: np.ndarray
    fitted_values: np.ndarray
    eta: np.ndarray
    cov_eta: np.ndarray
    cov_fitted: np.ndarray
    lagrange_multipliers: np.ndarray
    g2: float
    x2: float
    df: int
    adjusted_residuals: np.ndarray
    pearson_residuals: np.ndarray
    sampling: str
    strata: np.ndarray | None
    C: np.ndarray = field(repr=False)
    A: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    offset: np.ndarray = field(repr=False)
    # the fitter (fit_constrained), for the refits of the tests of L beta = c: passed in, so
    # that this module does not import the one that imports it
    refit: Callable[..., ConstrainedFit] = field(repr=False)

    def __post_init__(self) -> None:
        for name in (
            "params", "cov", "counts", "fitted_values", "eta", "cov_eta", "cov_fitted",
            "lagrange_multipliers", "adjusted_residuals", "pearson_residuals", "C", "A", "X",
            "offset",
        ):
            setattr(self, name, _frozen(getattr(self, name)))

    # ------------------------------------------------------------------ the common interface
    # FitResult's names for what a Lagrange fit has: no random effects, no variances
    method = "constrained"
    method_label = "CONSTRAINED ML (Lagrange multipliers)"
    strategy = "lagrange"
    n_nodes = 0
    boundary = ()  # no variance parameter: nothing on the boundary

    @property
    def beta(self) -> np.ndarray:
        """The estimates (a constrained model has no variance parameters: ``params``)."""
        return self.params

    @property
    def cov_beta(self) -> np.ndarray:
        return self.cov

    @property
    def convergence(self) -> ConvergenceInfo:
        return self.opt

    @property
    def theta(self) -> np.ndarray:
        return np.zeros(0)

    @property
    def param_roles(self) -> tuple[str, ...]:
        return ("fixed",) * len(self.names)

    @property
    def converged(self) -> bool:
        return bool(self.convergence.converged)

    @property
    def nobs(self) -> int:
        """Number of observations: the total count (individual responses), as R's ``nobs``
        of a multinomial fit with frequency weights."""
        return int(round(float(self.counts.sum())))

    @property
    def n_counts(self) -> float:
        return float(self.counts.sum())

    def fitted(self, kind: str = "mode") -> pd.DataFrame:
        """Observed counts and ML fitted means per cell."""
        return pd.DataFrame({"observed": self.counts, "fitted": self.fitted_values})

    def fitted_counts(self, kind: str = "mode") -> np.ndarray:
        return self.fitted_values

    def random_effects(self, kind: str = "mode") -> pd.DataFrame:
        raise FitError("a constrained ML model has no random effects")

    def variance_components(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["term", "component", "estimate", "se"])

    def linear_predictor(self, kind: str = "mode") -> np.ndarray:
        return self.eta

    def predict(self, newdata: Any = None, type: str = "link", re_form: Any = None,
                **kwargs: Any) -> np.ndarray:
        raise FitError("a constrained ML fit predicts no new rows; its fitted means are "
                       "fitted() and its C log(A mu) is eta")

    def goodness_of_fit(self, kind: str = "fixed") -> dict[str, float]:
        """G^2 and X^2 against the saturated model on ``df`` constraints."""
        return {"G2": self.g2, "X2": self.x2, "df": self.df}

    def residuals(self, type: str = "deviance", kind: str = "mode") -> pd.Series:
        """Poisson residuals per cell of the fitted means (as ``FitResult.residuals``)."""
        y, mu = self.counts, self.fitted_values
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)
        out = {"deviance": np.sign(y - mu) * np.sqrt(np.maximum(2 * (term - (y - mu)), 0.0)),
               "pearson": self.pearson_residuals, "response": y - mu}
        if type not in out:
            raise SpecError(f"unknown residual type {type!r}; use deviance, pearson or response")
        return pd.Series(out[type], name=f"{type} residual")

    def conf_int(self, level: float = 0.95, method: str = "wald") -> pd.DataFrame:
        """Wald intervals ``beta -/+ z SE`` (profile intervals need a likelihood in beta,
        which the Lagrange fit does not parametrise)."""
        if method.lower() != "wald":
            raise SpecError("constrained ML fits give Wald intervals only (method='wald')")
        crit = norm_ppf(0.5 + level / 2)
        pct = f"{(1 - level) / 2:.1%}", f"{(1 + level) / 2:.1%}"
        return pd.DataFrame({pct[0]: self.beta - crit * self.se,
                             pct[1]: self.beta + crit * self.se}, index=list(self.names))

    # ------------------------------------------------------------------ estimates
    @property
    def se(self) -> np.ndarray:
        """Standard errors sqrt(diag(cov_beta))."""
        return np.sqrt(np.clip(np.diag(self.cov_beta), 0.0, None))

    @property
    def z_values(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.beta / self.se

    @property
    def p_values(self) -> np.ndarray:
        """Two-sided normal P-values of the Wald z statistics."""
        return 2.0 * norm_sf(np.abs(self.z_values))

    @property
    def g2_p_value(self) -> float:
        return float(chi2_sf(self.g2, self.df)) if self.df else float("nan")

    @property
    def x2_p_value(self) -> float:
        return float(chi2_sf(self.x2, self.df)) if self.df else float("nan")

    # ------------------------------------------------------------------ tests
    def _hypothesis(self, L: object, rhs: object | None) -> tuple[np.ndarray, np.ndarray]:
        p = self.beta.shape[0]
        L_mat = np.array(L, dtype=np.float64)
        if L_mat.ndim == 1:
            L_mat = L_mat.reshape(1, -1)
        if L_mat.ndim != 2 or L_mat.shape[1] != p or L_mat.shape[0] == 0:
            raise SpecError(f"L must have shape (k, {p}) with k >= 1, got {L_mat.shape}")
        if np.linalg.matrix_rank(L_mat) < L_mat.shape[0]:
            raise SpecError("the rows of L must be linearly independent")
        c = np.zeros(L_mat.shape[0]) if rhs is None else np.array(rhs, float).reshape(-1)
        if c.shape[0] != L_mat.shape[0]:
            raise SpecError(f"rhs must have {L_mat.shape[0]} entries")
        return L_mat, c

    @staticmethod
    def _label(L: np.ndarray, c: np.ndarray) -> str:
        terms = "; ".join(f"{row.tolist()} . beta = {v:g}" for row, v in zip(L, c, strict=True))
        return terms if L.shape[0] <= 3 else f"L beta = c ({L.shape[0]} rows)"

    def restricted_fit(self, L: object, rhs: object | None = None) -> ConstrainedFit:
        """Refit under ``L beta = rhs``: beta = beta0 + N gamma with span(N) = null(L)."""
        L_mat, c = self._hypothesis(L, rhs)
        beta0 = np.linalg.lstsq(L_mat, c, rcond=None)[0]
        null = scipy.linalg.null_space(L_mat)
        return self.refit(
            self.counts, self.C, self.A, self.X @ null, sampling=self.sampling,
            strata=self.strata, offset=self.offset + self.X @ beta0,
            tol=self.convergence.tol, max_iter=self.convergence.max_iter,
        )

    def likelihood_ratio_test(self, L: object, rhs: object | None = None) -> HypothesisTest:
        """LR test of ``L beta = rhs``: ``G^2(restricted) - G^2(this fit)`` (refits once)."""
        L_mat, c = self._hypothesis(L, rhs)
        restricted = self.restricted_fit(L_mat, c)
        stat = max(restricted.g2 - self.g2, 0.0)
        k = L_mat.shape[0]
        return HypothesisTest(
            "likelihood ratio", stat, k, float(chi2_sf(stat, k)), self._label(L_mat, c)
        )

    def score_test(self, L: object, rhs: object | None = None) -> HypothesisTest:
        """Score (Lagrange multiplier) test of ``L beta = rhs`` within this model (refits once).

        At the restricted fit mu0 the Poisson score s = y - mu0 (in log mu) is measured in the
        information metric projected onto this model's tangent space:
        ``S = s' [D0^-1 - H1 (H1' D0 H1)^-1 H1'] s`` with H1 this model's constraint Jacobian at
        mu0 (Aitchison & Silvey 1958; reduces to Pearson's X^2 when this model is saturated).
        """
        L_mat, c = self._hypothesis(L, rhs)
        restricted = self.restricted_fit(L_mat, c)
        m0 = restricted.fitted_values
        s = self.counts - m0
        stat = float(s @ (s / m0))
        if self.df:
            H1 = self._jacobian_at(m0)
            b = H1.T @ s
            stat -= float(b @ np.linalg.solve(H1.T @ (m0[:, None] * H1), b))
        stat = max(stat, 0.0)
        k = L_mat.shape[0]
        return HypothesisTest("score", stat, k, float(chi2_sf(stat, k)), self._label(L_mat, c))

    def _jacobian_at(self, m: np.ndarray) -> np.ndarray:
        """H = dh'/dmu of this model's constraints at other means m (score tests)."""
        U = orthogonal_complement(self.X)
        problem = Problem(
            y=self.counts, C=self.C, A=self.A, X=self.X, offset=self.offset, U=U, G=self.C.T @ U,
            Z=None, sampling=self.sampling, strata=self.strata, names=self.names,
        )
        return constraint_jacobian(problem, m)[1]

    # ------------------------------------------------------------------ reporting
    def summary(self) -> str:
        """Plain-text summary: estimates with SEs, fit statistics, convergence."""
        n = self.counts.sum()
        lines = [
            "Constrained ML fit of C log(A mu) = X beta (Lagrange multipliers; Lang 2004)",
            f"sampling: {self.sampling}   n = {n:g}   cells: {self.counts.shape[0]}   "
            f"constraints (df): {self.df}",
        ]
        if self.beta.shape[0]:
            width = max(12, *(len(nm) for nm in self.names))
            lines.append(f"{'':{width}} {'estimate':>11} {'SE':>10} {'z':>8} {'P>|z|':>8}")
            for nm, b, se, z, pv in zip(
                self.names, self.beta, self.se, self.z_values, self.p_values, strict=True
            ):
                lines.append(f"{nm:{width}} {b:11.5f} {se:10.5f} {z:8.3f} {pv:8.4f}")
        if self.df:
            lines.append(
                f"G^2 = {self.g2:.4f}  (df {self.df}, P = {self.g2_p_value:.4g})   "
                f"X^2 = {self.x2:.4f}  (P = {self.x2_p_value:.4g})"
            )
        lines.append(f"log-likelihood (full, {self.sampling}) = {self.loglik:.4f}   "
                     f"AIC = {self.aic:.4f}")
        cv = self.convergence
        lines.append(
            f"{'converged' if cv.converged else 'NOT converged'} after {cv.iterations} "
            f"iterations (max sqrt(mu)|delta log mu| = {cv.step_norm:.1e}, score norm = "
            f"{cv.score_norm:.1e}, step halvings = {cv.n_halvings}, tol = {cv.tol:g})"
        )
        if cv.boundary_cells:
            cells = list(cv.boundary_cells)
            lines.append(f"fitted values tending to 0 (zero counts): cells {cells}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (lists and numbers)."""
        cv = self.convergence
        return {
            "method": self.method,
            "strategy": self.strategy,
            "converged": self.converged,
            "params": dict(zip(self.names, self.beta.tolist(), strict=True)),
            "se": dict(zip(self.names, self.se.tolist(), strict=True)),
            "names": list(self.names),
            "beta": self.beta.tolist(),
            "bic": self.bic,
            "nobs": self.nobs,
            "cov_beta": self.cov_beta.tolist(),
            "fitted": self.fitted_values.tolist(),
            "g2": self.g2,
            "x2": self.x2,
            "df": self.df,
            "loglik": self.loglik,
            "aic": self.aic,
            "sampling": self.sampling,
            "adjusted_residuals": self.adjusted_residuals.tolist(),
            "convergence": {
                "converged": cv.converged, "iterations": cv.iterations,
                "step_norm": cv.step_norm, "score_norm": cv.score_norm,
                "n_halvings": cv.n_halvings, "tol": cv.tol, "message": cv.message,
            },
        }
