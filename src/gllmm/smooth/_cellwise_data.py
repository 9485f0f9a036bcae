"""Input handling for the cell-wise smoothing fits: tables or long arrays to indexed cells.

Accepts a two-way array (I x J), a three-way array (I x J x K, strata on the last axis), or long
arrays ``(row, col, count)`` / ``(row, col, count, stratum)`` whose values are level labels.
Rows or columns with no counts within a stratum are dropped with a warning (their effect is
``-inf``: the ML estimate does not exist), as are empty strata.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import InfiniteEstimateWarning, SpecError, TableError
from ..tables._validate import check_numeric


@dataclass
class CellData:
    """Cells of a (possibly stratified, possibly incomplete) two-way table.

    ``row``, ``col``, ``stratum`` are 0-based codes into the level labels; ``kept`` marks the
    cells that enter the model (empty rows / columns / strata removed).
    """

    y: np.ndarray
    row: np.ndarray
    col: np.ndarray
    stratum: np.ndarray
    row_levels: np.ndarray
    col_levels: np.ndarray
    stratum_levels: np.ndarray
    row_scores: np.ndarray
    col_scores: np.ndarray
    kept: np.ndarray
    stratified: bool

    @property
    def shape(self) -> tuple[int, ...]:
        base = (len(self.row_levels), len(self.col_levels))
        return base + ((len(self.stratum_levels),) if self.stratified else ())

    def to_table(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Scatter per-cell values (all cells, kept or not) into the table shape."""
        out = np.full(self.shape, fill, dtype=float)
        if self.stratified:
            out[self.row, self.col, self.stratum] = values
        else:
            out[self.row, self.col] = values
        return out


def _codes(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values)
    if values.ndim != 1:
        raise TableError(f"{name} must be one-dimensional")
    levels, codes = np.unique(values, return_inverse=True)
    return levels, codes.astype(np.intp)


def _default_scores(levels: np.ndarray) -> np.ndarray:
    if np.issubdtype(levels.dtype, np.number):
        return levels.astype(float)
    return np.arange(1, len(levels) + 1, dtype=float)


def _scores(given: object, levels: np.ndarray, name: str) -> np.ndarray:
    if given is None:
        return _default_scores(levels)
    s = check_numeric(given, name)
    if s.shape != (len(levels),):
        raise SpecError(f"{name} has {s.size} values for {len(levels)} levels")
    if not np.all(np.isfinite(s)):
        raise SpecError(f"{name} must be finite")
    return s


def prepare(
    counts: object,
    row_scores: object = None,
    col_scores: object = None,
) -> CellData:
    """Index the cells of the input (see module docstring) and drop empty levels."""
    if isinstance(counts, tuple) and len(counts) in (3, 4) and np.ndim(counts[0]) == 1:
        parts = [np.asarray(a) for a in counts]
        n = len(parts[0])
        if any(len(a) != n for a in parts):
            raise TableError("long arrays (row, col, count[, stratum]) differ in length")
        row_levels, row = _codes(parts[0], "row")
        col_levels, col = _codes(parts[1], "col")
        y = check_numeric(parts[2], "counts", TableError)
        stratified = len(parts) == 4
        if stratified:
            stratum_levels, stratum = _codes(parts[3], "stratum")
        else:
            stratum_levels, stratum = np.array([0]), np.zeros(n, dtype=np.intp)
        key = (stratum * len(row_levels) + row) * len(col_levels) + col
        if len(np.unique(key)) != n:
            raise TableError("the long arrays list some cell more than once")
    else:
        table = check_numeric(counts, "counts", TableError)
        if table.ndim not in (2, 3):
            raise TableError(
                "counts must be a two-way (I x J) or three-way (I x J x K) array, or a tuple "
                "(row, col, count[, stratum]) of long arrays"
            )
        stratified = table.ndim == 3
        if not stratified:
            table = table[:, :, None]
        nI, nJ, nK = table.shape
        row, col, stratum = (a.ravel() for a in np.meshgrid(
            np.arange(nI), np.arange(nJ), np.arange(nK), indexing="ij"))
        y = table.ravel()
        row_levels, col_levels = np.arange(nI), np.arange(nJ)
        stratum_levels = np.arange(nK)
        if row_scores is None:
            row_scores = np.arange(1, nI + 1, dtype=float)
        if col_scores is None:
            col_scores = np.arange(1, nJ + 1, dtype=float)
    if y.size == 0:
        raise TableError("the table has no cells")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise TableError("counts must be finite and non-negative")
    if np.any(y != np.round(y)):
        raise TableError("counts must be whole numbers")
    rs = _scores(row_scores, row_levels, "row_scores")
    cs = _scores(col_scores, col_levels, "col_scores")
    data = CellData(
        y, row, col, stratum, row_levels, col_levels, stratum_levels, rs, cs,
        np.ones(len(y), dtype=bool), stratified,
    )
    _drop_empty(data)
    return data


def _listing(items: list[str], limit: int = 8) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _drop_empty(data: CellData) -> None:
    K = len(data.stratum_levels)
    nI, nJ = len(data.row_levels), len(data.col_levels)
    r_tot = np.bincount(data.stratum * nI + data.row, data.y, minlength=K * nI)
    c_tot = np.bincount(data.stratum * nJ + data.col, data.y, minlength=K * nJ)
    k_tot = np.bincount(data.stratum, data.y, minlength=K)
    kept = (r_tot[data.stratum * nI + data.row] > 0) & (c_tot[data.stratum * nJ + data.col] > 0)
    if not kept.any():
        raise TableError("the table has no positive counts")
    if not kept.all():
        present = np.zeros(K, dtype=bool)
        present[data.stratum] = True
        parts = []
        empty_k = np.flatnonzero(present & (k_tot == 0))
        if empty_k.size:
            parts.append("strata " + _listing([str(data.stratum_levels[k]) for k in empty_k]))
        for name, tot, levels, n in (("rows", r_tot, data.row_levels, nI),
                                     ("columns", c_tot, data.col_levels, nJ)):
            seen = np.zeros(K * n, dtype=bool)
            seen[data.stratum * n + (data.row if name == "rows" else data.col)] = True
            idx = np.flatnonzero(seen & (tot == 0) & (k_tot[np.arange(K * n) // n] > 0))
            if idx.size:
                labels = [
                    f"{levels[i % n]}"
                    + (f" (stratum {data.stratum_levels[i // n]})" if data.stratified else "")
                    for i in idx
                ]
                parts.append(name + " " + _listing(labels))
        warnings.warn(
            f"{'; '.join(parts)} have no counts: their effects are -inf (no ML estimate); "
            "their cells are left out of the fit and fitted as 0",
            InfiniteEstimateWarning,
            stacklevel=4,
        )
    data.kept = kept

