"""Partitioned input and output of the cell-wise smoother: Parquet files or a Dask DataFrame.

The input is a table in long form, ``(row, column, count[, stratum])``, split into pieces (the
Parquet files of a directory, or a Dask DataFrame's partitions), listing any subset of the cells
that holds every non-zero count: an unlisted cell is a zero count (the table is complete). The
pieces are read where they are processed; the client sees only level labels and margins:

1. each piece's levels and margins (row and column totals per stratum) are reduced on the
   client to the row, column and stratum levels (empty ones dropped, as ``_cellwise_data``);
2. each piece is split into the row blocks of the fit; each block's cells are generated on a
   worker from its pieces (all columns of its rows: the zero cells never exist elsewhere) and
   kept there as a partition of the cell-wise strategy (``fitting._cellwise_parts``);
3. the fit runs with Newton steps by conjugate gradients (``fitting._cellwise_iterative``):
   what reaches the client is of the size of the levels, per partition;
4. each partition writes its cells' smoothed counts and probabilities to a Parquet file.

Client memory is O(rows + columns + partitions); a worker holds its partitions' cells.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InfiniteEstimateWarning, SpecError, TableError
from ..fitting._block_newton import Structure
from ..fitting._cellwise_parts import CellPart, part_posterior
from ..integrate._cellwise_kernel import CellKernel

INDEX = np.int32  # per-cell level indices (halves a partition's index memory)


# ---------------------------------------------------------------------- pieces of the input
@dataclass
class Piece:
    """Long arrays of one input piece (labels as stored; stratum None: two-way table)."""

    row: np.ndarray
    col: np.ndarray
    count: np.ndarray
    stratum: np.ndarray | None


def read_piece(source: Any, columns: tuple[str, str, str, str | None]) -> Piece:
    """One Parquet file (a path) or one pandas DataFrame as a Piece, counts checked."""
    names = [c for c in columns if c is not None]
    where = str(source) if isinstance(source, (str, os.PathLike)) else "a partition"
    if isinstance(source, (str, os.PathLike)):
        import pyarrow.parquet as pq

        have = pq.read_schema(source).names
        _check_columns(where, names, have)
        table = pq.read_table(source, columns=names)
        arrays = [table.column(c).to_numpy() for c in names]
    else:
        _check_columns(where, names, list(source.columns))
        arrays = [source[c].to_numpy() for c in names]
    for name, labels in zip(names[:2] + names[3:], arrays[:2] + arrays[3:], strict=True):
        if pd.isna(labels).any():
            raise TableError(f"{where}: column {name!r} has missing labels; drop those rows or "
                             "give them a level")
    try:
        count = np.asarray(arrays[2], dtype=float)
    except (TypeError, ValueError) as exc:
        raise TableError(f"{where}: column {names[2]!r} is not numeric; give counts as "
                         "numbers") from exc
    bad = ~np.isfinite(count) | (count < 0) | (count != np.round(count))
    if bad.any():
        raise TableError(f"{where}: counts must be finite, non-negative whole numbers; "
                         f"{int(bad.sum())} are not (first: {float(count[bad][0]):g}); fix or drop "
                         "those rows")
    return Piece(arrays[0], arrays[1], count, arrays[3] if len(arrays) == 4 else None)


def _check_columns(where: str, names: list[str], have: list[str]) -> None:
    missing = [c for c in names if c not in have]
    if missing:
        raise TableError(f"{where}: cannot read columns {missing}: it has {have}; pass "
                         "columns=(row, column, count[, stratum]) naming its columns")


def piece_margins(piece: Piece) -> tuple[np.ndarray, ...]:
    """Levels of the piece and its totals per (stratum, row) and (stratum, column)."""
    k_lev, k = np.unique(piece.stratum if piece.stratum is not None else
                         np.zeros(len(piece.count), dtype=INDEX), return_inverse=True)
    r_lev, r = np.unique(piece.row, return_inverse=True)
    c_lev, c = np.unique(piece.col, return_inverse=True)
    rk, r_tot = _pair_totals(k, r, len(r_lev), piece.count)
    ck, c_tot = _pair_totals(k, c, len(c_lev), piece.count)
    return k_lev, r_lev, c_lev, rk, r_tot, ck, c_tot


def _pair_totals(k: np.ndarray, code: np.ndarray, n: int, y: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    key, inv = np.unique(k.astype(np.int64) * n + code, return_inverse=True)
    return np.column_stack([key // n, key % n]), np.bincount(inv, y, minlength=key.size)


# ---------------------------------------------------------------------- levels on the client
@dataclass
class Levels:
    """The table's levels and the fit's level maps (everything of level size).

    Global row levels are the kept (stratum, row) pairs in stratum-major order, column levels
    the kept (stratum, column) pairs; ``row_code``/``col_code``/``*_stratum`` map them to label
    codes; ``lookup_row`` (strata x rows) maps label codes to the global row level (-1: none)."""

    row_labels: np.ndarray
    col_labels: np.ndarray
    stratum_labels: np.ndarray | None
    row_code: np.ndarray
    row_stratum: np.ndarray
    col_code: np.ndarray
    col_stratum: np.ndarray
    row_total: np.ndarray
    col_total: np.ndarray
    lookup_row: np.ndarray
    lookup_col: np.ndarray
    strata: np.ndarray  # label index of each kept stratum

    @property
    def n_strata(self) -> int:
        return int(self.row_stratum.max()) + 1


def merge_margins(margins: list[tuple[np.ndarray, ...]], stratified: bool) -> Levels:
    """Reduce the pieces' levels and margins; drop empty levels with a warning."""
    k_lab = np.unique(np.concatenate([m[0] for m in margins]))
    r_lab = np.unique(np.concatenate([m[1] for m in margins]))
    c_lab = np.unique(np.concatenate([m[2] for m in margins]))
    nK, nI, nJ = len(k_lab), len(r_lab), len(c_lab)
    r_tot = np.full((nK, nI), np.nan)  # NaN: not listed in any piece (a zero total)
    c_tot = np.full((nK, nJ), np.nan)
    for m in margins:
        kmap = np.searchsorted(k_lab, m[0])
        for tot, labels, pairs, vals in ((r_tot, r_lab, m[3], m[4]), (c_tot, c_lab, m[5], m[6])):
            lev = np.searchsorted(labels, (m[1] if tot is r_tot else m[2])[pairs[:, 1]])
            kk = kmap[pairs[:, 0]]
            # a (stratum, level) pair is listed once per piece
            tot[kk, lev] = np.nan_to_num(tot[kk, lev]) + vals
    r_tot, c_tot = np.nan_to_num(r_tot), np.nan_to_num(c_tot)
    # a level listed in a stratum exists in every stratum (the table is complete)
    k_tot = r_tot.sum(axis=1)
    keep_k = k_tot > 0
    keep_r = (r_tot > 0) & keep_k[:, None]
    keep_c = (c_tot > 0) & keep_k[:, None]
    empty = [f"{name} {labels[i]}" + (f" (stratum {k_lab[k]})" if stratified else "")
             for name, keep, labels in (("row", keep_r, r_lab), ("column", keep_c, c_lab))
             for k, i in zip(*np.nonzero(~keep & keep_k[:, None]), strict=True)]
    if empty:
        more = f" and {len(empty) - 8} more" if len(empty) > 8 else ""
        warnings.warn(f"{', '.join(empty[:8])}{more} have no counts: their effects are -inf "
                      "(no ML estimate); their cells are left out of the fit",
                      InfiniteEstimateWarning, stacklevel=4)
    if not keep_r.any():
        raise TableError("the table has no positive counts")
    k_new = np.cumsum(keep_k) - 1  # drop empty strata
    rk, ri = np.nonzero(keep_r)
    ck, ci = np.nonzero(keep_c)
    lookup_r = np.full((nK, nI), -1, dtype=INDEX)
    lookup_r[rk, ri] = np.arange(rk.size)
    lookup_c = np.full((nK, nJ), -1, dtype=INDEX)
    lookup_c[ck, ci] = np.arange(ck.size)
    return Levels(r_lab, c_lab, k_lab if stratified else None, ri, k_new[rk], ci, k_new[ck],
                  r_tot[rk, ri], c_tot[ck, ci], lookup_r, lookup_c, np.flatnonzero(keep_k))


