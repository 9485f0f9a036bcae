"""Structured Newton steps for cell-wise models: diagonal row block, per-stratum column blocks.

The linear predictor of cell n (row level a(n), column level b(n), stratum k(n)) is

    eps_n = theta_a(n) + phi_b(n) + x_n * l_k(n) + X_n' g_lin,    plus sigma v_n,

with one reference column per stratum (``phi = 0`` there), an optional per-stratum parameter
``l_k`` (a heterogeneous association ``beta_k``, or the auxiliary ``a_k`` of the random
association model) and global parameters ``g = (g_lin, sigma)``. Every second derivative of
the log-likelihood is a per-cell second derivative of ``F(eps, sigma)`` times these
coefficients, so the negative Hessian ``A`` has the pattern

    A = [[D_theta (diagonal),  B_theta,l (per stratum, I_k x M_k),  B_theta,G],
         [.,                   A_ll (per stratum, M_k x M_k),       A_l,G    ],
         [.,                   .,                                   A_GG     ]].

``A x = g`` is solved by eliminating theta (diagonal), then each stratum's dense block
(Schur complements S_k, at most (J_k - 1 + 1)^2, e.g. 8 MB for a 1000 x 1000 table), then the
small global system T. Nothing of size (cells x cells) or (levels x cells) is formed. Strata
are padded to common sizes (identity on the padding) so every step is a batched BLAS call.

If T is not positive definite (the likelihood is not concave in sigma far from the optimum) its
eigenvalues are replaced by their absolute values: the eliminated blocks are concave for fixed
sigma, so the modified step is still an ascent direction (modified Newton in sigma).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import FitError
from ..integrate._newton import NewtonResult, State, newton


@dataclass
class Structure:
    """Index maps of a cell-wise design (one entry per retained cell / level).

    Attributes
    ----------
    stratum, row, col : ndarray (n,) of int
        Stratum, global row level and global column level of each cell (row -1: the cell has
        no row parameter, as the reference row of a treatment-coded design with an intercept).
    row_stratum, row_slot : ndarray (R,)
        Stratum and slot (0..I_k-1) of each global row level.
    col_stratum, col_slot : ndarray (C,)
        Stratum and slot of each global column level; slot -1 marks the reference column.
    x_local : ndarray (n,) or None
        Coefficient of the per-stratum parameter in eps (None: no per-stratum parameter).
    x_global : ndarray (n, G_lin)
        Coefficients of the global linear parameters.
    sigma_free : bool
        Whether sigma is a free parameter (False: fixed, e.g. at 0 for the Poisson GLM).
    """

    stratum: np.ndarray
    row: np.ndarray
    col: np.ndarray
    row_stratum: np.ndarray
    row_slot: np.ndarray
    col_stratum: np.ndarray
    col_slot: np.ndarray
    n_strata: int
    x_local: np.ndarray | None
    x_global: np.ndarray
    sigma_free: bool = True

    def __post_init__(self) -> None:
        self.n_rows = len(self.row_stratum)
        self.n_cols = len(self.col_stratum)
        self.free_col = np.flatnonzero(self.col_slot >= 0)
        self.col_param = np.full(self.n_cols, -1)
        self.col_param[self.free_col] = np.arange(len(self.free_col))
        self.i_max = int(np.bincount(self.row_stratum, minlength=self.n_strata).max())
        j_free = np.bincount(self.col_stratum[self.free_col], minlength=self.n_strata)
        self.j_max = int(j_free.max()) if j_free.size else 0
        self.has_local = self.x_local is not None
        self.m_max = self.j_max + int(self.has_local)
        self.n_lin = self.x_global.shape[1]
        self.n_global = self.n_lin + int(self.sigma_free)
        # flat layout: theta | phi (free columns) | local | g_lin | sigma
        self.n_theta = self.n_rows
        self.n_phi = len(self.free_col)
        self.n_local = self.n_strata if self.has_local else 0
        self.n_params = self.n_theta + self.n_phi + self.n_local + self.n_global
        self.cell_slot = self.col_slot[self.col]  # -1 on reference columns
        # row -1 -> an extra level n_rows whose sums are dropped and whose theta is 0
        self._row = np.where(self.row >= 0, self.row, self.n_rows)
        free = (self.cell_slot >= 0) & (self.row >= 0)
        self._bl_index = (
            (self.stratum[free] * self.i_max + self.row_slot[self.row[free]]) * self.m_max
            + self.cell_slot[free]
        )
        self._free_cells = np.flatnonzero(free)

    # ------------------------------------------------------------------ flat <-> pieces
    def split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        a = self.n_theta
        b = a + self.n_phi
        c = b + self.n_local
        d = c + self.n_lin
        sigma = float(p[d]) if self.sigma_free else 0.0
        return p[:a], p[a:b], p[b:c], p[c:d], sigma

    def eps(self, p: np.ndarray, sigma_fixed: float = 0.0) -> tuple[np.ndarray, float]:
        """Fixed linear predictor of every cell and sigma."""
        theta, phi, loc, lin, sigma = self.split(p)
        phi_full = np.zeros(self.n_cols)
        phi_full[self.free_col] = phi
        e = np.append(theta, 0.0)[self._row] + phi_full[self.col]
        if self.has_local:
            e = e + self.x_local * loc[self.stratum]
        if self.n_lin:
            e = e + self.x_global @ lin
        return e, (sigma if self.sigma_free else sigma_fixed)

    def row_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of per-cell values over each row level's cells."""
        return np.bincount(self._row, v, minlength=self.n_rows + 1)[: self.n_rows]

    # ------------------------------------------------------------------ gradient and blocks
    def gradient(self, d_e: np.ndarray, d_s: np.ndarray | None) -> np.ndarray:
        """Flat gradient from per-cell first derivatives dF/deps and dF/dsigma."""
        g_theta = self.row_sum(d_e)
        g_phi = np.bincount(self.col, d_e, minlength=self.n_cols)[self.free_col]
        parts = [g_theta, g_phi]
        if self.has_local:
            parts.append(np.bincount(self.stratum, d_e * self.x_local, minlength=self.n_strata))
        parts.append(d_e @ self.x_global)
        if self.sigma_free:
            parts.append(np.array([d_s.sum()]))
        return np.concatenate(parts)

    def blocks(
        self, d_ee: np.ndarray, d_es: np.ndarray | None, d_ss: np.ndarray | None
    ) -> Blocks:
        """Negative Hessian in the padded block layout from per-cell second derivatives."""
        K, I, M, G = self.n_strata, self.i_max, self.m_max, self.n_global
        w = -d_ee
        D = np.ones((K, I))
        D[self.row_stratum, self.row_slot] = self.row_sum(w)
        Bl = np.zeros(K * I * M)
        Bl[self._bl_index] = w[self._free_cells]
        Bl = Bl.reshape(K, I, M)
        All = np.zeros((K, M, M))
        fc, ks, ss = self.free_col, self.col_stratum[self.free_col], self.col_slot[self.free_col]
        All[ks, ss, ss] = np.bincount(self.col, w, minlength=self.n_cols)[fc]
        pad = np.ones((K, M), dtype=bool)
        pad[ks, ss] = False
        if self.has_local:
            xl = self.x_local
            loc = M - 1
            pad[:, loc] = False
            Bl[self.row_stratum, self.row_slot, loc] = self.row_sum(w * xl)
            col_l = np.bincount(self.col, w * xl, minlength=self.n_cols)[fc]
            All[ks, ss, loc] = col_l
            All[ks, loc, ss] = col_l
            All[:, loc, loc] = np.bincount(self.stratum, w * xl * xl, minlength=K)
        kk = np.flatnonzero(pad.ravel())
        All.reshape(K * M, M)[kk, kk % M] = 1.0  # identity on padded slots
        # global columns: linear parameters then sigma
        cols_w = [w[:, None] * self.x_global] if self.n_lin else []
        if self.sigma_free:
            cols_w.append(-d_es[:, None])
        BG = np.zeros((K, I, G))
        AlG = np.zeros((K, M, G))
        AGG = np.zeros((G, G))
        if G:
            Wg = np.hstack(cols_w)  # (n, G): -d2F/(deps dg)
            for g in range(G):
                BG[self.row_stratum, self.row_slot, g] = self.row_sum(Wg[:, g])
                AlG[ks, ss, g] = np.bincount(self.col, Wg[:, g], minlength=self.n_cols)[fc]
                if self.has_local:
                    AlG[:, M - 1, g] = np.bincount(
                        self.stratum, Wg[:, g] * self.x_local, minlength=K
                    )
            if self.n_lin:
                AGG[: self.n_lin, : self.n_lin] = self.x_global.T @ (w[:, None] * self.x_global)
                if self.sigma_free:
                    AGG[: self.n_lin, -1] = AGG[-1, : self.n_lin] = Wg[:, -1] @ self.x_global
            if self.sigma_free:
                AGG[-1, -1] = -d_ss.sum()
        return Blocks(D, Bl, All, BG, AlG, AGG)

    # ------------------------------------------------------------------ padded <-> flat
    def to_padded(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta, phi, loc, lin, _ = self.split(g)
        gt = np.zeros((self.n_strata, self.i_max))
        gt[self.row_stratum, self.row_slot] = theta
        gl = np.zeros((self.n_strata, self.m_max))
        fc = self.free_col
        gl[self.col_stratum[fc], self.col_slot[fc]] = phi
        if self.has_local:
            gl[:, -1] = loc
        gG = np.concatenate([lin, g[-1:] if self.sigma_free else []])
        return gt, gl, gG

    def from_padded(self, xt: np.ndarray, xl: np.ndarray, xG: np.ndarray) -> np.ndarray:
        fc = self.free_col
        parts = [xt[self.row_stratum, self.row_slot], xl[self.col_stratum[fc], self.col_slot[fc]]]
        if self.has_local:
            parts.append(xl[:, -1])
        parts.append(xG)
        return np.concatenate(parts)


@dataclass
class Blocks:
    """Negative Hessian in padded blocks (see module docstring)."""

    D: np.ndarray  # (K, I)
    Bl: np.ndarray  # (K, I, M)
    All: np.ndarray  # (K, M, M)
    BG: np.ndarray  # (K, I, G)
    AlG: np.ndarray  # (K, M, G)
    AGG: np.ndarray  # (G, G)


@dataclass
class Factor:
    """The eliminated form of ``A``, reusable for several right-hand sides."""

    blocks: Blocks
    W: np.ndarray  # Bl / D
    S: np.ndarray  # per-stratum Schur complements
    X: np.ndarray  # S^-1 SG
    SG: np.ndarray
    T: np.ndarray  # global Schur complement (modified if not positive definite)
    modified: bool  # some block was not positive definite (modified Newton step)
    chol: np.ndarray | None = None  # lower Cholesky factor of S (one stratum only)

    def solve_s(self, B: np.ndarray) -> np.ndarray:
        """``S_k^-1 B_k`` for every stratum; B is (K, M, r)."""
        if self.chol is not None:
            return scipy.linalg.cho_solve((self.chol, True), B[0])[None]
        return np.linalg.solve(self.S, B)


def _make_pd(M: np.ndarray) -> tuple[np.ndarray, bool]:
    """M if it is positive definite, else M with its eigenvalues replaced by their absolute
    values (floored at 1e-8 of the largest): a well-scaled ascent metric (modified Newton)."""
    if M.shape[0] == 0:
        return M, False
    try:
        np.linalg.cholesky(M)
        return M, False
    except np.linalg.LinAlgError:
        lam, V = np.linalg.eigh(M)
        mag = np.abs(lam)
        mag = np.maximum(mag, 1e-8 * max(float(mag.max()), 1e-300))
        return (V * mag) @ V.T, True


def factor(blocks: Blocks) -> Factor:
    """Eliminate the row block, then each stratum's block; shift T if not positive definite."""
    D = np.where(blocks.D > 1e-300, blocks.D, 1e-300)
    W = blocks.Bl / D[..., None]
    Wt = np.swapaxes(W, 1, 2)
    S = blocks.All - Wt @ blocks.Bl
    SG = blocks.AlG - Wt @ blocks.BG
    modified = False
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        for k in range(S.shape[0]):
            S[k], mod_k = _make_pd(S[k])
            modified = modified or mod_k
        L = np.linalg.cholesky(S)
    f = Factor(blocks, W, S, SG, SG, SG, modified, L[0] if S.shape[0] == 1 else None)
    X = f.solve_s(SG) if SG.shape[2] else np.zeros_like(SG)
    T = blocks.AGG - np.einsum("kig,kih->gh", blocks.BG / D[..., None], blocks.BG)
    T = T - np.einsum("kmg,kmh->gh", SG, X)
    T = 0.5 * (T + T.T)
    T, mod_t = _make_pd(T)
    f.X, f.T, f.modified = X, T, modified or mod_t
    return f


def solve(f: Factor, gt: np.ndarray, gl: np.ndarray, gG: np.ndarray) -> tuple[np.ndarray, ...]:
    """Solve ``A x = g`` with the eliminated form (padded pieces in, padded pieces out)."""
    b = f.blocks
    D = np.where(b.D > 1e-300, b.D, 1e-300)
    rl = gl - np.einsum("kim,ki->km", f.W, gt)
    rG = gG - np.einsum("kig,ki->g", b.BG, gt / D)
    yl = f.solve_s(rl[..., None])[..., 0]
    rG = rG - np.einsum("kmg,km->g", f.SG, yl)
    xG = np.linalg.solve(f.T, rG) if rG.size else rG
    xl = yl - np.einsum("kmg,g->km", f.X, xG)
    xt = (gt - np.einsum("kim,km->ki", b.Bl, xl) - np.einsum("kig,g->ki", b.BG, xG)) / D
    return xt, xl, xG


def dense_information(st: Structure, b: Blocks) -> np.ndarray:
    """The negative Hessian ``A`` as a dense matrix in the flat parameter layout (for the
    covariance of all estimates: (levels + globals)^2, 32 MB for a 1000 x 1000 table)."""
    K, I, M, G = st.n_strata, st.i_max, st.m_max, st.n_global
    P = np.zeros((K * I + K * M + G,) * 2)
    t, lo = slice(0, K * I), slice(K * I, K * I + K * M)
    g = slice(K * I + K * M, None)
    P[t, t] = np.diag(b.D.ravel())
    P[t, lo] = scipy.linalg.block_diag(*b.Bl)
    P[lo, lo] = scipy.linalg.block_diag(*b.All)
    P[t, g] = b.BG.reshape(K * I, G)
    P[lo, g] = b.AlG.reshape(K * M, G)
    P[g, g] = b.AGG
    P = np.triu(P) + np.triu(P, 1).T
    fc = st.free_col
    idx = [st.row_stratum * I + st.row_slot, K * I + st.col_stratum[fc] * M + st.col_slot[fc]]
    if st.has_local:
        idx.append(K * I + np.arange(K) * M + M - 1)
    idx.append(K * I + K * M + np.arange(G))
    flat = np.concatenate(idx)
    return P[np.ix_(flat, flat)]


# ---------------------------------------------------------------------- the Newton driver
def maximise(
    evaluate: Callable[[np.ndarray, int], State],
    step: Callable[[State], np.ndarray],
    p0: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    progress: Callable[[dict], None] | None = None,
    stage: str = "",
    max_scale_step: float = 1.0,
    scale_index: tuple[int, ...] = (),
) -> NewtonResult:
    """The package's Newton iteration (:func:`gllmm.integrate._newton.newton`, Armijo step
    halving, stop when the decrement ``g'd`` is below ``tol``) with the structured direction
    ``step(state)``, shortened so that no parameter listed in ``scale_index`` (standard
    deviations) moves by more than ``max_scale_step``."""
    idx = list(scale_index)

    def direction(state: State) -> np.ndarray:
        d = step(state)
        if idx:
            big = float(np.max(np.abs(d[idx])))
            if big > max_scale_step:
                d = d * (max_scale_step / big)
        return d

    report = None if progress is None else (lambda info: progress({"stage": stage, **info}))
    res = newton(evaluate, direction, p0, tol=tol, max_iter=max_iter, progress=report)
    if res.n_iter == 0 and not np.isfinite(res.state.value):
        raise FitError(f"{stage}: the log-likelihood is not finite at the starting values")
    return res


def progress_logger(t0: float, progress: Callable[[dict], None] | None
                    ) -> tuple[list[dict], Callable[[dict], None]]:
    """A fitting history and the callback that appends to it (and forwards to ``progress``)."""
    history: list[dict] = []

    def log(info: dict) -> None:
        rec = {k: v for k, v in info.items() if k != "params"}
        rec["elapsed"] = time.perf_counter() - t0
        history.append(rec)
        if progress is not None:
            progress(dict(info, elapsed=rec["elapsed"]))

    return history, log
