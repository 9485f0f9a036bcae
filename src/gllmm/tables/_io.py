"""Readers of long-form tables from files: CSV/TSV and Parquet, chosen by file suffix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import TableError
from ._construct import from_long
from ._table import Table


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError as exc:
        raise TableError(
            f"reading Parquet file {str(path)!r} needs pyarrow or fastparquet, which are not "
            f"installed (pip install pyarrow); or save the table as CSV. ({exc})"
        ) from None


# Registry: suffix -> reader of a DataFrame (style: registries, not if/elif).
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".txt": lambda p: pd.read_csv(p, sep=None, engine="python"),
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


def read_table(path: str | Path, factors: Sequence[str] | None = None, count: str = "count",
               **kwargs: Any) -> Table:
    """Read a long-form table (one row per cell: factor columns and a count) from a file.

    The format follows the suffix (see ``READERS``: .csv, .tsv, .txt, .parquet, .pq). Level
    order: sorted for numeric columns, order of first appearance otherwise, unless ``levels``
    is passed.

    Parameters
    ----------
    path : str or Path
    factors : sequence of str, optional
        Factor columns; default all columns but ``count``.
    count : str
    **kwargs
        Passed to ``from_long`` (``levels``, ``scores``, ``strata``, ``structural_zeros``,
        ``allow_noninteger``).

    Returns
    -------
    Table
    """
    p = Path(path)
    reader = READERS.get(p.suffix.lower())
    if reader is None:
        raise TableError(f"unknown table file type {p.suffix!r} for {str(p)!r}; "
                         f"known: {sorted(READERS)}")
    if not p.exists():
        raise TableError(f"no such file: {str(p)!r}")
    return from_long(reader(p), factors, count, **kwargs)


def read_csv(path: str | Path, factors: Sequence[str] | None = None, count: str = "count",
             **kwargs: Any) -> Table:
    """Read a long-form table from a CSV file whatever its suffix (see ``read_table``)."""
    p = Path(path)
    if not p.exists():
        raise TableError(f"no such file: {str(p)!r}")
    return from_long(pd.read_csv(p), factors, count, **kwargs)