# ---------------------------------------------------------------------- the model's levels
@dataclass
class LevelModel:
    """The fit's level structures (no cells: ``Structure`` with empty per-cell arrays) and
    what the partitions need to generate their cells."""

    levels: Levels
    mixed: Structure
    glm: Structure
    kind: str  # "none", "common", "heterogeneous"
    row_scores: np.ndarray  # per row label
    col_scores: np.ndarray
    col_start: np.ndarray  # per stratum: its first column level (column levels stratum-major)
    col_count: np.ndarray


def _slots(stratum: np.ndarray) -> np.ndarray:
    """Position of each level within its stratum (levels in stratum-major order)."""
    first = np.searchsorted(stratum, stratum, side="left")
    return (np.arange(len(stratum)) - first).astype(INDEX)


def level_model(levels: Levels, base: str, association: str, row_scores: np.ndarray,
                col_scores: np.ndarray) -> LevelModel:
    K = levels.n_strata
    kind, x_local, x_global = "none", None, np.zeros((0, 0))
    if base == "linear_by_linear":
        kind = association if K > 1 else "common"
        ok = np.ones(K, dtype=bool)
        for sc, k in ((row_scores[levels.row_code], levels.row_stratum),
                      (col_scores[levels.col_code], levels.col_stratum)):
            lo, hi = np.full(K, np.inf), np.full(K, -np.inf)
            np.minimum.at(lo, k, sc)
            np.maximum.at(hi, k, sc)
            ok &= hi > lo
        if kind == "common" and not ok.any():
            raise SpecError("the linear-by-linear term needs two rows and two columns with "
                            "distinct scores")
        if kind == "heterogeneous" and not ok.all():
            raise SpecError(f"strata {list(np.flatnonzero(~ok))} have fewer than two rows or "
                            "columns with distinct scores: their association is not estimable")
        if kind == "heterogeneous":
            x_local = np.zeros(0)
        else:
            x_global = np.zeros((0, 1))
    empty = np.zeros(0, dtype=INDEX)
    mixed = Structure(empty, empty, empty, levels.row_stratum.astype(INDEX),
                      _slots(levels.row_stratum), levels.col_stratum.astype(INDEX),
                      _slots(levels.col_stratum) - 1, K, x_local, x_global, sigma_free=True)
    col_count = np.bincount(levels.col_stratum, minlength=K)
    return LevelModel(levels, mixed, without_sigma(mixed), kind, row_scores, col_scores,
                      np.r_[0, np.cumsum(col_count)[:-1]], col_count)


