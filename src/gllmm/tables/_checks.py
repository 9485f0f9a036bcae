"""Validation of counts and cells, with messages that name the offending rows or cells.

All checks are vectorised: they scan arrays once and format at most ``_SHOWN`` offenders, so a
10^6-cell table is checked in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import TableError

if TYPE_CHECKING:
    from ._table import Table

# Offenders listed in one message; the rest are counted, not printed.
_SHOWN = 5


def show(value: object) -> str:
    """repr of a value without numpy's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def format_items(items: Sequence[str], total: int | None = None) -> str:
    """Join at most ``_SHOWN`` descriptions and say how many more there are."""
    total = len(items) if total is None else total
    shown = "; ".join(items[:_SHOWN])
    rest = total - min(len(items), _SHOWN)
    return shown + (f"; ... and {rest} more" if rest > 0 else "")


def describe_cell(factors: Sequence[str], values: Sequence[object]) -> str:
    """``a=1, b=x``: a cell named by its factor levels."""
    return ", ".join(f"{f}={v}" for f, v in zip(factors, values, strict=True))


def describe_rows(df: pd.DataFrame, mask: np.ndarray, factors: Sequence[str], what: str) -> str:
    """Name the input rows selected by ``mask``: ``row 3 (a=1, b=x): -2.0``.

    ``what`` is a column of ``df`` whose value is printed after the cell (the offending count).
    """
    idx = np.flatnonzero(mask)
    present = [f for f in factors if f in df.columns]
    items = []
    for i in idx[:_SHOWN]:
        row = df.iloc[i]
        cell = describe_cell(present, [row[f] for f in present])
        value = f": {show(row[what])}" if what in df.columns else ""
        items.append(f"row {df.index[i]!r} ({cell}){value}")
    return format_items(items, total=idx.size)


def describe_cells(table_factors: Sequence[str], levels: Sequence[pd.Index], shape: tuple[int, ...],
                   flat: np.ndarray, values: np.ndarray | None = None) -> str:
    """Name grid cells given by their row-major positions ``flat``."""
    flat = np.asarray(flat)
    sub = np.unravel_index(flat[:_SHOWN], shape)
    items = []
    for k in range(min(flat.size, _SHOWN)):
        cell = describe_cell(table_factors, [levels[a][sub[a][k]] for a in range(len(shape))])
        items.append(f"({cell})" + (f": {show(values[k])}" if values is not None else ""))
    return format_items(items, total=flat.size)


def count_problems(counts: np.ndarray, allow_noninteger: bool) -> list[tuple[str, np.ndarray]]:
    """Masks of invalid counts, each with its problem: NaN, infinite, negative, non-integer.

    Non-integer means ``c != floor(c)`` exactly: counts read from files are exact, and a count
    that is a weight should be declared with ``allow_noninteger=True`` rather than rounded here.
    """
    nan = np.isnan(counts)
    inf = np.isinf(counts)
    finite = ~(nan | inf)
    problems = [
        ("NaN", nan),
        ("infinite", inf),
        ("negative", finite & (counts < 0)),
    ]
    if not allow_noninteger:
        with np.errstate(invalid="ignore"):
            problems.append(("non-integer", finite & (counts != np.floor(counts))))
    return [(name, mask) for name, mask in problems if mask.any()]


def check_margins(table: Table, factors: str | Sequence[str | Sequence[str]] | None = None) -> None:
    """Raise if a margin of the table has a level (or level combination) with zero total.

    An empty margin makes the ML estimate of the corresponding parameters infinite (e.g. a row
    of zeros in a logit model for the column given the row); Agresti (2013, Section 6.5).

    Parameters
    ----------
    table : Table
    factors : str, or sequence of str or of tuples of str, optional
        Each entry is checked separately: a name checks that one-way margin, a tuple of names the
        joint margin of those factors. Default: every one-way margin.

    Raises
    ------
    TableError
        Naming every margin with empty levels and those levels.

    References
    ----------
    Agresti, A. (2013). Categorical Data Analysis, 3rd ed., Wiley. Section 6.5.
    """
    if factors is None:
        groups: list[tuple[str, ...]] = [(f,) for f in table.factors]
    elif isinstance(factors, str):
        groups = [(factors,)]
    else:
        groups = [(g,) if isinstance(g, str) else tuple(g) for g in factors]
    problems = []
    for group in groups:
        margin = table.margin(list(group))
        empty = np.flatnonzero(margin.counts == 0)
        if empty.size:
            where = describe_cells(margin.factors, margin.factor_levels, margin.shape, empty)
            problems.append(f"margin {'x'.join(group)} has {empty.size} empty level(s): {where}")
    if problems:
        raise TableError("empty margins (zero total): " + " | ".join(problems))
