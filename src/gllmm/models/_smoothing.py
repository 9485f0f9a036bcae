"""Cell-wise smoothing models (paper Section 2.2, eqs. 2.5 and 2.6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..spec import Design, build_design


def cellwise_smoothing(
    data: pd.DataFrame,
    row: str,
    col: str,
    count: str = "count",
    base: str = "independence",
    row_scores: Any = None,
    col_scores: Any = None,
) -> Design:
    """Poisson log-linear model with one N(0, sigma^2) random effect per cell.

    (2.5) ``log mu_ij = lambda + lambda_i^X + lambda_j^Y + u_ij`` (base ``independence``);
    (2.6) adds ``beta u_i v_j`` with row/column scores (base ``linear_by_linear``; default
    scores are the category values when numeric, else 1..K).
    """
    df = data.copy().reset_index(drop=True)
    df["_cell"] = np.arange(len(df))
    rs = _scores(df[row], row_scores)
    cs = _scores(df[col], col_scores)
    df["_rs"] = df[row].map(rs)
    df["_cs"] = df[col].map(cs)
    fixed = f"C({row}) + C({col})"
    if base in ("linear_by_linear", "uniform", "lxl"):
        fixed += " + I(_rs * _cs)"
    elif base != "independence":
        raise ValueError("base must be 'independence' or 'linear_by_linear'")
    d = build_design(df, f"{count} ~ {fixed} + (1 | _cell)",
                     title=f"Cell-wise smoothing, {base} base (Coull & Agresti eq. "
                     f"{'2.5' if base == 'independence' else '2.6'})",
                     scores={row: list(rs.values), col: list(cs.values)})
    return d


def _scores(values: pd.Series, given: Any) -> pd.Series:
    levels = list(pd.unique(values))
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = list(values.cat.categories)
    else:
        levels = sorted(levels)
    if given is None:
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in levels):
            sc = [float(v) for v in levels]
        else:
            sc = list(np.arange(1, len(levels) + 1, dtype=float))
    elif isinstance(given, dict):
        sc = [float(given[v]) for v in levels]
    else:
        sc = [float(v) for v in given]
        if len(sc) != len(levels):
            raise ValueError(f"{len(sc)} scores given for {len(levels)} levels")
    return pd.Series(sc, index=levels)
