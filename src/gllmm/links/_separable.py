"""Multinomial families whose cell probabilities are affine in elementwise functions of eta.

``pi = D f(eta) + c`` with ``f`` acting elementwise: cumulative logits (``f`` the logistic cdf,
``D`` differencing) and Dale's global odds ratios with plug-in marginals (``f`` Plackett's
formula, paper eq. 3.1). Then ``l = sum_k y_k log pi_k`` and its derivatives follow from
``f', f'', f'''`` by the chain rule for ``log``:

    l_a   = sum_k y_k pi_ka / pi_k
    l_ab  = sum_k y_k [pi_kab / pi_k - pi_ka pi_kb / pi_k^2]
    l_abc = sum_k y_k [pi_kabc / pi_k - (pi_kab pi_kc + pi_kac pi_kb + pi_kbc pi_ka) / pi_k^2
                       + 2 pi_ka pi_kb pi_kc / pi_k^3]

where only diagonal second and third derivatives of ``f`` are non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._elementwise import logistic_jets
from ._families import (
    CUMULATIVE_LOGIT,
    CompiledFamily,
    Derivs,
    Family,
    compiled_family,
    multinomial_constant,
)

#: the compiled kernels know these jets (``links._jets.cumulative_logit_block``)
logistic_jets.kernel_code = CUMULATIVE_LOGIT  # type: ignore[attr-defined]


def plackett(log_psi: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plackett's joint cdf ``F = P(X <= i, Y <= j)`` from the global odds ratio and margins.

    ``psi = F (1 - a - b + F) / ((a - F)(b - F))`` solved for F (Dale 1986; paper eq. 3.1):
    ``F = [S - sqrt(S^2 - 4 psi (psi - 1) a b)] / (2 (psi - 1))``, ``S = 1 + (a + b)(psi - 1)``,
    and ``F = a b`` when ``psi = 1``.
    """
    psi = np.exp(log_psi)
    dm = psi - 1.0
    s = 1.0 + (a + b) * dm
    small = np.abs(dm) < 1e-8
    safe = np.where(small, 1.0, dm)
    disc = np.maximum(s * s - 4.0 * psi * dm * a * b, 0.0)
    # rationalised root: avoids cancellation when psi is near 1 or very large
    f = 2.0 * psi * a * b / (s + np.sqrt(disc))
    f_lin = a * b + a * b * (1 - a) * (1 - b) * log_psi
    return np.where(small, f_lin, np.where(np.isfinite(f), f, (s - np.sqrt(disc)) / (2 * safe)))


