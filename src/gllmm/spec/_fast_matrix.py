"""Model matrices of the common formula shapes without formulaic.

Handles sums and products of numeric columns and treatment-coded factors ``C(a)``:
``1 + x``, ``0 + x``, ``C(a) + C(b)``, ``C(a) * C(b) + C(a) * C(c) + x``, ``C(a):C(b)`` when
its margins are in the model. The columns, their order and their names are those formulaic
gives (terms by degree, then by first appearance; the first factor of an interaction varies
fastest; levels sorted, or a categorical's categories). Anything else returns None and
formulaic builds it: on small tables formulaic's generality costs more than the fit.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..tables._columns import column_values

_NAME = r"[A-Za-z_][A-Za-z_0-9]*"
# above this many entries (rows x columns: 32 MB of float64) X is returned sparse
SPARSE_ABOVE = 4_000_000


def _factor_levels(values: Any) -> tuple[list, np.ndarray] | None:
    """Levels and codes of a factor column (its values: ``column_values``), or None for dtypes
    whose level names formulaic spells in ways not reproduced here (floats, mixed objects,
    missing values)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(values.codes)
        if (codes < 0).any():
            return None
        return list(values.categories), codes
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        arr = values if isinstance(values, np.ndarray) else values.to_numpy()
        if pd.isna(values).any():
            return None
        if arr.dtype == object and pd.api.types.infer_dtype(arr, skipna=False) != "string":
            return None
        # hashing, then sorting the levels only: np.unique sorts all rows (5 s for 10^6 labels)
        codes, levels = pd.factorize(arr, sort=True)
        return np.asarray(levels).tolist(), codes
    return None


@lru_cache(maxsize=256)  # depends on the text alone; the result is immutable
def _parse_terms(expr: str) -> tuple[bool, tuple[tuple[str, ...], ...]] | None:
    """(intercept, terms as tuples of factor tokens) of ``expr``, expanded and deduplicated."""
    pieces = [p.strip() for p in expr.split("+")]
    if not pieces or any(not p for p in pieces):
        return None
    intercept = True
    terms: list[tuple[str, ...]] = []
    token = re.compile(rf"C\(\s*{_NAME}\s*\)|{_NAME}")
    for piece in pieces:
        if piece in ("0", "-1"):
            intercept = False
            continue
        if piece == "1":
            continue
        groups = []
        for group in piece.split("*"):
            factors = tuple(f.strip() for f in group.split(":"))
            if any(not token.fullmatch(f) for f in factors):
                return None
            groups.append(factors)
        # a * b * c: every non-empty subset of the groups, smaller subsets first
        for size in range(1, len(groups) + 1):
            for combo in itertools.combinations(groups, size):
                term = tuple(f for g in combo for f in g)
                if len(set(term)) != len(term):
                    return None
                if not any(set(term) == set(t) for t in terms):
                    terms.append(term)
    terms.sort(key=len)  # stable: by degree, then first appearance
    return intercept, tuple(terms)


