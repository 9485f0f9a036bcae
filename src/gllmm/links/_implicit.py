"""Families whose cell probabilities have no closed form in eta: inversion nested in quadrature.

Each block is a multinomial with probabilities ``pi`` defined implicitly by the generalized
log-linear model ``C log(A pi) = eta`` (paper eq. 1.1-1.2; Sections 3 and 6): with ``K`` cells
and ``K - 1`` rows of C the model determines pi. Parametrise ``pi = softmax(theta~)``,
``theta~ = (theta, 0)``; then ``h(theta) = log(A pi) = log(A exp(theta~)) - lse(theta~)`` and
its derivatives are the cumulants of the categorical distributions ``p_r ∝ A_r. exp(theta~)``
minus those of ``pi`` (all tensors exact):

    dh_r/dtheta = p_r - pi,   d2 = Cov(p_r) - Cov(pi),   d3 = kappa3(p_r) - kappa3(pi).

The inversion ``G(theta) = C h(theta) = eta`` is solved by Newton's method at every block and
quadrature node (compiled, ``_implicit_kernel``), each point warm-started from its solution at
the previous call of the same shape (the optimiser's previous iterate, or the previous
search step for the modes), else from the modes' solutions, else from the block's previous
node; the first Newton step from a solution at ``eta_0`` is the first-order predictor
``theta_0 + G1^{-1} (eta - eta_0)``, so one or two steps suffice. Derivatives of
``theta(eta)`` follow from the inverse function theorem, ``T1 = G1^{-1}``, ``T2 = -T1
G2[T1, T1]``, and the log-likelihood ``l = y' theta~ - n lse(theta~)`` is chained through them
exactly (``H = T1'(l'' - g.G2) T1`` and its derivative). So the engine's AGQ with exact
gradients works unchanged for models such as marginal cumulative logits with global odds
ratios (model 6.1-6.3), for which no package offers random effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError, SpecError
from ._families import Derivs, Family, multinomial_constant
from ._implicit_kernel import implicit_points, jacobian_at


@dataclass
class ImplicitMultinomial(Family):
    """Multinomial blocks with ``C log(A pi) = eta``, pi solved numerically.

    Parameters
    ----------
    y : ndarray (B, K)
    C : ndarray (K - 1, R)
    A : ndarray (R, K), non-negative, every row with a positive entry
    """

    y: np.ndarray
    C: np.ndarray
    A: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "implicit-multinomial"
    coefficient: bool = True
    tol: float = 1e-12
    max_iter: int = 100

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        self.C = np.asarray(self.C, dtype=float)
        self.A = np.asarray(self.A, dtype=float)
        k = self.y.shape[1]
        if self.A.ndim != 2 or self.A.shape[1] != k:
            raise SpecError(f"A must have {k} columns (one per cell), got shape {self.A.shape}")
        if self.C.ndim != 2 or self.C.shape != (k - 1, self.A.shape[0]):
            raise SpecError(f"C must have shape ({k - 1}, {self.A.shape[0]}) for {k} cells and "
                            f"{self.A.shape[0]} rows of A, got {self.C.shape}")
        if np.any(self.A < 0) or np.any(self.A.sum(axis=1) <= 0):
            raise SpecError("A must be non-negative with a positive entry in every row")
        self.n_eta = k - 1
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)
        self._kernel_arrays()
        # G is invertible near pi uniform only if C d log(A pi) / d theta has full rank
        g1 = jacobian_at(np.zeros(k - 1), self._C, self._aptr, self._aidx, self._aval,
                         self._csum)
        if np.linalg.matrix_rank(g1) < k - 1:
            raise SpecError("C log(A pi) does not determine pi: its Jacobian at the uniform "
                            "table has rank "
                            f"{np.linalg.matrix_rank(g1)} < {k - 1} (constraints dependent)")
        self._theta_cache: dict[tuple[int, ...], np.ndarray] = {}

    def _kernel_arrays(self) -> None:
        """A in compressed rows (its zeros skipped) and the row sums of C, for the kernel."""
        nz = self.A != 0
        self._aptr = np.r_[0, np.cumsum(nz.sum(axis=1))].astype(np.int64)
        self._aidx = np.nonzero(nz)[1].astype(np.int64)
        self._aval = np.ascontiguousarray(self.A[nz])
        self._C = np.ascontiguousarray(self.C)
        self._csum = self._C.sum(axis=1)

    def _start(self, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
        """Starting thetas for points of ``shape`` and whether nodes chain within a block."""
        cache = self._theta_cache
        if shape in cache:
            return cache[shape].copy(), False
        modes = cache.get(shape[:1] + (1,) + shape[2:])
        if modes is not None:
            return np.repeat(modes, shape[1], axis=1), False
        return np.zeros(shape), True

    def _run(self, eta: np.ndarray, order: int, y: np.ndarray | None = None
             ) -> tuple[np.ndarray, ...]:
        """theta, l, g, H, T at every point of ``eta`` (B, N, m) by the compiled kernel, with
        counts ``y`` (B, K) (default: the family's)."""
        eta = np.ascontiguousarray(eta, dtype=float)
        y = np.ascontiguousarray(self.y if y is None else y, dtype=float)
        if eta.ndim != 3 or eta.shape[0] != y.shape[0] or eta.shape[2] != self.n_eta:
            raise FitError(f"linear predictor of shape {eta.shape} for {y.shape[0]} "
                           f"blocks of {self.n_eta} constraints")
        if not np.all(np.isfinite(eta)):
            raise FitError("non-finite linear predictor in the inversion C log(A pi) = eta")
        nb, nn, m = eta.shape
        theta, chain = self._start(eta.shape)
        ell = np.empty((nb, nn))
        g = np.empty((nb, nn, m)) if order >= 1 else np.empty((0, 0, 0))
        H = np.empty((nb, nn, m, m)) if order >= 2 else np.empty((0, 0, 0, 0))
        T = np.empty((nb, nn, m, m, m)) if order >= 3 else np.empty((0, 0, 0, 0, 0))
        status = np.zeros((nb, nn), dtype=np.int64)
        implicit_points(y, self._C, self._aptr, self._aidx, self._aval, self._csum, eta,
                        theta, chain, order, self.tol, self.max_iter, ell, g, H, T, status)
        if status.any():
            raise FitError("the inversion C log(A pi) = eta did not converge: the linear "
                           "predictor may lie outside the model's range")
        if len(self._theta_cache) >= 4:  # shapes: modes, nodes, and what a caller adds
            self._theta_cache.pop(next(iter(self._theta_cache)))
        self._theta_cache[eta.shape] = theta
        return theta, ell, (g if order >= 1 else None), (H if order >= 2 else None), \
            (T if order >= 3 else None)

    def solve(self, eta: np.ndarray) -> np.ndarray:
        """theta with ``C log(A softmax(theta, 0)) = eta`` (any leading shape) by Newton."""
        flat = np.asarray(eta, dtype=float).reshape(-1, 1, self.n_eta)
        y = np.zeros((flat.shape[0], self.n_eta + 1))
        return self._run(flat, 0, y)[0].reshape(np.shape(eta))

    # --------------------------------------------------------------- family interface
    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        _, l, g, H, T = self._run(eta, order)
        return l, g, H, T

    def probabilities(self, eta: np.ndarray) -> np.ndarray:
        theta = self.solve(eta)
        full = np.concatenate([theta, np.zeros(theta.shape[:-1] + (1,))], axis=-1)
        e = np.exp(full - full.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return self.y.sum(axis=1, keepdims=True) * self.probabilities(eta)

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def subset(self, blocks: np.ndarray) -> ImplicitMultinomial:
        return ImplicitMultinomial(self.y[blocks], self.C, self.A, self.cells[blocks],
                                   self.name, self.coefficient, self.tol, self.max_iter)
