"""Ordinal logit models with and without random effects (paper Section 1; Hartzel, Agresti &
Caffo 2001; without random effects the models of ``ordinal::clm``, ``MASS::polr`` and
``VGAM::vglm(..., cumulative(parallel = TRUE))``).

The data (one row per observation, a count per row, or wide ``cbind(c1, ..., cK)`` counts:
``_ordinal_data``) are grouped into multinomial blocks, one per (cluster, covariate pattern).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from ..errors import SpecError
from ..links import ContinuationRatio, Multinomial, cumulative_logit_family
from ..spec import Design, block_structure
from ..spec._build import COVARIANCES
from ..spec._formula import formula_columns, model_matrix, parse_formula, split_top_level
from ..tables._validate import check_choice, check_columns
from ._ordinal_data import category_blocks, response_columns

#: how each link writes the covariates, by sign convention
CONVENTIONS = {
    "cumulative": ("logit P(Y <= j) = alpha_j + x'beta", "logit P(Y <= j) = theta_j - x'beta"),
    "adjacent": ("log(pi_j / pi_j+1) = alpha_j + x'beta", "log(pi_j / pi_j+1) = theta_j - x'beta"),
    "continuation": ("logit P(Y = j | Y >= j) = alpha_j + x'beta",
                     "logit P(Y = j | Y >= j) = theta_j - x'beta"),
}
TITLES = {"cumulative": "Cumulative logit model", "adjacent": "Adjacent-categories logit model",
          "continuation": "Continuation-ratio logit model",
          "baseline": "Baseline-category logit model"}


def ordinal_mixed(
    data: pd.DataFrame,
    formula: str,
    count: str | None = None,
    link: str = "cumulative",
    covariance: str | None = None,
    individual: bool = True,
    *,
    weights: str | None = None,
    convention: str = "paper",
) -> Design:
    """Ordinal (or nominal) logit models, with one random term or none.

    ``link="cumulative"``: ``logit P(Y <= j) = alpha_j + x' beta + z' u``;
    ``link="adjacent"``: ``log(pi_j / pi_{j+1}) = alpha_j + x' beta + z' u``, j = 1..K-1,
    with the sign convention of Hartzel et al. (2001) and the paper (positive beta moves mass
    to low categories); ``link="continuation"``: ``logit P(Y = j | Y >= j)``;
    ``link="baseline"``: ``log(pi_j / pi_K) = alpha_j + x' beta_j + z' u_j`` with
    category-specific effects. ``formula`` is ``response ~ covariates + (expr | group)``
    (the random term is optional: without it, the model of ``clm``/``polr``/``vglm``);
    the response is a factor column, or ``cbind(c1, ..., cK)`` of K count columns.

    Parameters
    ----------
    count, weights : str, optional
        Column of frequencies per row (the same thing under polr's name). Default: the
        column ``count`` if the data have one, else each row is one observation.
    convention : {"paper", "clmm"}
        ``"clmm"`` writes the ordinal links as ``theta_j - x' beta - z' u``, the convention of
        ``ordinal::clm``/``clmm`` and ``MASS::polr`` (estimates of beta change sign).
    individual : bool
        Log-likelihood of the individual responses (no multinomial coefficients), as
        ``clmm`` and ``polr`` report it; False adds the coefficients (grouped multinomial
        data, as ``VGAM`` reports it).
    """
    check_columns(data, [])
    if covariance is not None:
        check_choice(covariance, "covariance", COVARIANCES)
    if count is not None and weights is not None and count != weights:
        raise SpecError(f"give the frequency column once: count={count!r} and "
                        f"weights={weights!r} name two columns")
    freq = count or weights or ("count" if "count" in data.columns else None)
    if convention not in ("paper", "clmm"):
        raise SpecError(f"unknown convention {convention!r}; use 'paper' (alpha_j + x'beta) "
                        "or 'clmm' (theta_j - x'beta)")
    if link not in TITLES:
        raise SpecError(f"unknown link {link!r}; use 'cumulative', 'adjacent', "
                        "'continuation' or 'baseline'")
    if convention == "clmm" and link == "baseline":
        raise SpecError("convention='clmm' applies to the ordinal links (cumulative, adjacent, "
                        "continuation); baseline-category logits have one sign only")
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise SpecError("the formula needs the ordinal response on the left: 'response ~ ...'"
                        " (a factor column, or cbind(c1, c2, ...) of count columns)")
    response = parsed.response.strip()
    if len(parsed.random) > 1:
        raise SpecError(f"ordinal models take at most one random term '(expr | group)'; got "
                        f"{len(parsed.random)}: combine them into one term or drop some")
    term = parsed.random[0] if parsed.random else None
    wide = response_columns(response)
    taken = set(wide or [response]) | {freq or ""}
    names = set(map(str, data.columns))
    fixed = _fixed_terms(parsed.fixed)
    covariates = (formula_columns(fixed) | (formula_columns(term.expr) if term else set())) \
        & names - taken
    group = term.group if term else None
    if group is not None and group not in names:
        raise SpecError(f"unknown grouping column {group!r} in random term '| {group}'; "
                        f"available columns: {', '.join(map(str, data.columns))}")
    keys = ([group] if group else []) + sorted(covariates - {group},
                                               key=list(data.columns).index)
    cb = category_blocks(data, response, keys, freq, ordered=link != "baseline")
    levels, y, block_df = cb.levels, cb.y, cb.blocks
    X0, xn = _covariates(fixed, block_df)
    sign = -1.0 if convention == "clmm" else 1.0
    X0 = sign * X0
    nb, k = y.shape
    J = k - 1
    if term is not None:
        cluster, labels = pd.factorize(block_df[group], sort=True)
        Zt, zn = model_matrix(term.expr, block_df)
        Zt = sign * Zt
        kind = covariance or ("diagonal" if term.diagonal else "unstructured")
    else:
        cluster, labels = np.zeros(nb, dtype=int), []
        Zt, zn, kind = np.zeros((nb, 0)), (), "identity"
    q = Zt.shape[1]
    alpha_names = tuple(f"alpha[{levels[j]}|{levels[j + 1]}]" for j in range(J))
    p = J + X0.shape[1]
    notes: dict[str, Any] = {"data": cb.table, "formula": formula,
                             "title": TITLES[link] + (" with random effects" if q else ""),
                             "response_levels": [str(v) for v in levels]}
    if link in CONVENTIONS:
        notes["convention"] = _convention_note(link, convention)
    cum = np.cumsum(y.sum(0))[:-1] / y.sum()
    if link == "cumulative":
        X = np.zeros((nb, J, p))
        X[:, np.arange(J), np.arange(J)] = 1.0
        X[:, :, J:] = X0[:, None, :]
        Z = np.repeat(Zt[:, None, :], J, axis=1)
        fam = cumulative_logit_family(y, _cells(nb, k), coefficient=not individual)
        notes["start"] = np.r_[logit(np.clip(cum, 1e-3, 1 - 1e-3)), np.zeros(X0.shape[1])]
    elif link == "adjacent":
        # log pi_j = sum_{m >= j} eta_m (pi_K baseline): a log-linear multinomial
        X = np.zeros((nb, k, p))
        Z = np.zeros((nb, k, q))
        for j in range(J):
            X[:, j, j:J] = 1.0
            X[:, j, J:] = (J - j) * X0
            Z[:, j, :] = (J - j) * Zt
        fam = Multinomial(y, _cells(nb, k), coefficient=not individual)
        props = (y.sum(0) + 0.5) / (y.sum() + 0.5 * k)
        notes["start"] = np.r_[np.log(props[:-1] / props[1:]), np.zeros(X0.shape[1])]
    elif link == "continuation":
        X = np.zeros((nb, J, p))
        X[:, np.arange(J), np.arange(J)] = 1.0
        X[:, :, J:] = X0[:, None, :]
        Z = np.repeat(Zt[:, None, :], J, axis=1)
        fam = ContinuationRatio(y, _cells(nb, k), coefficient=not individual)
        at_risk = np.cumsum(y.sum(0)[::-1])[::-1][:-1]
        cond = np.clip(y.sum(0)[:-1] / at_risk, 1e-3, 1 - 1e-3)
        notes["start"] = np.r_[logit(cond), np.zeros(X0.shape[1])]
    else:
        # log(pi_j / pi_K) = alpha_j + x' beta_j + z' u_j: category-specific effects
        names_x = [f"{n}[{levels[j]}]" for j in range(J) for n in xn]
        X = np.zeros((nb, k, J + J * X0.shape[1]))
        Z = np.zeros((nb, k, J * q))
        for j in range(J):
            X[:, j, j] = 1.0
            X[:, j, J + j * X0.shape[1]: J + (j + 1) * X0.shape[1]] = X0
            Z[:, j, j * q:(j + 1) * q] = Zt
        fam = Multinomial(y, _cells(nb, k), coefficient=not individual)
        props = (y.sum(0) + 0.5) / (y.sum() + 0.5 * k)
        notes["start"] = np.r_[np.log(props[:-1] / props[-1]), np.zeros(J * X0.shape[1])]
        zn_all = tuple(f"{z}[{levels[j]}]" for j in range(J) for z in zn)
        cov = block_structure([(group, zn_all, kind if J * q > 1 else "identity",
                                [np.arange(J * q)])], J * q) if q else None
        return Design(fam, X, Z, np.zeros(X.shape[:2]), cluster, cov,
                      alpha_names + tuple(names_x), tuple(labels),
                      tuple(f"{group}:{z}" for z in zn_all), notes)
    cov = block_structure([(group, zn, kind if q > 1 else "identity", [np.arange(q)])], q) \
        if q else None
    return Design(fam, X, Z, np.zeros(X.shape[:2]), cluster, cov, alpha_names + xn,
                  tuple(labels), tuple(f"{group}:{z}" for z in zn), notes)


def _cells(n_blocks: int, k: int) -> np.ndarray:
    """Row of the output table (block-major, category fastest) holding each block cell."""
    return np.arange(n_blocks * k).reshape(n_blocks, k)


def _fixed_terms(fixed: str) -> str:
    """The covariate terms without intercept markers: the thresholds are the intercepts."""
    parts = []
    for part in split_top_level(fixed):
        part = re.sub(r"\s*-\s*1\s*$", "", part).strip()
        if part and part not in ("0", "1", "-1"):
            parts.append(part)
    return " + ".join(parts)


def _covariates(fixed: str, blocks: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Covariate columns coded as in a model with an intercept (treatment contrasts for
    factors, as clm/polr), the intercept column dropped: it is aliased with the thresholds."""
    if not fixed:
        return np.zeros((len(blocks), 0)), ()
    X, names = model_matrix(f"1 + {fixed}", blocks)
    keep = [i for i, n in enumerate(names) if n != "Intercept"]
    return X[:, keep], tuple(names[i] for i in keep)


def _convention_note(link: str, convention: str) -> str:
    paper, clmm = CONVENTIONS[link]
    if convention == "clmm":
        return f"{clmm} as clm/clmm/polr (positive beta: higher categories)"
    return (f"{paper} (positive beta: lower categories); clm/clmm/polr write {clmm}, "
            "convention='clmm'")
