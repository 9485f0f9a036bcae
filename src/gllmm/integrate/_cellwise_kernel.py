"""One-dimensional adaptive Gauss-Hermite integrals of Poisson cells, vectorised over cells.

For a cell with count ``y``, fixed linear predictor ``e`` and random effect ``u = sigma v``,
``v ~ N(0, 1)``, the log integrand in the spherical effect is

    h(v) = y (e + sigma v) - exp(e + sigma v) - v^2 / 2        (paper eq. 2.5 / 2.6 per cell)

and the adaptive rule (Liu & Pierce 1994; paper Section 3.1) approximates the cell's marginal
log-likelihood by

    F(e, sigma) = -log y! - (1/2) log K + logsumexp_j [log w_j + h(v_j) + z_j^2 / 2],

with the mode ``v^`` (``h'(v^) = 0``), ``K = -h''(v^) = 1 + sigma^2 mu^``, nodes
``v_j = v^ + z_j s``, ``s = K^(-1/2)`` and N(0, 1) weights ``w_j`` summing to one. One node is
the Laplace approximation.

Everything the optimiser needs is a function of the two per-cell scalars ``(e, sigma)``: this
module returns F and its exact first and second partial derivatives, mode and curvature
movement included (implicit function theorem on ``G = sigma (y - exp(e + sigma v)) - v = 0``;
the third derivative of the Poisson log-likelihood in eta is ``-mu``). The node sums reduce to
polynomial moments ``sum_j rho_j z_j^k``, ``sum_j rho_j mu_j z_j^k`` and
``sum_j rho_j mu_j^2 z_j^k`` (``rho`` the normalised node weights), because the node
derivatives of ``v_j`` and ``eta_j`` are linear in ``z_j``; these moments are three small
matrix products per chunk of cells. Work is O(cells x nodes) and memory O(cells): nodes are
processed in chunks of cells.

Glossary (locals): ``e`` fixed linear predictor, ``sg`` sigma, ``vh`` mode of v, ``mh`` mean at
the mode, ``K`` curvature, ``s = K^-1/2``, ``t = sigma s`` node spacing on the eta scale,
``A_p``/``B_p`` derivatives of ``vh``/``s``, ``a_p``/``b_p`` of the node eta's intercept/slope
in z. Index p in {e, s} (e: the fixed predictor, s: sigma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from ._gauss_hermite import gauss_hermite

_X_MAX = 500.0  # cap on t z: beyond it a node's weight underflows to exactly zero anyway


@dataclass
class CellTerms:
    """Per-cell AGQ log-likelihood and its partial derivatives in (e, sigma), each (n_cells,)."""

    value: np.ndarray
    u: np.ndarray  # posterior modes sigma * v^ (the state used for warm starts)
    d_e: np.ndarray | None = None
    d_s: np.ndarray | None = None
    d_ee: np.ndarray | None = None
    d_es: np.ndarray | None = None
    d_ss: np.ndarray | None = None


def cell_modes(
    y: np.ndarray,
    e: np.ndarray,
    sigma: float,
    start: np.ndarray | None = None,
    max_iter: int = 200,
    log_y: np.ndarray | None = None,
) -> np.ndarray:
    """Posterior modes ``u^ = sigma v^`` of all cells by vectorised one-dimensional Newton.

    Solves ``g(u) = u + sigma^2 exp(e + u) - sigma^2 y = 0``: ``g`` is convex and increasing
    (``g' >= 1``), so Newton started right of the root converges monotonically. The start is
    the warm start or the upper bound ``min(sigma^2 y, log y - e)`` (0 when ``y <= exp(e)``);
    a warm start left of the root is moved right by one Newton step and clipped to the bound.
    """
    s2 = float(sigma) ** 2
    if s2 == 0.0:
        return np.zeros_like(e)
    if log_y is None:
        with np.errstate(divide="ignore"):
            log_y = np.log(y)
    ub = np.where(log_y > e, np.minimum(s2 * y, log_y - e), 0.0)
    u = ub if start is None else np.minimum(start, ub)
    # Newton converges quadratically, so a cell whose step is below 1e-9 of its scale
    # (|u| + sigma^2 (y + 1)) is left with an error ~1e-18 after that step and stops.
    # Steps go on all cells while many move (the first: a warm start left of the root lands
    # right of it, below ub), then on the cells still moving.
    scale = 1e-9 * s2 * (y + 1.0)
    n = len(u)
    for it in range(max_iter):
        m = s2 * np.exp(e + u)
        step = (u + m - s2 * y) / (1.0 + m)
        u = u - step
        if it == 0:
            u = np.minimum(u, ub)
        moving = np.abs(step) > 1e-9 * np.abs(u) + scale
        if np.count_nonzero(moving) < 0.1 * n:
            break
    idx = np.flatnonzero(moving)
    for _ in range(max_iter):
        if not idx.size:
            break
        uu = u[idx]
        m = s2 * np.exp(e[idx] + uu)
        step = (uu + m - s2 * y[idx]) / (1.0 + m)
        new = uu - step
        u[idx] = new
        idx = idx[np.abs(step) > 1e-9 * np.abs(new) + scale[idx]]
    return u


class CellKernel:
    """The per-cell AGQ approximation ``F(e, sigma)`` and its derivatives, in chunks of cells.

    Parameters
    ----------
    y : ndarray (n_cells,)
        Counts.
    n_nodes : int
        Gauss-Hermite nodes (1 = Laplace).
    chunk_size : int
        Cells per block of (chunk x nodes) temporaries; bounds the extra memory.
    """

    def __init__(self, y: np.ndarray, n_nodes: int = 15, chunk_size: int = 8192) -> None:
        self.y = np.ascontiguousarray(y, dtype=float)
        self.n_nodes = int(n_nodes)
        z, w = gauss_hermite(self.n_nodes)
        self.z = np.asarray(z)
        self.log_w = np.log(np.asarray(w))
        self.zpow = np.vstack([self.z**k for k in range(5)]).T.copy()  # (N, 5)
        self.chunk_size = int(chunk_size)
        self.log_factorial = gammaln(self.y + 1.0)
        with np.errstate(divide="ignore"):
            self.log_y = np.log(self.y)

    # ------------------------------------------------------------------ node sums
    def _moments(
        self, y: np.ndarray, mh: np.ndarray, t: np.ndarray, order: int
    ) -> tuple[np.ndarray, ...]:
        """log sum_j exp(S'_j) and the normalised node moments of one chunk.

        ``S'_j = log w_j - mh (exp(x_j) - 1 - x_j - x_j^2 / 2)``, ``x_j = t z_j``, is the node
        log-weight relative to ``h(v^)`` (exact algebra using the mode equation), so no
        max-subtraction is needed: ``S'_j <= log w_j + z_j^2 / 2``.
        """
        if self.n_nodes == 1:
            lse = np.zeros_like(mh)
            if order == 0:
                return (lse,)
            one = np.ones((len(mh), 1))
            zero = np.zeros((len(mh), 4))
            m = np.hstack([one, zero])
            return lse, m, mh[:, None] * m[:, :4], (mh * mh)[:, None] * m[:, :3]
        x = np.minimum(t[:, None] * self.z, _X_MAX)
        ex = np.exp(x)
        poly = mh[:, None] * (1.0 + x * (1.0 + 0.5 * x))
        mu = mh[:, None] * ex
        rho = np.exp(self.log_w + poly - mu)
        if order == 0:
            return (np.log(rho.sum(axis=1)),)
        m = rho @ self.zpow  # (n, 5)
        m0 = m[:, 0].copy()
        rmu = rho * mu
        um = rmu @ self.zpow[:, :4]
        vm = (rmu * mu) @ self.zpow[:, :3] if order >= 2 else None
        inv = 1.0 / m0
        m *= inv[:, None]
        um *= inv[:, None]
        if vm is not None:
            vm *= inv[:, None]
        return np.log(m0), m, um, vm

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        e: np.ndarray,
        sigma: float,
        order: int = 2,
        start: np.ndarray | None = None,
    ) -> CellTerms:
        """F per cell (with its ``-log y!``) and derivatives up to ``order`` (0, 1 or 2)."""
        y = self.y
        sg = float(sigma)
        n = len(y)
        if sg == 0.0:
            return self._at_zero(e, order)
        u = cell_modes(y, e, sg, start, log_y=self.log_y)
        out = CellTerms(np.empty(n), u)
        if order >= 1:
            out.d_e, out.d_s = np.empty(n), np.empty(n)
        if order >= 2:
            out.d_ee, out.d_es, out.d_ss = np.empty(n), np.empty(n), np.empty(n)
        for lo in range(0, n, self.chunk_size):
            sl = slice(lo, min(lo + self.chunk_size, n))
            self._chunk(y[sl], e[sl], u[sl], sg, order, out, sl)
        out.value -= self.log_factorial
        return out

    def _at_zero(self, e: np.ndarray, order: int) -> CellTerms:
        """sigma = 0: the Poisson log-likelihood; ``F_ss = (y - mu)^2 - mu``, ``F_s = F_es = 0``.

        (F is even in sigma; its second derivative at 0 is ``l'' + l'^2`` for every number of
        nodes, since the rule integrates quadratics exactly.)
        """
        mu = np.exp(e)
        r = self.y - mu
        out = CellTerms(self.y * e - mu - self.log_factorial, np.zeros_like(e))
        if order >= 1:
            out.d_e, out.d_s = r, np.zeros_like(e)
        if order >= 2:
            out.d_ee, out.d_es, out.d_ss = -mu, np.zeros_like(e), r * r - mu
        return out

    def _chunk(
        self,
        y: np.ndarray,
        e: np.ndarray,
        u: np.ndarray,
        sg: float,
        order: int,
        out: CellTerms,
        sl: slice,
    ) -> None:
        vh = u / sg if sg != 0.0 else np.zeros_like(u)
        ch = e + u
        mh = np.exp(ch)
        K = 1.0 + sg * sg * mh
        ls = -0.5 * np.log(K)  # log s
        s = np.exp(ls)
        t = sg * s
        mom = self._moments(y, mh, t, order)
        out.value[sl] = ls + mom[0] + y * ch - 0.5 * vh * vh - mh
        if order == 0:
            return
        _, m, um, vm = mom
        m1, m2 = m[:, 1], m[:, 2]
        R = y[:, None] * m[:, :4] - um  # sum rho (y - mu) z^k, k = 0..3
        # ---- first derivatives of the mode, curvature and node positions
        g_e = -sg * mh
        g_s = y - mh - sg * vh * mh
        A_e, A_s = g_e / K, g_s / K
        c_e = 1.0 + sg * A_e  # d eta^ / de
        c_s = vh + sg * A_s  # d eta^ / dsigma
        sm = sg * mh
        K_e = sg * sm * c_e
        K_s = 2.0 * sm + sg * sm * c_s
        ls_e, ls_s = -0.5 * K_e / K, -0.5 * K_s / K
        B_e, B_s = s * ls_e, s * ls_s
        b_e, b_s = sg * B_e, s + sg * B_s
        c0_e, c1_e, c2_e = vh * A_e, vh * B_e + s * A_e, s * B_e
        c0_s, c1_s, c2_s = vh * A_s, vh * B_s + s * A_s, s * B_s
        G_e = c_e * R[:, 0] + b_e * R[:, 1] - (c0_e + c1_e * m1 + c2_e * m2)
        G_s = c_s * R[:, 0] + b_s * R[:, 1] - (c0_s + c1_s * m1 + c2_s * m2)
        out.d_e[sl] = ls_e + G_e
        out.d_s[sl] = ls_s + G_s
        if order == 1:
            return
        # ---- second derivatives
        Q = (y * y)[:, None] * m[:, :3] - 2.0 * y[:, None] * um[:, :3] + vm
        g_vv = -sg * sg * sm
        g_ve = -sg * sm
        g_vs = -2.0 * sm - sg * sm * vh
        g_ee = -sm
        g_es = -mh - sm * vh
        g_ss = -2.0 * vh * mh - sm * vh * vh
        A_ee = (g_vv * A_e * A_e + 2.0 * g_ve * A_e + g_ee) / K
        A_es = (g_vv * A_e * A_s + g_ve * A_s + g_vs * A_e + g_es) / K
        A_ss = (g_vv * A_s * A_s + 2.0 * g_vs * A_s + g_ss) / K
        c_ee = sg * A_ee
        c_es = A_e + sg * A_es
        c_ss = 2.0 * A_s + sg * A_ss
        smh = sg * sg * mh
        K_ee = smh * (c_e * c_e + c_ee)
        K_es = 2.0 * sm * c_e + smh * (c_e * c_s + c_es)
        K_ss = 2.0 * mh + 4.0 * sm * c_s + smh * (c_s * c_s + c_ss)
        iK2 = 1.0 / (K * K)
        ls_ee = -0.5 * K_ee / K + 0.5 * K_e * K_e * iK2
        ls_es = -0.5 * K_es / K + 0.5 * K_e * K_s * iK2
        ls_ss = -0.5 * K_ss / K + 0.5 * K_s * K_s * iK2
        B_ee = s * (ls_ee + ls_e * ls_e)
        B_es = s * (ls_es + ls_e * ls_s)
        B_ss = s * (ls_ss + ls_s * ls_s)
        b_ee = sg * B_ee
        b_es = B_e + sg * B_es
        b_ss = 2.0 * B_s + sg * B_ss
        m3, m4 = m[:, 3], m[:, 4]
        U0, U1, U2 = um[:, 0], um[:, 1], um[:, 2]
        R0, R1, R2, R3 = R[:, 0], R[:, 1], R[:, 2], R[:, 3]
        Q0, Q1, Q2 = Q[:, 0], Q[:, 1], Q[:, 2]
        first = {"e": (c_e, b_e, A_e, B_e, c0_e, c1_e, c2_e, G_e),
                 "s": (c_s, b_s, A_s, B_s, c0_s, c1_s, c2_s, G_s)}
        second = {"ee": (c_ee, b_ee, A_ee, B_ee, ls_ee),
                  "es": (c_es, b_es, A_es, B_es, ls_es),
                  "ss": (c_ss, b_ss, A_ss, B_ss, ls_ss)}
        targets = {"ee": out.d_ee, "es": out.d_es, "ss": out.d_ss}
        for key, (apq, bpq, Apq, Bpq, lspq) in second.items():
            ap, bp, Ap, Bp, c0p, c1p, c2p, Gp = first[key[0]]
            aq, bq, Aq, Bq, c0q, c1q, c2q, Gq = first[key[1]]
            # E[S_pq]
            e_spq = (
                apq * R0
                + bpq * R1
                - (ap * aq * U0 + (ap * bq + aq * bp) * U1 + bp * bq * U2)
                - (Ap * Aq + (Ap * Bq + Aq * Bp) * m1 + Bp * Bq * m2)
                - (vh * Apq + (vh * Bpq + s * Apq) * m1 + s * Bpq * m2)
            )
            # E[S_p S_q], S_p = r (a_p + b_p z) - (c0_p + c1_p z + c2_p z^2)
            e_rr = ap * aq * Q0 + (ap * bq + aq * bp) * Q1 + bp * bq * Q2
            e_rc = (
                (ap * c0q + aq * c0p) * R0
                + (ap * c1q + bp * c0q + aq * c1p + bq * c0p) * R1
                + (ap * c2q + bp * c1q + aq * c2p + bq * c1p) * R2
                + (bp * c2q + bq * c2p) * R3
            )
            e_cc = (
                c0p * c0q
                + (c0p * c1q + c1p * c0q) * m1
                + (c0p * c2q + c1p * c1q + c2p * c0q) * m2
                + (c1p * c2q + c2p * c1q) * m3
                + c2p * c2q * m4
            )
            targets[key][sl] = lspq + e_spq + e_rr - e_rc + e_cc - Gp * Gq

    # ------------------------------------------------------------------ posterior summaries
    def posterior(
        self, e: np.ndarray, sigma: float, start: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Posterior mode, mean and SD of ``u = sigma v`` per cell under the same adaptive rule.

        With one node the mean is the mode and the SD is the curvature SD ``|sigma| / sqrt(K)``.
        """
        y = self.y
        sg = float(sigma)
        u = cell_modes(y, e, sg, start, log_y=self.log_y)
        mh = np.exp(e + u)
        s = 1.0 / np.sqrt(1.0 + sg * sg * mh)
        t = sg * s
        mean = np.empty_like(u)
        sd = np.empty_like(u)
        for lo in range(0, len(y), self.chunk_size):
            sl = slice(lo, min(lo + self.chunk_size, len(y)))
            _, m, _, _ = self._moments(y[sl], mh[sl], t[sl], 1)
            mean[sl] = u[sl] + t[sl] * m[:, 1]
            var = m[:, 2] - m[:, 1] ** 2 if self.n_nodes > 1 else 1.0
            sd[sl] = np.abs(t[sl]) * np.sqrt(np.maximum(var, 0.0))
        return {"mode": u, "mean": mean, "sd": sd, "mode_sd": np.abs(t)}
