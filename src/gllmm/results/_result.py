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

from .._distributions import norm_ppf, norm_sf
from ..errors import FitError, SpecError
from ..spec._design import VARIANCE_ROLES, Design
from ..tables._validate import check_choice, check_level
from ._tests import HypothesisTest, lr_test, wald_test


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
    def method_label(self) -> str:
        """The method as printed: ``AGQ (15 nodes per dimension)``, ``LAPLACE``, ``ML``, ..."""
        label = self.method.upper()
        if self.method == "agq" and self.design.n_random:
            label += f" ({self.n_nodes} nodes per dimension)"
        return label

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
    def nodes_evidence(self) -> pd.DataFrame | None:
        """Rules tried by the automatic node choice (``n_nodes="auto"``), else None."""
        return self.extra.get("nodes_evidence")

    @property
    def infinite_estimates(self) -> tuple[str, ...]:
        """Parameters that are not estimates: the ML estimate does not exist (sampling zeros,
        separation) or the likelihood is flat (``gllmm.fitting`` flags them after each fit)."""
        return tuple(self.extra.get("infinite_estimates", ()))

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
    def param_roles(self) -> tuple[str, ...]:
        """Role of each parameter: ``"fixed"``, ``"sd"``, ``"cholesky_diagonal"``, ..."""
        return self.design.param_roles

    @property
    def nobs(self) -> int:
        """Number of observations as R counts them (the n of ``bic``): cells of a Poisson
        model (glm/glmer rows), rows of a binomial one (``cbind(s, f)`` rows), individual
        responses of multinomial and ordinal models (clm/clmm with frequency weights)."""
        fam = self.design.family
        if fam.name == "poisson":
            return int(fam.y.size)
        if fam.name == "binomial":
            return int(fam.y.shape[0])
        return int(round(float(fam.y.sum())))

    @property
    def n_counts(self) -> float:
        """Total count (individual responses)."""
        return float(self.design.family.y.sum())

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``-2 l + log(nobs) k`` with ``nobs`` as R's (rows), so equal to lme4's BIC."""
        return -2.0 * self.loglik + math.log(self.nobs) * self.n_params

    @property
    def deviance(self) -> float:
        """``-2 log-likelihood`` (lme4's ``deviance`` column of ``anova``)."""
        return -2.0 * self.loglik

    def coefficients(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: estimate, SE, z, two-sided p-value and Wald interval."""
        level = check_level(level)
        est = self.beta
        se = self.se
        z = est / se
        crit = norm_ppf(0.5 + level / 2)
        return pd.DataFrame({
            "estimate": est, "se": se, "z": z, "p": 2 * norm_sf(np.abs(z)),
            f"lower {level:.0%}": est - crit * se, f"upper {level:.0%}": est + crit * se,
        })

    def conf_int(self, level: float = 0.95, method: str = "wald",
                 parameters: list[str] | None = None) -> pd.DataFrame:
        """Confidence intervals for every parameter of ``names`` (or ``parameters``).

        ``method="wald"``: ``estimate -/+ z SE`` (a variance parameter's lower end is cut at 0);
        ``method="profile"``: ``{x : 2 [l(hat) - l_p(x)] <= chi2_1(level)}``, each profile
        maximised over the other parameters (refits; as lme4's ``confint(method="profile")``).
        Variance parameters are on the scale of ``names`` (SDs, or factor entries).
        """
        level = check_level(level)
        if isinstance(parameters, str):
            parameters = [parameters]
        names = list(self.names) if parameters is None else list(parameters)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise SpecError(f"unknown parameter(s) {unknown}; parameters: {', '.join(self.names)}")
        kind = check_choice(method.lower() if isinstance(method, str) else method,
                            "interval method", ("wald", "profile"))
        rows = []
        if kind == "profile":
            from ..fitting import profile_interval  # refits: the fitting layer does it

            for n in names:
                iv = profile_interval(self, n, level)
                rows.append((iv["lower"], iv["upper"]))
        else:
            crit = norm_ppf(0.5 + level / 2)
            se_all = np.sqrt(np.diag(self.cov))
            for n in names:
                k = self.names.index(n)
                lo, hi = self.params[k] - crit * se_all[k], self.params[k] + crit * se_all[k]
                if self.param_roles[k] in VARIANCE_ROLES:
                    lo = max(lo, 0.0)
                rows.append((lo, hi))
        pct = f"{(1 - level) / 2:.1%}", f"{(1 + level) / 2:.1%}"
        return pd.DataFrame(rows, index=names, columns=list(pct))

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
            raise FitError("the model has no random effects, so there is nothing to predict; "
                           "add a term such as (1 | group) to the formula")
        key = check_choice(kind, "kind", ("mode", "mean", "sd", "mode_sd"))
        labels = list(self.design.cluster_labels) or list(range(self.design.n_clusters))
        cols = list(self.design.random_names) or [
            f"u{i}" for i in range(self.design.n_random)]
        return pd.DataFrame(self.posterior[key], index=labels, columns=cols)

    def ranef(self, kind: str = "mode") -> dict[str, pd.DataFrame]:
        """Predictions of the random effects by grouping factor, as lme4's ``ranef``: one
        table per random term, indexed by the group's levels (``a:b`` labels for nested
        ``(1 | a/b)`` terms), one column per component.

        Designs that do not record their groups (builders of ``gllmm.models``) give one
        table ``{"cluster": random_effects(kind)}``.
        """
        table = self.random_effects(kind)
        levels = self.design.notes.get("random_levels")
        if not levels:
            return {"cluster": table}
        values = table.to_numpy()
        out: dict[str, pd.DataFrame] = {}
        for (group, expr, places), block in zip(levels, self.design.covariance.blocks,
                                                strict=True):
            comps = list(block[1])
            rows = [values[c, s:s + len(comps)] for c, s in places.values()]
            name = group if group not in out else f"{group} ({expr})"
            out[name] = pd.DataFrame(rows, index=pd.Index(list(places), name=group),
                                     columns=comps)
        return out

    def cluster_coefficients(self, fixed: str, component: int | str = 0,
                             kind: str = "mode") -> pd.Series:
        """Cluster-specific parameters ``beta + u_k`` (e.g. center-specific log odds ratios)."""
        re = self.random_effects(kind)
        if fixed not in self.beta.index:
            raise SpecError(f"unknown fixed effect {fixed!r}; fixed effects: "
                            f"{', '.join(map(str, self.beta.index))}")
        if isinstance(component, int) and -len(re.columns) <= component < len(re.columns):
            component = re.columns[component]
        if component not in re.columns:
            raise SpecError(f"unknown random-effect component {component!r}; components: "
                            f"{', '.join(map(str, re.columns))} (or their positions)")
        col = component
        return pd.Series(self.beta[fixed] + re[col].to_numpy(), index=re.index, name=fixed)

    def linear_predictor(self, kind: str = "mode") -> np.ndarray:
        d = self.design
        if kind == "fixed" or d.n_random == 0:
            eta = d.x_matrix @ self.params[: d.n_fixed]  # sparse X stays sparse
            return np.asarray(eta).reshape(d.offset.shape) + d.offset
        if kind == "mode":
            return self.posterior["eta_mode"]
        raise SpecError(f"unknown kind {kind!r}; use 'mode' or 'fixed'")

    def predict(self, newdata: Any = None, type: str = "link", re_form: Any = None,
                offset: Any = None, allow_new_levels: bool = False) -> np.ndarray:
        """Linear predictor or mean of new rows, with (``re_form=None``) or without
        (``re_form="NA"``) the random effects, as lme4's ``predict(fit, newdata)``.

        Parameters
        ----------
        newdata : DataFrame or Table, optional
            The rows to predict (default: the fitted rows); the response is not needed.
        type : {"link", "response"}
            ``eta`` or the mean (``exp(eta)``, or the success probability for binomial).
        re_form : None or "NA"
            With the random effects at their posterior modes, or the fixed part alone.
        offset : str or array-like, optional
            The new rows' offset when the fit's ``offset=`` was an array.
        allow_new_levels : bool
            False (default, lme4's ``allow.new.levels = FALSE``): a group level absent from
            the fit raises SpecError naming it; True: such groups are predicted at u = 0.
        """
        from ._predict import predict

        return predict(self, newdata, type=type, re_form=re_form, offset=offset,
                       allow_new_levels=allow_new_levels)

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

    def goodness_of_fit(self, kind: str = "fixed") -> dict[str, float]:
        """Deviance G^2 against the saturated model, Pearson X^2 and residual df.

        With random effects the fitted values are conditional on their modes
        (``kind="mode"``); the df count only the fixed effects.
        """
        dev = self.residuals("deviance", kind)
        pear = self.residuals("pearson", kind)
        y = self.design.family.y
        n_cells = y.size if self.design.family.name == "poisson" else y.size - y.shape[0]
        return {"G2": float(np.sum(dev**2)), "X2": float(np.sum(pear**2)),
                "df": n_cells - self.design.n_fixed}

    def residuals(self, type: str = "deviance", kind: str = "mode") -> pd.Series:
        """Residuals per observation (Poisson cell or binomial/multinomial row), as R's
        ``residuals(fit, type)``, conditional on the random effects' modes (``kind="mode"``)
        or at u = 0 (``kind="fixed"``).

        ``response``: ``y - mu`` (binomial: ``y/n - p``, R's proportion scale);
        ``pearson``: ``sqrt(sum_k (y_k - mu_k)^2 / mu_k)`` with the sign of the first
        category's difference (Poisson: ``(y - mu)/sqrt(mu)``; binomial:
        ``(y - n p)/sqrt(n p (1 - p))``); ``deviance``: ``sign * sqrt(d)``, d the contribution
        to the deviance, ``2 sum_k y_k log(y_k / mu_k)`` (Poisson: ``- 2 (y - mu)`` added).
        The index is the data row.
        """
        fam = self.design.family
        kind = "fixed" if self.posterior is None else kind
        mu = fam.mean(self.linear_predictor(kind))
        y = fam.y
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)
        if fam.name == "poisson":  # every cell an observation
            d, pear, resp = 2 * (term - (y - mu)), (y - mu) / np.sqrt(mu), y - mu
            index = fam.cells.ravel()
            d, pear, resp, sign = d.ravel(), pear.ravel(), resp.ravel(), np.sign(resp.ravel())
        else:  # one observation per block (row): multinomial over its categories
            d = 2 * term.sum(axis=1)
            sign = np.sign(y[:, 0] - mu[:, 0])
            pear = sign * np.sqrt(np.sum((y - mu) ** 2 / mu, axis=1))
            n = y.sum(axis=1)
            resp = (y[:, 0] - mu[:, 0]) / n if y.shape[1] == 2 else y[:, 0] - mu[:, 0]
            index = fam.cells[:, 0] // y.shape[1]
        out = {"deviance": sign * np.sqrt(np.maximum(d, 0.0)), "pearson": pear,
               "response": resp}
        if type not in out:
            raise SpecError(f"unknown residual type {type!r}; use deviance, pearson or response")
        return pd.Series(out[type], index=index, name=f"{type} residual").sort_index()

    # ------------------------------------------------------------------ tests
    def lr_test(self, other: Any) -> HypothesisTest:
        """Likelihood-ratio test against another fit of the same data, in either order.

        Variance components set to zero under the null are on the boundary, so the reference is
        the chi-bar-square mixture ``sum_i C(k, i) 2^-k chi2(df - k + i)`` for k independent
        variance components (Self & Liang 1987; Stram & Lee 1994): for one variance, half the
        chi-square(1) tail. Which parameters are variances is declared by the covariance
        structure (``Design.param_roles``). See ``gllmm.results.lr_test``.
        """
        return lr_test(self, other)

    def wald_test(self, L: Any, rhs: Any | None = None) -> HypothesisTest:
        """Wald test of ``L params = rhs``: ``(L x - rhs)' (L V L')^-1 (L x - rhs)``.

        ``L`` has one column per parameter of ``names`` or per fixed effect (then the variance
        parameters get zero weight); or it is a list of parameter names, each tested to be 0.
        Degrees of freedom: the number of rows of L (linearly independent).
        """
        return wald_test(self.params, self.cov, self.names, L, rhs)

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
            "infinite_estimates": list(self.infinite_estimates),
            "method": self.method,
            "nagq": self.n_nodes,
            "params": dict(self.beta.items()),
            "se": dict(self.se.items()),
            "random_sd": self.random_sd if self.design.n_random else {},
            "random_sd_se": self.random_sd_se if self.design.n_random else {},
            "aic": self.aic,
            "bic": self.bic,
            "nobs": self.nobs,
            "strategy": self.strategy,
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
