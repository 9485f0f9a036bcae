"""Reading the command's input tables and preparing columns (levels, scores, cell numbers).

Every failure raises :class:`CliError` with a message that says what to change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GllmmError

PARQUET_SUFFIXES = (".parquet", ".pq")
TSV_SUFFIXES = (".tsv", ".tab")


class CliError(GllmmError):
    """An input problem the user can fix (exit code 2)."""


def read_data(path: str) -> pd.DataFrame:
    """Read a CSV (``.csv``, any other suffix), TSV (``.tsv``) or Parquet (``.parquet``) file.

    Parquet needs ``pyarrow`` (or ``fastparquet``); without either the error says how to get it.
    The checks are the library's (``gllmm.tables.read_frame``), reported as a CliError.
    """
    from ..tables import read_frame

    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES and Path(path).is_file():
        _require_parquet_engine(path)
    sep = "\t" if suffix in TSV_SUFFIXES else ","
    reader = None if suffix in PARQUET_SUFFIXES else (lambda p: pd.read_csv(p, sep=sep))
    try:
        return read_frame(path, reader)
    except GllmmError as exc:
        raise CliError(str(exc)) from None


def check_output(output: str | None, *inputs: str | None) -> None:
    """Refuse an output path that is one of the input files: writing it would destroy the
    data (``report`` would replace a CSV with HTML)."""
    if not output:
        return
    out = Path(output)
    for given in inputs:
        if not given:
            continue
        src = Path(given)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise CliError(f"-o/--output {output} is the input file {given}: writing it would "
                           "overwrite your data; choose another output path")


def _require_parquet_engine(path: str) -> None:
    for module in ("pyarrow", "fastparquet"):
        try:
            __import__(module)
            return
        except ImportError:
            continue
    raise CliError(f"reading Parquet ({path}) needs the pyarrow package: "
                   "pip install pyarrow (or save the table as CSV)")


def require_columns(data: pd.DataFrame, columns: Sequence[str], what: str = "column") -> None:
    """Raise if a named column is missing, listing the available ones."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise CliError(f"unknown {what} {', '.join(repr(c) for c in missing)}; available "
                       f"columns: {', '.join(map(str, data.columns))}")


def require_counts(data: pd.DataFrame, column: str) -> np.ndarray:
    """The count column as floats (the library's checks: numeric, finite, non-negative,
    integer, not all zero)."""
    from ..tables._validate import check_counts

    require_columns(data, [column], "count column")
    return check_counts(data[column].to_numpy(), f"count column {column!r}", error=CliError,
                        rows="data rows", base=1)


def _split_assignment(text: str, option: str) -> tuple[str, list[str]]:
    if "=" not in text:
        raise CliError(f"{option} expects COLUMN=v1,v2,...; got {text!r}")
    col, _, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not col.strip() or not items:
        raise CliError(f"{option} expects COLUMN=v1,v2,...; got {text!r}")
    return col.strip(), items


def apply_levels(data: pd.DataFrame, specs: Sequence[str] | None) -> pd.DataFrame:
    """``--levels COL=a,b,c``: make COL an ordered categorical with that level order."""
    for spec in specs or ():
        col, levels = _split_assignment(spec, "--levels")
        require_columns(data, [col])
        repeated = sorted({v for v in levels if levels.count(v) > 1})
        if repeated:
            raise CliError(f"--levels {col}: level(s) {repeated} listed more than once; list "
                           "each level once, in order")
        observed = {str(v) for v in pd.unique(data[col])}
        unknown = observed - set(levels)
        if unknown:
            raise CliError(f"--levels {col}: values {sorted(unknown)} of column {col!r} are not "
                           f"among the listed levels {levels}")
        data[col] = pd.Categorical(data[col].astype(str), levels, ordered=True)
    return data


def apply_scores(data: pd.DataFrame, specs: Sequence[str] | None) -> dict[str, list[float]]:
    """``--scores COL=s1,s2,...``: add a numeric column ``COL_score`` with the levels' scores.

    Levels are taken in their order (``--levels``, else sorted); the scores are returned so
    that summaries print them.
    """
    used: dict[str, list[float]] = {}
    for spec in specs or ():
        col, raw = _split_assignment(spec, "--scores")
        require_columns(data, [col])
        try:
            scores = [float(v) for v in raw]
        except ValueError as exc:
            raise CliError(f"--scores {col}: scores must be numbers; got {raw}") from exc
        series = data[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            levels: list[Any] = list(series.cat.categories)
        else:
            levels = sorted(pd.unique(series), key=_sort_key)
        if len(levels) != len(scores):
            raise CliError(f"--scores {col}: {len(scores)} scores for {len(levels)} levels "
                           f"{[str(v) for v in levels]}")
        data[f"{col}_score"] = series.map(dict(zip(levels, scores, strict=True))).astype(float)
        used[col] = scores
    return used


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float, np.number)) else (1, str(value))


def check_formula(formula: str) -> None:
    """Cheap checks that give a clearer message than the model-matrix layer."""
    if formula.count("~") != 1:
        raise CliError(f"bad formula {formula!r}: it needs exactly one '~', as in "
                       "'count ~ C(row) + C(col) + (1 | cell)'")
    if formula.count("(") != formula.count(")"):
        raise CliError(f"bad formula {formula!r}: unbalanced parentheses")
    lhs, _, rhs = formula.partition("~")
    if not lhs.strip():
        raise CliError(f"bad formula {formula!r}: the response (count column) is missing "
                       "on the left of '~'")
    if not rhs.strip():
        raise CliError(f"bad formula {formula!r}: no terms on the right of '~' (use '1' "
                       "for an intercept only)")
