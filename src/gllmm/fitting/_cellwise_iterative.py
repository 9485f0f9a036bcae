"""Newton steps of the cell-wise strategy without the (rows x columns) Hessian block.

The block Newton of ``_block_newton`` forms the row-column block ``B`` of the negative Hessian
(one entry per cell) and the dense Schur complement of the columns: O(cells) memory where the
system is solved and O(rows x columns^2) flops per step, which a 10^4 x 10^4 table cannot
afford on one machine. Here the Newton system ``A d = g`` is solved by preconditioned conjugate
gradients: ``A v`` is a sum over cells, computed partition by partition where the cells live
from their stored second derivatives (``part_hessian_vector``), and only vectors of the
parameter length cross the wire.

Preconditioner: ``A`` with ``B`` replaced by its independence form per stratum,
``B_ij ~ D_i C_j / N_k`` (``D`` the row sums of the cell weights, ``C`` the column sums,
``N_k`` the stratum's total weight; exact for the Poisson GLM of a complete table at its
optimum), the per-stratum and global parameters kept exactly. Its row block is diagonal and its
column Schur complement is diagonal minus rank one per stratum, so it is solved in
O(levels x (strata + globals)) by Woodbury. Where ``A`` is not positive definite (far from the
optimum, in sigma) the iterations stop at the first direction of non-positive curvature
(truncated Newton, Steihaug 1983): every iterate is an ascent direction.

Glossary: ``w`` per-cell weights ``-d2F/deps2``, ``D`` row sums, ``C`` column sums,
``G`` global parameters (per-stratum, linear, sigma), ``P`` the preconditioner.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, SpecError
from ._block_newton import State, Structure, _make_pd
from ._cellwise import CellObjective
from ._cellwise_parts import CellPart, cell_terms, part_least_squares_rhs

CG_RTOL = 1e-9  # relative residual (preconditioned norm) at which a Newton step is solved
CG_MAX_ITER = 200


# ---------------------------------------------------------------------- per-partition work
@dataclass
class Pieces:
    """One partition's sums for the preconditioner (vectors of level length; rows: own only).

    ``rows``: the partition's row levels; ``D``, ``BG`` their row sums of ``w`` and of the
    global coefficients; ``C``, ``CG`` column sums; ``N`` per stratum; ``GG`` the global block.
    """

    rows: np.ndarray
    D: np.ndarray
    BG: np.ndarray
    C: np.ndarray
    CG: np.ndarray
    N: np.ndarray
    GG: np.ndarray


def _global_columns(st: Structure, w: np.ndarray, d_es: np.ndarray | None) -> np.ndarray:
    """Per-cell coefficients ``-d2F/(deps dg)`` of the global parameters (per-stratum, linear,
    sigma), (n, G)."""
    cols = []
    if st.has_local:
        k = np.arange(st.n_strata)
        cols.append((st.stratum[:, None] == k[None, :]) * (w * st.x_local)[:, None])
    if st.n_lin:
        cols.append(w[:, None] * st.x_global)
    if st.sigma_free:
        cols.append(-d_es[:, None])
    return np.hstack(cols) if cols else np.zeros((len(w), 0))


def pieces(st: Structure, d_ee: np.ndarray, d_es: np.ndarray | None,
           d_ss: np.ndarray | None) -> Pieces:
    w = -d_ee
    rows = np.unique(st.row[st.row >= 0])
    Wg = _global_columns(st, w, d_es)
    n_g = Wg.shape[1]
    BG = np.column_stack([st.row_sum(Wg[:, g])[rows] for g in range(n_g)]) if n_g else \
        np.zeros((rows.size, 0))
    CG = np.column_stack([np.bincount(st.col, Wg[:, g], minlength=st.n_cols)[st.free_col]
                          for g in range(n_g)]) if n_g else np.zeros((st.n_phi, 0))
    GG = np.zeros((n_g, n_g))
    # the global block: coefficients of each global parameter per cell, times the weights
    x = []
    if st.has_local:
        x.append((st.stratum[:, None] == np.arange(st.n_strata)[None, :]) * st.x_local[:, None])
    if st.n_lin:
        x.append(st.x_global)
    n_e = sum(a.shape[1] for a in x)
    if n_e:
        X = np.hstack(x)
        GG[:n_e, :n_e] = X.T @ (w[:, None] * X)
    if st.sigma_free:
        if n_e:
            GG[:n_e, -1] = GG[-1, :n_e] = -d_es @ X
        GG[-1, -1] = -d_ss.sum()
    return Pieces(rows, st.row_sum(w)[rows], BG,
                  np.bincount(st.col, w, minlength=st.n_cols)[st.free_col], CG,
                  np.bincount(st.stratum, w, minlength=st.n_strata), GG)


def part_reduced(part: CellPart, stage: str, p: np.ndarray, order: int, token: int
                 ) -> tuple[float, np.ndarray | None, Pieces | None]:
    """Log-likelihood of the partition's cells and, at order 2, their gradient and the
    preconditioner's sums; the per-cell second derivatives stay here (``token`` names them)."""
    st = part.structures[stage]
    value, t = cell_terms(part, stage, p, order)
    if t is None:
        return value, None, None
    second = (t.d_ee, t.d_es, t.d_ss) if st.sigma_free else (t.d_ee, None, None)
    part.hessian = (token, stage, p, second)
    return value, st.gradient(t.d_e, t.d_s), pieces(st, *second)


