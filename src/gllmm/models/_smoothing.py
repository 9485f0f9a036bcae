"""Cell-wise smoothing models (paper Section 2.2, eqs. 2.5 and 2.6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..links import Poisson
from ..spec import Design, build_design, scalar_structure


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
    df["_rs"] = df[row].map(rs).astype(float)
    df["_cs"] = df[col].map(cs).astype(float)
    if base not in ("independence", "linear_by_linear", "uniform", "lxl"):
        raise ValueError("base must be 'independence' or 'linear_by_linear'")
    lxl = base != "independence"
    # treatment-coded dummies built directly (same columns and names as the formula
    # ``count ~ C(row) + C(col) [+ I(_rs * _cs)]``): formulaic's generality costs more than
    # the fit on small tables
    y = pd.to_numeric(df[count], errors="coerce").to_numpy(dtype=float)
    if len(df) == 0 or not np.all(np.isfinite(y)) or np.any(y < 0) or np.any(y != np.round(y)):
        return build_design(df, f"{count} ~ C({row}) + C({col})"
                            + (" + I(_rs * _cs)" if lxl else "") + " + (1 | _cell)")
    cols = [np.ones(len(df))]
    names = ["Intercept"]
    for fac, levels in ((row, rs.index), (col, cs.index)):
        codes = pd.Categorical(df[fac], categories=levels).codes
        for k, lev in enumerate(levels[1:], start=1):
            cols.append((codes == k).astype(float))
            names.append(f"C({fac})[T.{lev}]")
    if lxl:
        cols.append(df["_rs"].to_numpy() * df["_cs"].to_numpy())
        names.append("I(_rs * _cs)")
    n = len(df)
    X = np.column_stack(cols)[:, None, :]
    title = (f"Cell-wise smoothing, {'linear_by_linear' if lxl else 'independence'} base "
             f"(Coull & Agresti eq. {'2.6' if lxl else '2.5'})")
    notes = {"data": df, "formula": f"{count} ~ C({row}) + C({col})"
             + (" + I(_rs * _cs)" if lxl else "") + " + (1 | _cell)", "title": title,
             "scores": {row: np.asarray(rs.values, float), col: np.asarray(cs.values, float)}}
    return Design(Poisson(y, np.arange(n)[:, None]), X, np.ones((n, 1, 1)), np.zeros((n, 1)),
                  np.arange(n), scalar_structure("_cell"), tuple(names),
                  tuple(range(n)), ("_cell:Intercept",), notes)


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
