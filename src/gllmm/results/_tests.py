"""Hypothesis tests shared by every result: Wald tests, likelihood-ratio tests and ``anova``.

The likelihood-ratio test of nested fits uses the chi-bar-square reference when the smaller
model sets variance components to zero (a boundary of the parameter space).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._distributions import chi2_sf
from ..errors import FitError, SpecError
from ..spec._design import VARIANCE_ROLES
from ..tables._validate import check_numeric


@dataclass(frozen=True)
class HypothesisTest:
    """A chi-square type test: statistic, degrees of freedom, upper-tail P-value.

    ``boundary_components`` is the number k of variance components that the null hypothesis
    sets to 0; for k > 0 the P-value is from the chi-bar-square mixture (see ``chibar_sf``).
    """

    method: str
    statistic: float
    df: int
    p_value: float
    hypothesis: str = ""
    boundary_components: int = 0

    def __str__(self) -> str:
        ref = f" (chi-bar-square, {self.boundary_components} variance(s) on the boundary)" \
            if self.boundary_components else ""
        return (
            f"{self.method}: {self.statistic:.4f} on {self.df} df, P = {self.p_value:.4g}{ref}"
            + (f"  [{self.hypothesis}]" if self.hypothesis else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chibar_sf(stat: float, df: int, k: int) -> float:
    """Upper tail of the chi-bar-square mixture ``sum_i C(k, i) 2^-k chi2(df - k + i)``.

    The reference of the LR statistic when the null sets k independent variance components
    (and ``df - k`` unconstrained parameters) to 0 (Self & Liang 1987; Stram & Lee 1994). A
    chi-square with 0 df is the point mass at 0 (tail 0 for a positive statistic).
    """
    base = df - k
    total = 0.0
    for i in range(k + 1):
        d = base + i
        tail = float(chi2_sf(stat, d)) if d > 0 else float(stat <= 0)
        total += math.comb(k, i) / 2**k * tail
    return total


def _variance_count(result: Any, free_only: bool) -> int:
    boundary = set(getattr(result, "boundary", ()))
    return sum(1 for name, role in zip(result.names, result.param_roles, strict=True)
               if role in VARIANCE_ROLES and not (free_only and name in boundary))


def _mixing(result: Any) -> str:
    """The class of the random effects' distribution: ``"none"`` (no random effects, or one
    NPML mass point), ``"discrete"`` (NPML mass points) or ``"normal"`` (AGQ, Laplace, MCEM,
    PQL); a fit without a design (constrained ML) has none."""
    design = getattr(result, "design", None)
    if design is None or not design.n_random or getattr(result, "k", None) == 1:
        return "none"
    return "discrete" if result.method == "npml" else "normal"


def nested(first: Any, second: Any) -> bool:
    """Whether one fit's model can be a special case of the other's, as far as the random
    effects' distribution decides: a normal and a discrete (NPML, two or more points) mixing
    distribution are not special cases of each other, and no random effects is a case of
    both (sigma = 0; all mass points equal).

    ``lr_test`` refuses, and ``anova`` gives no P-value for, a pair that is not nested; such
    fits are compared by AIC/BIC. The fixed parts are the user's to nest (as in lme4).
    """
    kinds = {_mixing(first), _mixing(second)}
    return len(kinds) == 1 or "none" in kinds


def lr_test(first: Any, second: Any) -> HypothesisTest:
    """Likelihood-ratio test of two nested fits of the same data, in either order.

    The model with fewer parameters is the null. ``stat = 2 (l_full - l_null)``; with k
    variance components in the full model that the null fixes at 0 (counted from the
    parameter roles the covariance structure declares; a variance the null estimated as 0
    counts as fixed), the P-value is ``chibar_sf(stat, df, k)``, df the difference in the
    number of parameters.
    """
    check_fits(first, second)
    full, null = (first, second) if first.n_params >= second.n_params else (second, first)
    if not nested(full, null):
        raise FitError("a normal random-effects fit and an NPML (discrete mixing) fit are not "
                       "nested, so the likelihood-ratio statistic has no chi-square reference; "
                       "compare them by AIC/BIC (gllmm.anova prints both)")
    df = full.n_params - null.n_params
    if df == 0:
        raise FitError("the two fits have the same number of parameters, so neither is nested "
                       "in the other; compare them by AIC/BIC instead")
    if getattr(full, "nobs", None) != getattr(null, "nobs", None):
        raise SpecError(f"the fits use different data ({full.nobs} and {null.nobs} "
                        "observations); fit both models to the same rows")
    if not _same_counts(full, null):
        raise SpecError("the fits use different data (their counts differ), so the "
                        "likelihood ratio compares nothing; fit both models to the same rows")
    stat = max(2.0 * (full.loglik - null.loglik), 0.0)
    k = max(_variance_count(full, False) - _variance_count(null, True), 0)
    k = min(k, df)
    p = chibar_sf(stat, df, k)  # k = 0: the plain chi2(df) tail
    return HypothesisTest("likelihood ratio", stat, df, float(p),
                          f"{df} parameter(s) of the larger model fixed", k)


def anova(*fits: Any) -> pd.DataFrame:
    """Compare nested fits as lme4's ``anova(m0, m1, ...)``: one row per model (labelled by
    its formula), ordered by the number of parameters, each tested against the row above it
    by ``lr_test``.

    Columns: ``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance`` (-2 logLik), ``Chisq``,
    ``Df``, ``Pr(>Chisq)`` (boundary-corrected where variance components are dropped). A row
    whose model is not nested in the row above (``gllmm.results.nested``: a normal against an
    NPML mixing distribution) has no test, and a ``note`` column says so; compare such rows
    by AIC/BIC.
    """
    if len(fits) < 2:
        raise SpecError("anova compares two or more fits: anova(m0, m1, ...)")
    check_fits(*fits)
    order = sorted(range(len(fits)), key=lambda i: (fits[i].n_params, i))
    rows = []
    for pos, i in enumerate(order):
        m = fits[i]
        row = {"npar": m.n_params, "AIC": m.aic, "BIC": m.bic, "logLik": m.loglik,
               "deviance": -2.0 * m.loglik, "Chisq": np.nan, "Df": np.nan,
               "Pr(>Chisq)": np.nan}
        if pos and not nested(m, fits[order[pos - 1]]):
            row["note"] = NOT_NESTED
        elif pos:
            t = lr_test(m, fits[order[pos - 1]])
            row.update({"Chisq": t.statistic, "Df": t.df, "Pr(>Chisq)": t.p_value})
        rows.append(row)
    table = pd.DataFrame(rows, index=_labels([fits[i] for i in order], order))
    if "note" in table:
        table["note"] = table["note"].fillna("")
    return table


def _same_counts(first: Any, second: Any) -> bool:
    """Whether two fits' counts are the same multiset (designs may order rows differently,
    e.g. sorted by another grouping); fits without a design are not compared."""
    ys = [getattr(getattr(getattr(f, "design", None), "family", None), "y", None)
          for f in (first, second)]
    if ys[0] is None or ys[1] is None or np.size(ys[0]) != np.size(ys[1]):
        return True
    return bool(np.array_equal(np.sort(np.ravel(ys[0])), np.sort(np.ravel(ys[1]))))


def check_fits(*fits: Any) -> None:
    """Refuse arguments that are not fits (a list of fits, a number, None) by name."""
    for i, f in enumerate(fits):
        if not all(hasattr(f, a) for a in ("n_params", "loglik", "names", "param_roles")):
            raise SpecError(f"argument {i + 1} is a {type(f).__name__}, not a fit; pass the "
                            "values of gllmm.fit (anova(m0, m1), not anova([m0, m1]))")


#: anova's note on a row that is not nested in the row above it
NOT_NESTED = "not nested in the row above (normal vs NPML): no LR test, compare AIC/BIC"


def _labels(fits: list[Any], order: list[int]) -> list[str]:
    """Each model's formula where it has one (lme4 prints the object names), else its
    position among the arguments."""
    labels = []
    for fit, i in zip(fits, order, strict=True):
        design = getattr(fit, "design", None)
        formula = design.notes.get("formula") if design is not None else None
        labels.append(str(formula) if formula else f"model {i + 1}")
    if len(set(labels)) < len(labels):
        return [f"model {i + 1}" for i in order]
    return labels


def wald_test(params: np.ndarray, cov: np.ndarray, names: tuple[str, ...], L: Any,
              rhs: Any | None = None) -> HypothesisTest:
    """Wald test of ``L x = rhs`` for estimates x with covariance V:
    ``(L x - rhs)' (L V L')^-1 (L x - rhs)`` on ``rank(L)`` df (rows must be independent).

    ``L`` may have fewer columns than x (the leading parameters, e.g. the fixed effects), or be
    a list of parameter names, each tested to be 0.
    """
    n = len(params)
    if isinstance(L, str | list | tuple) and all(isinstance(v, str) for v in np.atleast_1d(L)):
        wanted = [L] if isinstance(L, str) else list(L)
        if not wanted:
            raise SpecError("L is empty; name the parameters to test, or give a (k, p) matrix")
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise SpecError(f"unknown parameter(s) {unknown}; parameters: {', '.join(names)}")
        L_mat = np.zeros((len(wanted), n))
        for r, w in enumerate(wanted):
            L_mat[r, list(names).index(w)] = 1.0
    else:
        L_mat = check_numeric(L, "L (a matrix, or a list of parameter names)").copy()
        if L_mat.ndim == 1:
            L_mat = L_mat.reshape(1, -1)
        if L_mat.ndim != 2 or L_mat.shape[0] == 0 or not 0 < L_mat.shape[1] <= n:
            raise SpecError(f"L must have shape (k, p) with k >= 1 and p <= {n}, got "
                            f"{L_mat.shape}")
        L_mat = np.pad(L_mat, ((0, 0), (0, n - L_mat.shape[1])))
    if not np.all(np.isfinite(L_mat)):
        raise SpecError("L has NaN or infinite entries; give finite weights")
    if np.linalg.matrix_rank(L_mat) < L_mat.shape[0]:
        raise SpecError("the rows of L must be linearly independent")
    c = np.zeros(L_mat.shape[0]) if rhs is None else check_numeric(rhs, "rhs").reshape(-1)
    if c.shape[0] != L_mat.shape[0] or not np.all(np.isfinite(c)):
        raise SpecError(f"rhs must have {L_mat.shape[0]} finite entries, one per row of L")
    used = np.any(L_mat != 0, axis=0)
    v = L_mat[:, used] @ cov[np.ix_(used, used)] @ L_mat[:, used].T
    if not np.all(np.isfinite(v)):
        raise FitError("the tested parameters have no standard errors (a variance on the "
                       "boundary or a singular information); use lr_test instead")
    d = L_mat @ params - c
    stat = float(d @ np.linalg.solve(v, d))
    k = L_mat.shape[0]
    terms = "; ".join(f"{' + '.join(f'{w:g} {nm}' for w, nm in zip(row, names, strict=True) if w)}"
                      f" = {val:g}" for row, val in zip(L_mat, c, strict=True))
    label = terms if k <= 3 else f"L x = c ({k} rows)"
    return HypothesisTest("Wald", stat, k, float(chi2_sf(stat, k)), label)

