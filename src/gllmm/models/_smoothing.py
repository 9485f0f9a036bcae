"""Cell-wise smoothing models (paper Section 2.2, eqs. 2.5 and 2.6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..links import Poisson
from ..spec import Design, scalar_structure
from ..spec._table_input import score_column
from ..tables import Table
from ..tables._columns import column_values
from ..tables._validate import (
    check_columns,
    check_counts,
    check_scores,
    check_unique_cells,
    check_values,
)


def cellwise_smoothing(
    data: pd.DataFrame | Table,
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
    scores are the category values when numeric, else 1..K). A ``gllmm.tables.Table`` gives
    its cells without the structural zeros, and its scores as the default ones.

    The design is the formula ``count ~ C(row) + C(col) + row_score:col_score +
    (1 | row:col)`` with the factors' own names, so the parameters are named as that formula
    names them (lme4's ``sd(row:col)`` for sigma, ``row_score:col_score`` for beta).
    """
    if isinstance(data, Table):
        row_scores = data.scores[row] if row_scores is None and row in data.scores else row_scores
        col_scores = data.scores[col] if col_scores is None and col in data.scores else col_scores
        data = data.data if data.structural_zero is None else data.data[
            ~data.structural_zero].reset_index(drop=True)
    if base not in ("independence", "linear_by_linear", "uniform", "lxl"):
        raise SpecError(f"unknown base {base!r}; use 'independence' or 'linear_by_linear'")
    check_columns(data, [row, col, count])
    if row == col:
        raise SpecError(f"row and col are the same column {row!r}; give two different factors")
    columns = [column_values(data, c) for c in (row, col, count)]  # no Series built
    for name, values in zip((row, col), columns, strict=False):
        check_values(values, name, "factor")
    (r_levels, r_codes), (c_levels, c_codes) = _factor(columns[0]), _factor(columns[1])
    check_unique_cells(data, [row, col], codes=[(r_codes, len(r_levels)),
                                                (c_codes, len(c_levels))])
    lxl = base != "independence"
    n = len(data)
    rs = _scores(r_levels, row_scores)
    cs = _scores(c_levels, col_scores)
    cell = f"{row}:{col}"
    association = (f"{score_column(data, row, rs[r_codes])}:"
                   f"{score_column(data, col, cs[c_codes])}") if lxl else None
    formula = (f"{count} ~ C({row}) + C({col})" + (f" + {association}" if lxl else "")
               + f" + (1 | {cell})")
    y = check_counts(np.asarray(columns[2]), f"count column {count!r}")
    # treatment-coded dummies built directly (same columns and names as the formula above):
    # formulaic's and pandas' generality cost more than the fit on small tables
    X = np.zeros((n, 1, len(r_levels) + len(c_levels) - 1 + lxl))
    X[:, 0, 0] = 1.0
    names = ["Intercept"]
    col_at = 1
    for fac, levels, codes in ((row, r_levels, r_codes), (col, c_levels, c_codes)):
        rows = np.flatnonzero(codes > 0)
        X[rows, 0, col_at + codes[rows] - 1] = 1.0
        names += [f"C({fac})[T.{lev}]" for lev in levels[1:].tolist()]
        col_at += len(levels) - 1
    if lxl:
        X[:, 0, -1] = rs[r_codes] * cs[c_codes]
        names.append(association)
    title = (f"Cell-wise smoothing, {'linear_by_linear' if lxl else 'independence'} base "
             f"(Coull & Agresti eq. {'2.6' if lxl else '2.5'})")
    notes = {"data": data, "formula": formula, "title": title,
             "scores": {row: rs, col: cs}}
    return Design(Poisson(y, np.arange(n)[:, None]), X, np.ones((n, 1, 1)), np.zeros((n, 1)),
                  np.arange(n), scalar_structure(cell), tuple(names),
                  tuple(range(n)), (f"{cell}:Intercept",), notes)


def _factor(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Levels (categories in order, else sorted values) and the integer code of each row of a
    column's values (``column_values``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.categories.to_numpy(), np.asarray(values.codes)
    values = np.asarray(values)
    levels = np.unique(values)
    return levels, np.searchsorted(levels, values)  # half np.unique's inverse cost


def _scores(levels: np.ndarray, given: Any) -> np.ndarray:
    """Scores of the levels: given (a dict by level or a sequence), else the values when
    numeric, else 1..K."""
    if given is None:
        if levels.dtype.kind in "biuf":  # a numeric column: no per-level type checks
            return levels.astype(float)
        if levels.dtype == object and all(
                isinstance(v, (int, float, np.integer, np.floating)) for v in levels):
            return np.array(levels.tolist(), dtype=float)
        return np.arange(1, len(levels) + 1, dtype=float)
    return check_scores(levels.tolist(), given, "scores")
