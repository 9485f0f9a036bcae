"""The cell-wise strategy: one scalar random effect per Poisson cell, factor fixed effects.

For ``log mu_n = x_n' beta + offset_n + sigma v_n``, ``v_n ~ N(0, 1)`` iid per cell (paper
models (2.5) / (2.6) and their stratified forms, Coull & Agresti 2003, Section 2.2), the marginal
likelihood is a product of one-dimensional integrals, one per cell, so an AGQ evaluation is
O(cells x nodes) (``integrate._cellwise_kernel``). When the fixed effects hold two large sets of
indicator columns with disjoint supports (``C(row)`` and ``C(col)``: each cell has at most one
non-zero in each set) the negative Hessian is diagonal in the first set, dense only in the
second, and small in the rest, and a Newton step costs O(cells + levels^2)
(``_block_newton``). The strategy is chosen from this structure of X, however the design was
written; X may be sparse.

Fit: the Poisson GLM (sigma = 0) by block Newton, then (beta, sigma) jointly from the GLM and a
moment estimate of sigma (a search ending at sigma = 0 is followed by searches from
``BOUNDARY_RESTARTS``, as every strategy's); sigma is optimised on the whole real line (the
approximation is even in sigma) and reported as ``|sigma|``; the GLM is kept, flagged
boundary, when the mixed model does not improve on it (MixedModels' xtol_zero / ftol_zero
rule).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import ConvergenceWarning, FitError, SpecError
from ..integrate._cellwise_kernel import CellKernel
from ..results import FitResult
from ..spec._design import Design
from ._block_newton import (
    State,
    Structure,
    dense_information,
    factor,
    maximise,
    progress_logger,
    solve,
)
from ._cellwise_parts import (
    CellPart,
    ClientParts,
    LocalParts,
    make_parts,
    part_evaluate,
    part_least_squares,
    part_moments,
    part_posterior,
    row_partitions,
    sum_blocks,
)
from ._optimize import BOUNDARY_RESTARTS, FTOL_ZERO, XTOL_ZERO, OptSummary, best_of_starts

STRATEGY = "cellwise"
AUTO_MIN_LEVELS = 30  # chosen automatically from this many indicator columns on
MAX_DENSE_LEVELS = 6000  # the second indicator set's Schur complement is dense
MAX_GLOBAL = 50  # columns outside the two indicator sets (dense per cell)


@dataclass
class CellwiseLayout:
    """A design in the block layout: the structure with sigma free and with sigma = 0, and
    ``perm`` (the structure's i-th fixed parameter is X's column ``perm[i]``)."""

    mixed: Structure
    glm: Structure
    perm: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    n_indicators: int


def _indicator_sets(X: sp.csc_matrix) -> tuple[list[int], list[int], list[int]]:
    """Two sets of 0/1 columns with disjoint supports within each set, and the other columns.

    Greedy in column order: an indicator column joins the first set it does not overlap.
    Columns non-zero in more than half the rows (an intercept) stay with the others.
    """
    n = X.shape[0]
    covered = [np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)]
    sets: tuple[list[int], list[int]] = ([], [])
    rest: list[int] = []
    for j in range(X.shape[1]):
        lo, hi = X.indptr[j], X.indptr[j + 1]
        rows = X.indices[lo:hi]
        if 0 < hi - lo <= n // 2 and np.all(X.data[lo:hi] == 1.0):
            for k in (0, 1):
                if not covered[k][rows].any():
                    covered[k][rows] = True
                    sets[k].append(j)
                    break
            else:
                rest.append(j)
        else:
            rest.append(j)
    return sets[0], sets[1], rest


def cellwise_layout(design: Design) -> CellwiseLayout | str:
    """The block layout of ``design``, or a sentence saying why the strategy does not apply."""
    fam = design.family
    if fam.name != "poisson" or fam.n_eta != 1:
        return "it needs Poisson counts (one cell per block)"
    if design.n_random != 1 or design.n_theta != 1:
        return "it needs one scalar random effect per cluster"
    if design.n_clusters != fam.n_blocks:
        return "it needs one cell per cluster, as (1 | cell)"
    lam = design.covariance.factor(np.ones(1))[0, 0]
    n = fam.n_blocks
    z = design.z_sparse
    if z.nnz != n or not np.all(z.data * lam == 1.0):
        return "it needs a random intercept per cell"
    X = sp.csc_matrix(design.x_matrix)  # never the dense (B, J, p) array
    X.sum_duplicates()
    X.eliminate_zeros()
    first, second, rest = _indicator_sets(X)
    if len(second) > len(first):
        first, second = second, first
    if not first or not second:
        return "its fixed effects have no two sets of indicator columns (C(row) + C(col))"
    if len(second) > MAX_DENSE_LEVELS:
        return f"its second indicator set has {len(second)} columns (> {MAX_DENSE_LEVELS})"
    if len(rest) > MAX_GLOBAL:
        return f"{len(rest)} fixed-effect columns are not indicators (> {MAX_GLOBAL})"
    row = np.full(n, -1, dtype=np.intp)
    col = np.full(n, len(second), dtype=np.intp)  # the last column level is the reference
    for target, columns in ((row, first), (col, second)):
        for level, j in enumerate(columns):
            target[X.indices[X.indptr[j] : X.indptr[j + 1]]] = level
    n_r, n_c = len(first), len(second)
    common = {
        "stratum": np.zeros(n, dtype=np.intp), "row": row, "col": col,
        "row_stratum": np.zeros(n_r, dtype=np.intp), "row_slot": np.arange(n_r),
        "col_stratum": np.zeros(n_c + 1, dtype=np.intp), "col_slot": np.r_[np.arange(n_c), -1],
        "n_strata": 1, "x_local": None, "x_global": X[:, rest].toarray(),
    }
    return CellwiseLayout(
        Structure(**common, sigma_free=True), Structure(**common, sigma_free=False),
        np.array(first + second + rest, dtype=np.intp), fam.y[:, 0].astype(float),
        design.offset[:, 0].astype(float), n_r + n_c,
    )


def applies(design: Design, automatic: bool = True) -> bool:
    """Whether the strategy applies (``automatic``: and the indicator sets are large enough
    for it to be the fast choice)."""
    return chosen_layout(design, automatic) is not None


def chosen_layout(design: Design, automatic: bool = True) -> CellwiseLayout | None:
    """The layout of ``design`` where the strategy applies (as ``applies``), else None; the
    fit takes it (``fit_cellwise_design(layout=...)``) instead of finding it again."""
    if design.n_random != 1 or design.family.name != "poisson":
        return None  # cheap refusals before looking at X
    if automatic and design.n_fixed < AUTO_MIN_LEVELS:
        return None  # too few columns to hold the indicator sets: not worth reading X
    lay = cellwise_layout(design)
    if isinstance(lay, str) or (automatic and lay.n_indicators < AUTO_MIN_LEVELS):
        return None
    return lay


class CellObjective:
    """Sum of per-cell AGQ log-likelihoods as a function of the structure's flat parameters,
    the cells held in partitions (``_cellwise_parts``: in this process or on a Dask cluster).
    """

    def __init__(self, st: Structure, stage: str, parts: LocalParts | ClientParts) -> None:
        self.st = st
        self.stage = stage
        self.parts = parts

    def evaluate(self, p: np.ndarray, order: int) -> State:
        out = self.parts.map(*self.evaluation(p, order))
        value = float(sum(o[0] for o in out))
        if not np.isfinite(value):
            return State(p, -np.inf, order)
        if order < 2:
            return State(p, value, order)
        grad = np.sum([o[1] for o in out], axis=0)
        return State(p, value, order, grad, self.reduce([o[2] for o in out]))

    def evaluation(self, p: np.ndarray, order: int) -> tuple[Any, ...]:
        """The per-partition task of an evaluation and its arguments."""
        return part_evaluate, self.stage, p, order

    def reduce(self, parts: list[Any]) -> Any:
        """The Newton step's pieces from the partitions' (``State.extra``)."""
        return sum_blocks(self.st, parts)

    def step(self, state: State) -> np.ndarray:
        return self.st.from_padded(*solve(factor(state.extra), *self.st.to_padded(state.grad)))

    def least_squares(self, shift: float | None = None) -> np.ndarray:
        """Parameters whose predictor is closest to ``log(y + 1/2) - offset`` (``shift`` None)
        or to the constant ``shift`` (the block solve with unit weights): a start for the
        Newton iterations. SpecError if X is rank deficient."""
        out = self.parts.map(part_least_squares, shift)
        f = factor(sum_blocks(self.st, [o[1] for o in out]))
        # X'X singular: a block not positive definite, or (rounding decides which, with the
        # order of the sums) a global Schur complement T positive definite only by rounding
        lam = np.linalg.eigvalsh(f.T) if f.T.size else np.ones(1)
        if f.modified or lam[0] <= 1e-10 * lam[-1]:
            raise SpecError("the fixed-effects design is rank deficient (X'X is singular); "
                            "drop aliased columns")
        rhs = np.sum([o[0] for o in out], axis=0)
        return self.st.from_padded(*solve(f, *self.st.to_padded(rhs)))

    def sigma_moment(self, p: np.ndarray) -> float:
        """Moment estimate of sigma from the Poisson GLM fit: Var y ~ mu + sigma^2 mu^2."""
        num, den = np.sum(self.parts.map(part_moments, p), axis=0)
        return float(np.clip(np.sqrt(max(num / den, 0.0)), 0.1, 2.0))

    def posterior(self, p: np.ndarray, sigma: float, cells: list[np.ndarray]
                  ) -> dict[str, np.ndarray]:
        """Per-cell posterior summaries in the design's cell order."""
        out = self.parts.map(part_posterior, self.stage, p, sigma)
        n = sum(len(c) for c in cells)
        post = {k: np.empty(n) for k in out[0]}
        for c, o in zip(cells, out, strict=True):
            for k, v in o.items():
                post[k][c] = v
        return post


