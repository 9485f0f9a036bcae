"""Random stratum associations: ``beta_k ~ N(beta, sigma_b^2)`` with cell effects (Section 2.2).

    log mu_ijk = theta_ik + phi_jk + (beta + sigma_b a_k) s_i t_j + sigma v_ijk,
    a_k, v_ijk ~ N(0, 1) independent.

Given ``a_k`` the cells factorise, but ``a_k`` couples all cells of stratum k, so the marginal
likelihood is integrated by the Laplace approximation over ``(a_k, v_.k)`` jointly (what
glmmTMB / glmer compute for this model). The negative Hessian of the log integrand in
``(a_k, v_.k)`` is an arrow matrix (diagonal in v, one dense row and column for a), so its log
determinant and every solve are O(cells):

    log L_k = h_k(a^, v^) - (1/2) sum_n log D_n - (1/2) log S_k,
    D_n = 1 + sigma^2 mu_n,  S_k = 1 + sigma_b^2 sum_n w_n^2 mu_n / D_n.

The joint mode is found by Newton in ``a_k`` with the cell modes profiled (1-D per cell). The
gradient is exact, with the movement of the mode through the curvature handled by one adjoint
arrow solve (no per-parameter mode derivatives). The Newton steps of the optimiser use the
structured Hessian of the per-cell Laplace terms with ``a_k`` as bordering auxiliaries (the
derivative of ``log S_k`` is left out of the Hessian only); standard errors use the exact
Hessian through preconditioned conjugate gradients on differenced exact gradients (outside the
optimisation loop, O(cells) per product). AGQ is not offered for this model (n_nodes must be 1).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvergenceWarning, SpecError
from ..fitting._block_newton import (
    Factor,
    State,
    Structure,
    factor,
    maximise,
    progress_logger,
    solve,
)
from ..fitting._optimize import FTOL_ZERO, XTOL_ZERO
from ..integrate._cellwise_kernel import CellKernel, cell_modes
from ..integrate._newton import halving_step

if TYPE_CHECKING:
    from ._cellwise_model import CellwiseFit, _Model


class RandomObjective:
    """Joint-Laplace log-likelihood of the random-association model, flat parameters
    ``(theta, phi, beta, sigma_b[, sigma])``."""

    def __init__(self, model: _Model, sigma_free: bool = True) -> None:
        base = model.structure
        self.model = model
        self.y = model.data.y[model.cells]
        self.w = model.x_assoc
        self.k = base.stratum
        self.K = base.n_strata
        self.sigma_free = sigma_free
        n = len(self.y)
        self.st = Structure(
            base.stratum, base.row, base.col, base.row_stratum, base.row_slot,
            base.col_stratum, base.col_slot, base.n_strata,
            x_local=self.w.copy(), x_global=np.zeros((n, 2)), sigma_free=sigma_free,
        )
        self.kernel = CellKernel(self.y, 1)
        self.n_fixed = base.n_theta + base.n_phi
        self.a = np.zeros(self.K)
        self.u: np.ndarray | None = None

    # ------------------------------------------------------------------ pieces
    def split(self, p: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        f = self.n_fixed
        sigma = float(p[f + 2]) if self.sigma_free else 0.0
        return p[:f], float(p[f]), float(p[f + 1]), sigma

    def base_eps(self, p: np.ndarray) -> np.ndarray:
        fixed, beta, _, _ = self.split(p)
        st = self.st
        phi_full = np.zeros(st.n_cols)
        phi_full[st.free_col] = fixed[st.n_theta :]
        return fixed[: st.n_theta][st.row] + phi_full[st.col] + beta * self.w

    def joint_mode(
        self, e: np.ndarray, sb: float, sg: float, max_iter: int = 100
    ) -> tuple[np.ndarray, ...]:
        """Joint mode: Newton on each a_k of the profile ``max_v h_k(a, v)``, all strata at once.

        Returns ``P = -inf`` if it does not converge (the caller's line search then backs off).
        """
        y, w, k, K = self.y, self.w, self.k, self.K
        log_y = self.kernel.log_y
        inv2 = 0.5 / (sg * sg) if sg != 0.0 else 0.0

        def profile(a: np.ndarray, start: np.ndarray | None) -> tuple[np.ndarray, ...]:
            eps = e + sb * a[k] * w
            u = cell_modes(y, eps, sg, start, log_y=log_y)
            eta = eps + u
            mu = np.exp(eta)
            h = y * eta - mu - inv2 * u * u
            P = np.bincount(k, h, minlength=K) - 0.5 * a * a
            return P, u, mu

        a = self.a.copy() if sb != 0.0 else np.zeros(K)
        P, u, mu = profile(a, self.u)
        if not np.all(np.isfinite(P)):
            a = np.zeros(K)
            P, u, mu = profile(a, None)
        converged = False
        for _ in range(max_iter):
            D = 1.0 + sg * sg * mu
            grad = sb * np.bincount(k, w * (y - mu), minlength=K) - a
            S = 1.0 + sb * sb * np.bincount(k, w * w * mu / D, minlength=K)
            step = grad / S
            small = np.max(np.abs(step)) <= 1e-9 * (1.0 + np.max(np.abs(a)))
            # step halving per stratum; a small step is taken as it is (quadratic
            # convergence: it leaves an error ~ step^2)
            a, (P, u, mu) = halving_step(lambda z, u=u: profile(z, u), a, step, P, lambda t: t,
                                         30, accept=(lambda t, out: t > 0) if small else None)
            if small:
                converged = True
                break
        if not converged:
            P = np.full(K, -np.inf)
        D = 1.0 + sg * sg * mu
        S = 1.0 + sb * sb * np.bincount(k, w * w * mu / D, minlength=K)
        return a, u, mu, D, S, P

    # ------------------------------------------------------------------ value and gradient
    def value_and_gradient(self, p: np.ndarray, gradient: bool = True) -> tuple[float, ...]:
        _, _, sb, sg = self.split(p)
        e = self.base_eps(p)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            a, u, mu, D, S, P = self.joint_mode(e, sb, sg)
            value = float(
                P.sum() - 0.5 * np.log(D).sum() - 0.5 * np.log(S).sum()
                - self.kernel.log_factorial.sum()
            )
        if not np.isfinite(value):
            return -np.inf, None, None
        self.a, self.u = a, u
        if not gradient:
            return value, None, (a, u, mu, D, S)
        y, w, k, K = self.y, self.w, self.k, self.K
        r = y - mu
        Sk = S[k]
        gamma = (sg * sg / D + sb * sb * w * w / (Sk * D * D)) * mu
        lam_a = sb * np.bincount(k, gamma * w / D, minlength=K) / S
        lam_v = (gamma * sg - sb * sg * w * mu * lam_a[k]) / D
        omega = r - 0.5 * gamma + 0.5 * (lam_a[k] * sb * w + lam_v * sg) * mu
        st = self.st
        g_theta = np.bincount(st.row, omega, minlength=st.n_rows)
        g_phi = np.bincount(st.col, omega, minlength=st.n_cols)[st.free_col]
        g_beta = omega @ w
        wr = np.bincount(k, w * r, minlength=K)
        expl_b = (2.0 * sb / S) * np.bincount(k, w * w * mu / D, minlength=K)
        g_sb = float(omega @ (a[k] * w) - 0.5 * expl_b.sum() - 0.5 * (lam_a * wr).sum())
        parts = [g_theta, g_phi, [g_beta, g_sb]]
        if self.sigma_free:
            v = u / sg if sg != 0.0 else np.zeros_like(u)
            expl_s = 2.0 * sg * (mu / D).sum() - 2.0 * sg * sb * sb * (
                np.bincount(k, w * w * mu * mu / (D * D), minlength=K) / S
            ).sum()
            g_s = float(omega @ v - 0.5 * expl_s - 0.5 * (lam_v * r).sum())
            parts.append([g_s])
        return value, np.concatenate(parts), (a, u, mu, D, S)

    # ------------------------------------------------------------------ Newton interface
    def evaluate(self, p: np.ndarray, order: int) -> State:
        value, grad, extra = self.value_and_gradient(p, gradient=order >= 2)
        return State(p, value, order, grad, extra)

    def factor(self, state: State) -> Factor:
        """Structured approximate negative Hessian with the a_k as bordering auxiliaries."""
        _, _, sb, sg = self.split(state.params)
        a = state.extra[0]
        e = self.base_eps(state.params) + sb * a[self.k] * self.w
        t = self.kernel.evaluate(e, sg, 2, start=state.extra[1])
        st = self.st
        st.x_local = sb * self.w
        st.x_global = np.column_stack([self.w, a[self.k] * self.w])
        blocks = st.blocks(t.d_ee, t.d_es, t.d_ss)
        blocks.All[:, -1, -1] += 1.0  # prior of a_k
        blocks.AlG[:, -1, 1] -= np.bincount(self.k, t.d_e * self.w, minlength=self.K)
        # explicit curvature of -(1/2) sum_k log S_k in (sigma_b, sigma), mu held fixed
        mu, D, S = state.extra[2], state.extra[3], state.extra[4]
        k, K, w2 = self.k, self.K, self.w * self.w
        c = np.bincount(k, w2 * mu / D, minlength=K)
        dS = [2.0 * sb * c]
        d2S = [[2.0 * c]]
        if self.sigma_free:
            c_s = np.bincount(k, -2.0 * sg * w2 * mu * mu / (D * D), minlength=K)
            c_ss = np.bincount(
                k, w2 * (-2.0 * mu * mu / (D * D) + 8.0 * sg * sg * mu**3 / D**3), minlength=K
            )
            dS.append(sb * sb * c_s)
            d2S = [[2.0 * c, 2.0 * sb * c_s], [2.0 * sb * c_s, sb * sb * c_ss]]
        for i in range(len(dS)):
            for j in range(len(dS)):
                blocks.AGG[1 + i, 1 + j] += 0.5 * float(
                    (d2S[i][j] / S - dS[i] * dS[j] / (S * S)).sum()
                )
        return factor(blocks)

    def _with_aux(self, g: np.ndarray) -> np.ndarray:
        return np.concatenate([g[: self.n_fixed], np.zeros(self.K), g[self.n_fixed :]])

    def precondition(self, f: Factor, g: np.ndarray) -> np.ndarray:
        x = self.st.from_padded(*solve(f, *self.st.to_padded(self._with_aux(g))))
        return np.concatenate([x[: self.n_fixed], x[self.n_fixed + self.K :]])

    def step(self, state: State) -> np.ndarray:
        return self.precondition(self.factor(state), state.grad)


def _pcg_inverse_columns(
    obj: RandomObjective, p: np.ndarray, f: Factor, cols: list[int], tol: float = 1e-9
) -> np.ndarray:
    """Columns of the inverse observed information by preconditioned CG.

    Products ``A x`` are central differences of the exact gradient (O(cells) each); the
    preconditioner is the structured approximate Hessian.
    """
    n = len(p)

    def matvec(x: np.ndarray) -> np.ndarray:
        nx = float(np.max(np.abs(x)))
        if nx == 0.0:
            return np.zeros(n)
        h = 1e-5 / nx
        gp = obj.value_and_gradient(p + h * x)[1]
        gm = obj.value_and_gradient(p - h * x)[1]
        return -(gp - gm) / (2.0 * h)

    out = np.zeros((n, len(cols)))
    for c, j in enumerate(cols):
        b = np.zeros(n)
        b[j] = 1.0
        x = obj.precondition(f, b)
        r = b - matvec(x)
        z = obj.precondition(f, r)
        d = z.copy()
        rz = float(r @ z)
        for _ in range(50):
            if np.sqrt(abs(rz)) < tol:
                break
            Ad = matvec(d)
            alpha = rz / float(d @ Ad)
            x += alpha * d
            r -= alpha * Ad
            z = obj.precondition(f, r)
            rz_new = float(r @ z)
            d = z + (rz_new / rz) * d
            rz = rz_new
        out[:, c] = x
    return out


def fit_random(
    model: _Model,
    n_nodes: int,
    tol: float,
    max_iter: int,
    progress: Callable[[dict], None] | None,
    chunk_size: int,
    t0: float,
) -> CellwiseFit:
    """Fit the random-association model (see module docstring); called by ``fit_cellwise``."""
    from ._cellwise_model import CellwiseFit, _result

    if n_nodes != 1:
        raise SpecError(
            "association='random' is integrated by the Laplace approximation over (beta_k, v_.k) "
            "jointly (it does not factorise by cell); pass n_nodes=1"
        )
    data = model.data
    history, log = progress_logger(t0, progress)

    # start: heterogeneous fixed beta_k fit (Laplace)
    kept = model.cells
    theta_phi, beta_k, sigma0 = _heterogeneous_start(model, max_iter)
    b_k = beta_k[np.isfinite(beta_k)]
    p0 = np.concatenate([theta_phi, [b_k.mean(), max(b_k.std(), 0.1), max(sigma0, 0.1)]])
    obj = RandomObjective(model)
    n_f = obj.n_fixed
    res = maximise(obj.evaluate, obj.step, p0, tol=tol, max_iter=max_iter, progress=log,
                   stage="random", scale_index=(n_f + 1, n_f + 2))
    # The likelihood can have a second mode on sigma_b = 0, the nested common-beta model
    # (e.g. with uncentred scores: the climb above stopped at -327.63 where that model, and
    # glmer, have -320.43). Maximise from that corner too (sigma_b stays 0 there: the
    # likelihood is even in it) and keep the higher; the fit is never below the nested model.
    corner = maximise(obj.evaluate, obj.step, _common_corner(model), tol=tol,
                      max_iter=max_iter, progress=log, stage="random, beta_k common",
                      scale_index=(n_f + 1, n_f + 2))
    if corner.state.value > res.state.value + FTOL_ZERO:
        res = corner
    # sigma = 0 reference (random associations only)
    obj0 = RandomObjective(model, sigma_free=False)
    res0 = maximise(obj0.evaluate, obj0.step, res.state.params[:-1], tol=tol,
                    max_iter=max_iter, progress=log, stage="random, sigma=0",
                    scale_index=(n_f + 1,))
    p = res.state.params.copy()
    sb, sg = abs(p[-2]), abs(p[-1])
    boundary_s = sg < XTOL_ZERO and res0.state.value >= res.state.value - FTOL_ZERO
    converged = res.converged and res0.converged
    if not converged:
        warnings.warn(f"Newton iterations stopped: {res.message}", ConvergenceWarning,
                      stacklevel=3)
    if boundary_s:
        use_obj, state = obj0, res0.state
        p = np.concatenate([res0.state.params, [0.0]])
        sg = 0.0
    else:
        use_obj, state = obj, res.state
    p[-2], p[-1] = sb, sg
    sb_boundary = sb < XTOL_ZERO
    # standard errors: exact information via PCG on differenced exact gradients
    f = use_obj.factor(state)
    n_fixed = use_obj.n_fixed
    q = state.params.copy()
    q[n_fixed + 1] = sb
    if use_obj.sigma_free:
        q[-1] = sg
    cols = [n_fixed, n_fixed + 1] + ([n_fixed + 2] if use_obj.sigma_free else [])
    use_obj.value_and_gradient(q)
    inv = _pcg_inverse_columns(use_obj, q, f, cols)
    se = np.sqrt(np.maximum(np.diag(inv[cols]), 0.0))
    beta, beta_se = float(q[n_fixed]), float(se[0])
    sigma_b_se = float(se[1]) if not sb_boundary else float("nan")
    sigma_se = float(se[2]) if use_obj.sigma_free and not boundary_s else float("nan")
    value, _, extra = use_obj.value_and_gradient(q)
    a, u, mu, D, S = extra
    e = use_obj.base_eps(q) + sb * a[use_obj.k] * use_obj.w
    post = {
        "mode": u,
        "mean": u,
        "sd": np.abs(sg) * np.sqrt(1.0 / D + (sb * sg * use_obj.w * mu / D) ** 2 / S[use_obj.k]),
    }
    p_struct = np.concatenate([q[:n_fixed], np.zeros(model.structure.n_local)])
    out = _result(model, p_struct, post, e, beta, beta_se, sg, sigma_se)
    beta_strata = np.full(len(data.stratum_levels), np.nan)
    beta_strata[np.unique(data.stratum[kept])] = beta + sb * a
    return CellwiseFit(
        base="linear_by_linear",
        association="random",
        n_nodes=1,
        **out,
        loglik=value,
        loglik_sigma0=res0.state.value,
        converged=converged,
        boundary=bool(boundary_s or sb_boundary),
        n_iter=res.n_iter + res0.n_iter,
        n_evaluations=res.n_evaluations + res0.n_evaluations,
        message=res.message,
        elapsed=time.perf_counter() - t0,
        sigma_beta=sb,
        sigma_beta_se=sigma_b_se,
        beta_strata=beta_strata,
        history=history,
    )


def _common_corner(model: _Model) -> np.ndarray:
    """The common-beta model's estimates (cell-wise strategy, Laplace) as a point of the
    random model: (theta, phi, beta, sigma_b = 0, sigma)."""
    from ..fitting._cellwise import fit_cellwise_design
    from ._cellwise_model import _build, _design, _start

    common = _build(model.data, "linear_by_linear", "common")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a corner that fails is simply not the better one
        res = fit_cellwise_design(_design(common), "laplace", 1, _start(common, common.glm))
    p = res.params
    return np.r_[p[:-2], p[-2], 0.0, p[-1]]


def _heterogeneous_start(model: _Model, max_iter: int) -> tuple:
    """Fixed beta_k fit (Laplace) on the same cells: starting values for the random model."""
    from ..fitting._cellwise import local_objective
    from ._cellwise_model import _start

    st = model.structure
    het = Structure(
        st.stratum, st.row, st.col, st.row_stratum, st.row_slot, st.col_stratum, st.col_slot,
        st.n_strata, x_local=model.x_assoc, x_global=np.zeros((len(st.row), 0)),
        sigma_free=False,
    )
    y = model.data.y[model.cells]
    obj = local_objective(het, y, 1, "glm")
    res = maximise(obj.evaluate, obj.step, _start(model, het), tol=1e-6, max_iter=max_iter,
                   stage="start")
    p = res.state.params
    n_f = het.n_theta + het.n_phi
    return p[:n_f], p[n_f : n_f + het.n_local], obj.sigma_moment(p)
