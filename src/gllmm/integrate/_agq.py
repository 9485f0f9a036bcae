"""Marginal log-likelihood of a GLLMM by adaptive Gauss-Hermite quadrature, with its gradient.

For cluster c with ``h(v) = l_c(X beta + Z Lambda v) - |v|^2 / 2 - (q/2) log 2 pi``:

    log L_c = log int exp(h(v)) dv
           ~= -log det L + logsumexp_j [log w_j + h(v_j) + |z_j|^2 / 2] + (q/2) log 2 pi,

with ``v_hat`` the mode of h, ``K = -h''(v_hat) = L L'`` and nodes ``v_j = v_hat + L^{-T} z_j``
(Liu & Pierce 1994; Pinheiro & Bates 1995; paper Section 3.1). One node is the Laplace
approximation, so Laplace and AGQ share one log-likelihood scale (the full one, with the
constants of the sampling distribution).

The gradient is the exact derivative of this approximation, mode and curvature included: the
mode moves as ``d v_hat = K^{-1} dF`` (implicit function theorem on ``F = h'(v_hat) = 0``) and
the curvature moves through the third derivatives of the family, ``dK = -d(M' H M)``, ``M = Z
Lambda``. So Laplace's optimum is the optimum of the Laplace approximation itself (as TMB), not a
PQL-like point, and the optimiser never differences.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import logsumexp

from ..errors import FitError
from ..spec._design import Design
from ..tables._validate import check_integer
from ._gauss_hermite import MAX_NODES, TOO_MANY, product_rule
from ._newton import ModeInfo, halving_step


def _make_positive(K: np.ndarray) -> np.ndarray:
    """K, with clusters whose curvature is not positive definite shifted by a multiple of I.

    Away from the mode a conditional log-likelihood that is not concave in eta (global odds
    ratios, implicit links) can give an indefinite Newton matrix; a Levenberg-Marquardt shift
    keeps the step an ascent direction.
    """
    if not np.all(np.isfinite(K)):
        raise FitError("non-finite curvature while searching for the posterior modes")
    try:
        np.linalg.cholesky(K)
        return K
    except np.linalg.LinAlgError:
        low = np.linalg.eigvalsh(K)[:, 0]
        shift = np.where(low < 1e-6, 1e-3 - low + 1e-3 * np.abs(low), 0.0)
        return K + shift[:, None, None] * np.eye(K.shape[-1])


@lru_cache(maxsize=64)
def _rule(n_nodes: int, q: int) -> tuple[np.ndarray, ...]:
    """The product rule's nodes and weights with ``log w`` and ``|z|^2 / 2``, shared by every
    objective with the same rule (made once, not per fit; never written to: left writable
    only because a read-only array is another type to the compiled kernels)."""
    nodes, weights = product_rule(n_nodes, q)
    return nodes, weights, np.log(weights), 0.5 * (nodes**2).sum(axis=1)


#: attributes of a MarginalLikelihood that do not depend on the counts (``with_counts``)
_COUNT_FREE = ("n_nodes", "nodes", "weights", "log_weights", "half_z2", "_starts",
               "_one_per_cluster", "_dM_cache", "inner_tol", "_dense_cache")
#: strategy choices set on an objective, kept by ``with_counts``
_OPTIONS = ("use_kernel", "sparse", "method_name")


class MarginalLikelihood:
    """Callable objective: the AGQ (or Laplace) marginal log-likelihood and its gradient.

    Parameters
    ----------
    design : Design
        Stacked arrays of the model.
    n_nodes : int
        Nodes per random-effect dimension (1 = Laplace). The product rule has
        ``n_nodes ** q`` nodes per cluster.

    Notes
    -----
    The parameter vector is ``(beta, theta)`` with ``Lambda = sum theta_k E_k``. The only state
    kept between calls is the last modes, used as the starting point of the inner Newton
    iterations; results do not depend on it beyond the inner tolerance.
    """

    def __init__(self, design: Design, n_nodes: int = 1, inner_tol: float = 1e-10) -> None:
        self.design = design
        self.n_nodes = check_integer(n_nodes, "n_nodes (quadrature nodes per dimension)", 1,
                                     MAX_NODES, hint=TOO_MANY)
        q = design.n_random
        if q and self.n_nodes ** q > 200_000:
            raise FitError(
                f"{self.n_nodes} nodes in {q} dimensions is {self.n_nodes ** q} nodes per "
                "cluster; use fewer nodes or the Laplace approximation (n_nodes=1)"
            )
        self.nodes, self.weights, self.log_weights, self.half_z2 = _rule(self.n_nodes, q)
        self._starts = design.starts()
        self._one_per_cluster = design.n_blocks == design.n_clusters
        self._constant = float(design.family.constant().sum())
        self._v_start = np.zeros((design.n_clusters, q))
        self._dM_cache: np.ndarray | None = None
        self.inner_tol = inner_tol
        self.n_evaluations = 0

    @property
    def strategy(self) -> str:
        """``sparse`` (Laplace by sparse factorisation), ``scalar`` (one effect per cluster)
        or ``product`` (product-rule AGQ over vector effects); set by ``gllmm.fit(...,
        strategy=...)``."""
        from ._sparse_laplace import use_sparse

        if use_sparse(self):
            return "sparse"
        return "scalar" if self._scalar else "product"

    @property
    def _scalar(self) -> bool:
        """One random effect per cluster, the scalar kernel allowed: the scalar strategy."""
        d = self.design
        return d.n_random == 1 and d.n_theta == 1 and getattr(self, "use_kernel", True)

    def _scalar_inputs(self) -> dict | None:
        """The compiled scalar kernel's arrays where the scalar strategy applies and the
        kernel knows the family, else None."""
        if not self._scalar:
            return None
        from ._agq_scalar import _kernel_inputs

        return _kernel_inputs(self)

    def with_counts(self, y: np.ndarray) -> MarginalLikelihood:
        """This objective on new counts of the same shape (``Design.with_counts``): the rule,
        the covariance templates and the compiled kernel's design arrays are reused, only the
        count arrays change; the modes restart at 0, so the result depends on nothing fitted
        before."""
        new = MarginalLikelihood.__new__(MarginalLikelihood)
        new.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k in _COUNT_FREE or k in _OPTIONS})
        new.design = self.design.with_counts(y)
        new._constant = float(new.design.family.constant().sum())
        new._v_start = np.zeros_like(self._v_start)
        new.n_evaluations = 0
        cache = self.__dict__.get("_kernel_cache")
        if cache:
            new._kernel_cache = {**cache, "family": new.design.family.compiled()}
        return new

    # ------------------------------------------------------------------ helpers
    @property
    def _dM(self) -> np.ndarray | None:
        """``d(Z Lambda) / d theta_k = Z E_k`` (B, J, q, m), which does not depend on theta;
        built on first use (the sparse Laplace path never needs this dense array)."""
        if self._dM_cache is None and self.design.n_random:
            self._dM_cache = np.einsum("bjq,kqr->bjrk", self.design.Z, self._templates)
        return self._dM_cache

    @property
    def _templates(self) -> np.ndarray:
        """The dense (m, q, q) templates, read only by the dense paths (small q per
        cluster); the sparse Laplace path uses the design's sparse pattern instead."""
        d = self.design
        return d.covariance.templates if d.n_random else np.zeros((0, 0, 0))

    def _csum(self, a: np.ndarray) -> np.ndarray:
        if self._one_per_cluster:
            return a
        return np.add.reduceat(a, self._starts, axis=0)

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.design.n_fixed
        return params[:p], params[p:]

    def _factor(self, theta: np.ndarray) -> np.ndarray:
        return np.tensordot(theta, self._templates, axes=1)

    # ------------------------------------------------------------------ modes
    def modes(self, params: np.ndarray, max_iter: int = 100) -> ModeInfo:
        """Posterior modes of the spherical random effects by damped Newton, all clusters at once.

        Each iteration evaluates the family once (value, gradient, Hessian at the trial point);
        clusters whose objective would decrease halve their step.
        """
        d = self.design
        beta, theta = self.split(np.asarray(params, dtype=float))
        eta0 = d.X @ beta + d.offset
        q = d.n_random
        cl = d.cluster
        M = d.Z @ self._factor(theta)  # (B, J, q)
        eye = np.eye(q)
        converged = False

        def evaluate(v_: np.ndarray) -> tuple:
            eta_ = eta0 + np.einsum("bjq,bq->bj", M, v_[cl])
            l_, g_, H_, _ = d.family.derivatives(eta_[:, None, :], 2)
            h_ = self._csum(l_[:, 0]) - 0.5 * (v_**2).sum(axis=1)
            return h_, eta_, g_[:, 0], H_[:, 0]

        v = self._v_start
        h, eta, g, H = evaluate(v)
        if not np.all(np.isfinite(h)):
            v = np.zeros_like(v)
            h, eta, g, H = evaluate(v)
        for _ in range(max_iter):
            grad = self._csum(np.einsum("bjq,bj->bq", M, g)) - v
            K = eye - self._csum(np.einsum("bjq,bjk,bkr->bqr", M, H, M))
            step = np.linalg.solve(_make_positive(K), grad[..., None])[..., 0]
            if np.max(np.abs(step), initial=0.0) < self.inner_tol:
                # a last full step puts v within ~tol^2 of the mode (Newton converges
                # quadratically): gradients then carry no mode error
                v = v + step
                h, eta, g, H = evaluate(v)
                converged = True
                break
            v, (h, eta, g, H) = halving_step(evaluate, v, step, h, lambda t: t[:, None])
        K = eye - self._csum(np.einsum("bjq,bjk,bkr->bqr", M, H, M))
        try:
            chol = np.linalg.cholesky(K)
        except np.linalg.LinAlgError as exc:
            raise FitError("curvature at the posterior mode is not positive definite") from exc
        self._v_start = v
        return ModeInfo(v, chol, eta, converged)

    # ------------------------------------------------------------------ value and gradient
    def __call__(self, params: np.ndarray) -> float:
        return self.value_and_gradient(params, gradient=False)[0]

    def value_and_gradient(
        self, params: np.ndarray, gradient: bool = True
    ) -> tuple[float, np.ndarray | None]:
        """Marginal log-likelihood (full scale) and, optionally, its exact gradient."""
        self.n_evaluations += 1
        from ._sparse_laplace import sparse_value_and_gradient, use_sparse

        if use_sparse(self):  # Laplace over large (crossed) clusters: sparse factorisation
            return sparse_value_and_gradient(self, params, gradient)
        d = self.design
        params = np.asarray(params, dtype=float)
        beta, theta = self.split(params)
        fam = d.family
        inputs = self._dense_kernel_inputs()
        if inputs is not None:
            return self._dense_kernel(params, gradient, inputs)
        if d.n_random == 1 and d.n_theta == 1:
            from ._agq_scalar import scalar_value_and_gradient

            return scalar_value_and_gradient(self, params, gradient)
        if d.n_random == 0:
            eta = (d.X @ beta + d.offset)[:, None, :]
            l, g, _, _ = fam.derivatives(eta, 1 if gradient else 0)
            val = float(l.sum()) + self._constant
            grad = np.einsum("bj,bjp->p", g[:, 0], d.X) if gradient else None
            return val, grad

        info = self.modes(params)
        q, cl = d.n_random, d.cluster
        lam = self._factor(theta)
        M = d.Z @ lam
        L = info.chol
        # Laplace: the one node is the mode (z = 0), so the node terms are the mode's and the
        # nodes do not move with the Cholesky factor; one family call serves value and gradient
        laplace = self.n_nodes == 1
        if laplace:
            v_nodes = info.v[:, None, :]
            l_n, g_n, H_h, T_h = fam.derivatives(info.eta[:, None, :], 3 if gradient else 0)
        else:
            Linv = np.linalg.inv(L)
            LinvT = np.swapaxes(Linv, -1, -2)
            v_nodes = info.v[:, None, :] + np.einsum("cqr,nr->cnq", LinvT, self.nodes)
            eta0 = d.X @ beta + d.offset
            eta_n = eta0[:, None, :] + np.einsum("bjq,bnq->bnj", M, v_nodes[cl])
            l_n, g_n, _, _ = fam.derivatives(eta_n, 1 if gradient else 0)
        s = (
            self.log_weights
            + self._csum(l_n)
            - 0.5 * (v_nodes**2).sum(axis=-1)
            + self.half_z2
        )
        log_det_l = np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
        smax = s.max(axis=1)
        lse = smax + np.log(np.exp(s - smax[:, None]).sum(axis=1))
        value = float((lse - log_det_l).sum()) + self._constant
        if not gradient:
            return value, None

        # --- derivatives of the mode and curvature (B, J, P) directions
        p, m = d.n_fixed, d.n_theta
        if laplace:
            g_h = g_n
        else:
            _, g_h, H_h, T_h = fam.derivatives(info.eta[:, None, :], 3)
        g_h, H_h, T_h = g_h[:, 0], H_h[:, 0], T_h[:, 0]
        dM = self._dM  # (B, J, q, m)
        v_b = info.v[cl]
        dzeta_fixed = np.concatenate([d.X, np.einsum("bjrk,br->bjk", dM, v_b)], axis=2)
        HM = np.einsum("bjk,bkr->bjr", H_h, M)  # (B, J, q)
        dF = np.einsum("bjr,bjP->brP", HM, dzeta_fixed)
        dF[..., p:] += np.einsum("bjrk,bj->brk", dM, g_h)
        dF = self._csum(dF)  # (C, q, P)
        K = L @ np.swapaxes(L, -1, -2)
        dv = np.linalg.solve(K, dF)  # (C, q, P)
        dzeta = dzeta_fixed + np.einsum("bjq,bqP->bjP", M, dv[cl])
        TdZ = np.einsum("bjkl,blP->bjkP", T_h, dzeta)
        dK = -np.einsum("bjq,bjkP,bkr->bqrP", M, TdZ, M)
        if m:
            cross = np.einsum("bjqk,bjr->bqrk", dM, HM)  # dM' H M
            dK[..., p:] -= cross + np.swapaxes(cross, 1, 2)
        dK = self._csum(dK)  # (C, q, q, P)
        # d(-log det L) = -tr(K^{-1} dK) / 2
        Kinv = np.linalg.inv(K)
        grad_c = -0.5 * np.einsum("cqr,crqP->cP", Kinv, dK)
        if laplace:
            dv_nodes = dv[:, None]
        else:
            # Cholesky derivative: dL = L Phi(L^{-1} dK L^{-T})
            inner = np.einsum("cqr,crsP,cts->cqtP", Linv, dK, Linv)
            tril = (np.tril(np.ones((q, q)), -1)[None, :, :, None]
                    + 0.5 * np.eye(q)[None, :, :, None])
            dL = np.einsum("cqr,crsP->cqsP", L, inner * tril)
            dLinvT = -np.einsum("cqr,csrP,cst->cqtP", LinvT, dL, LinvT)
            dv_nodes = dv[:, None] + np.einsum("cqtP,nt->cnqP", dLinvT, self.nodes)
        # node scores: dh/dphi at fixed v plus grad_v h . dv_node
        rho = np.exp(s - lse[:, None])
        part = np.einsum("bnj,bjp->bnp", g_n, d.X)
        if m:
            part_t = np.einsum("bnj,bjrk,bnr->bnk", g_n, dM, v_nodes[cl])
            part = np.concatenate([part, part_t], axis=2)
        part = self._csum(part)  # (C, N, P)
        grad_v = self._csum(np.einsum("bjq,bnj->bnq", M, g_n)) - v_nodes  # (C, N, q)
        part += np.einsum("cnq,cnqP->cnP", grad_v, dv_nodes)
        grad_c += np.einsum("cn,cnP->cP", rho, part)
        return value, grad_c.sum(axis=0)

    def _dense_kernel_inputs(self) -> tuple | None:
        """The count-free arrays of the compiled Laplace kernel for multinomial blocks
        (``_dense_kernel.dense_laplace_multinomial``), made once; None where it does not apply."""
        cached = self.__dict__.get("_dense_cache", False)
        if cached is not False:
            return cached
        from .. import _jit
        from ..links._families import MULTINOMIAL

        d = self.design
        out = None
        fam = d.family.compiled()
        if (_jit.HAVE_NUMBA and self.n_nodes == 1 and d.n_random and fam is not None
                and fam.code == MULTINOMIAL and getattr(self, "use_kernel", True)):
            c = np.ascontiguousarray
            out = (c(d.X, dtype=float), c(d.offset, dtype=float), c(d.Z, dtype=float),
                   c(self._templates, dtype=float),
                   np.r_[self._starts, d.X.shape[0]].astype(np.int64),
                   float(self.log_weights[0] + self.half_z2[0]))
        self._dense_cache = out
        return out

    def _dense_kernel(self, params: np.ndarray, gradient: bool,
                      inputs: tuple) -> tuple[float, np.ndarray | None]:
        from ._agq_scalar import _raise_status
        from ._dense_kernel import dense_laplace_multinomial

        X, offset, Z, templates, starts, logw0 = inputs
        v = np.ascontiguousarray(self._v_start, dtype=float).copy()
        grad = np.empty(len(params))
        value, status = dense_laplace_multinomial(
            np.ascontiguousarray(self.design.family.y, dtype=float), X, offset, Z, templates,
            starts, logw0, params, v, self.inner_tol, 100, gradient, grad)
        _raise_status(status)
        self._v_start = v
        return float(value) + self._constant, (grad if gradient else None)

    def compiled_negative(self, start: np.ndarray | None = None) -> tuple | None:
        """``(name, data[, hand_back])`` for ``fitting._bfgs.minimize_bfgs(compiled=...)``
        when a compiled kernel covers this design (the scalar strategy; the sparse one where
        its evaluations are wholly compiled), else None; ``start``: the search's first point
        (the sparse strategy's data carries its value and gradient)."""
        inputs = self._scalar_inputs()
        if inputs is not None:
            from ._agq_scalar import kernel_negative

            return kernel_negative(self, inputs)
        from ._sparse_laplace import sparse_compiled_negative, use_sparse

        return sparse_compiled_negative(self, start) if use_sparse(self) else None

    def values_and_gradients(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``value_and_gradient`` at each row of ``points`` (k, P): values (k,) and gradients
        (k, P); the sparse strategy evaluates them in one compiled call."""
        points = np.asarray(points, dtype=float)
        from ._sparse_laplace import sparse_points, use_sparse

        if use_sparse(self):
            out = sparse_points(self, points)
            if out is not None:
                return out
        pairs = [self.value_and_gradient(x) for x in points]
        return (np.array([f for f, _ in pairs]),
                np.array([g for _, g in pairs]).reshape(len(points), -1))

    def gradient_jacobian(self, params: np.ndarray, free: np.ndarray,
                          rel_step: float = 1e-6) -> np.ndarray:
        """Forward differences of the exact gradient over the ``free`` parameters:
        row i is ``(g(x + h_i e_i) - g(x))[free] / h_i``, ``h_i = rel_step max(1, |x_i|)``."""
        params = np.asarray(params, dtype=float)
        free = np.asarray(free, dtype=int)
        inputs = self._scalar_inputs()
        if inputs is not None:
            from ._agq_scalar import kernel_hessian

            return kernel_hessian(self, params, free, rel_step, inputs)
        from ._sparse_laplace import sparse_gradient_jacobian, use_sparse

        if use_sparse(self):
            jac = sparse_gradient_jacobian(self, params, free, rel_step)
            if jac is not None:
                return jac
        jac = np.zeros((len(free), len(free)))
        g0 = self.value_and_gradient(params)[1]
        for a, i in enumerate(free):
            h = rel_step * max(1.0, abs(params[i]))
            xp = params.copy()
            xp[i] += h
            jac[a] = (self.value_and_gradient(xp)[1][free] - g0[free]) / h
        return jac

    def posterior(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """Posterior modes, means and SDs of the random effects ``u = Lambda v`` per cluster.

        Means and SDs use the same adaptive rule as the likelihood; modes are what the paper's
        tables (SAS NLMIXED) report.
        """
        from ._sparse_laplace import sparse_posterior, use_sparse

        if use_sparse(self):
            return sparse_posterior(self, params)
        d = self.design
        params = np.asarray(params, dtype=float)
        inputs = self._scalar_inputs()
        if inputs is not None:
            from ._agq_scalar import kernel_posterior

            return kernel_posterior(self, params, inputs)
        beta, theta = self.split(params)
        info = self.modes(params)
        lam = self._factor(theta)
        M = d.Z @ lam
        LinvT = np.swapaxes(np.linalg.inv(info.chol), -1, -2)
        v_nodes = info.v[:, None, :] + np.einsum("cqr,nr->cnq", LinvT, self.nodes)
        eta_n = (d.X @ beta + d.offset)[:, None, :] + np.einsum(
            "bjq,bnq->bnj", M, v_nodes[d.cluster]
        )
        l_n = d.family.derivatives(eta_n, 0)[0]
        s = self.log_weights + self._csum(l_n) - 0.5 * (v_nodes**2).sum(-1) + self.half_z2
        rho = np.exp(s - logsumexp(s, axis=1, keepdims=True))
        return posterior_summary(lam, v_nodes, rho, info)


def posterior_summary(lam: np.ndarray, v_nodes: np.ndarray, weights: np.ndarray,
                      info: ModeInfo) -> dict[str, np.ndarray]:
    """Posterior modes, weighted means and SDs of ``u = Lambda v`` per cluster.

    ``v_nodes`` (C, N, q) are quadrature nodes or importance draws with normalised ``weights``
    (C, N); the SD of the mode is from the curvature, ``Lambda K^{-1} Lambda'``.
    """
    u_nodes = np.einsum("qr,cnr->cnq", lam, v_nodes)
    mean = np.einsum("cn,cnq->cq", weights, u_nodes)
    var = np.einsum("cn,cnq->cq", weights, (u_nodes - mean[:, None]) ** 2)
    kinv = np.linalg.inv(info.chol @ np.swapaxes(info.chol, -1, -2))
    mode_cov = np.einsum("qr,crs,ts->cqt", lam, kinv, lam)
    return {
        "mode": info.v @ lam.T,
        "mean": mean,
        "sd": np.sqrt(np.maximum(var, 0.0)),
        "mode_sd": np.sqrt(np.maximum(np.diagonal(mode_cov, axis1=1, axis2=2), 0.0)),
        "eta_mode": info.eta,
    }
