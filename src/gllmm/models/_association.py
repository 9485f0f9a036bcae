"""Odds-ratio models for stratified tables with random effects (paper Sections 2.1, 5.2).

Model (5.1): ``log theta_ij(k) = b_k``, ``b_k ~ N(beta, sigma_b^2)``, for local odds ratios
(as a Poisson log-linear GLLMM with a random slope on the score product) and for global odds
ratios (Dale's formula, eq. 3.1, with each stratum's sample marginals plugged in).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..links import dale_plugin_family
from ..spec import Design, build_design, scalar_structure
from ..spec._build import count_column
from ..spec._table_input import SCORE_SUFFIX, score_column
from ..tables._validate import (
    check_columns,
    check_no_missing,
    check_scores,
    check_unique_cells,
)


def _levels(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    return list(pd.unique(s))


def centred_scores(levels: list, scores: Any = None) -> np.ndarray:
    """Scores of ``levels`` (default 1..K in reverse, so the first level scores highest),
    centred at their mean: for 2 levels (+1/2, -1/2), for 3 levels (1, 0, -1)."""
    k = len(levels)
    given = check_scores(levels, scores, "scores")
    sc = np.arange(k, 0, -1, dtype=float) if given is None else given
    return sc - sc.mean()


def _checked(data: Any, stratum: str, row: str, col: str, count: str) -> pd.DataFrame:
    """The data after the checks every builder makes (columns, factors, cells, counts)."""
    check_columns(data, [stratum, row, col, count])
    check_no_missing(data, [stratum, row, col], "factor")
    check_unique_cells(data, [stratum, row, col])
    count_column(data, count)
    return data


def stratified_local_association(
    data: pd.DataFrame,
    stratum: str,
    row: str,
    col: str,
    count: str = "count",
    row_scores: Any = None,
    col_scores: Any = None,
    centre: bool = True,
    random: bool = True,
) -> Design:
    """Uniform local association within strata, heterogeneous across strata (model 5.1).

    ``log mu_ijk = lambda_ik + lambda_jk + b_k x_i s_j``, ``b_k = beta + u_k``,
    ``u_k ~ N(0, sigma_b^2)``: ``b_k`` is stratum k's local log odds ratio for unit score
    steps. Under Poisson sampling the random slope also moves row and column totals, so the fit
    depends on the score coding (reference note, Section 5.2); the default centres the scores
    (x = +1/2, -1/2; s = 1, 0, -1), the coding that reproduces the paper.
    """
    df = _checked(data, stratum, row, col, count).copy().reset_index(drop=True)
    rl, cl = _levels(df[row]), _levels(df[col])
    xs = centred_scores(rl, row_scores) if centre else check_scores(rl, row_scores, "row_scores")
    ss = centred_scores(cl, col_scores) if centre else check_scores(cl, col_scores, "col_scores")
    xs = np.arange(len(rl), 0, -1, dtype=float) if xs is None else xs
    ss = np.arange(len(cl), 0, -1, dtype=float) if ss is None else ss
    # the score columns <factor>_score, as build_design(Table) names them
    for factor, levels, scores in ((row, rl, xs), (col, cl, ss)):
        values = df[factor].map(dict(zip(levels, scores, strict=True))).to_numpy(float)
        df[score_column(df, factor, values)] = values
    slope = f"{row}{SCORE_SUFFIX}:{col}{SCORE_SUFFIX}"
    df[stratum] = df[stratum].astype(str) if not isinstance(
        df[stratum].dtype, pd.CategoricalDtype) else df[stratum]
    rand = f" + (0 + {slope} | {stratum})" if random else ""
    formula = f"{count} ~ C({stratum}) * C({row}) + C({stratum}) * C({col}) + {slope}{rand}"
    d = build_design(df, formula, title="Local odds ratios across strata (model 5.1)",
                     scores={row: xs, col: ss})
    # the paper's names: beta for the mean local log odds ratio, b for each stratum's
    names = tuple("beta" if n == slope else n for n in d.fixed_names)
    return Design(d.family, d.X, d.Z, d.offset, d.cluster, d.covariance, names,
                  d.cluster_labels, tuple(n.replace(slope, "b") for n in d.random_names),
                  d.notes)


def stratified_global_association(
    data: pd.DataFrame,
    stratum: str,
    row: str,
    col: str,
    count: str = "count",
    random: bool = True,
    individual: bool = True,
) -> Design:
    """Uniform global odds ratio within strata via Dale's formula, marginals plugged in.

    Each stratum's I x J table is multinomial given its total; ``log theta_ij(k) = b_k`` for all
    global odds ratios, ``b_k ~ N(beta, sigma_b^2)``; the row and column marginal distributions
    of each stratum are its sample proportions (as the paper's SAS code, Section 5.2).
    ``individual=True`` reports the log-likelihood of the individual responses (no
    multinomial coefficients; -407.0976 on the clinical trial, the reference note's value);
    False adds the coefficients of the grouped multinomials.
    """
    df = _checked(data, stratum, row, col, count).reset_index(drop=True)
    rl, cl = _levels(df[row]), _levels(df[col])
    strata = _levels(df[stratum])
    nb, ni, nj = len(strata), len(rl), len(cl)
    tables = np.zeros((nb, ni, nj))
    cells = np.full((nb, ni * nj), -1)
    si = df[stratum].map({s: i for i, s in enumerate(strata)}).to_numpy()
    ri = df[row].map({s: i for i, s in enumerate(rl)}).to_numpy()
    ci = df[col].map({s: i for i, s in enumerate(cl)}).to_numpy()
    np.add.at(tables, (si, ri, ci), count_column(df, count))
    cells[si, ri * nj + ci] = np.arange(len(df))
    if (cells < 0).any():
        raise SpecError("every stratum needs a row for every cell of its table")
    if np.any(tables.sum(axis=2) == 0) or np.any(tables.sum(axis=1) == 0):
        raise SpecError("a stratum has an empty row or column margin: its global odds ratios "
                        "are not identified")
    fam = dale_plugin_family(tables, cells)
    fam.coefficient = not individual
    ne = (ni - 1) * (nj - 1)
    X = np.ones((nb, ne, 1))
    Z = np.ones((nb, ne, 1)) if random else np.zeros((nb, ne, 0))
    cov = scalar_structure(stratum) if random else None
    notes = {"data": df, "title": "Global odds ratios across strata (Dale, plug-in marginals)",
             "marginals": "plug-in sample proportions"}
    return Design(fam, X, Z, np.zeros((nb, ne)), np.arange(nb), cov, ("beta",),
                  tuple(strata), (f"{stratum}:b",), notes)