def local_objective(st: Structure, y: np.ndarray, n_nodes: int, stage: str = "mixed"
                    ) -> CellObjective:
    """The objective of the cells ``y`` of structure ``st`` as one partition in this process."""
    part = CellPart({stage: st}, CellKernel(y, n_nodes), None)
    return CellObjective(st, stage, LocalParts([part]))


def fit_cellwise_design(
    design: Design,
    method: str = "agq",
    n_nodes: int | None = None,
    start: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    progress: Callable[[dict], None] | None = None,
    chunk_size: int = 8192,
    client: Any = None,
    partitions: int | Sequence[int] | None = None,
    layout: CellwiseLayout | None = None,
) -> FitResult:
    """Marginal ML of a cell-wise design by AGQ per cell and block Newton (module docstring).

    Parameters
    ----------
    method : {"agq", "laplace"}
    n_nodes : int, optional
        Gauss-Hermite nodes per cell (default 15 for AGQ; Laplace is one node).
    start : ndarray, optional
        Start of the fixed effects for the GLM stage (default: least squares on log(y + 1/2)).
    tol : float
        Convergence: the Newton decrement ``g' A^-1 g`` (log-likelihood units).
    progress : callable, optional
        Called with a dict (stage, iteration, loglik, decrement, params, elapsed) per iteration.
    chunk_size : int
        Cells per block of quadrature temporaries (memory ~ 10 x chunk x nodes doubles).
    client : distributed.Client, optional
        Evaluate the cells on this Dask cluster: the partitions are scattered to its workers
        once; each Newton evaluation sends the parameter vector and gathers level-sized sums
        (``_cellwise_parts``). The estimates equal the one-process fit up to rounding.
    partitions : int or sequence of int, optional
        Row blocks of the cells (of the first indicator set's levels): a number of equal
        blocks or the block sizes. Default: one block in this process, two per worker with
        ``client``.
    """
    t0 = time.perf_counter()
    lay = cellwise_layout(design) if layout is None else layout
    if isinstance(lay, str):
        raise FitError(f"the cell-wise strategy does not apply to this design: {lay}")
    nodes = 1 if method == "laplace" else (15 if n_nodes is None else int(n_nodes))
    if nodes < 1:
        raise FitError("n_nodes must be at least 1 (1 = Laplace)")
    st = lay.mixed
    structures = {"glm": lay.glm, "mixed": st}
    layout = 1 if partitions is None else partitions
    if partitions is None and client is not None:
        layout = min(st.n_rows, 2 * max(1, len(client.nthreads())))
    cells = row_partitions(st.row, st.n_rows, layout)
    parts = make_parts(structures, lay.y, lay.offset, nodes, chunk_size, cells)
    where = LocalParts(parts) if client is None else ClientParts(client, parts)
    try:
        return _fit(design, lay, where, cells, method, nodes, start, tol, max_iter, progress, t0)
    finally:
        if client is not None:
            where.close()