def fast_model_matrix(
    expr: str, data: pd.DataFrame, sparse_ok: bool = False
) -> tuple[np.ndarray | sp.csr_matrix, tuple[str, ...]] | None:
    """Model matrix and column names of ``expr``, or None when formulaic is needed.

    Dense, or with ``sparse_ok`` CSR above ``SPARSE_ABOVE`` entries (a factor of many levels:
    rows x levels dense is 16 GB for a 1000 x 1000 table's ``C(row) + C(col)``).
    """
    parsed = _parse_terms(expr)
    if parsed is None:
        return None
    intercept, terms = parsed
    present = {frozenset(t) for t in terms}
    n = len(data)
    factors: dict[str, tuple[list, np.ndarray]] = {}
    numeric: dict[str, np.ndarray] = {}
    for term in terms:
        for f in term:
            if f.startswith("C("):
                name = f[2:-1].strip()
                if name not in data.columns:
                    return None
                if f not in factors:
                    lev = _factor_levels(column_values(data, name))
                    if lev is None:
                        return None
                    factors[f] = lev
            else:
                if f not in data.columns or len(term) > 1:
                    return None  # numeric interactions and bare factor names: formulaic
                col = column_values(data, f)
                if not pd.api.types.is_numeric_dtype(col.dtype) \
                        or pd.api.types.is_bool_dtype(col.dtype):
                    return None
                vals = (np.asarray(col, dtype=float) if isinstance(col, np.ndarray)
                        else col.to_numpy(dtype=float))
                if not np.all(np.isfinite(vals)):
                    return None
                numeric[f] = vals
        if len(term) > 1:
            # treatment coding of every factor needs every margin in the model
            for size in range(0, len(term)):
                for sub in itertools.combinations(term, size):
                    if size == 0 and not intercept:
                        return None
                    if size and frozenset(sub) not in present:
                        return None
        elif term[0].startswith("C(") and not intercept:
            return None  # full dummy coding of the first factor: formulaic
    # each column group: a numeric column, or indicators (one column index per row, -1: none)
    groups: list[tuple[str, np.ndarray, int]] = []
    names: list[str] = []
    if intercept:
        groups.append(("numeric", np.ones(n), 1))
        names.append("Intercept")
    for term in terms:
        if len(term) == 1 and term[0] in numeric:
            groups.append(("numeric", numeric[term[0]], 1))
            names.append(term[0])
            continue
        index = np.zeros(n, dtype=np.int64)
        width = 1
        labels = [""]
        for f in term:
            levels, codes = factors[f]
            k = len(levels)
            # earlier factors vary fastest: the new factor's levels are the slow index
            index = np.where((index >= 0) & (codes > 0), (codes - 1) * width + index, -1)
            width *= k - 1
            labels = [f"{prev}:{f}[T.{lev}]" if prev else f"{f}[T.{lev}]"
                      for lev in levels[1:] for prev in labels]
        groups.append(("indicator", index, width))
        names.extend(labels)
    p = sum(g[2] for g in groups)
    if sparse_ok and n * p > SPARSE_ABOVE:
        return _sparse(groups, n, p), tuple(names)
    out = np.zeros((n, p))
    col = 0
    for kind, values, width in groups:
        if kind == "numeric":
            out[:, col] = values
        else:
            rows = np.flatnonzero(values >= 0)
            out[rows, col + values[rows]] = 1.0
        col += width
    return out, tuple(names)


def _sparse(groups: list[tuple[str, np.ndarray, int]], n: int, p: int) -> sp.csr_matrix:
    """CSR model matrix from column groups, O(rows x groups) time and memory: each group has
    at most one entry per row and the groups are in column order, so the row-major entries of
    a (rows, groups) array are already CSR's."""
    cols = np.empty((n, len(groups)), dtype=np.int64)
    vals = np.empty((n, len(groups)))
    start = 0
    for g, (kind, values, width) in enumerate(groups):
        if kind == "numeric":
            cols[:, g] = start
            vals[:, g] = values
        else:
            cols[:, g] = start + values
            vals[:, g] = values >= 0
        start += width
    return csr_from_rows(cols, vals, p)


def csr_from_rows(cols: np.ndarray, vals: np.ndarray, width: int) -> sp.csr_matrix:
    """The (rows, width) CSR matrix whose row r holds ``vals[r, k]`` in column ``cols[r, k]``,
    zeros left out; each row's ``cols`` must be increasing (no repeats). CSR's arrays are
    then the row-major entries as they are: no sort, no sum of duplicates, O(entries)."""
    n, k = cols.shape
    index = np.int32 if max(width, n * k) < np.iinfo(np.int32).max else np.int64
    keep = vals != 0
    if keep.all():
        data, indices = vals.ravel(), cols.astype(index, copy=False).ravel()
        indptr = np.arange(0, n * k + 1, k, dtype=index)
    else:
        data, indices = vals[keep], cols[keep].astype(index, copy=False)
        indptr = np.r_[0, np.cumsum(keep.sum(axis=1))].astype(index, copy=False)
    return sp.csr_matrix((data, indices, indptr), shape=(n, width))
