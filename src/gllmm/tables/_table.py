"""The ``Table``: a contingency table as a full grid of cells in row-major order of its factors.

Glossary: K factors, I_k levels of factor k, n_cells = prod I_k, cells ordered row-major (the
last factor varies fastest), which is the order ``C log(A mu)`` builders in ``gllmm.spec``
assume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TableError
from ._checks import count_problems, describe_cells

ScoreSpec = Mapping[str, "Sequence[float] | np.ndarray | str"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64 if a.dtype.kind != "b" else bool, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Table:
    """A contingency table: counts on the full grid of factor levels, plus what a model needs.

    The canonical storage is arrays (levels, counts in row-major grid order), so the table is
    really immutable; ``data`` builds the long-form DataFrame (one row per cell, factors as
    ordered Categoricals, a float count column) on request. Build tables with ``from_long``,
    ``from_wide``, ``from_array``, ``from_cells`` or ``read_table`` rather than directly.

    Attributes
    ----------
    factors : tuple of str
        Factor names, in grid order (the last varies fastest).
    factor_levels : tuple of pandas.Index
        Levels of each factor, in order (the order defines ordinal categories).
    counts : ndarray (n_cells,)
        float64 counts in row-major grid order; read-only.
    count_name : str
        Name of the count column in ``data``.
    scores : mapping str -> ndarray (I_k,)
        Scores of each factor's levels (default 1..I_k), used for ordinal factors; printed with
        the model because fits of score-product terms depend on them (Coull & Agresti 2003,
        Section 5.2).
    structural_zero : ndarray (n_cells,) of bool, or None
        Cells that are zero by design (excluded from the model); None if there are none.
    strata : tuple of str
        Factors whose level combinations have totals fixed by design (product-multinomial
        sampling); empty for Poisson or a single multinomial.
    allow_noninteger : bool
        Whether counts may be non-integer (weights).
    """

    factors: tuple[str, ...]
    factor_levels: tuple[pd.Index, ...]
    counts: np.ndarray
    count_name: str = "count"
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    structural_zero: np.ndarray | None = None
    strata: tuple[str, ...] = ()
    allow_noninteger: bool = False

    def __post_init__(self) -> None:
        factors = tuple(str(f) for f in self.factors)
        if len(factors) == 0:
            raise TableError("a table needs at least one factor")
        if len(set(factors)) != len(factors):
            raise TableError(f"duplicated factor names: {list(factors)}")
        if self.count_name in factors:
            raise TableError(f"count column {self.count_name!r} is also a factor name")
        if len(self.factor_levels) != len(factors):
            raise TableError(
                f"{len(factors)} factors but {len(self.factor_levels)} sets of levels given"
            )
        levels = tuple(pd.Index(lv) for lv in self.factor_levels)
        for name, lv in zip(factors, levels, strict=True):
            if len(lv) == 0:
                raise TableError(f"empty table: factor {name!r} has no levels")
            if lv.hasnans:
                raise TableError(f"factor {name!r} has a missing (NaN) level")
            if not lv.is_unique:
                dup = list(lv[lv.duplicated()].unique())
                raise TableError(f"factor {name!r} has duplicated levels: {dup}")
        shape = tuple(len(lv) for lv in levels)
        counts = np.asarray(self.counts, dtype=np.float64).reshape(-1)
        if counts.size != int(np.prod(shape)):
            raise TableError(
                f"{counts.size} counts for a grid of shape {shape} ({int(np.prod(shape))} cells)"
            )
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "factor_levels", levels)
        object.__setattr__(self, "counts", _readonly(counts))
        object.__setattr__(self, "strata", self._checked_strata(self.strata))
        object.__setattr__(self, "scores", self._checked_scores(self.scores, defaults=True))
        object.__setattr__(self, "structural_zero", self._checked_mask(self.structural_zero))
        self._check_counts()

    # ------------------------------------------------------------------ validation
    def _checked_strata(self, strata: Sequence[str]) -> tuple[str, ...]:
        strata = (strata,) if isinstance(strata, str) else tuple(strata)
        unknown = [s for s in strata if s not in self.factors]
        if unknown:
            raise TableError(f"strata {unknown} are not factors of the table {list(self.factors)}")
        if len(set(strata)) != len(strata):
            raise TableError(f"duplicated strata: {list(strata)}")
        return strata

    def _checked_scores(self, scores: ScoreSpec | None, defaults: bool) -> Mapping[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if defaults:
            out = {f: _readonly(np.arange(1.0, len(lv) + 1)) for f, lv in
                   zip(self.factors, self.factor_levels, strict=True)}
        for name, value in dict(scores or {}).items():
            if name not in self.factors:
                raise TableError(f"scores given for {name!r}, not a factor of {list(self.factors)}")
            lv = self.levels(name)
            if isinstance(value, str):
                if value != "levels":
                    raise TableError(f"scores for {name!r}: unknown rule {value!r} (use 'levels')")
                try:
                    value = np.asarray(lv, dtype=np.float64)
                except (TypeError, ValueError):
                    raise TableError(
                        f"scores='levels' for {name!r} needs numeric levels, got {list(lv)}"
                    ) from None
            s = np.asarray(value, dtype=np.float64)
            if s.ndim != 1 or s.size != len(lv):
                raise TableError(f"scores for {name!r} have shape {s.shape}; "
                                 f"expected ({len(lv)},), one per level")
            if not np.all(np.isfinite(s)):
                raise TableError(f"scores for {name!r} are not all finite: {s.tolist()}")
            out[name] = _readonly(s)
        return MappingProxyType(out)

    def _checked_mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.dtype.kind != "b":
            raise TableError(f"structural_zero must be a boolean mask, got dtype {m.dtype}")
        m = m.reshape(-1)
        if m.size != self.n_cells:
            raise TableError(
                f"structural_zero has {m.size} entries; the table has {self.n_cells} cells"
            )
        return _readonly(m) if m.any() else None

    def _check_counts(self) -> None:
        for problem, mask in count_problems(self.counts, self.allow_noninteger):
            flat = np.flatnonzero(mask)
            where = self._cells(flat, self.counts[flat])
            hint = " (pass allow_noninteger=True for weights)" if problem == "non-integer" else ""
            raise TableError(f"{problem} counts in {flat.size} cell(s): {where}{hint}")
        if self.structural_zero is not None:
            bad = np.flatnonzero(self.structural_zero & (self.counts > 0))
            if bad.size:
                where = self._cells(bad, self.counts[bad])
                raise TableError(f"structural zero cells with positive counts: {where}")
        if not np.any(self.counts > 0):
            raise TableError(f"all-zero table: all {self.n_cells} counts are zero")

    def _cells(self, flat: np.ndarray, values: np.ndarray | None = None) -> str:
        return describe_cells(self.factors, self.factor_levels, self.shape, flat, values)

    # ------------------------------------------------------------------ shape and access
    @property
    def shape(self) -> tuple[int, ...]:
        """Number of levels of each factor."""
        return tuple(len(lv) for lv in self.factor_levels)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n(self) -> float:
        """Total count ``sum_i y_i``."""
        return float(self.counts.sum())

    def axis(self, name: str | int) -> int:
        """Position of a factor in the grid (names or integer positions accepted)."""
        if isinstance(name, int | np.integer):
            k = int(name)
            if not -len(self.factors) <= k < len(self.factors):
                raise TableError(f"axis {k} out of range for {len(self.factors)} factors")
            return k % len(self.factors)
        try:
            return self.factors.index(name)
        except ValueError:
            raise TableError(f"unknown factor {name!r}; factors are {list(self.factors)}") from None

    def levels(self, name: str | int) -> pd.Index:
        """Levels of a factor, in order."""
        return self.factor_levels[self.axis(name)]

    def codes(self, name: str | int) -> np.ndarray:
        """Level index (0-based) of a factor for every cell, shape (n_cells,)."""
        k = self.axis(name)
        shape = self.shape
        stride = int(np.prod(shape[k + 1:]))
        return (np.arange(self.n_cells) // stride) % shape[k]

    def score_column(self, name: str | int) -> np.ndarray:
        """Score of a factor's level for every cell, shape (n_cells,)."""
        k = self.axis(name)
        return self.scores[self.factors[k]][self.codes(k)]

    def stratum_codes(self) -> np.ndarray:
        """Stratum index (row-major over ``strata``) of every cell; all 0 without strata."""
        code = np.zeros(self.n_cells, dtype=np.intp)
        for s in self.strata:
            code = code * len(self.levels(s)) + self.codes(s)
        return code

    def to_array(self, values: np.ndarray | None = None) -> np.ndarray:
        """Values per cell reshaped to the table's shape (a copy).

        Parameters
        ----------
        values : ndarray (n_cells,) or (n_cells, ...), optional
            Per-cell values in row order (e.g. fitted means); default the counts.

        Returns
        -------
        ndarray of shape ``shape`` (+ trailing dimensions of ``values``)
        """
        v = self.counts if values is None else np.asarray(values)
        if v.ndim == 0 or v.shape[0] != self.n_cells:
            raise TableError(f"values of shape {v.shape} do not have one row per cell "
                             f"({self.n_cells})")
        return np.array(v.reshape(self.shape + v.shape[1:]), copy=True)

    @property
    def data(self) -> pd.DataFrame:
        """Long form: one row per cell, factors as ordered Categoricals, float counts (a copy)."""
        cols: dict[str, Any] = {
            f: pd.Categorical.from_codes(self.codes(k), categories=lv, ordered=True)
            for k, (f, lv) in enumerate(zip(self.factors, self.factor_levels, strict=True))
        }
        cols[self.count_name] = np.array(self.counts, copy=True)
        return pd.DataFrame(cols)

    def to_wide(self, row: str | Sequence[str] | None = None,
                column: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Crosstab: index = levels of the row factor(s), columns = levels of the column factor(s).

        Defaults: all factors but the last as rows, the last as columns. The factors listed must
        be all the table's factors (use ``margin`` first to drop some).
        """
        rows = [row] if isinstance(row, str) else list(row or self.factors[:-1])
        rest = [f for f in self.factors if f not in rows]
        cols = [column] if isinstance(column, str) else list(column or rest)
        order = [self.axis(f) for f in rows + cols]
        if not rows or not cols:
            raise TableError("to_wide needs at least one row and one column factor")
        if sorted(order) != list(range(len(self.factors))):
            raise TableError(f"row {rows} and column {cols} factors must partition "
                             f"{list(self.factors)}")
        arr = self.to_array().transpose(order)
        n_row = int(np.prod(arr.shape[:len(rows)]))
        values = arr.reshape(n_row, -1)

        def index(names: list[str]) -> pd.Index:
            if len(names) == 1:
                return pd.CategoricalIndex(self.levels(names[0]), categories=self.levels(names[0]),
                                           ordered=True, name=names[0])
            return pd.MultiIndex.from_product([self.levels(f) for f in names], names=names)

        return pd.DataFrame(values, index=index(rows), columns=index(cols))

    # ------------------------------------------------------------------ copies
    def with_scores(self, **scores: Sequence[float] | np.ndarray | str) -> Table:
        """A copy with new scores for the named factors (``"levels"``: numeric level values)."""
        merged = dict(self.scores)
        merged.update(self._checked_scores(scores, defaults=False))
        return replace(self, scores=merged)

    def with_counts(self, counts: np.ndarray) -> Table:
        """A copy with new counts (n_cells,) in row order, e.g. a simulated table."""
        return replace(self, counts=np.asarray(counts, dtype=np.float64))

    def with_strata(self, *strata: str) -> Table:
        """A copy with other product-multinomial strata (none: Poisson / one multinomial)."""
        return replace(self, strata=tuple(strata))

    def margin(self, factors: str | Sequence[str]) -> Table:
        """The marginal table of ``factors`` (in the order given), summing the other factors.

        A margin cell is a structural zero when all its cells are; scores carry over; strata
        not among ``factors`` are dropped.
        """
        names = [factors] if isinstance(factors, str) else list(factors)
        keep = [self.axis(f) for f in names]
        if len(set(keep)) != len(keep):
            raise TableError(f"duplicated factors in margin: {names}")
        drop = tuple(k for k in range(len(self.factors)) if k not in keep)
        perm = np.argsort(keep)  # axes left after summing are in grid order; reorder as asked
        order = np.argsort(perm).tolist()
        counts = self.to_array().sum(axis=drop).transpose(order).reshape(-1)
        mask = None
        if self.structural_zero is not None:
            mask = self.to_array(self.structural_zero).all(axis=drop).transpose(order).reshape(-1)
        kept = [self.factors[k] for k in keep]
        return Table(
            factors=tuple(kept),
            factor_levels=tuple(self.factor_levels[k] for k in keep),
            counts=counts,
            count_name=self.count_name,
            scores={f: self.scores[f] for f in kept},
            structural_zero=mask,
            strata=tuple(s for s in self.strata if s in kept),
            allow_noninteger=self.allow_noninteger,
        )

    def equals(self, other: object) -> bool:
        """Same factors, levels, counts, scores, structural zeros and strata."""
        if not isinstance(other, Table):
            return False
        same_mask = (self.structural_zero is None and other.structural_zero is None) or (
            self.structural_zero is not None and other.structural_zero is not None
            and np.array_equal(self.structural_zero, other.structural_zero))
        return (
            self.factors == other.factors
            and all(a.equals(b) for a, b in zip(self.factor_levels, other.factor_levels,
                                                   strict=True))
            and np.array_equal(self.counts, other.counts)
            and self.count_name == other.count_name
            and all(np.array_equal(self.scores[f], other.scores[f]) for f in self.factors)
            and same_mask
            and self.strata == other.strata
        )

    def __repr__(self) -> str:
        dims = " x ".join(f"{f}[{len(lv)}]" for f, lv in
                          zip(self.factors, self.factor_levels, strict=True))
        extra = f", strata={self.strata}" if self.strata else ""
        if self.structural_zero is not None:
            extra += f", structural_zeros={int(self.structural_zero.sum())}"
        return f"Table({dims}, n={self.n:g}{extra})"