def _fit(design: Design, lay: CellwiseLayout, where: LocalParts | ClientParts,
         cells: list[np.ndarray], method: str, nodes: int, start: np.ndarray | None,
         tol: float, max_iter: int, progress: Callable[[dict], None] | None, t0: float
         ) -> FitResult:
    """The two Newton stages of ``fit_cellwise_design`` on partitioned cells."""
    history, log = progress_logger(t0, progress)
    glm_obj = CellObjective(lay.glm, "glm", where)
    p_fixed = design.n_fixed
    p0 = glm_obj.least_squares()  # checks the rank of X too
    if start is not None:
        p0 = np.asarray(start, dtype=float)[:p_fixed][lay.perm]
    fit = two_stages(glm_obj, CellObjective(lay.mixed, "mixed", where), p0, tol, max_iter,
                     log)
    glm, res, s0, sigma, boundary = fit.glm, fit.mixed, fit.s0, fit.sigma, fit.boundary
    converged = glm.converged and res.converged  # the caller warns (fitting.fit)
    final_obj, final, sign = fit.final_obj, fit.final, fit.sign
    t1 = time.perf_counter()
    cov = _covariance(final_obj, final, lay, p_fixed, sign)
    beta = np.empty(p_fixed)
    beta[lay.perm] = final.params[:p_fixed]
    post = final_obj.posterior(final.params, sigma, cells)
    name = design.param_names[-1]
    opt = OptSummary(
        method=method, optimizer="block Newton", n_nodes=nodes,
        initial=np.r_[p0[np.argsort(lay.perm)], s0], final=np.r_[beta, sigma],
        initial_loglik=history[0]["loglik"] if history else float("nan"),
        final_loglik=final.value, n_evaluations=glm.n_evaluations + fit.mixed_evaluations,
        n_iterations=glm.n_iter + fit.mixed_iterations, converged=converged,
        return_code=res.message if glm.converged else f"GLM stage: {glm.message}",
        tolerances={"newton_decrement": tol, "xtol_zero": XTOL_ZERO, "ftol_zero": FTOL_ZERO},
        log=history, timings={"optimize": t1 - t0, "information": time.perf_counter() - t1},
        boundary=(name,) if boundary else (), strategy=STRATEGY,
    )
    posterior = {k: v[:, None] for k, v in post.items()}
    return FitResult(design=design, params=np.r_[beta, sigma], cov=cov, loglik=final.value,
                     opt=opt, posterior=posterior,
                     extra={"loglik_sigma0": glm.state.value})