def part_hessian_vector(part: CellPart, stage: str, p: np.ndarray, token: int, v: np.ndarray
                        ) -> np.ndarray:
    """``A v`` summed over the partition's cells, from the second derivatives stored by the
    evaluation ``token`` (``p`` None: the unit weights of ``part_unit_weights``); recomputed
    here if this copy of the partition does not hold them (rebuilt after a lost worker, or
    moved to another worker by Dask since)."""
    st = part.structures[stage]
    held = getattr(part, "hessian", None)
    if held is None or held[0] != token or held[1] != stage:
        if p is None:
            part_unit_weights(part, stage, token)
        else:
            part_reduced(part, stage, p, 2, token)
        held = part.hessian
    d_ee, d_es, d_ss = held[3]
    e_v, s_v = st.eps(v)
    if not st.sigma_free:
        return st.gradient(-d_ee * e_v, None)
    return st.gradient(-(d_ee * e_v + d_es * s_v), -(d_es * e_v + d_ss * s_v))


def part_unit_weights(part: CellPart, stage: str, token: int) -> Pieces:
    """Store unit weights as the partition's 'second derivatives' (least squares on X)."""
    st = part.structures[stage]
    n = len(st.row)
    ones = -np.ones(n)
    second = (ones, None, None)
    part.hessian = (token, stage, None, second)
    return pieces(st, *second)


# ---------------------------------------------------------------------- the preconditioner
@dataclass
class Preconditioner:
    """The block system with the row-column block in its per-stratum rank-one form (module
    docstring), eliminated once per Newton step. Flat parameter layout of the structure:
    theta | phi | per-stratum | linear | sigma; the last three are ``G``."""

    st: Structure
    D: np.ndarray
    C: np.ndarray
    BG: np.ndarray  # (rows, G)
    CG: np.ndarray  # (phi, G)
    N: np.ndarray  # (K,)
    GG: np.ndarray
    q: np.ndarray = field(init=False)
    modified: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        st = self.st
        self.kr = st.row_stratum
        self.kc = st.col_stratum[st.free_col]
        self.D = np.where(self.D > 1e-300, self.D, 1e-300)
        self.C = np.where(self.C > 1e-300, self.C, 1e-300)
        N = np.where(self.N > 1e-300, self.N, 1e-300)
        self.q = self.C / N[self.kc]  # B ~ D_i q_j within a stratum
        # Woodbury core of S_cc = diag(C) - V diag(N) V', V_jk = q_j [k(j) = k]
        core = 1.0 / N - np.bincount(self.kc, self.q * self.q / self.C,
                                     minlength=st.n_strata)
        self.core = np.where(core > 1e-300 / N, core, 1e-300)
        # S_cg = CG - V (U' D^-1 BG), U' D^-1 BG = per-stratum sums of BG's rows
        self.sum_bg = np.zeros((st.n_strata, self.BG.shape[1]))
        np.add.at(self.sum_bg, self.kr, self.BG)
        self.S_cg = self.CG - self.q[:, None] * self.sum_bg[self.kc]
        X = self._solve_cc(self.S_cg)
        T = self.GG - self.BG.T @ (self.BG / self.D[:, None]) - self.S_cg.T @ X
        self.T, self.modified = _make_pd(0.5 * (T + T.T))
        self.X = X

    def _solve_cc(self, r: np.ndarray) -> np.ndarray:
        """``S_cc^-1 r`` (r (phi,) or (phi, m)) by Woodbury."""
        two = r.ndim == 2
        r2 = r if two else r[:, None]
        y = r2 / self.C[:, None]
        s = np.zeros((self.st.n_strata, r2.shape[1]))
        np.add.at(s, self.kc, self.q[:, None] * y)
        out = y + (self.q / self.C)[:, None] * (s / self.core[:, None])[self.kc]
        return out if two else out[:, 0]

    def apply(self, g: np.ndarray) -> np.ndarray:
        """``P^-1 g`` in the flat layout."""
        st = self.st
        a, b = st.n_theta, st.n_theta + st.n_phi
        gt, gc, gG = g[:a], g[a:b], g[b:]
        # eliminate the rows: B' D^-1 gt = q_j * (per-stratum sum of gt)
        st_sum = np.bincount(self.kr, gt, minlength=st.n_strata)
        rc = gc - self.q * st_sum[self.kc]
        rG = gG - self.BG.T @ (gt / self.D)
        yc = self._solve_cc(rc)
        rG = rG - self.S_cg.T @ yc
        xG = np.linalg.solve(self.T, rG) if rG.size else rG
        xc = yc - self.X @ xG
        # back substitution: theta = D^-1 (gt - B xc - BG xG), (B xc)_i = D_i sum_k(q xc)
        qx = np.bincount(self.kc, self.q * xc, minlength=st.n_strata)
        xt = (gt - self.D * qx[self.kr] - self.BG @ xG) / self.D
        return np.concatenate([xt, xc, xG])


