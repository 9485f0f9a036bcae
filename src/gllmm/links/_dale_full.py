"""Dale's global odds-ratio model with the marginal distributions estimated jointly (full ML).

Each block is one I x J table, multinomial given its total. Its linear predictor holds

- ``I - 1`` marginal cumulative logits of the rows, ``x_i = logit P(X <= i)``,
- ``J - 1`` marginal cumulative logits of the columns, ``y_j = logit P(Y <= j)``,
- ``(I - 1)(J - 1)`` log global odds ratios ``lp_ij = log psi_ij`` (row-major in (i, j)),

so ``n_eta = I J - 1``, as many as the table has free probabilities. With ``a_i = expit(x_i)``
and ``b_j = expit(y_j)`` the joint cdf ``F_ij = P(X <= i, Y <= j)`` is Plackett's formula
(paper eq. 3.1; Dale 1986) and the cell probabilities are its second differences,
``pi = D G + c``, where ``G`` stacks ``(a, b, F)`` and is linear in nothing but itself.

Derivatives. ``F = F(lp, a, b)`` solves
``Phi = log F + log(1 - a - b + F) - log(a - F) - log(b - F) - lp = 0``. With the total
derivative directions ``t_i = e_i + F_i e_F`` (i over (lp, a, b)), the implicit function
theorem gives

    F_i   = -Phi_i / Phi_F
    F_ij  = -Phi''(t_i, t_j) / Phi_F
    F_ijk = -[Phi'''(t_i, t_j, t_k) + Phi''(e_F, t_k) F_ij + Phi''(e_F, t_j) F_ik
              + Phi''(e_F, t_i) F_jk] / Phi_F,

and ``Phi`` is a signed sum of logs of affine functions, so ``Phi''`` and ``Phi'''`` are sums of
rank-one terms. The logistic maps ``a(x), b(y)`` are composed by the chain rule for an
elementwise inner map, and ``l = sum_k y_k log pi_k`` by the usual rule for ``log`` (see
``_separable``), here with the full (non-diagonal) derivatives of ``pi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._families import Derivs, Family, multinomial_constant
from ._separable import logistic_jets, multinomial_chain, plackett, second_differences

# r_0 = F, r_1 = 1 - a - b + F, r_2 = a - F, r_3 = b - F in the variables w = (F, lp, a, b)
_COEF = np.array([[1.0, 0.0, 0.0, 0.0],
                  [1.0, 0.0, -1.0, -1.0],
                  [-1.0, 0.0, 1.0, 0.0],
                  [-1.0, 0.0, 0.0, 1.0]])
_SIGN = np.array([1.0, 1.0, -1.0, -1.0])


def plackett_partials(
    log_psi: np.ndarray, a: np.ndarray, b: np.ndarray, order: int = 3
) -> tuple[np.ndarray, ...]:
    """Plackett's ``F(lp, a, b)`` and its partial derivatives in ``(lp, a, b)`` up to ``order``.

    Returns ``F`` (...), ``F1`` (..., 3), ``F2`` (..., 3, 3), ``F3`` (..., 3, 3, 3); derivatives
    above ``order`` are None.
    """
    f = plackett(log_psi, a, b)
    r = np.stack([f, 1.0 - a - b + f, a - f, b - f], axis=-1)  # (..., 4)
    r = np.where(np.abs(r) < 1e-300, 1e-300, r)
    inv = _SIGN / r
    phi_w = inv @ _COEF  # (..., 4): sum_r s_r c_r / r_r
    phi_w[..., 1] -= 1.0
    phi_f = phi_w[..., 0]
    f1 = -phi_w[..., 1:] / phi_f[..., None]  # (..., 3)
    if order < 2:
        return f, f1, None, None
    # alpha[r, i] = c_r . t_i with t_i = e_i + F_i e_F
    alpha = _COEF[:, 1:] + _COEF[:, :1] * f1[..., None, :]  # (..., 4, 3)
    w2 = _SIGN / r**2  # Phi'' = -sum_r w2_r c_r c_r'
    f2 = np.einsum("...r,...ri,...rj->...ij", w2, alpha, alpha) / phi_f[..., None, None]
    if order < 3:
        return f, f1, f2, None
    w3 = 2.0 * _SIGN / r**3  # Phi''' = sum_r w3_r c_r c_r c_r
    beta = -np.einsum("...r,r,...ri->...i", w2, _COEF[:, 0], alpha)  # Phi''(e_F, t_i)
    cube = np.einsum("...r,...ri,...rj,...rk->...ijk", w3, alpha, alpha, alpha)
    sym = (beta[..., None, None, :] * f2[..., :, :, None]
           + beta[..., None, :, None] * f2[..., :, None, :]
           + beta[..., :, None, None] * f2[..., None, :, :])
    f3 = -(cube + sym) / phi_f[..., None, None, None]
    return f, f1, f2, f3


def _compose_logistic(
    f1: np.ndarray, f2: np.ndarray | None, f3: np.ndarray | None,
    s1: np.ndarray, s2: np.ndarray, s3: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Derivatives of ``F(s(t))`` for an elementwise inner map with jets ``s1, s2, s3`` (..., 3).

    ``Ft_ijk = F_ijk s'_i s'_j s'_k + F_ij (d_ik s''_i s'_j + d_jk s'_i s''_j)
    + d_ij F_ik s''_i s'_k + d_ijk F_i s'''_i``.
    """
    eye = np.eye(3)
    g1 = f1 * s1
    if f2 is None:
        return g1, None, None
    g2 = f2 * s1[..., :, None] * s1[..., None, :] + eye * (f1 * s2)[..., None, :]
    if f3 is None:
        return g1, g2, None
    d_ik = eye[:, None, :]
    d_jk = eye[None, :, :]
    d_ij = eye[:, :, None]
    g3 = (f3 * s1[..., :, None, None] * s1[..., None, :, None] * s1[..., None, None, :]
          + f2[..., :, :, None] * d_ik * (s2[..., :, None, None] * s1[..., None, :, None])
          + f2[..., :, :, None] * d_jk * (s1[..., :, None, None] * s2[..., None, :, None])
          + f2[..., :, None, :] * d_ij * (s2[..., :, None, None] * s1[..., None, None, :])
          + (d_ij * d_jk) * (f1 * s3)[..., :, None, None])
    return g1, g2, g3


