"""Input checks at the edge, shared by ``tables``, ``spec.build_design``, every builder in
``gllmm.models`` and ``models.general_design``: one implementation, so every entry point refuses
the same bad input with the same message (negative, NaN, infinite, complex or non-integer counts;
duplicated cells; missing grouping values; unknown columns; scores for every level; array
shapes; integer arguments).

Each check raises the caller's error class (``TableError`` for tables, ``SpecError`` for model
specifications) with a message naming the offending rows and the fix.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GllmmError, SpecError
from ._columns import column_values, factorize


def _rows(mask: np.ndarray, shown: int = 10, base: int = 0) -> str:
    idx = np.flatnonzero(mask) + base
    more = f" and {idx.size - shown} more" if idx.size > shown else ""
    return f"{idx[:shown].tolist()}{more}"


def check_counts(values: Any, name: str = "the count array", error: type[GllmmError] = SpecError,
                 allow_noninteger: bool = False, allow_all_zero: bool = False,
                 rows: str = "rows", base: int = 0) -> np.ndarray:
    """Counts as a float64 array; ``error`` naming the positions of complex, non-numeric,
    missing (NaN), infinite, negative or non-integer counts, or counts that are all zero.
    Positions are printed as ``{rows} [...]`` counted from ``base`` (1 for data rows of a
    file)."""
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = np.asarray(pd.to_numeric(pd.Series(arr.ravel()), errors="coerce")).reshape(
                arr.shape)
        except (TypeError, ValueError):
            raise error(f"{name} is not numeric") from None
    if np.iscomplexobj(arr):
        raise error(f"{name} has complex numbers ({rows} {_rows(np.imag(arr) != 0, base=base)}); "
                    "counts must be real, non-negative integers")
    if arr.dtype.kind not in "biuf":
        raise error(f"{name} is not numeric (dtype {arr.dtype}); pass numbers")
    y = arr.astype(np.float64)
    flat = y.ravel()
    if flat.size == 0:
        raise error(f"{name} is empty: the data have no rows")
    whole = arr.dtype.kind in "biu"  # integers: finite and whole, only the sign to check
    for problem, mask in (() if whole else (("missing (NaN) or non-numeric", np.isnan(flat)),
                                            ("infinite", np.isinf(flat)))):
        if mask.any():
            raise error(f"{name} has {problem} values at {rows} {_rows(mask, base=base)}; "
                        "remove those rows or fill in the counts")
    if (flat < 0).any():
        raise error(f"{name} has negative counts at {rows} {_rows(flat < 0, base=base)}; "
                    "counts are non-negative")
    if not (allow_noninteger or whole) and np.any(flat != np.round(flat)):
        raise error(f"{name} has non-integer counts at {rows} "
                    f"{_rows(flat != np.round(flat), base=base)}; "
                    "counts are whole numbers")
    if not allow_all_zero and not flat.any():
        # every estimate would run off to -infinity (a fit "converges" at its start values)
        raise error(f"{name} is zero in every row: there is nothing to fit")
    return y


def check_columns(data: Any, columns: Sequence[str], what: str = "column",
                  error: type[GllmmError] = SpecError) -> pd.DataFrame:
    """``data`` as a DataFrame having every one of ``columns``."""
    if not isinstance(data, pd.DataFrame):
        raise error(f"expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise error(f"unknown {what}(s) {', '.join(map(repr, missing))}; available columns: "
                    f"{', '.join(map(str, data.columns))}")
    return data


def check_no_missing(data: pd.DataFrame, columns: Sequence[str], what: str = "grouping column",
                     error: type[GllmmError] = SpecError) -> None:
    """Refuse missing values (NaN, None, empty strings) in factor or grouping columns: they
    would silently form no group or be merged into another one."""
    for c in columns:
        check_values(column_values(data, c, error), c, what, error)


def check_values(values: Any, column: str, what: str = "grouping column",
                 error: type[GllmmError] = SpecError) -> None:
    """``check_no_missing`` of one column's values (an ndarray or a pandas extension array,
    as ``column_values`` gives), for callers that have them already."""
    kind = values.dtype.kind if isinstance(values, np.ndarray) else ""
    if kind in ("b", "i", "u"):
        return  # integers and booleans hold no missing value (factorizing cost more)
    if kind == "f":
        check_codes(np.where(np.isnan(values), -1, 0), [], column, what, error)
    else:
        check_codes(*factorize(values), column, what, error)  # NaN/None -> -1


def check_codes(codes: np.ndarray, levels: Sequence[Any], column: str,
                what: str = "grouping column", error: type[GllmmError] = SpecError) -> None:
    """``check_no_missing`` of one column from its factorization (``pd.factorize``: code -1
    for NaN / None), for callers that have it already; blank strings are checked per level."""
    blank = [i for i, lv in enumerate(levels) if isinstance(lv, str) and not lv.strip()]
    na = (codes < 0) | np.isin(codes, blank) if blank else codes < 0
    if na.any():
        raise error(f"{what} {column!r} has missing or empty values at rows {_rows(na)}; drop "
                    "those rows or give them a level")


def check_unique_cells(data: pd.DataFrame, factors: Sequence[str],
                       error: type[GllmmError] = SpecError,
                       codes: Sequence[tuple[np.ndarray, int]] | None = None) -> None:
    """Refuse two rows for the same cell (a fit would silently treat them as two cells).

    ``codes``: the ``(codes, number of levels)`` of each factor (codes from 0, -1 for a
    missing value), for callers that have factorized the columns already.
    """
    if codes is None:
        codes = [(c, len(lv)) for c, lv in (factorize(column_values(data, f, error))
                                            for f in factors)]
    key = np.zeros(len(data), dtype=np.int64)
    for c, n_levels in codes:  # one integer per cell (mixed radix of the factor codes)
        key *= n_levels + 1
        key += c
        key += 1
    key.sort()
    if key.size and (key[1:] != key[:-1]).all():
        return
    dup = data.duplicated(subset=list(factors), keep=False).to_numpy()
    if dup.any():
        first = data[dup].iloc[0]
        cell = ", ".join(f"{f}={first[f]}" for f in factors)
        raise error(f"duplicated cells: rows {_rows(dup)} repeat a combination of "
                    f"{', '.join(factors)} (e.g. {cell}); list each cell once (sum the counts "
                    "of repeated rows first)")


def check_scores(levels: Sequence[Any], given: Any, name: str,
                 error: type[GllmmError] = SpecError) -> np.ndarray | None:
    """Scores for ``levels`` as floats: a dict needs every level, a sequence one per level,
    all finite. ``None`` stays ``None`` (the caller's default)."""
    if given is None:
        return None
    if isinstance(given, Mapping):
        missing = [lv for lv in levels if lv not in given]
        if missing:
            raise error(f"{name} has no score for level(s) {missing}; give one for each of "
                        f"{list(levels)}")
        raw = [given[lv] for lv in levels]
    elif isinstance(given, (str, bytes)) or not isinstance(given, (Sequence, np.ndarray,
                                                                   pd.Series)):
        raise error(f"{name} must be a sequence or a dict by level, got {type(given).__name__}")
    else:
        raw = list(given)
        if len(raw) != len(levels):
            raise error(f"{name}: {len(raw)} scores given for {len(levels)} levels "
                        f"{list(levels)}")
    try:
        sc = np.array([float(v) for v in raw])
    except (TypeError, ValueError):
        raise error(f"{name} must be numbers, got {raw}") from None
    if not np.all(np.isfinite(sc)):
        raise error(f"{name} must be finite numbers, got {sc.tolist()}")
    return sc


def check_array(value: Any, name: str, ndim: Sequence[int], shape: Sequence[int | None],
                error: type[GllmmError] = SpecError) -> np.ndarray:
    """A real, finite float64 array of one of the dimensions ``ndim`` whose trailing axes match
    ``shape`` (``None`` = any length); a wrong shape is refused, never cut or broadcast."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise error(f"{name} is complex; it must be real")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise error(f"{name} is not numeric") from None
    if arr.ndim not in ndim:
        raise error(f"{name} must have {' or '.join(map(str, ndim))} dimensions; got shape "
                    f"{arr.shape}")
    want = tuple(shape)[-arr.ndim:] if arr.ndim <= len(shape) else tuple(shape)
    for got, exp in zip(arr.shape[::-1], want[::-1], strict=False):
        if exp is not None and got != exp:
            expected = "(" + ", ".join("*" if s is None else str(s) for s in want) + ")"
            raise error(f"{name} has shape {arr.shape}; expected {expected}")
    if not np.all(np.isfinite(arr)):
        raise error(f"{name} has NaN or infinite entries")
    return arr


def check_integer(value: Any, name: str, minimum: int | None = None,
                  maximum: int | None = None, error: type[GllmmError] = SpecError,
                  hint: str = "") -> int:
    """An integer argument: refuses 2.7, "3", True and values outside [minimum, maximum]."""
    if isinstance(value, bool):
        raise error(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise error(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise error(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"{name} must be at most {maximum}, got {value}{hint}")
    return value


def check_level(level: Any, name: str = "level", error: type[GllmmError] = SpecError) -> float:
    """A confidence level strictly between 0 and 1 (0.95, not 95): out of range, the normal or
    chi-square quantile is NaN and every interval silently NaN."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise error(f"{name} must be a number between 0 and 1 (0.95 for a 95% interval), "
                    f"got {level!r}")
    return float(level)


def check_numeric(values: Any, name: str, error: type[GllmmError] = SpecError) -> np.ndarray:
    """``values`` as a float64 array (NaN allowed), or ``error`` naming ``name`` when some
    entry is text, None or another object numpy cannot read as a number."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(f"{name} must hold numbers, got {type(values).__name__} with non-numeric "
                    "entries") from None


def check_real(value: Any, name: str, error: type[GllmmError] = SpecError,
               hint: str = "") -> float:
    """A real number (refuses text, lists and booleans, which ``float`` reads or rejects
    with its own TypeError)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number{hint}, got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, choices: Sequence[str],
                 error: type[GllmmError] = SpecError) -> str:
    """One of the strings ``choices``, else ``error`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"unknown {name} {value!r}; use one of {', '.join(map(repr, choices))}")
    return value


__all__ = ["check_array", "check_choice", "check_codes", "check_columns", "check_counts",
           "check_integer", "check_level", "check_no_missing", "check_numeric", "check_real",
           "check_scores", "check_unique_cells", "check_values"]
