"""Readers of long-form tables from files: CSV/TSV and Parquet, chosen by file suffix."""

from __future__ import annotations

import os
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


def read_frame(path: str | Path, reader: Callable[[Path], pd.DataFrame] | None = None
               ) -> pd.DataFrame:
    """A DataFrame from a file (``reader`` default: by suffix, else CSV), or a TableError that
    says what is wrong: missing, a directory, unreadable, empty, not UTF-8 text, not Parquet,
    malformed, or no data rows (pandas and pyarrow raise a dozen types for these)."""
    p = Path(path)
    if not p.exists():
        raise TableError(f"no such file: {str(p)!r} (check the path; the working directory "
                         f"is {os.getcwd()})")
    if p.is_dir():
        raise TableError(f"cannot read {str(p)!r}: it is a directory; give a CSV or Parquet "
                         "file")
    if not os.access(p, os.R_OK):
        raise TableError(f"cannot read {str(p)!r}: permission denied")
    reader = reader or READERS.get(p.suffix.lower(), READERS[".csv"])
    kind = "Parquet" if reader is _read_parquet else "CSV"
    try:
        df = reader(p)
    except TableError:
        raise
    except pd.errors.EmptyDataError:
        raise TableError(f"cannot read {str(p)!r}: the file is empty; it needs a header line "
                         "with the column names and one line per cell") from None
    except UnicodeDecodeError:
        raise TableError(f"cannot read {str(p)!r}: it is not a text (CSV) file; CSV must be "
                         "UTF-8 text, Parquet files need the suffix .parquet") from None
    except Exception as exc:  # parser and Arrow errors carry their own detail
        raise TableError(f"cannot read {str(p)!r} as {kind}: {exc}") from None
    if len(df) == 0:
        raise TableError(f"{str(p)!r} has a header but no data rows")
    return df


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
    return from_long(read_frame(p, reader), factors, count, **kwargs)


def read_csv(path: str | Path, factors: Sequence[str] | None = None, count: str = "count",
             **kwargs: Any) -> Table:
    """Read a long-form table from a CSV file whatever its suffix (see ``read_table``)."""
    return from_long(read_frame(path, READERS[".csv"]), factors, count, **kwargs)
