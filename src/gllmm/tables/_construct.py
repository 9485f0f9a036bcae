"""Constructors of ``Table`` from long, wide (crosstab), array and sparse (non-zero cells) input.

Every constructor returns the full grid of cells in row-major order of the factors; cells absent
from long or sparse input are filled with zero counts (sampling zeros). Level order: as given in
``levels``; else the categories of a Categorical column; else sorted for numeric or boolean
columns; else order of first appearance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TableError
from ._checks import count_problems, describe_cell, describe_rows, format_items
from ._table import ScoreSpec, Table

LevelSpec = Mapping[str, Sequence[Any] | pd.Index]
MaskSpec = str | Sequence[bool] | np.ndarray | pd.Series | pd.DataFrame | None


def _check_frame(df: object, factors: Sequence[str], count: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in [*factors, count] if c not in df.columns]
    if missing:
        raise TableError(f"missing columns {missing}; the data have columns {list(df.columns)}")
    if len(df) == 0:
        raise TableError("empty table: the data have no rows")
    return df


def _infer_levels(s: pd.Series, given: Sequence[Any] | pd.Index | None) -> pd.Index:
    if given is not None:
        lv = pd.Index(given)
        if not lv.is_unique:
            raise TableError(f"levels given for {s.name!r} are duplicated: "
                             f"{list(lv[lv.duplicated()].unique())}")
        return lv
    if isinstance(s.dtype, pd.CategoricalDtype):
        return pd.Index(s.cat.categories)
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return pd.Index(np.sort(s.unique()))
    return pd.Index(pd.unique(s))


def _codes(df: pd.DataFrame, factors: Sequence[str],
           levels: LevelSpec | None) -> tuple[tuple[pd.Index, ...], list[np.ndarray]]:
    """Levels and 0-based level codes of every row, one factor at a time (vectorised)."""
    levels = dict(levels or {})
    unknown = [k for k in levels if k not in factors]
    if unknown:
        raise TableError(f"levels given for {unknown}, which are not factors {list(factors)}")
    out_levels, out_codes = [], []
    for f in factors:
        s = df[f]
        na = s.isna().to_numpy()
        if na.any():
            raise TableError(f"missing values in factor {f!r}: {describe_rows(df, na, factors, f)}")
        lv = _infer_levels(s, levels.get(f))
        if isinstance(s.dtype, pd.CategoricalDtype) and s.cat.categories.equals(lv):
            codes = s.cat.codes.to_numpy().astype(np.intp)
        else:
            codes = lv.get_indexer(pd.Index(s)).astype(np.intp)
        outside = codes < 0
        if outside.any():
            raise TableError(f"values of {f!r} not among its levels {list(lv)}: "
                             f"{describe_rows(df, outside, factors, f)}")
        out_levels.append(lv)
        out_codes.append(codes)
    return tuple(out_levels), out_codes


def _counts(df: pd.DataFrame, factors: Sequence[str], count: str,
            allow_noninteger: bool) -> np.ndarray:
    raw = df[count]
    num = pd.to_numeric(raw, errors="coerce")
    bad = (num.isna() & raw.notna()).to_numpy()
    if bad.any():
        raise TableError(f"non-numeric counts in {int(bad.sum())} row(s): "
                         f"{describe_rows(df, bad, factors, count)}")
    c = num.to_numpy(dtype=np.float64, na_value=np.nan)
    for problem, mask in count_problems(c, allow_noninteger):
        hint = " (pass allow_noninteger=True for weights)" if problem == "non-integer" else ""
        raise TableError(f"{problem} counts in {int(mask.sum())} row(s): "
                         f"{describe_rows(df, mask, factors, count)}{hint}")
    return c


def _check_duplicates(df: pd.DataFrame, factors: Sequence[str], levels: Sequence[pd.Index],
                      flat: np.ndarray, n_cells: int) -> None:
    occurrences = np.bincount(flat, minlength=n_cells)
    dup = np.flatnonzero(occurrences > 1)
    if not dup.size:
        return
    shape = tuple(len(lv) for lv in levels)
    items = []
    for cell in dup[:5]:
        sub = np.unravel_index(cell, shape)
        name = describe_cell(factors, [levels[k][sub[k]] for k in range(len(shape))])
        rows = [repr(r) for r in df.index[np.flatnonzero(flat == cell)]]
        items.append(f"({name}) in rows {', '.join(rows)}")
    raise TableError(f"duplicated cells ({dup.size}): {format_items(items, total=dup.size)}")


def _structural_mask(spec: MaskSpec, df: pd.DataFrame, factors: Sequence[str],
                     levels: Sequence[pd.Index], flat: np.ndarray,
                     n_cells: int) -> np.ndarray | None:
    """Structural zeros as a grid mask from a column name, a row mask, or a frame of cells."""
    if spec is None:
        return None
    mask = np.zeros(n_cells, dtype=bool)
    if isinstance(spec, pd.DataFrame):
        absent = [f for f in factors if f not in spec.columns]
        if absent:
            raise TableError(f"structural_zeros frame lacks factor columns {absent}")
        _, codes = _codes(spec, factors, dict(zip(factors, levels, strict=True)))
        mask[np.ravel_multi_index(codes, tuple(len(lv) for lv in levels))] = True
        return mask
    if isinstance(spec, str):
        if spec not in df.columns:
            raise TableError(f"structural_zeros column {spec!r} not in {list(df.columns)}")
        spec = df[spec]
    rows = np.asarray(spec)
    if rows.dtype.kind != "b" or rows.shape != (len(df),):
        raise TableError(f"structural_zeros must be boolean with one entry per row ({len(df)}), "
                         f"got dtype {rows.dtype} and shape {rows.shape}")
    mask[flat[rows]] = True
    return mask


def from_long(df: pd.DataFrame, factors: Sequence[str] | None = None, count: str = "count", *,
              scores: ScoreSpec | None = None, levels: LevelSpec | None = None,
              structural_zeros: MaskSpec = None, strata: Sequence[str] = (),
              allow_noninteger: bool = False) -> Table:
    """A table from long form: one row per (observed) cell with factor columns and a count.

    Cells of the full grid ``prod_k levels_k`` missing from ``df`` are filled with zero counts
    (sampling zeros); cells listed twice are an error.

    Parameters
    ----------
    df : DataFrame
    factors : sequence of str, optional
        Factor columns, in grid order (the last varies fastest). Default: all but ``count``.
    count : str
        Count column; counts must be finite, non-negative and (unless ``allow_noninteger``)
        integers.
    scores : mapping factor -> sequence of float or ``"levels"``, optional
        Scores of ordinal factors (default 1..I_k); ``"levels"`` uses numeric level values.
    levels : mapping factor -> sequence, optional
        Level order per factor (also adds levels not observed).
    structural_zeros : str, boolean sequence (one per row), or DataFrame of cells, optional
        Cells that are zero by design: a boolean column of ``df``, a row mask, or a frame whose
        rows name the cells by their factor levels.
    strata : sequence of str
        Factors whose combinations have fixed totals (product-multinomial sampling).
    allow_noninteger : bool
        Accept non-integer counts (weights).

    Returns
    -------
    Table

    Raises
    ------
    TableError
        Missing columns, empty data, invalid counts, unknown levels or duplicated cells, naming
        the offending rows.
    """
    if factors is None:
        factors = [c for c in getattr(df, "columns", []) if c != count]
    df = _check_frame(df, list(factors), count)
    factors = list(factors)
    if not factors:
        raise TableError("no factor columns")
    counts = _counts(df, factors, count, allow_noninteger)
    lv, codes = _codes(df, factors, levels)
    shape = tuple(len(x) for x in lv)
    n_cells = int(np.prod(shape))
    flat = np.ravel_multi_index(codes, shape)
    _check_duplicates(df, factors, lv, flat, n_cells)
    grid = np.zeros(n_cells)
    grid[flat] = counts
    mask = _structural_mask(structural_zeros, df, factors, lv, flat, n_cells)
    return Table(tuple(factors), lv, grid, count_name=count, scores=scores or {},
                 structural_zero=mask, strata=tuple(strata), allow_noninteger=allow_noninteger)


def from_cells(df: pd.DataFrame, factors: Sequence[str], count: str, levels: LevelSpec, *,
               scores: ScoreSpec | None = None, structural_zeros: MaskSpec = None,
               strata: Sequence[str] = (), allow_noninteger: bool = False) -> Table:
    """A table from sparse input: the non-zero cells only, completed with zeros.

    Non-zero cells cannot reveal levels that have no positive count, so ``levels`` must give
    every factor's levels. The completion is vectorised (one scatter into the grid), so a
    1000 x 1000 table from its non-zero cells takes well under a second.

    Parameters
    ----------
    df : DataFrame
        Rows of (factor levels, count); zero-count rows may be present too.
    factors, count, scores, structural_zeros, strata, allow_noninteger
        As in ``from_long``.
    levels : mapping factor -> sequence
        All levels of every factor, in order.

    Returns
    -------
    Table
    """
    missing = [f for f in factors if f not in (levels or {})]
    if missing:
        raise TableError(f"from_cells needs the levels of every factor; missing for {missing}")
    return from_long(df, factors, count, scores=scores, levels=levels,
                     structural_zeros=structural_zeros, strata=strata,
                     allow_noninteger=allow_noninteger)


def _axis_names(index: pd.Index, name: str | Sequence[str] | None, default: str) -> list[str]:
    if name is not None:
        names = [name] if isinstance(name, str) else list(name)
    else:
        names = [n if n is not None else (default if index.nlevels == 1 else f"{default}{k}")
                 for k, n in enumerate(index.names)]
    if len(names) != index.nlevels:
        raise TableError(f"{len(names)} names {names} for an index with {index.nlevels} levels")
    return [str(n) for n in names]


def _index_levels(index: pd.Index) -> list[pd.Index]:
    """Level order of each index level: categories if categorical, else order of appearance."""
    out = []
    for k in range(index.nlevels):
        values = index.get_level_values(k)
        if isinstance(values.dtype, pd.CategoricalDtype):
            out.append(pd.Index(values.categories))
        else:
            out.append(pd.Index(pd.unique(values)))
    return out


def from_wide(df: pd.DataFrame, row: str | Sequence[str] | None = None,
              column: str | Sequence[str] | None = None, count: str = "count", *,
              scores: ScoreSpec | None = None, levels: LevelSpec | None = None,
              structural_zeros: np.ndarray | None = None, strata: Sequence[str] = (),
              allow_noninteger: bool = False) -> Table:
    """A table from a crosstab: index = levels of the row factor(s), columns = of the column(s).

    Level order is the order of the index and columns (or their categories), unless ``levels``
    says otherwise. A MultiIndex on either side gives several factors; the table's factors are
    the row factors followed by the column factors.

    Parameters
    ----------
    df : DataFrame
        Counts, shape (rows, columns).
    row, column : str or sequence of str, optional
        Factor names; default the index/column names, else ``"row"`` / ``"column"``.
    structural_zeros : boolean array of ``df``'s shape, optional
    count, scores, levels, strata, allow_noninteger
        As in ``from_long``.

    Returns
    -------
    Table
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.size == 0:
        raise TableError(f"empty table: the crosstab has shape {df.shape}")
    rows = _axis_names(df.index, row, "row")
    cols = _axis_names(df.columns, column, "column")
    if set(rows) & set(cols):
        raise TableError(f"row factors {rows} and column factors {cols} share names")
    n_r, n_c = df.shape
    long: dict[str, Any] = {}
    for k, name in enumerate(rows):
        long[name] = df.index.get_level_values(k).repeat(n_c)
    for k, name in enumerate(cols):
        long[name] = np.tile(df.columns.get_level_values(k).to_numpy(), n_r)
    long[count] = df.to_numpy().reshape(-1)
    inferred = dict(zip(rows + cols, _index_levels(df.index) + _index_levels(df.columns),
                        strict=True))
    inferred.update(levels or {})
    mask = None
    if structural_zeros is not None:
        mask = np.asarray(structural_zeros)
        if mask.shape != df.shape:
            raise TableError(f"structural_zeros has shape {mask.shape}; the crosstab {df.shape}")
        mask = mask.reshape(-1)
    return from_long(pd.DataFrame(long), rows + cols, count, scores=scores, levels=inferred,
                     structural_zeros=mask, strata=strata, allow_noninteger=allow_noninteger)