def without_sigma(st: Structure) -> Structure:
    """``st`` with sigma fixed (the Poisson GLM stage), sharing its per-cell arrays (a
    partition then holds one set of index arrays, not two)."""
    glm = copy.copy(st)
    glm.sigma_free = False
    glm.n_global -= 1
    glm.n_params -= 1
    return glm


def start_values(model: LevelModel) -> np.ndarray:
    """The independence fit per stratum from the margins (``_cellwise._start``)."""
    lv, st = model.levels, model.glm
    n_k = np.bincount(lv.row_stratum, lv.row_total, minlength=st.n_strata)
    ref_tot = lv.col_total[model.col_start]
    theta = np.log(lv.row_total) + np.log(ref_tot[lv.row_stratum]) - np.log(
        n_k[lv.row_stratum])
    phi = np.log(lv.col_total[st.free_col]) - np.log(ref_tot[lv.col_stratum[st.free_col]])
    return np.concatenate([theta, phi, np.zeros(st.n_local + st.n_lin)])


# ---------------------------------------------------------------------- partitions on workers
def split_piece(piece: Piece, model: LevelModel, bounds: np.ndarray) -> list[tuple]:
    """The piece's cells as (row level, column level, count) per row block of the fit
    (cells of dropped levels, all zero counts, left out)."""
    lv = model.levels
    k = (np.zeros(len(piece.count), dtype=INDEX) if piece.stratum is None else
         np.searchsorted(lv.stratum_labels, piece.stratum))
    kl = np.searchsorted(lv.row_labels, piece.row)
    r = lv.lookup_row[k, kl]
    c = lv.lookup_col[k, np.searchsorted(lv.col_labels, piece.col)]
    keep = (r >= 0) & (c >= 0)
    r, c, y = r[keep], c[keep], piece.count[keep]
    block = np.searchsorted(bounds, r, side="right") - 1
    order = np.argsort(block, kind="stable")
    cuts = np.searchsorted(block[order], np.arange(len(bounds)))
    return [(r[order[a:b]], c[order[a:b]], y[order[a:b]]) for a, b in zip(cuts[:-1], cuts[1:],
                                                                          strict=True)]