def plackett_jets(log_psi: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Plackett's F and its derivatives in ``log psi`` up to order 3.

    By the inverse function rule on ``eta = G(F) = log F + log(1-a-b+F) - log(a-F) - log(b-F)``:
    ``F' = 1/G'``, ``F'' = -G'' F'^3``, ``F''' = -G''' F'^4 - 3 G'' F'^2 F''``.
    """
    f = plackett(log_psi, a, b)
    r = (f, 1.0 - a - b + f, a - f, b - f)
    g1 = 1 / r[0] + 1 / r[1] + 1 / r[2] + 1 / r[3]
    g2 = -1 / r[0] ** 2 - 1 / r[1] ** 2 + 1 / r[2] ** 2 + 1 / r[3] ** 2
    g3 = 2 / r[0] ** 3 + 2 / r[1] ** 3 + 2 / r[2] ** 3 + 2 / r[3] ** 3
    f1 = 1.0 / g1
    f2 = -g2 * f1**3
    f3 = -g3 * f1**4 - 3.0 * g2 * f1**2 * f2
    return f, f1, f2, f3


def multinomial_chain(y: np.ndarray, pi: np.ndarray, order: int,
                      pi_jet: Callable[[int], np.ndarray]) -> Derivs:
    """``l = sum_k y_k log pi_k(eta)`` and its derivatives in eta to ``order`` (0-3) by the
    chain rule of the module docstring: ``y`` (B, 1, K), ``pi`` (B, N, K) and ``pi_jet(r)``
    the r-th derivatives of pi (B, N, K, m, ..., m), asked for only up to ``order``. l is
    -inf where a cell with ``y_k > 0`` has ``pi_k <= 0``."""
    bad = pi <= 0
    pos = np.where(bad, 1.0, pi)
    l = np.where(y > 0, y * np.log(pos), 0.0).sum(-1)
    l = np.where((bad & (y > 0)).any(-1), -np.inf, l)
    if order == 0:
        return l, None, None, None
    w = y / pos
    p1 = pi_jet(1)
    g = np.einsum("znk,znka->zna", w, p1)
    if order == 1:
        return l, g, None, None
    w2 = y / pos**2
    p2 = pi_jet(2)
    H = np.einsum("znk,znkab->znab", w, p2) - np.einsum("znk,znka,znkb->znab", w2, p1, p1)
    if order < 3:
        return l, g, H, None
    w3 = 2.0 * y / pos**3
    cross = np.einsum("znk,znkab,znkc->znabc", w2, p2, p1)
    T = (np.einsum("znk,znkabc->znabc", w, pi_jet(3))
         - cross - np.swapaxes(cross, -1, -2) - np.moveaxis(cross, -1, -3)
         + np.einsum("znk,znka,znkb,znkc->znabc", w3, p1, p1, p1))
    return l, g, H, T


@dataclass
class AffineSeparable(Family):
    """Multinomial blocks with ``pi = D f(eta) + c`` (see module docstring).

    Parameters
    ----------
    y : ndarray (B, K)
    D : ndarray (K, J)
    c : ndarray (B, K)
    jets : callable
        ``jets(eta)`` -> (f, f', f'', f''') for eta of shape (B, N, J).
    """

    y: np.ndarray
    D: np.ndarray
    c: np.ndarray
    jets: object
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "affine-separable"
    coefficient: bool = True

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        self.n_eta = self.D.shape[1]
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)

    def _probs(self, f: np.ndarray) -> np.ndarray:
        return np.einsum("kj,znj->znk", self.D, f) + self.c[:, None, :]

    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        f = self.jets(eta)  # type: ignore[operator]
        eye = np.eye(self.n_eta)

        def pi_jet(r: int) -> np.ndarray:
            # pi_k,a..a = D_ka f^(r)_a, zero off the diagonal: (B, N, K, J, ..., J)
            d = self.D[None, None] * f[r][..., None, :]
            if r == 1:
                return d
            if r == 2:
                return d[..., None] * eye
            return d[..., None, None] * (eye[:, :, None] * eye[None, :, :])

        return multinomial_chain(self.y[:, None, :], self._probs(f[0]), order, pi_jet)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        f0 = self.jets(eta[:, None, :])[0]  # type: ignore[operator]
        n = self.y.sum(axis=1, keepdims=True)
        return n * self._probs(f0)[:, 0, :]

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def compiled(self) -> CompiledFamily | None:
        """Known to the kernels when its jets declare a ``kernel_code`` (logistic: cumulative
        logits)."""
        code = getattr(self.jets, "kernel_code", None)
        return None if code is None else compiled_family(code, self.y, self.D, self.c)

    def subset(self, blocks: np.ndarray) -> AffineSeparable:
        jets = self.jets
        sub = getattr(jets, "subset", None)
        return AffineSeparable(
            self.y[blocks], self.D, self.c[blocks], sub(blocks) if sub else jets,
            self.cells[blocks], self.name, self.coefficient,
        )


def cumulative_logit_family(
    y: np.ndarray, cells: np.ndarray | None = None, coefficient: bool = True
) -> AffineSeparable:
    """Cumulative logits ``logit P(Y <= j) = eta_j``, j = 1..K-1, for blocks of K categories.

    ``coefficient=False`` drops the multinomial coefficients: the log-likelihood of the
    individual responses (as ``ordinal::clmm`` reports it).
    """
    y = np.asarray(y, dtype=float)
    k = y.shape[1]
    D = np.zeros((k, k - 1))
    for j in range(k - 1):
        D[j, j] = 1.0
        D[j + 1, j] = -1.0
    c = np.zeros((y.shape[0], k))
    c[:, -1] = 1.0
    return AffineSeparable(y, D, c, logistic_jets, cells, "cumulative-logit", coefficient)


@dataclass
class PlackettJets:
    """Plackett jets with per-block, per-predictor margins ``a`` and ``b`` of shape (B, J)."""

    a: np.ndarray
    b: np.ndarray

    def __call__(self, eta: np.ndarray) -> tuple[np.ndarray, ...]:
        return plackett_jets(eta, self.a[:, None, :], self.b[:, None, :])

    def subset(self, blocks: np.ndarray) -> PlackettJets:
        return PlackettJets(self.a[blocks], self.b[blocks])


def second_differences(ni: int, nj: int, grid_value, n_eta: int) -> tuple[np.ndarray, object]:
    """Cell probabilities as second differences of the joint cdf on an I x J grid.

    ``pi_ij = F_ij - F_{i-1,j} - F_{i,j-1} + F_{i-1,j-1}``; ``grid_value(i, j)`` gives
    ``(index into eta or None, constant part)`` of ``F_ij`` (zero on the leading edges).
    Returns ``D`` (I J, n_eta) and the summed constants (scalar or array per cell).
    """
    D = np.zeros((ni * nj, n_eta))
    consts: list = []
    for i in range(ni):
        for j in range(nj):
            total: object = 0.0
            for di, dj, sign in ((0, 0, 1), (-1, 0, -1), (0, -1, -1), (-1, -1, 1)):
                e, const = grid_value(i + di, j + dj)
                if e is not None:
                    D[i * nj + j, e] += sign
                total = total + sign * const
            consts.append(total)
    return D, consts


def dale_plugin_family(
    tables: np.ndarray, cells: np.ndarray | None = None
) -> AffineSeparable:
    """Dale's global odds-ratio model for I x J tables with sample marginals plugged in.

    Each block is one I x J table (flattened row-major, K = I J cells); eta holds the
    (I-1)(J-1) log global odds ratios, split after row i and column j. The joint cdf
    ``F_ij = P(X <= i, Y <= j)`` is Plackett's formula at the sample marginal cdfs; cell
    probabilities are its second differences (paper Section 3.1, eq. 3.1; Dale 1986).

    Parameters
    ----------
    tables : ndarray (B, I, J)
    """
    tables = np.asarray(tables, dtype=float)
    nb, ni, nj = tables.shape
    n = tables.sum(axis=(1, 2))
    if np.any(n <= 0):
        raise ValueError("every table needs a positive total for plug-in marginals")
    row_cdf = np.cumsum(tables.sum(axis=2), axis=1) / n[:, None]  # (B, I)
    col_cdf = np.cumsum(tables.sum(axis=1), axis=1) / n[:, None]  # (B, J)
    # F on the (I+1) x (J+1) grid with zeros on the leading edges; inner cells are f(eta)
    n_eta = (ni - 1) * (nj - 1)
    k = ni * nj
    a = np.repeat(row_cdf[:, :-1], nj - 1, axis=1)
    b = np.tile(col_cdf[:, :-1], (1, ni - 1))

    def grid_value(i: int, j: int) -> tuple[int | None, np.ndarray]:
        """F_ij as (eta index or None, constant part)."""
        if i < 0 or j < 0:
            return None, np.zeros(nb)
        if i == ni - 1 and j == nj - 1:
            return None, np.ones(nb)
        if i == ni - 1:
            return None, col_cdf[:, j]
        if j == nj - 1:
            return None, row_cdf[:, i]
        return i * (nj - 1) + j, np.zeros(nb)

    D, consts = second_differences(ni, nj, grid_value, n_eta)
    c = np.column_stack([np.broadcast_to(v, (nb,)) for v in consts])
    return AffineSeparable(tables.reshape(nb, k), D, c, PlackettJets(a, b), cells, "dale-plugin")
