"""Ordinal and multinomial responses in the layouts people have, as blocks of category counts.

Three layouts give the same blocks (one per distinct combination of the key columns: the
grouping factor and the covariates), each a vector of counts over the K response categories:

- *long, one row per observation* (``ordinal::clm``/``clmm`` data): a factor response, no count;
- *long with frequencies* (``MASS::polr(..., weights = Freq)``): a factor response and a count
  column; rows of the same block and category are summed, missing categories count zero;
- *wide* (``VGAM::vglm(cbind(c1, c2, c3) ~ x)``): one count column per category.

The category order is the order of the ``cbind`` columns, a pandas Categorical's categories,
or else sorted (numbers numerically); sorting the text levels of an ordinal response warns,
since alphabetical order is rarely the order of the categories.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import LevelOrderWarning, SpecError
from ..spec import split_top_level
from ..spec._build import count_column

_CBIND = re.compile(r"cbind\((.*)\)", flags=re.S)


@dataclass(frozen=True)
class CategoryBlocks:
    """Counts per block and response category.

    Attributes
    ----------
    levels : list
        Response categories in model order.
    y : ndarray (B, K)
        Counts per block and category.
    blocks : DataFrame
        One row per block: the key columns, blocks sorted by the keys in their order.
    table : DataFrame
        One row per block and category (B * K rows, category fastest): the key columns and
        the response; row ``b * K + j`` holds ``y[b, j]``.
    response : str
        Name of the response column of ``table``.
    """

    levels: list
    y: np.ndarray
    blocks: pd.DataFrame
    table: pd.DataFrame
    response: str


def response_columns(response: str) -> list[str] | None:
    """The count columns of a wide ``cbind(c1, c2, ...)`` response, or None for one column;
    split at the top-level commas, so back-quoted names may hold commas and parentheses."""
    m = _CBIND.fullmatch(response.strip())
    if not m:
        return None
    return [c.strip("`") for c in split_top_level(m.group(1), ",")]


def category_blocks(
    data: pd.DataFrame,
    response: str,
    keys: list[str],
    count: str | None = None,
    ordered: bool = True,
) -> CategoryBlocks:
    """Group ``data`` into blocks of category counts (module docstring: the three layouts).

    Parameters
    ----------
    response : str
        A column name (long layouts) or ``cbind(c1, ..., cK)`` (wide layout).
    keys : list of str
        Columns defining a block (grouping factor first, then covariates).
    count : str, optional
        Frequency column of a long layout; None: each row is one observation.
    ordered : bool
        The categories are ordered (cumulative, adjacent, continuation logits): warn when
        text levels are sorted alphabetically.
    """
    if len(data) == 0:
        raise SpecError("the data have no rows")
    wide = response_columns(response)
    needed = [*(wide or [response]), *keys, *([count] if count else [])]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise SpecError(f"unknown column(s) {', '.join(map(repr, missing))}; available: "
                        f"{', '.join(map(str, data.columns))}")
    if wide and count:
        raise SpecError("a cbind(...) response already holds the counts: drop the count "
                        f"(or weights) column {count!r}")
    for k in keys:
        if data[k].isna().any():
            raise SpecError(f"column {k!r} has missing values in rows "
                            f"{np.flatnonzero(data[k].isna())[:10].tolist()}; drop those rows "
                            "first (data.dropna(subset=[...]))")
    if wide:
        if len(wide) < 2:
            raise SpecError(f"{response!r} needs at least two category columns")
        levels: list = list(wide)
        counts = np.column_stack([count_column(data, c) for c in wide])
        cat = None
        name = "category"
    else:
        levels, cat = _categories(data[response], response, ordered)
        counts = count_column(data, count) if count else np.ones(len(data))
        name = response
    if keys:
        factorized = [pd.factorize(data[c], sort=True) for c in keys]
        codes = np.column_stack([f[0] for f in factorized])
        uniq, block = np.unique(codes, axis=0, return_inverse=True)
        block = block.ravel()
        blocks = pd.DataFrame({c: np.asarray(f[1])[uniq[:, i]]
                               for i, (c, f) in enumerate(zip(keys, factorized, strict=True))})
        for c in keys:  # keep categoricals (their level order codes the covariates)
            if isinstance(data[c].dtype, pd.CategoricalDtype):
                blocks[c] = pd.Categorical(blocks[c], categories=data[c].cat.categories,
                                           ordered=data[c].cat.ordered)
    else:
        block = np.zeros(len(data), dtype=int)
        blocks = pd.DataFrame(index=range(1))
    k = len(levels)
    y = np.zeros((len(blocks), k))
    if wide:
        np.add.at(y, block, counts)
    else:
        np.add.at(y, (block, cat), counts)
    empty = y.sum(0) == 0
    if empty.any():
        raise SpecError(f"response categories {_shown([levels[j] for j in np.flatnonzero(empty)])} "
                        "have no observations: drop them from the levels (or merge them with "
                        "a neighbour)")
    table = blocks.loc[np.repeat(np.arange(len(blocks)), k)].reset_index(drop=True)
    table[name] = pd.Categorical(np.tile(np.asarray(levels, dtype=object), len(blocks)),
                                 categories=levels, ordered=ordered)
    return CategoryBlocks(levels, y, blocks, table, name)


def _categories(values: pd.Series, name: str, ordered: bool) -> tuple[list, np.ndarray]:
    """Levels in model order and each row's category code."""
    if values.isna().any():
        raise SpecError(f"response {name!r} has missing values in rows "
                        f"{np.flatnonzero(values.isna())[:10].tolist()}; drop those rows first")
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = set(pd.unique(values))
        levels = [c for c in values.cat.categories if c in used]
    else:
        levels = sorted(pd.unique(values), key=_sort_key)
        text = any(not isinstance(v, (int, float, np.number)) for v in levels)
        if ordered and text and len(levels) > 2:
            warnings.warn(
                f"the levels of the ordinal response {name!r} were sorted alphabetically "
                f"({_shown(levels)}); if that is not their order, give it with "
                f"--levels {name}=... on the command line or as an ordered pandas Categorical",
                LevelOrderWarning, stacklevel=3)
    if len(levels) < 2:
        raise SpecError(f"response {name!r} needs at least two categories; it has "
                        f"{[str(v) for v in levels]}")
    codes = pd.Categorical(values, categories=levels).codes
    return levels, np.asarray(codes)


def _shown(values: list, limit: int = 8) -> str:
    """Values as a short text list: ``a, b, c, ...``."""
    text = ", ".join(map(str, values[:limit]))
    return text + (", ..." if len(values) > limit else "")


def _sort_key(value: object) -> tuple[int, object]:
    return (0, value) if isinstance(value, (int, float, np.number)) else (1, str(value))
