"""What ``build_design`` takes from a ``gllmm.tables.Table``: cells, structural zeros, scores
and strata.

- Structural zeros are not modelled: their cells are left out, so a 3 x 3 table with one
  structural zero gives 8 cells (quasi-independence, Agresti 2013, Section 11.3).
- Scores enter formulas by name: factor ``f`` gives a column ``f_score`` holding its level's
  score (``count ~ C(row) + C(col) + row_score:col_score`` is the linear-by-linear model with
  the table's scores).
- Strata fix their totals (product-multinomial sampling): the cells of a stratum form one
  multinomial block, ``l = sum_k [y_k' eta_k - n_k log sum exp(eta_k) + log(n_k! / prod y!)]``.
  Columns of X that are constant within every stratum (the intercept, the strata's own
  effects) only move the totals the design fixes, so they are dropped (Agresti 2013, Section
  8.6: Poisson fits with those effects give the same estimates of the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SpecError
from ..tables import Table

#: suffix of the score columns a Table adds to a formula's data (``row`` -> ``row_score``)
SCORE_SUFFIX = "_score"


@dataclass(frozen=True)
class TableInput:
    """A Table's long frame and what the design takes from it.

    Attributes
    ----------
    frame : DataFrame
        One row per cell (row-major), factors, counts and one ``<factor>_score`` column each.
    modelled : ndarray (n_cells,) of bool
        False at structural zeros.
    scores : dict of str -> ndarray
    strata : tuple of str
    stratum : ndarray (n_cells,) of int
        Each cell's stratum (row-major over ``strata``; all 0 without strata).
    """

    frame: pd.DataFrame
    modelled: np.ndarray
    scores: dict[str, np.ndarray]
    strata: tuple[str, ...]
    stratum: np.ndarray


def table_input(table: Table) -> TableInput:
    """The frame, mask, scores and strata of ``table`` (see the module docstring)."""
    frame = table.data
    for f in table.factors:
        name = f"{f}{SCORE_SUFFIX}"
        if name in frame.columns:
            raise SpecError(f"the table's factor {name!r} hides the scores of factor {f!r}; "
                            "rename one of them")
        frame[name] = table.score_column(f)
    mask = table.structural_zero
    modelled = np.ones(table.n_cells, dtype=bool) if mask is None else ~mask
    return TableInput(frame, modelled, {f: np.array(s) for f, s in table.scores.items()},
                      tuple(table.strata), table.stratum_codes())


def score_column(data: pd.DataFrame, factor: str, values: np.ndarray) -> str:
    """The name ``<factor>_score`` under which a model uses ``factor``'s scores (``values``,
    one per row of ``data``), as ``build_design(Table)`` names them.

    A column of ``data`` with that name but other values would make the parameter's name
    describe the wrong covariate: SpecError.
    """
    name = f"{factor}{SCORE_SUFFIX}"
    if name in data.columns:
        given = pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)
        if not np.allclose(given, values, rtol=1e-12, atol=0.0):
            raise SpecError(f"the data's column {name!r} is not the scores of {factor!r} the "
                            f"model uses, but the model names its score term after it; rename "
                            f"the column, or pass its values as the scores of {factor!r}")
    return name


def stratum_blocks(stratum: np.ndarray, strata: tuple[str, ...]) -> tuple[int, int]:
    """Number of strata and cells per stratum among the modelled cells; SpecError when the
    strata have different numbers of modelled cells (structural zeros in some of them)."""
    _, sizes = np.unique(stratum, return_counts=True)
    if sizes.min() != sizes.max():
        raise SpecError(f"the strata {list(strata)} have {sizes.min()} to {sizes.max()} "
                        "modelled cells (structural zeros in some of them): product-multinomial "
                        "blocks need equal sizes; drop the strata (with_strata()) and put "
                        f"C({') + C('.join(strata)}) in the formula, the Poisson equivalent")
    return len(sizes), int(sizes[0])


def within_block_constant(X: Any, n_blocks: int, size: int) -> np.ndarray:
    """Columns of X (rows in blocks of ``size``) constant within every block: their
    within-block sum of squares ``sum x^2 - sum_b (sum_b x)^2 / J`` is ~0 relative to
    ``sum x^2``. Works on dense and sparse X without densifying."""
    n = n_blocks * size
    G = sp.csr_matrix((np.ones(n), (np.repeat(np.arange(n_blocks), size), np.arange(n))),
                      shape=(n_blocks, n))
    s1 = np.asarray((G @ X).toarray() if sp.issparse(X) else G @ X)
    sq = X.multiply(X) if sp.issparse(X) else X * X
    s2 = np.asarray(sq.sum(axis=0)).ravel()
    within = s2 - (s1 ** 2).sum(axis=0) / size
    return within <= 1e-10 * np.maximum(s2, 1.0)
