"""Cell-wise log-linear smoothing of contingency tables: the scalable fit of eq. (2.5) / (2.6).

Two-way tables (Coull & Agresti 2003, Section 2.2):

    log mu_ij = alpha + r_i + c_j [+ beta s_i t_j] + sigma v_ij,   v_ij ~ N(0, 1) iid,

with Poisson counts ``y_ij | v``; ``base="independence"`` is (2.5), ``"linear_by_linear"``
(2.6) with fixed monotone scores ``s_i, t_j``. Three-way tables with strata k add stratum-
specific row and column effects (the XZ and YZ terms) and a heterogeneous XY association
``beta_k s_i t_j``, with ``beta_k`` fixed per stratum (``association="heterogeneous"``),
common (``"common"``), or random ``beta_k ~ N(beta, sigma_b^2)`` (``"random"``, the two
variance components of Section 2.2).

Given the fixed effects the marginal likelihood factorises into one 1-D integral per cell. This
module prepares the table (levels, scores, empty rows and columns), writes the model as an
engine design (sparse X: row, column and association columns; one random intercept per cell)
and fits it by the engine's cell-wise strategy (``gllmm.fit(..., strategy="cellwise")``: AGQ
per cell, block Newton over the factor effects, the Poisson GLM kept, flagged ``boundary``,
when the mixed model does not improve on it); it maps the estimates back to table-shaped
effects and smoothed counts. The random-association model does not factorise by cell; it is
fitted by the Laplace approximation over ``(beta_k, v_.k)`` jointly (``_cellwise_random``).

The log-likelihood is on the full scale (with ``-log y!``), equal for Laplace and AGQ. The
model building and the result type live in ``_cellwise_model``; partitioned input (Parquet, a
Dask DataFrame) is fitted by ``_cellwise_partitioned``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, SpecError
from ..fitting._cellwise import fit_cellwise_design
from ..integrate._gauss_hermite import MAX_NODES
from ..tables._validate import check_columns, check_integer, check_real
from ._cellwise_data import prepare
from ._cellwise_model import CellwiseFit, _build, _design, _result, _start
from ._cellwise_partitioned import fit_partitioned, is_partitioned

BASES = ("independence", "linear_by_linear")
ASSOCIATIONS = ("heterogeneous", "common", "random")

__all__ = ["CellwiseFit", "fit_cellwise", "_build", "_start"]


# ---------------------------------------------------------------------- public entry point
#: the default names of the long form's row, column and count columns
LONG_COLUMNS = ("row", "col", "count")


def fit_cellwise(
    counts: object,
    row_scores: object = None,
    col_scores: object = None,
    *,
    base: str = "independence",
    n_nodes: int = 15,
    association: str = "heterogeneous",
    tol: float = 1e-10,
    max_iter: int = 100,
    progress: Callable[[dict], None] | None = None,
    chunk_size: int = 8192,
    client: Any = None,
    partitions: int | Sequence[int] | None = None,
    output: str | os.PathLike | None = None,
    columns: Sequence[str] = LONG_COLUMNS,
) -> CellwiseFit:
    """Fit the cell-wise smoothing model (paper eq. 2.5 / 2.6) by marginal ML.

    ``log mu_ij(k) = alpha_k + r_i(k) + c_j(k) [+ beta_(k) s_i t_j] + sigma v_ij(k)``, Poisson
    counts, ``v ~ N(0, 1)`` iid per cell (Coull & Agresti 2003, Section 2.2 and 5.1).

    Parameters
    ----------
    counts : array (I, J) or (I, J, K), tuple of long arrays, DataFrame, path, or Dask DataFrame
        A two-way table, a stratified table (strata on the last axis), or a tuple
        ``(row, col, count)`` / ``(row, col, count, stratum)`` of equal-length arrays of level
        labels and counts; a pandas DataFrame with the ``columns`` is read as those long
        arrays (one without them as a crosstab). With long arrays only the listed cells are
        modelled (list sampling zeros as 0 counts; an unlisted cell is a structural zero).
        Partitioned input: a Parquet file, a directory of Parquet files, or a Dask DataFrame
        with the ``columns``, listing at least the non-zero cells; an unlisted cell is a zero
        count of the complete table. The levels are those the input lists: a row (column)
        with no counts at all is known only if some zero cell of it is listed (then its effect
        is -inf and warned, as for an array). Its pieces are read and its cells generated
        partition by partition (on the ``client``'s workers if given), the smoothed cells written to
        ``output`` (docs/distributed.md).
    row_scores, col_scores : array, optional
        Scores of the row / column levels for the linear-by-linear term. Default: the category
        numbers 1..I for arrays, the level values themselves for numeric long labels.
    base : {"independence", "linear_by_linear"}
        Model (2.5) or (2.6).
    n_nodes : int
        Adaptive Gauss-Hermite nodes per cell integral (1 = Laplace).
    association : {"heterogeneous", "common", "random"}
        Stratified linear-by-linear tables only: ``beta_k`` fixed per stratum, one common beta,
        or ``beta_k ~ N(beta, sigma_b^2)`` (Laplace over ``(beta_k, v_.k)``; needs n_nodes=1).
    tol : float
        Convergence: the Newton decrement ``g' H^-1 g`` (log-likelihood units).
    max_iter : int
        Newton iterations per stage.
    progress : callable, optional
        Called with a dict (stage, iteration, loglik, decrement, params) every iteration.
    chunk_size : int
        Cells per block of quadrature temporaries (memory ~ 10 x chunk x nodes doubles).
    client : distributed.Client, optional
        Fit on this Dask cluster: the cells, split into ``partitions`` row blocks, are
        evaluated where they were scattered; the estimates equal the one-process fit up to
        rounding (``gllmm.fit(..., client=...)``; not for ``association="random"``).
    partitions : int or sequence of int, optional
        Number of equal row blocks, or their sizes (default: one in this process, two per
        worker with ``client``).
    output : path, optional
        Partitioned input: the directory for the smoothed cells (``part-NNNNN.parquet`` per
        partition: the cells with ``fitted``, ``probability``, ``posterior_mode``,
        ``posterior_sd``); default ``NAME_smoothed`` beside the input ``NAME``, none for a
        DataFrame.
    columns : sequence of str
        Partitioned input: the names of the row, column and count (and stratum) columns.

    Returns
    -------
    CellwiseFit
    """
    t0 = time.perf_counter()
    if base not in BASES:
        raise SpecError(f"unknown base {base!r}; use one of {BASES}")
    if association not in ASSOCIATIONS:
        raise SpecError(f"unknown association {association!r}; use one of {ASSOCIATIONS}")
    n_nodes = check_integer(n_nodes, "n_nodes (1 = Laplace)", 1, MAX_NODES)
    max_iter = check_integer(max_iter, "max_iter", 1)
    chunk_size = check_integer(chunk_size, "chunk_size", 1)
    if not check_real(tol, "tol") > 0:
        raise SpecError(f"tol must be positive, got {tol}")
    if is_partitioned(counts):
        return fit_partitioned(counts, row_scores, col_scores, base=base, n_nodes=n_nodes,
                               association=association, tol=tol, max_iter=max_iter,
                               progress=progress, chunk_size=chunk_size, client=client,
                               partitions=partitions, output=output, columns=columns)
    data = prepare(_long_frame(counts, columns), row_scores, col_scores)
    model = _build(data, base, association)
    if model.kind == "random":
        from ._cellwise_random import fit_random

        if client is not None or partitions is not None:
            raise SpecError("association='random' is fitted in one process only; drop client "
                            "and partitions, or use association='heterogeneous'")
        return fit_random(model, n_nodes, tol, max_iter, progress, chunk_size, t0)
    res = fit_cellwise_design(
        _design(model), "laplace" if n_nodes == 1 else "agq", n_nodes,
        _start(model, model.glm), tol=tol, max_iter=max_iter, progress=progress,
        chunk_size=chunk_size, client=client, partitions=partitions)
    if not res.converged:
        warnings.warn(f"Newton iterations stopped: {res.opt.return_code}", ConvergenceWarning,
                      stacklevel=2)
    st = model.structure
    p_full = res.params
    sigma, boundary = float(p_full[-1]), bool(res.boundary)
    var = np.diag(res.cov)
    sigma_se = float("nan") if boundary else float(np.sqrt(var[-1]))
    beta = beta_se = None
    a = st.n_theta + st.n_phi
    if model.kind == "common":
        beta, beta_se = float(p_full[a]), float(np.sqrt(var[a]))
    elif model.kind == "heterogeneous":
        beta, beta_se = p_full[a : a + st.n_local].copy(), np.sqrt(var[a : a + st.n_local])
    post = {k: v[:, 0] for k, v in res.posterior.items()}
    e = post["eta_mode"] - post["mode"]
    out = _result(model, p_full, post, e, beta, beta_se, sigma, sigma_se)
    return CellwiseFit(
        base=base,
        association=None if model.kind in ("none",) or not data.stratified else model.kind,
        n_nodes=n_nodes,
        **out,
        loglik=res.loglik,
        loglik_sigma0=res.extra["loglik_sigma0"],
        converged=res.converged,
        boundary=boundary,
        n_iter=res.opt.n_iterations,
        n_evaluations=res.opt.n_evaluations,
        message=res.opt.return_code,
        elapsed=time.perf_counter() - t0,
        history=res.opt.log,
    )


def _long_frame(counts: object, columns: Sequence[str]) -> object:
    """A pandas DataFrame naming any of ``columns`` (or given ``columns`` of its own) is a
    long table (one row per cell): its columns as long arrays; read as a crosstab it would fit
    its label columns as counts."""
    named = set(map(str, counts.columns)) & set(columns) if isinstance(
        counts, pd.DataFrame) else set()
    if not isinstance(counts, pd.DataFrame) or not named and tuple(columns) == LONG_COLUMNS:
        return counts
    if not 3 <= len(columns) <= 4:
        raise SpecError(f"columns must name (row, column, count[, stratum]); got {columns}")
    try:
        check_columns(counts, columns)
    except SpecError as exc:
        raise SpecError(f"{exc}; name the long table's columns with columns=(row, column, "
                        "count[, stratum]), or pass a crosstab (rows x columns)") from None
    return tuple(counts[c].to_numpy() for c in columns)