@dataclass
class DaleFull(Family):
    """Dale's model with marginal cumulative logits and log global odds ratios in eta.

    Parameters
    ----------
    y : ndarray (B, I J)
        Counts per block, each an I x J table flattened row-major.
    shape : (I, J)
    coefficient : bool
        Add the multinomial coefficients to ``constant`` (False: the log-likelihood of the
        individual responses).
    """

    y: np.ndarray
    shape: tuple[int, int]
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "dale-full"
    coefficient: bool = True

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        ni, nj = self.shape
        if ni < 2 or nj < 2:
            raise ValueError("Dale's model needs at least 2 rows and 2 columns")
        if self.y.ndim != 2 or self.y.shape[1] != ni * nj:
            raise ValueError(f"y must have shape (B, {ni * nj}) for {ni} x {nj} tables")
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)
        self.n_eta = ni * nj - 1
        self._build_grid()

    def _build_grid(self) -> None:
        ni, nj = self.shape
        nr, nc = ni - 1, nj - 1
        m = self.n_eta  # G = (a_1..a_{I-1}, b_1..b_{J-1}, F_11..F_{I-1,J-1})
        def grid(i: int, j: int) -> tuple[int | None, float]:
            if i < 0 or j < 0:
                return None, 0.0
            if i == ni - 1 and j == nj - 1:
                return None, 1.0
            if i == ni - 1:
                return nr + j, 0.0
            if j == nj - 1:
                return i, 0.0
            return nr + nc + i * nc + j, 0.0

        D, consts = second_differences(ni, nj, grid, m)
        c = np.asarray(consts, dtype=float)
        self.D, self.c = D, c
        ii, jj = np.meshgrid(np.arange(nr), np.arange(nc), indexing="ij")
        # eta indices (lp, x, y) of each inner F
        self._triples = np.stack(
            [nr + nc + ii.ravel() * nc + jj.ravel(), ii.ravel(), nr + jj.ravel()], axis=1
        )

    # ------------------------------------------------------------------ grid values
    def _grid_jets(self, eta: np.ndarray, order: int) -> tuple[np.ndarray | None, ...]:
        """G and its derivatives in eta, shapes (..., M), (..., M, J), ..., (..., M, J, J, J)."""
        ni, nj = self.shape
        nr, nc = ni - 1, nj - 1
        m = self.n_eta
        lead = eta.shape[:-1]
        p, s1, s2, s3 = logistic_jets(eta[..., : nr + nc])
        tri = self._triples
        lp = eta[..., tri[:, 0]]
        a = p[..., tri[:, 1]]
        b = p[..., tri[:, 2]]
        f, f1, f2, f3 = plackett_partials(lp, a, b, min(order, 3))
        G = np.concatenate([p, f], axis=-1)
        if order == 0:
            return G, None, None, None
        ones = np.ones(lp.shape)
        zeros = np.zeros(lp.shape)
        j1 = np.stack([ones, s1[..., tri[:, 1]], s1[..., tri[:, 2]]], axis=-1)
        j2 = np.stack([zeros, s2[..., tri[:, 1]], s2[..., tri[:, 2]]], axis=-1)
        j3 = np.stack([zeros, s3[..., tri[:, 1]], s3[..., tri[:, 2]]], axis=-1)
        t1, t2, t3 = _compose_logistic(f1, f2, f3, j1, j2, j3)
        nf = tri.shape[0]
        diag = np.arange(nr + nc)
        rows = nr + nc + np.arange(nf)
        G1 = np.zeros(lead + (m, m))
        G1[..., diag, diag] = s1
        for u in range(3):
            G1[..., rows, tri[:, u]] = t1[..., u]
        if order == 1:
            return G, G1, None, None
        G2 = np.zeros(lead + (m, m, m))
        G2[..., diag, diag, diag] = s2
        for u in range(3):
            for v in range(3):
                G2[..., rows, tri[:, u], tri[:, v]] += t2[..., u, v]
        if order == 2:
            return G, G1, G2, None
        G3 = np.zeros(lead + (m, m, m, m))
        G3[..., diag, diag, diag, diag] = s3
        for u in range(3):
            for v in range(3):
                for w in range(3):
                    G3[..., rows, tri[:, u], tri[:, v], tri[:, w]] += t3[..., u, v, w]
        return G, G1, G2, G3

    def probabilities(self, eta: np.ndarray) -> np.ndarray:
        """Cell probabilities (..., I J) at eta (..., I J - 1)."""
        G = self._grid_jets(eta, 0)[0]
        return G @ self.D.T + self.c

    # ------------------------------------------------------------------ Family interface
    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        jets = self._grid_jets(eta, order)

        def pi_jet(r: int) -> np.ndarray:  # pi = D G + c: pi_k,a.. = D_km G_m,a..
            return np.einsum("km,znm...->znk...", self.D, jets[r])

        pi = jets[0] @ self.D.T + self.c
        return multinomial_chain(self.y[:, None, :], pi, order, pi_jet)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        n = self.y.sum(axis=1, keepdims=True)
        return n * self.probabilities(eta)

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def subset(self, blocks: np.ndarray) -> DaleFull:
        return DaleFull(self.y[blocks], self.shape, self.cells[blocks], self.name,
                        self.coefficient)


def dale_full_family(
    tables: np.ndarray, cells: np.ndarray | None = None, coefficient: bool = True
) -> DaleFull:
    """Dale's global odds-ratio family for I x J tables with marginals estimated by ML.

    Parameters
    ----------
    tables : ndarray (B, I, J)
    cells : ndarray (B, I J) of int, optional
        Input rows of the cells (for fitted tables).
    coefficient : bool
        False drops the multinomial coefficients (individual-response log-likelihood).

    Notes
    -----
    eta per block: ``(x_1..x_{I-1}, y_1..y_{J-1}, lp_11, lp_12, ..., lp_{I-1,J-1})`` (marginal
    cumulative logits of rows and columns, then the log global odds ratios row-major);
    paper Section 3.1, eq. (3.1); Dale (1986).
    """
    tables = np.asarray(tables, dtype=float)
    if tables.ndim != 3:
        raise ValueError("tables must have shape (B, I, J)")
    nb, ni, nj = tables.shape
    return DaleFull(tables.reshape(nb, ni * nj), (ni, nj), cells, coefficient=coefficient)