def from_array(arr: np.ndarray | Sequence[Any], names: Sequence[str], levels: (
        LevelSpec | Sequence[Sequence[Any]] | None) = None, count: str = "count", *,
        scores: ScoreSpec | None = None, structural_zeros: np.ndarray | None = None,
        strata: Sequence[str] = (), allow_noninteger: bool = False) -> Table:
    """A table from a K-dimensional array of counts (axis k = factor ``names[k]``).

    Parameters
    ----------
    arr : array_like, shape (I_1, ..., I_K)
    names : sequence of str, length K
    levels : mapping name -> levels, or sequence of K level sequences, optional
        Default 1..I_k for every factor.
    structural_zeros : boolean array of ``arr``'s shape, optional
    count, scores, strata, allow_noninteger
        As in ``from_long``.

    Returns
    -------
    Table
    """
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TableError(f"counts are not numeric: {exc}") from None
    names = [str(n) for n in names]
    if a.ndim != len(names):
        raise TableError(f"array has {a.ndim} dimensions {a.shape} but {len(names)} names {names}")
    if a.size == 0:
        raise TableError(f"empty table: array of shape {a.shape}")
    if levels is None:
        lv = [pd.Index(np.arange(1, n + 1)) for n in a.shape]
    elif isinstance(levels, Mapping):
        unknown = [k for k in levels if k not in names]
        if unknown:
            raise TableError(f"levels given for {unknown}, which are not factors {names}")
        lv = [pd.Index(levels[n]) if n in levels else pd.Index(np.arange(1, a.shape[k] + 1))
              for k, n in enumerate(names)]
    else:
        lv = [pd.Index(x) for x in levels]
    for k, (n, x) in enumerate(zip(names, lv, strict=True)):
        if len(x) != a.shape[k]:
            raise TableError(f"factor {n!r} has {len(x)} levels but axis {k} has length "
                             f"{a.shape[k]}")
    mask = None
    if structural_zeros is not None:
        mask = np.asarray(structural_zeros)
        if mask.shape != a.shape:
            raise TableError(f"structural_zeros has shape {mask.shape}; the array {a.shape}")
    return Table(tuple(names), tuple(lv), a.reshape(-1), count_name=count, scores=scores or {},
                 structural_zero=mask, strata=tuple(strata), allow_noninteger=allow_noninteger)
