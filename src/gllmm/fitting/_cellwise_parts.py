"""Partitions of a cell-wise fit: the per-cell work of ``_cellwise`` done partition by partition.

Every quantity the block Newton needs is a sum over cells: the log-likelihood, the gradient and
the blocks of the negative Hessian (``_block_newton.Structure.gradient`` / ``.blocks`` are
bincounts of per-cell derivatives into level slots). So the cells split into partitions (row
blocks of the first indicator set), each partition evaluates its one-dimensional integrals
(modes, curvature, AGQ values) and returns its sums, and the sums are added on the caller,
which then solves the block system as for one partition. The functions ``part_*`` below are the
only per-cell code of the strategy; ``LocalParts`` calls them in this process and
``ClientParts`` on the workers of a ``dask.distributed`` client holding the partitions
(scattered once; every call sends the parameter vector and gets back level-sized sums).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FitError, GllmmError
from ..integrate._cellwise_kernel import CellKernel, CellTerms
from ._block_newton import Blocks, Structure

PER_CELL = ("stratum", "row", "col", "x_local", "x_global")  # Structure's per-cell fields


@dataclass
class CellPart:
    """The cells of one partition: their structures (``glm``: sigma = 0, ``mixed``: sigma
    free) with the global level maps, counts, offsets, kernel and warm starts of the modes."""

    structures: dict[str, Structure]
    kernel: CellKernel
    offset: np.ndarray | None
    warm: dict[str, np.ndarray] = field(default_factory=dict)
    index: int = 0  # position among the fit's partitions (names its output file)

    def __sizeof__(self) -> int:
        """Bytes held (Dask's size estimate: a partition is expensive to move)."""
        arrays = [v for st in self.structures.values() for v in vars(st).values()]
        arrays += list(vars(self.kernel).values()) + list(self.warm.values())
        arrays += list(getattr(self, "hessian", (None,) * 4)[3] or ())
        held = {id(a): a.nbytes for a in arrays if isinstance(a, np.ndarray)}  # shared once
        return sum(held.values()) + 1000

    def eta(self, stage: str, p: np.ndarray) -> tuple[np.ndarray, float]:
        e, sg = self.structures[stage].eps(p)
        return (e if self.offset is None else e + self.offset), sg


def restrict(st: Structure, cells: np.ndarray) -> Structure:
    """``st`` with only ``cells``: the same levels and flat parameter layout, sums over fewer
    cells."""
    kw = {f.name: getattr(st, f.name) for f in dataclasses.fields(st)}
    for name in PER_CELL:
        if kw[name] is not None:
            kw[name] = kw[name][cells]
    return Structure(**kw)


def row_partitions(row: np.ndarray, n_rows: int, partitions: int | Sequence[int]
                   ) -> list[np.ndarray]:
    """Cell indices of each partition: ``partitions`` equal row blocks, or row blocks of the
    given sizes (summing to the number of row levels). Cells of no row level (the reference
    row) go with the first block."""
    bounds = row_bounds(n_rows, partitions)
    block = np.searchsorted(bounds, np.maximum(row, 0), side="right") - 1
    return [np.flatnonzero(block == b) for b in range(len(bounds) - 1)]


def row_bounds(n_rows: int, partitions: int | Sequence[int]) -> np.ndarray:
    """First row level of each of ``partitions`` row blocks, and ``n_rows`` (equal blocks, or
    blocks of the given sizes)."""
    if isinstance(partitions, (int, np.integer)):
        k = int(partitions)
        if not 1 <= k <= n_rows:
            raise FitError(f"partitions must be between 1 and the {n_rows} row levels; got {k}")
        return np.linspace(0, n_rows, k + 1).round().astype(int)
    sizes = np.asarray(partitions, dtype=int)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(sizes < 1) or sizes.sum() != n_rows:
        raise FitError(f"partitions as row-block sizes must be positive and sum to the "
                       f"{n_rows} row levels; got {sizes.tolist()}")
    return np.r_[0, np.cumsum(sizes)]


def make_parts(structures: dict[str, Structure], y: np.ndarray, offset: np.ndarray,
               n_nodes: int, chunk_size: int, cells: list[np.ndarray]) -> list[CellPart]:
    parts = []
    for c in cells:
        off = offset[c]
        parts.append(CellPart({k: restrict(st, c) for k, st in structures.items()},
                              CellKernel(y[c], n_nodes, chunk_size),
                              off if np.any(off) else None))
    return parts


# ---------------------------------------------------------------------- per-partition work
def cell_terms(part: CellPart, stage: str, p: np.ndarray, order: int
               ) -> tuple[float, CellTerms | None]:
    """The partition's log-likelihood and, at order 2 where finite, its cells' derivatives
    (the modes kept as the next warm start)."""
    e, sg = part.eta(stage, p)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t = part.kernel.evaluate(e, sg, order, start=part.warm.get(stage))
        value = float(t.value.sum())
    if not np.isfinite(value) or order < 2:
        return value, None
    if sg != 0.0:
        part.warm[stage] = t.u
    return value, t


def part_evaluate(part: CellPart, stage: str, p: np.ndarray, order: int
                  ) -> tuple[float, np.ndarray | None, RowBlocks | None]:
    """Log-likelihood of the partition's cells and, at order 2, their gradient and blocks."""
    st = part.structures[stage]
    value, t = cell_terms(part, stage, p, order)
    if t is None:
        return value, None, None
    return value, st.gradient(t.d_e, t.d_s), own_rows(st, st.blocks(t.d_ee, t.d_es, t.d_ss))


def part_least_squares(part: CellPart, shift: float | None) -> tuple[np.ndarray, RowBlocks]:
    """Gradient and blocks of the unit-weight least squares toward the target predictor
    ``log(y + 1/2) - offset`` (``shift`` None) or the constant ``shift``."""
    st = part.structures["glm"]
    return part_least_squares_rhs(part, shift), own_rows(
        st, st.blocks(-np.ones_like(part.kernel.y), None, None))


def part_least_squares_rhs(part: CellPart, shift: float | None) -> np.ndarray:
    """``X' target`` of the unit-weight least squares (``part_least_squares``)."""
    y = part.kernel.y
    if shift is None:
        target = np.log(y + 0.5) - (0.0 if part.offset is None else part.offset)
    else:
        target = np.full_like(y, shift)
    return part.structures["glm"].gradient(target, None)


def part_moments(part: CellPart, p: np.ndarray) -> np.ndarray:
    """``sum((y - mu)^2 - y)`` and ``sum(mu^2)`` at the GLM parameters (sigma's moment start)."""
    y = part.kernel.y
    mu = np.exp(part.eta("glm", p)[0])
    return np.array([((y - mu) ** 2 - y).sum(), (mu * mu).sum()])


def part_posterior(part: CellPart, stage: str, p: np.ndarray, sigma: float
                   ) -> dict[str, np.ndarray]:
    """Posterior mode, mean and SD of each cell's effect, and the predictor at the mode."""
    e, _ = part.eta(stage, p)
    post = part.kernel.posterior(e, sigma)
    post["eta_mode"] = e + post["mode"]
    return post


# ---------------------------------------------------------------------- reductions
@dataclass
class RowBlocks:
    """A partition's blocks with only its own row levels' slices of the row-indexed blocks
    (``D``, ``Bl``, ``BG``: zero elsewhere, as no other partition's cells touch those rows), so
    that what a partition returns is (its rows x columns), not (all rows x columns); and the
    column block ``All`` by its non-zeros: the diagonal (column indicators never share a cell)
    and the per-stratum parameter's row."""

    flat: np.ndarray  # the rows' flat padded index stratum * I + slot
    D: np.ndarray
    Bl: np.ndarray
    BG: np.ndarray
    All_diag: np.ndarray  # (K, M)
    All_last: np.ndarray | None  # (K, M): the last slot's row, with a per-stratum parameter
    AlG: np.ndarray
    AGG: np.ndarray


def own_rows(st: Structure, b: Blocks) -> RowBlocks:
    levels = np.unique(st.row[st.row >= 0])
    flat = st.row_stratum[levels] * st.i_max + st.row_slot[levels]
    K, I, M, G = b.Bl.shape[0], b.Bl.shape[1], b.Bl.shape[2], b.BG.shape[2]
    return RowBlocks(flat, b.D.reshape(K * I)[flat], b.Bl.reshape(K * I, M)[flat],
                     b.BG.reshape(K * I, G)[flat], np.diagonal(b.All, axis1=1, axis2=2).copy(),
                     b.All[:, -1, :].copy() if st.has_local else None, b.AlG, b.AGG)


def sum_blocks(st: Structure, parts: Sequence[RowBlocks]) -> Blocks:
    """The blocks of all cells from the partitions' (row levels are disjoint between
    partitions, the column blocks are summed); padding kept at the identity."""
    K, I, M, G = st.n_strata, st.i_max, st.m_max, st.n_global
    D, Bl, BG = np.ones(K * I), np.zeros((K * I, M)), np.zeros((K * I, G))
    for b in parts:
        D[b.flat], Bl[b.flat], BG[b.flat] = b.D, b.Bl, b.BG
    All = np.zeros((K, M, M))
    if st.has_local:
        last = sum(b.All_last for b in parts)
        All[:, -1, :] = last
        All[:, :, -1] = last
    k, m = np.divmod(np.arange(K * M), M)
    All[k, m, m] = sum(b.All_diag for b in parts).ravel()
    total = Blocks(D.reshape(K, I), Bl.reshape(K, I, M), All, BG.reshape(K, I, G),
                   sum(b.AlG for b in parts), sum(b.AGG for b in parts))
    if len(parts) > 1:
        pad = np.ones((K, M), dtype=bool)
        fc = st.free_col
        pad[st.col_stratum[fc], st.col_slot[fc]] = False
        if st.has_local:
            pad[:, M - 1] = False
        kk = np.flatnonzero(pad.ravel())
        total.All.reshape(K * M, M)[kk, kk % M] = 1.0
    return total


# ---------------------------------------------------------------------- where the work runs
class LocalParts:
    """Partitions held and evaluated in this process."""

    def __init__(self, parts: list[CellPart]) -> None:
        self.parts = parts

    def map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        return [fn(part, *args) for part in self.parts]


class ClientParts:
    """Partitions scattered once to the workers of a ``distributed.Client`` (round robin);
    each call runs ``fn(partition, *args)`` on the worker holding the partition (tasks are
    pinned there, so no partition moves between workers) and gathers the level-sized results.

    A partition lost with its worker is scattered again, from the copy kept here, to a worker
    still alive and the call repeated (its warm starts are lost; the modes are solved to 1e-9
    from any start, so the fit is unchanged up to rounding).
    """

    def __init__(self, client: Any, parts: list[CellPart], retries: int = 3) -> None:
        self.client = client
        self.parts = parts
        self.retries = retries
        self.futures: list[Any] = [None] * len(parts)
        self.where: list[str] = [""] * len(parts)
        self._scatter(range(len(parts)))

    def _scatter(self, which: Any) -> None:
        workers = sorted(self.client.scheduler_info()["workers"])
        if not workers:
            raise FitError("the Dask cluster has no workers; start some (dask worker "
                           "tcp://HOST:8786) or pass a client whose cluster has workers")
        for k, i in enumerate(which):
            w = workers[k % len(workers)]
            self.where[i] = w
            self.futures[i] = self.client.scatter(self.parts[i], workers=[w], hash=False)

    def map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        for attempt in range(self.retries + 1):
            tasks = [self.client.submit(fn, f, *args, pure=False, workers=[w],
                                        allow_other_workers=False)
                     for f, w in zip(self.futures, self.where, strict=True)]
            try:
                return self.client.gather(tasks)
            except Exception as exc:  # a lost worker: distributed raises several kinds
                self.client.cancel(tasks)
                if attempt == self.retries or not _lost(exc):
                    raise FitError(f"the distributed fit failed: {exc!r}") from exc
                alive = set(self.client.scheduler_info()["workers"])
                self._scatter([i for i, w in enumerate(self.where) if w not in alive])
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.client.cancel(self.futures)


class GraphParts:
    """Partitions computed on the workers of a ``distributed.Client`` (futures of a task
    graph: built there from files or a Dask DataFrame, never on the client). Each call runs
    ``fn(partition, *args)`` preferably on the worker holding the partition.

    A partition lost with its worker is built again by ``rebuild`` (which resubmits its
    tasks from the input: Dask forgets the intermediate pieces once the partition exists) and
    the call repeated; its warm starts are lost, nothing else.
    """

    def __init__(self, client: Any, futures: list[Any],
                 rebuild: Callable[[list[int]], list[Any]], retries: int = 3) -> None:
        self.client = client
        self.futures = futures
        self.rebuild = rebuild
        self.retries = retries
        self._settle(range(len(futures)))

    def _settle(self, which: Any) -> None:
        """Wait for the partitions ``which``, raise their build errors, note where they are."""
        from distributed import wait

        which = list(which)
        wait([self.futures[i] for i in which])
        for i in which:
            if self.futures[i].status == "error":
                self.futures[i].result()  # raises the worker's error (TableError: bad input)
        who = self.client.who_has([self.futures[i] for i in which])
        if not hasattr(self, "where"):
            self.where: list[list[str]] = [[] for _ in self.futures]
        for i in which:
            self.where[i] = list(who.get(self.futures[i].key, ()))

    def map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        for attempt in range(self.retries + 1):
            tasks = [self.client.submit(fn, f, *args, pure=False, workers=w or None,
                                        allow_other_workers=True)
                     for f, w in zip(self.futures, self.where, strict=True)]
            try:
                return self.client.gather(tasks)
            except GllmmError:
                raise
            except Exception as exc:  # a lost worker: distributed raises several kinds
                self.client.cancel(tasks)
                if attempt == self.retries or not _lost(exc):
                    raise FitError(f"the distributed fit failed: {exc!r}") from exc
                lost = [i for i, f in enumerate(self.futures) if f.status != "finished"]
                for i, f in zip(lost, self.rebuild(lost), strict=True):
                    self.futures[i] = f
                self._settle(lost)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.client.cancel(self.futures)


def _lost(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"FutureCancelledError", "CancelledError", "KilledWorker",
                    "FuturesCancelledError", "CommClosedError"} or "lost" in str(exc).lower()
