"""Ordinal logit models with random effects (paper Section 1; Hartzel, Agresti & Caffo 2001).

Counts in long form (one row per covariate pattern x response category) are grouped into
multinomial blocks, one per (cluster, covariate pattern).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from ..errors import SpecError
from ..links import ContinuationRatio, Multinomial, cumulative_logit_family
from ..spec import Design, block_structure
from ..spec._build import count_column
from ..spec._formula import model_matrix, parse_formula


def _blocks(data: pd.DataFrame, response: str, count: str, keys: list[str]) -> tuple:
    for c in [response, count, *keys]:
        if c not in data.columns:
            raise SpecError(f"unknown column {c!r}; available: {', '.join(data.columns)}")
    resp = data[response]
    levels = list(resp.cat.categories) if isinstance(resp.dtype, pd.CategoricalDtype) else \
        sorted(pd.unique(resp))
    k = len(levels)
    if k < 2:
        raise SpecError(f"response {response!r} needs at least two categories")
    df = data.reset_index(drop=True).copy()
    df["_row"] = np.arange(len(df))
    df["_cat"] = pd.Categorical(df[response], levels).codes
    if (df["_cat"] < 0).any():
        raise SpecError(f"response {response!r} has values outside its categories")
    # blocks = distinct key combinations (sorted, as pivot_table would give), by factorize
    key_codes = [pd.factorize(df[c], sort=True) for c in keys]
    codes = np.column_stack([kc[0] for kc in key_codes])
    uniq, block = np.unique(codes, axis=0, return_inverse=True)
    block = block.ravel()
    y = np.zeros((len(uniq), k))
    np.add.at(y, (block, df["_cat"].to_numpy()), count_column(df, count))
    rows = np.full((len(uniq), k), -1)
    rows[block[::-1], df["_cat"].to_numpy()[::-1]] = df["_row"].to_numpy()[::-1]
    if (rows < 0).any():
        raise SpecError("every covariate pattern needs a row for every response category")
    block_df = pd.DataFrame({c: np.asarray(kc[1])[uniq[:, i]]
                             for i, (c, kc) in enumerate(zip(keys, key_codes, strict=True))})
    return levels, y, rows, block_df, df


def ordinal_mixed(
    data: pd.DataFrame,
    formula: str,
    count: str = "count",
    link: str = "cumulative",
    covariance: str | None = None,
    individual: bool = True,
) -> Design:
    """Ordinal (or nominal) logit models with random effects.

    ``link="cumulative"``: ``logit P(Y <= j) = alpha_j + x' beta + z' u``;
    ``link="adjacent"``: ``log(pi_j / pi_{j+1}) = alpha_j + x' beta + z' u``, j = 1..K-1,
    with the sign convention of Hartzel et al. (2001) and the paper (positive beta moves mass
    to low categories); ``link="continuation"``: ``logit P(Y = j | Y >= j)``;
    ``link="baseline"``: ``log(pi_j / pi_K) = alpha_j + x' beta_j + z' u_j`` with
    category-specific effects. ``formula`` is ``response ~ covariates + (expr | group)``.

    Parameters
    ----------
    individual : bool
        Log-likelihood of the individual responses (no multinomial coefficients), as
        ``ordinal::clmm`` reports; False adds the coefficients (grouped multinomial data).
    """
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise SpecError("the formula needs the ordinal response on the left: 'response ~ ...'")
    response = parsed.response.strip()
    if len(parsed.random) != 1:
        raise SpecError("ordinal_mixed takes exactly one random term '(expr | group)'")
    term = parsed.random[0]
    from ..spec._formula import formula_columns

    used = sorted((formula_columns(parsed.fixed) | formula_columns(term.expr))
                  & set(data.columns) - {response, count})
    group = term.group
    keys = [group] + [c for c in used if c != group]
    levels, y, rows, block_df, df = _blocks(data, response, count, keys)
    order = np.argsort(pd.factorize(block_df[group])[0], kind="stable")
    y, rows, block_df = y[order], rows[order], block_df.iloc[order].reset_index(drop=True)
    cluster, labels = pd.factorize(block_df[group])
    fixed_rhs = parsed.fixed if parsed.fixed.strip() not in ("1", "") else "0"
    X0, xn = model_matrix(f"0 + {fixed_rhs}" if fixed_rhs != "0" else "0", block_df) \
        if fixed_rhs != "0" else (np.zeros((len(block_df), 0)), ())
    Zt, zn = model_matrix(term.expr, block_df)
    nb, k = y.shape
    J = k - 1
    q = Zt.shape[1]
    alpha_names = tuple(f"alpha[{levels[j]}|{levels[j + 1]}]" for j in range(J))
    p = J + X0.shape[1]
    kind = covariance or ("diagonal" if term.diagonal else "unstructured")
    cov = block_structure([(group, zn, kind if q > 1 else "identity", [np.arange(q)])], q)
    notes: dict[str, Any] = {"data": df.drop(columns=["_row", "_cat"]), "formula": formula}
    cum = np.cumsum(y.sum(0))[:-1] / y.sum()
    if link == "cumulative":
        X = np.zeros((nb, J, p))
        X[:, np.arange(J), np.arange(J)] = 1.0
        X[:, :, J:] = X0[:, None, :]
        Z = np.repeat(Zt[:, None, :], J, axis=1)
        fam = cumulative_logit_family(y, rows, coefficient=not individual)
        notes["start"] = np.r_[logit(np.clip(cum, 1e-3, 1 - 1e-3)), np.zeros(X0.shape[1])]
        notes["title"] = "Cumulative logit model with random effects"
    elif link == "adjacent":
        # log pi_j = sum_{m >= j} eta_m (pi_K baseline): a log-linear multinomial
        X = np.zeros((nb, k, p))
        Z = np.zeros((nb, k, q))
        for j in range(J):
            X[:, j, j:J] = 1.0
            X[:, j, J:] = (J - j) * X0
            Z[:, j, :] = (J - j) * Zt
        fam = Multinomial(y, rows, coefficient=not individual)
        props = (y.sum(0) + 0.5) / (y.sum() + 0.5 * k)
        notes["start"] = np.r_[np.log(props[:-1] / props[1:]), np.zeros(X0.shape[1])]
        notes["title"] = "Adjacent-categories logit model with random effects"
    elif link == "continuation":
        X = np.zeros((nb, J, p))
        X[:, np.arange(J), np.arange(J)] = 1.0
        X[:, :, J:] = X0[:, None, :]
        Z = np.repeat(Zt[:, None, :], J, axis=1)
        fam = ContinuationRatio(y, rows, coefficient=not individual)
        at_risk = np.cumsum(y.sum(0)[::-1])[::-1][:-1]
        cond = np.clip(y.sum(0)[:-1] / at_risk, 1e-3, 1 - 1e-3)
        notes["start"] = np.r_[logit(cond), np.zeros(X0.shape[1])]
        notes["title"] = "Continuation-ratio logit model with random effects"
    elif link == "baseline":
        # log(pi_j / pi_K) = alpha_j + x' beta_j + z' u_j: category-specific effects
        names_x = [f"{n}[{levels[j]}]" for j in range(J) for n in xn]
        X = np.zeros((nb, k, J + J * X0.shape[1]))
        Z = np.zeros((nb, k, J * q))
        for j in range(J):
            X[:, j, j] = 1.0
            X[:, j, J + j * X0.shape[1]: J + (j + 1) * X0.shape[1]] = X0
            Z[:, j, j * q:(j + 1) * q] = Zt
        fam = Multinomial(y, rows, coefficient=not individual)
        props = (y.sum(0) + 0.5) / (y.sum() + 0.5 * k)
        notes["start"] = np.r_[np.log(props[:-1] / props[-1]), np.zeros(J * X0.shape[1])]
        notes["title"] = "Baseline-category logit model with random effects"
        zn_all = tuple(f"{z}[{levels[j]}]" for j in range(J) for z in zn)
        cov = block_structure([(group, zn_all, kind if J * q > 1 else "identity",
                                [np.arange(J * q)])], J * q)
        return Design(fam, X, Z, np.zeros(X.shape[:2]), cluster, cov,
                      alpha_names + tuple(names_x), tuple(labels),
                      tuple(f"{group}:{z}" for z in zn_all), notes)
    else:
        raise SpecError(f"unknown link {link!r}; use 'cumulative', 'adjacent', "
                        "'continuation' or 'baseline'")
    return Design(fam, X, Z, np.zeros(X.shape[:2]), cluster, cov, alpha_names + xn,
                  tuple(labels), tuple(f"{group}:{z}" for z in zn), notes)
