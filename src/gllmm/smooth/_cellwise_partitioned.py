"""The cell-wise smoother on partitioned input (Parquet files, a Dask DataFrame): the steps of
``_cellwise_parquet``'s docstring run in this process or on a ``distributed`` cluster, and the
result as a :class:`CellwiseFit` whose table-shaped arrays are replaced by the written files.
"""

from __future__ import annotations

import operator
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, SpecError, TableError
from ..fitting._block_newton import progress_logger
from ..fitting._cellwise import two_stages
from ..fitting._cellwise_iterative import IterativeObjective
from ..fitting._cellwise_parts import GraphParts, LocalParts, row_bounds
from ._cellwise_data import _scores
from ._cellwise_model import CellwiseFit
from ._cellwise_parquet import (
    LevelModel,
    build_part,
    level_model,
    merge_margins,
    part_fitted_sums,
    part_write,
    piece_margins,
    read_piece,
    split_piece,
    start_values,
)

Columns = tuple[str, str, str, str | None]


class _Here:
    """Runs the steps in this process (the client's interface, evaluated at once)."""

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **kw: Any) -> list[Any]:
        return [fn(x, **kw) for x in items]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def gather(self, x: Any) -> Any:
        return x

    def scatter(self, x: Any) -> Any:
        return x


class _Cluster:
    """Runs the steps as tasks on the client's cluster, each with a fresh key (a partition
    rebuilt after a lost worker must not be the lost task again)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **kw: Any) -> list[Any]:
        return self.client.map(fn, items, pure=False, **kw)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def gather(self, x: Any) -> Any:
        return self.client.gather(x)

    def scatter(self, x: Any) -> Any:
        return self.client.scatter(x, broadcast=True)


def is_partitioned(counts: object) -> bool:
    """Whether ``counts`` is partitioned input: a path (Parquet file or directory) or a Dask
    DataFrame."""
    return isinstance(counts, (str, os.PathLike)) or hasattr(counts, "to_delayed")


def _inputs(source: Any, run: Any) -> tuple[list[Any], Path | None]:
    """The pieces' sources (paths, or a Dask DataFrame's partitions) and the input path."""
    if hasattr(source, "to_delayed"):
        parts = source.to_delayed()
        if isinstance(run, _Cluster):
            return run.client.compute(parts), None
        return [p.compute() for p in parts], None
    path = Path(source)
    if path.is_dir():
        files = sorted(str(f) for f in path.glob("*.parquet"))
        if not files:
            raise TableError(f"{path} holds no *.parquet files")
        return files, path
    if not path.exists():
        raise TableError(f"{path} does not exist; give a Parquet file or a directory of them")
    return [str(path)], path


def output_dir(path: Path | None, output: str | os.PathLike | None) -> Path | None:
    """Where the smoothed partitions go: ``output``, or next to the input path
    (``NAME_smoothed/`` beside ``NAME``); None (nothing written) for a DataFrame without it."""
    if output is not None:
        return Path(output)
    if path is None:
        return None
    return path.with_name(path.stem + "_smoothed")


def fit_partitioned(
    source: Any, row_scores: object, col_scores: object, *, base: str, n_nodes: int,
    association: str, tol: float, max_iter: int, progress: Callable[[dict], None] | None,
    chunk_size: int, client: Any, partitions: int | Sequence[int] | None,
    output: str | os.PathLike | None, columns: Sequence[str],
) -> Any:
    """``fit_cellwise`` on partitioned input (see ``fit_cellwise``)."""

    t0 = time.perf_counter()
    if association == "random":
        raise SpecError("association='random' is fitted from an in-memory table only; use "
                        "association='heterogeneous' or 'common' with partitioned input")
    if len(columns) not in (3, 4):
        raise SpecError(f"columns must name (row, column, count[, stratum]); got {columns}")
    names: Columns = (columns[0], columns[1], columns[2],
                      columns[3] if len(columns) == 4 else None)
    run = _Here() if client is None else _Cluster(client)
    sources, path = _inputs(source, run)
    out_dir = output_dir(path, output)
    pieces = run.map(read_piece, sources, columns=names)
    levels = merge_margins(run.gather(run.map(piece_margins, pieces)), names[3] is not None)
    model = level_model(levels, base, association,
                        _scores(row_scores, levels.row_labels, "row_scores"),
                        _scores(col_scores, levels.col_labels, "col_scores"))
    n_rows = model.mixed.n_rows
    layout = partitions
    if layout is None:
        layout = 1 if client is None else min(n_rows, 2 * max(1, len(client.nthreads())))
    bounds = row_bounds(n_rows, layout)

    def build(blocks: Sequence[int], read: list[Any] | None = None) -> list[Any]:
        """Futures (or, in this process, the objects) of the partitions ``blocks`` from the
        pieces ``read`` (default: read again)."""
        if read is None:
            read = run.map(read_piece, sources, columns=names)
        # scattered anew each time: Dask keeps one replica of scattered data, which may have
        # been on the worker whose loss calls for the rebuild
        shared = run.scatter(model)
        splits = run.map(split_piece, read, model=shared, bounds=bounds)
        return [run.submit(build_part, b, int(bounds[b]), int(bounds[b + 1]), shared,
                           [run.submit(operator.getitem, s, b) for s in splits], n_nodes,
                           chunk_size) for b in blocks]

    futures = build(range(len(bounds) - 1), pieces)
    del pieces  # the partitions hold their cells; the pieces are released once they exist
    where = LocalParts(futures) if client is None else GraphParts(client, futures, build)
    try:
        history, log = progress_logger(t0, progress)
        glm_obj = IterativeObjective(model.glm, "glm", where)
        obj = IterativeObjective(model.mixed, "mixed", where)
        glm_obj.least_squares()  # checks the rank of X
        fit = two_stages(glm_obj, obj, start_values(model), tol, max_iter, log)
        cov = _global_covariance(fit.final_obj, fit.final)
        files = _write(where, fit, model, names, out_dir)
    finally:
        if client is not None:
            where.close()
    converged = fit.glm.converged and fit.mixed.converged
    if not converged:
        msg = fit.mixed.message if fit.glm.converged else f"GLM stage: {fit.glm.message}"
        warnings.warn(f"Newton iterations stopped: {msg}", ConvergenceWarning, stacklevel=3)
    return CellwiseFit(
        base=base, association=association if model.kind == "heterogeneous" or (
            model.kind == "common" and levels.stratum_labels is not None) else None,
        n_nodes=n_nodes, **_estimates(model, fit, cov),
        loglik=fit.final.value, loglik_sigma0=fit.glm.state.value, converged=converged,
        boundary=fit.boundary, n_iter=fit.glm.n_iter + fit.mixed_iterations,
        n_evaluations=fit.glm.n_evaluations + fit.mixed_evaluations,
        message=fit.mixed.message if fit.glm.converged else f"GLM stage: {fit.glm.message}",
        elapsed=time.perf_counter() - t0, observed=None, fitted_counts=None,
        posterior_mode=None, posterior_mean=None, posterior_sd=None, history=history,
        output_files=files,
    )


def _global_covariance(obj: IterativeObjective, state: Any) -> np.ndarray:
    """Covariance of the parameters after the row and column effects (per-stratum, linear,
    sigma): those rows of the inverse information, by conjugate gradients."""
    st = obj.st
    first = st.n_theta + st.n_phi
    idx = np.arange(first, st.n_params)
    if not idx.size:
        return np.zeros((0, 0))
    E = np.zeros((st.n_params, idx.size))
    E[idx, np.arange(idx.size)] = 1.0
    return obj.solve(state, E)[idx]


def _write(where: Any, fit: Any, model: LevelModel, names: Columns, out_dir: Path | None
           ) -> list[str]:
    if out_dir is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    stage, p = fit.final_obj.stage, fit.final.params
    totals = np.sum(where.map(part_fitted_sums, stage, p, fit.sigma), axis=0)
    for f in out_dir.glob("part-*.parquet"):
        f.unlink()  # files of an earlier fit (perhaps with more partitions)
    where.map(part_write, stage, p, fit.sigma, totals, model, names, str(out_dir))
    return sorted(str(f) for f in out_dir.glob("part-*.parquet"))


def _estimates(model: LevelModel, fit: Any, cov: np.ndarray) -> dict:
    """Effects per label (as ``_cellwise._effects``) and the association and sigma with SEs."""
    lv, st = model.levels, fit.final_obj.st
    p = fit.final.params
    nK = 1 if lv.stratum_labels is None else len(lv.stratum_labels)
    theta, phi = p[: st.n_theta], p[st.n_theta : st.n_theta + st.n_phi]
    first_row = np.searchsorted(lv.row_stratum, np.arange(st.n_strata))
    alpha = np.full(nK, np.nan)
    alpha[lv.strata] = theta[first_row]
    rows = np.full((len(lv.row_labels), nK), -np.inf)
    cols = np.full((len(lv.col_labels), nK), -np.inf)
    rows[lv.row_code, lv.strata[lv.row_stratum]] = theta - theta[first_row][lv.row_stratum]
    phi_full = np.zeros(st.n_cols)
    phi_full[st.free_col] = phi
    cols[lv.col_code, lv.strata[lv.col_stratum]] = phi_full
    var = np.diag(cov)
    a = st.n_theta + st.n_phi
    beta = beta_se = None
    if model.kind == "common":
        beta, beta_se = float(p[a]), float(np.sqrt(var[0]))
    elif model.kind == "heterogeneous":
        beta, beta_se = np.full(nK, np.nan), np.full(nK, np.nan)
        beta[lv.strata], beta_se[lv.strata] = p[a : a + st.n_local], np.sqrt(var[: st.n_local])
    sigma_se = float("nan") if fit.boundary else float(np.sqrt(var[-1]))
    out = {"row_levels": lv.row_labels, "col_levels": lv.col_labels,
           "stratum_levels": lv.stratum_labels, "row_scores": model.row_scores,
           "col_scores": model.col_scores, "beta": beta, "beta_se": beta_se,
           "sigma": fit.sigma, "sigma_se": sigma_se}
    if lv.stratum_labels is None:
        return {**out, "alpha": float(alpha[0]), "row_effects": rows[:, 0],
                "col_effects": cols[:, 0]}
    return {**out, "alpha": alpha, "row_effects": rows, "col_effects": cols}
