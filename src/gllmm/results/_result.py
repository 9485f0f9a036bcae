"""FitResult: estimates, standard errors, variance components, tests and predictions.

Plain data (parameter vector, covariance, posterior summaries) plus methods that read it;
nothing here refits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..spec._design import Design


@dataclass
class FitResult:
    """The result of a GLLM or GLLMM fit.

    Attributes
    ----------
    design : Design
    params : ndarray (p + m,)
        ``(beta, theta)``; theta parametrises the relative covariance factor Lambda.
    cov : ndarray
        Inverse observed information of ``params`` (NaN rows for boundary parameters).
    loglik : float
        Full log-likelihood (with the sampling distribution's constants), same scale for
        Laplace and AGQ.
    opt : OptSummary
    posterior : dict or None
        Posterior modes (``mode``), means (``mean``), SDs (``sd``, ``mode_sd``) of u per cluster.
    """

    design: Design
    params: np.ndarray
    cov: np.ndarray
    loglik: float
    opt: Any
    posterior: dict[str, np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ basic facts
    @property
    def names(self) -> tuple[str, ...]:
        return self.design.param_names

    @property
    def method(self) -> str:
        return self.opt.method if self.design.n_random else "ml"

    @property
    def strategy(self) -> str:
        """How the likelihood was evaluated: ``scalar``, ``product``, ``sparse``, ``cellwise``
        (``glm`` without random effects; the method's name for MCEM and PQL)."""
        return getattr(self.opt, "strategy", "") or (self.method if self.design.n_random
                                                      else "glm")

    @property
    def n_nodes(self) -> int:
        return self.opt.n_nodes if self.design.n_random else 0

    @property
    def converged(self) -> bool:
        return bool(self.opt.converged)

    @property
    def boundary(self) -> tuple[str, ...]:
        return tuple(self.opt.boundary)

    @property
    def beta(self) -> pd.Series:
        p = self.design.n_fixed
        return pd.Series(self.params[:p], index=list(self.design.fixed_names), name="estimate")

    @property
    def theta(self) -> np.ndarray:
        return self.params[self.design.n_fixed:]

    @property
    def se(self) -> pd.Series:
        p = self.design.n_fixed
        return pd.Series(np.sqrt(np.diag(self.cov))[:p], index=list(self.design.fixed_names),
                         name="se")

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def n_obs(self) -> float:
        """Number of observations: the total count (individual responses)."""
        return float(self.design.family.y.sum())

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + math.log(self.n_obs) * self.n_params

    def coefficients(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: estimate, SE, z, two-sided p-value and Wald interval."""
        est = self.beta
        se = self.se
        z = est / se
        crit = stats.norm.ppf(0.5 + level / 2)
        return pd.DataFrame({
            "estimate": est, "se": se, "z": z, "p": 2 * stats.norm.sf(np.abs(z)),
            f"lower {level:.0%}": est - crit * se, f"upper {level:.0%}": est + crit * se,
        })

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        c = self.coefficients(level)
        return c.iloc[:, -2:]

    # ------------------------------------------------------------------ variance components
    def _sigma_and_derivs(self) -> tuple[np.ndarray, np.ndarray]:
        # on one repetition of each block: q x q would be 3000 x 3000 for crossed factors
        cs = self.design.covariance.compact()
        lam = cs.factor(self.theta)
        sigma = lam @ lam.T
        d = np.einsum("kqr,sr->kqs", cs.templates, lam)
        return sigma, d + np.swapaxes(d, 1, 2)

    def variance_components(self) -> pd.DataFrame:
        """Standard deviations (and correlations) of the random effects with delta-method SEs.

        ``Sigma = Lambda Lambda'``; ``d Sigma / d theta_k = E_k Lambda' + Lambda E_k'``;
        ``sd_a = sqrt(Sigma_aa)``, ``cor_ab = Sigma_ab / (sd_a sd_b)``.
        """
        if self.design.covariance is None:
            return pd.DataFrame(columns=["term", "component", "estimate", "se"])
        cs = self.design.covariance.compact()
        sigma, dsig = self._sigma_and_derivs()
        p = self.design.n_fixed
        cov_t = self.cov[p:, p:]
        rows = []
        for term, comps, idx, kind in cs.blocks:
            sds = np.sqrt(np.maximum(np.diag(sigma)[idx], 0.0))
            for a, name in enumerate(comps):
                i = idx[a]
                sd = sds[a]
                grad = dsig[:, i, i] / (2 * sd) if sd > 0 else np.full(cs.n_params, np.nan)
                se = _delta_se(grad, cov_t) if sd > 0 else np.nan
                label = "sd" if len(comps) == 1 else f"sd:{name}"
                rows.append({"term": term, "component": label, "estimate": sd, "se": se})
            for a in range(len(comps) if kind == "unstructured" else 0):
                for b in range(a):
                    i, j = idx[a], idx[b]
                    if sds[a] > 0 and sds[b] > 0:
                        r = sigma[i, j] / (sds[a] * sds[b])
                        g = (dsig[:, i, j] / (sds[a] * sds[b])
                             - r * (dsig[:, i, i] / (2 * sds[a] ** 2)
                                    + dsig[:, j, j] / (2 * sds[b] ** 2)))
                        se = _delta_se(g, cov_t)
                    else:
                        r, se = np.nan, np.nan
                    rows.append({"term": term, "component": f"cor:{comps[b]}.{comps[a]}",
                                 "estimate": r, "se": se})
        return pd.DataFrame(rows)

    @property
    def random_sd(self) -> dict[str, float | dict[str, float]]:
        """SD per random term (a dict per component for vector terms)."""
        return self._vc_dict("estimate")

    @property
    def random_sd_se(self) -> dict[str, float | dict[str, float]]:
        return self._vc_dict("se")

    def _vc_dict(self, col: str) -> dict[str, Any]:
        vc = self.variance_components()
        out: dict[str, Any] = {}
        for term, grp in vc.groupby("term", sort=False):
            sd = grp[grp.component.str.startswith("sd")]
            if len(sd) == 1 and len(grp) == 1:
                out[str(term)] = float(sd[col].iloc[0])
            else:
                out[str(term)] = {str(c): float(v)
                                  for c, v in zip(grp.component, grp[col], strict=True)}
        return out

    # ------------------------------------------------------------------ predictions
    def random_effects(self, kind: str = "mode") -> pd.DataFrame:
        """Empirical Bayes predictions of u per cluster: ``mode`` (default), ``mean``, ``sd``."""
        if self.posterior is None:
            raise ValueError("the model has no random effects")
        key = {"mode": "mode", "mean": "mean", "sd": "sd", "mode_sd": "mode_sd"}[kind]
        labels = list(self.design.cluster_labels) or list(range(self.design.n_clusters))
        cols = list(self.design.random_names) or [
            f"u{i}" for i in range(self.design.n_random)]
        return pd.DataFrame(self.posterior[key], index=labels, columns=cols)

    def cluster_coefficients(self, fixed: str, component: int | str = 0,
                             kind: str = "mode") -> pd.Series:
        """Cluster-specific parameters ``beta + u_k`` (e.g. center-specific log odds ratios)."""
        re = self.random_effects(kind)
        col = re.columns[component] if isinstance(component, int) else component
        return pd.Series(self.beta[fixed] + re[col].to_numpy(), index=re.index, name=fixed)

    def linear_predictor(self, kind: str = "mode") -> np.ndarray:
        d = self.design
        if kind == "fixed" or d.n_random == 0:
            eta = d.x_matrix @ self.params[: d.n_fixed]  # sparse X stays sparse
            return np.asarray(eta).reshape(d.offset.shape) + d.offset
        if kind == "mode":
            return self.posterior["eta_mode"]
        raise ValueError("kind must be 'mode' or 'fixed'")

    def fitted_counts(self, kind: str = "mode") -> np.ndarray:
        """Fitted counts per input row (random effects at their posterior modes by default)."""
        fam = self.design.family
        mu = fam.mean(self.linear_predictor(kind))
        out = np.full(int(fam.cells.max()) + 1, np.nan)
        out[fam.cells.ravel()] = mu.ravel()
        return out

    def fitted(self, kind: str = "mode") -> pd.DataFrame:
        """The input rows with observed and fitted counts."""
        data = self.design.notes.get("data")
        fam = self.design.family
        obs = np.full(int(fam.cells.max()) + 1, np.nan)
        obs[fam.cells.ravel()] = fam.y.ravel()
        df = data.copy() if data is not None else pd.DataFrame(index=range(len(obs)))
        df["observed"] = obs
        df["fitted"] = self.fitted_counts(kind)
        return df

    def deviance_residuals(self) -> dict[str, float]:
        """Goodness of fit of a GLLM: G^2, Pearson X^2 and residual df (no random effects)."""
        fam = self.design.family
        mu = fam.mean(self.linear_predictor("fixed"))
        y = fam.y
        g2 = 2 * float(np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0)
                              - (y - mu)))
        x2 = float(np.sum((y - mu) ** 2 / mu))
        n_cells = y.size if fam.name == "poisson" else y.size - y.shape[0]
        return {"G2": g2, "X2": x2, "df": n_cells - self.design.n_fixed}

    # ------------------------------------------------------------------ tests
    def lr_test(self, restricted: FitResult) -> dict[str, float]:
        """Likelihood-ratio test of ``restricted`` (nested) against this fit.

        Variance components set to zero under the null are on the boundary, so the reference is
        the chi-bar-square mixture ``sum_i C(k, i) 2^-k chi2(df_fixed + i)`` for k independent
        variance components (Self & Liang 1987; Stram & Lee 1994): for one variance, half the
        chi-square(1) tail.
        """
        stat = max(2.0 * (self.loglik - restricted.loglik), 0.0)
        sd_full = [n for n in self.names if n.startswith("sd(")]
        sd_rest = [n for n in restricted.names if n.startswith("sd(")
                   and n not in restricted.boundary]
        k = max(len(sd_full) - len(sd_rest), 0)
        df_total = self.n_params - restricted.n_params
        df_fixed = max(df_total - k, 0)
        if k == 0:
            p = float(stats.chi2.sf(stat, df_total)) if df_total > 0 else float("nan")
        else:
            p = sum(math.comb(k, i) / 2**k * (stats.chi2.sf(stat, df_fixed + i)
                                              if df_fixed + i > 0 else float(stat <= 0))
                    for i in range(k + 1))
        return {"statistic": stat, "df": df_total, "boundary_components": k, "p_value": float(p)}

    # ------------------------------------------------------------------ output
    def summary(self) -> str:
        """A text summary in the style of statsmodels / R."""
        from ._summary import format_summary

        return format_summary(self)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the CLI's ``--json`` contract)."""
        fitted = self.fitted()
        return _jsonable({
            "loglik": self.loglik,
            "converged": self.converged,
            "boundary": list(self.boundary),
            "method": self.method,
            "nagq": self.n_nodes,
            "params": dict(self.beta.items()),
            "se": dict(self.se.items()),
            "random_sd": self.random_sd if self.design.n_random else {},
            "random_sd_se": self.random_sd_se if self.design.n_random else {},
            "aic": self.aic,
            "bic": self.bic,
            "fitted": fitted.to_dict(orient="records"),
            "scores": self.design.notes.get("scores", {}),
            "optimizer": self.opt.to_dict(),
        })

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _delta_se(grad: np.ndarray, cov: np.ndarray) -> float:
    use = grad != 0  # parameters held on the boundary have NaN covariance and zero weight
    val = float(grad[use] @ cov[np.ix_(use, use)] @ grad[use])
    return math.sqrt(val) if np.isfinite(val) and val >= 0 else float("nan")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