def sum_pieces(st: Structure, parts: list[Pieces]) -> Preconditioner:
    D = np.zeros(st.n_rows)
    BG = np.zeros((st.n_rows, parts[0].BG.shape[1]))
    for pc in parts:
        D[pc.rows] += pc.D
        BG[pc.rows] += pc.BG
    return Preconditioner(st, D, sum(pc.C for pc in parts), BG, sum(pc.CG for pc in parts),
                          sum(pc.N for pc in parts), sum(pc.GG for pc in parts))


def conjugate_gradients(matvec: Callable[[np.ndarray], np.ndarray],
                        precondition: Callable[[np.ndarray], np.ndarray], g: np.ndarray,
                        rtol: float = CG_RTOL, max_iter: int = CG_MAX_ITER
                        ) -> tuple[np.ndarray, int, bool]:
    """Preconditioned CG for ``A d = g`` from ``d = 0``, stopped at relative preconditioned
    residual ``rtol`` or at non-positive curvature (then the last iterate, or the
    preconditioned gradient at the first step: an ascent direction either way). Returns the
    solution, the iterations and whether it is solved (False: curvature, or out of
    iterations)."""
    d = np.zeros_like(g)
    r = g.copy()
    z = precondition(r)
    rz = float(r @ z)
    if rz <= 0.0:
        return z, 0, rz == 0.0
    p = z
    stop = rtol * rtol * rz
    for it in range(1, max_iter + 1):
        Ap = matvec(p)
        curv = float(p @ Ap)
        if curv <= 0.0 or not np.isfinite(curv):
            return (d if it > 1 else z), it, False
        alpha = rz / curv
        d = d + alpha * p
        r = r - alpha * Ap
        z = precondition(r)
        rz_new = float(r @ z)
        if rz_new <= stop:
            return d, it, True
        p = z + (rz_new / rz) * p
        rz = rz_new
    return d, max_iter, False


# ---------------------------------------------------------------------- the objective
class IterativeObjective(CellObjective):
    """The cell-wise objective whose Newton steps are solved by conjugate gradients with
    Hessian-vector products on the partitions (``_cellwise.CellObjective`` otherwise)."""

    def __init__(self, st: Structure, stage: str, parts: Any) -> None:
        super().__init__(st, stage, parts)
        self.token = 0
        self.cg_iterations: list[int] = []

    def _matvec(self, stage: str, p: np.ndarray | None, token: int):
        def mv(v: np.ndarray) -> np.ndarray:
            return np.sum(self.parts.map(part_hessian_vector, stage, p, token, v), axis=0)
        return mv

    def evaluation(self, p: np.ndarray, order: int) -> tuple[Any, ...]:
        self.token += 1
        return part_reduced, self.stage, p, order, self.token

    def reduce(self, parts: list[Pieces]) -> tuple[int, Preconditioner]:
        return self.token, sum_pieces(self.st, parts)

    def step(self, state: State) -> np.ndarray:
        token, pre = state.extra
        d, n, _ = conjugate_gradients(self._matvec(self.stage, state.params, token),
                                      pre.apply, state.grad)
        self.cg_iterations.append(n)
        return d

    def solve(self, state: State, rhs: np.ndarray) -> np.ndarray:
        """``A^-1 rhs`` at ``state``, column by column (rows of the covariance); NaN with a
        warning where ``A`` is not positive definite."""
        token, pre = state.extra
        mv = self._matvec(self.stage, state.params, token)
        out = []
        for j in range(rhs.shape[1]):
            x, _, ok = conjugate_gradients(mv, pre.apply, rhs[:, j], rtol=1e-10, max_iter=1000)
            if not ok:
                warnings.warn("the information matrix is not positive definite at the "
                              "estimate; standard errors are not available",
                              ConvergenceWarning, stacklevel=4)
                return np.full(rhs.shape, np.nan)
            out.append(x)
        return np.column_stack(out)

    def least_squares(self, shift: float | None = None) -> np.ndarray:
        """Least squares of ``log(y + 1/2) - offset`` (or of the constant ``shift``) on X, by
        CG with unit weights (``_cellwise.CellObjective.least_squares``); called on the GLM
        stage's objective."""
        self.token += 1
        pre = sum_pieces(self.st, self.parts.map(part_unit_weights, self.stage, self.token))
        if pre.modified:
            raise SpecError("the fixed-effects design is rank deficient (X'X is singular); "
                            "drop aliased columns")
        rhs = np.sum(self.parts.map(part_least_squares_rhs, shift), axis=0)
        x, _, ok = conjugate_gradients(self._matvec(self.stage, None, self.token), pre.apply,
                                       rhs, rtol=1e-12, max_iter=1000)
        if not ok:
            raise SpecError("the fixed-effects design is rank deficient (X'X is singular); "
                            "drop aliased columns")
        return x