@dataclass
class Stages:
    """The two Newton stages of a cell-wise fit and the boundary decision."""

    glm: Any
    mixed: Any
    s0: float
    sigma: float
    boundary: bool
    sign: float
    final_obj: CellObjective
    final: State
    #: evaluations and iterations of every search of the mixed stage (restarts included)
    mixed_evaluations: int = 0
    mixed_iterations: int = 0


def two_stages(glm_obj: CellObjective, obj: CellObjective, p0: np.ndarray, tol: float,
               max_iter: int, log: Callable[[dict], None]) -> Stages:
    """The Poisson GLM from ``p0``, then (beta, sigma) jointly from the GLM and a moment
    estimate of sigma (and, when that search ends at sigma = 0, from ``BOUNDARY_RESTARTS``:
    ``best_of_starts``); sigma at 0 when the mixed fit does not improve on the GLM."""
    glm = maximise(glm_obj.evaluate, glm_obj.step, p0, tol=tol, max_iter=max_iter,
                   progress=log, stage="glm")
    s0 = glm_obj.sigma_moment(glm.state.params)
    searches = []

    def mixed_from(sd: float) -> Any:
        # E y = exp(eta + sigma^2 / 2): start the mixed fit with the GLM's means
        shift = glm_obj.least_squares(-0.5 * sd * sd)
        searches.append(maximise(obj.evaluate, obj.step, np.r_[glm.state.params + shift, sd],
                                 tol=tol, max_iter=max_iter, progress=log, stage="mixed",
                                 scale_index=(obj.st.n_params - 1,)))
        return searches[-1]

    res = mixed_from(s0)
    # every strategy's rule: a search stopped at sigma = 0, perhaps below an interior maximum,
    # is followed by searches from BOUNDARY_RESTARTS (an interior end pays nothing), and the
    # best is compared with the GLM, the boundary fit (kept when higher by FTOL_ZERO)
    at_zero = abs(float(res.state.params[-1])) < XTOL_ZERO
    glm_fit = (glm.state.value, lambda: replace(
        glm, state=State(np.r_[glm.state.params, 0.0], glm.state.value, 0), n_evaluations=0))
    res = best_of_starts(res, mixed_from, lambda r: r.state.value,
                         BOUNDARY_RESTARTS if at_zero else (), glm_fit)
    sigma = abs(float(res.state.params[-1]))
    boundary = sigma < XTOL_ZERO and glm.state.value >= res.state.value - FTOL_ZERO
    final_obj, final = (glm_obj, glm.state) if boundary else (obj, res.state)
    sign = 1.0 if boundary or res.state.params[-1] >= 0 else -1.0
    return Stages(glm, res, s0, 0.0 if boundary else sigma, boundary, sign, final_obj, final,
                  sum(r.n_evaluations for r in searches), sum(r.n_iter for r in searches))


def _covariance(obj: CellObjective, state: State, lay: CellwiseLayout, p_fixed: int,
                sign: float) -> np.ndarray:
    """Inverse observed information of (beta, |sigma|) in the design's parameter order."""
    st = obj.st
    cov = np.full((p_fixed + 1, p_fixed + 1), np.nan)
    A = dense_information(st, state.extra)
    # Cholesky and its inverse in place (LAPACK potrf / potri): n^3 flops, not 5 n^3 / 3
    c, info = scipy.linalg.lapack.dpotrf(A, lower=True, overwrite_a=True)
    if info == 0:
        sub, info = scipy.linalg.lapack.dpotri(c, lower=True, overwrite_c=True)
        upper = np.triu_indices_from(sub, 1)
        sub[upper] = sub.T[upper]
    if info != 0:
        warnings.warn("the information matrix is not positive definite at the estimate; "
                      "standard errors are not available", ConvergenceWarning, stacklevel=4)
        return cov
    order = lay.perm if not st.sigma_free else np.r_[lay.perm, p_fixed]
    if st.sigma_free:
        sub[-1, :-1] *= sign
        sub[:-1, -1] *= sign
    cov[np.ix_(order, order)] = sub
    return cov