def build_part(index: int, lo: int, hi: int, model: LevelModel, cells: list[tuple], n_nodes: int,
               chunk_size: int) -> CellPart:
    """The partition of row levels ``lo..hi-1``: every column of their strata, zero counts
    where no piece lists the cell."""
    lv, st = model.levels, model.mixed
    rows = np.arange(lo, hi, dtype=INDEX)
    k_r = lv.row_stratum[rows]
    per_row = model.col_count[k_r]
    offset = np.r_[0, np.cumsum(per_row)]
    n = int(offset[-1])
    row = np.repeat(rows, per_row)
    first = np.repeat(model.col_start[k_r] - offset[:-1], per_row)
    col = (first + np.arange(n)).astype(INDEX)
    y = np.zeros(n)
    if cells:
        r = np.concatenate([c[0] for c in cells])
        c = np.concatenate([c[1] for c in cells])
        pos = offset[r - lo] + (c - model.col_start[lv.col_stratum[c]])
        twice = np.flatnonzero(np.bincount(pos, minlength=n) > 1)
        if twice.size:
            i, j = row[twice[0]], col[twice[0]]
            raise TableError(
                f"the input lists {twice.size} cell(s) more than once (first: row "
                f"{lv.row_labels[lv.row_code[i]]}, column {lv.col_labels[lv.col_code[j]]}"
                + (f", stratum {lv.stratum_labels[lv.strata[lv.row_stratum[i]]]}"
                   if lv.stratum_labels is not None else "")
                + "); list each cell once (sum the duplicates, e.g. groupby().sum())")
        y[pos] = np.concatenate([c[2] for c in cells])
    x = model.row_scores[lv.row_code[row]] * model.col_scores[lv.col_code[col]]
    stratum = lv.row_stratum[row].astype(INDEX)
    mixed = Structure(stratum, row, col, st.row_stratum, st.row_slot, st.col_stratum,
                      st.col_slot, st.n_strata, x if model.kind == "heterogeneous" else None,
                      x[:, None] if model.kind == "common" else np.zeros((n, 0)))
    # only Structure.blocks (the dense row x column blocks of the direct solve) reads these;
    # the partitions of the iterative solve never do: 12 bytes per cell saved
    del mixed._bl_index, mixed._free_cells
    return CellPart({"glm": without_sigma(mixed), "mixed": mixed},
                    CellKernel(y, n_nodes, chunk_size), None, index=index)


def part_fitted_sums(part: CellPart, stage: str, p: np.ndarray, sigma: float) -> np.ndarray:
    """Per-stratum sums of the smoothed counts (the probabilities' denominators)."""
    st = part.structures[stage]
    fitted = np.exp(part_posterior(part, stage, p, sigma)["eta_mode"])
    return np.bincount(st.stratum, fitted, minlength=st.n_strata)


def part_write(part: CellPart, stage: str, p: np.ndarray, sigma: float, totals: np.ndarray,
               model: LevelModel, names: tuple[str, str, str, str | None], out_dir: str) -> int:
    """Write the partition's cells with their smoothed counts and probabilities (fitted over
    the stratum's fitted total) and posterior mode and SD of the cell effect; rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    st, lv = part.structures[stage], model.levels
    post = part_posterior(part, stage, p, sigma)
    fitted = np.exp(post["eta_mode"])
    data = {names[0]: lv.row_labels[lv.row_code[st.row]],
            names[1]: lv.col_labels[lv.col_code[st.col]]}
    if names[3] is not None:
        data[names[3]] = lv.stratum_labels[lv.strata[st.stratum]]
    data.update({names[2]: part.kernel.y, "fitted": fitted,
                 "probability": fitted / totals[st.stratum],
                 "posterior_mode": post["mode"], "posterior_sd": post["sd"]})
    pq.write_table(pa.table(data), os.path.join(out_dir, f"part-{part.index:05d}.parquet"))
    return len(fitted)
