"""ML fitting of GLLMs with closed-form means (no random effects) by Newton's method.

Fisher scoring / Newton on ``l(X beta)`` with the family's exact Hessian
``-X' H X``, step halving on the log-likelihood; stops when the Newton decrement is below
``tol``. Sampling zeros that drive an estimate to infinity are detected (fitted mean of a zero
cell collapsing to 0 while the log-likelihood still creeps up) and reported, never silently
returned as a finite number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import ConvergenceWarning, InfiniteEstimateWarning, SpecError
from ..spec._design import Design
from ..spec._matrices import aliased_columns


@dataclass
class GlmFit:
    beta: np.ndarray
    loglik: float
    information: np.ndarray
    n_iterations: int
    converged: bool
    infinite_cells: np.ndarray  # indices into family.cells (flattened) of collapsing zero cells


#: Smallest eigenvalue of the unit-diagonal Gram matrix of X that proves full column rank
#: without the pivoted QR (``_clearly_full_rank``).
GRAM_MIN_EIGENVALUE = 1e-8


def _scaled_gram(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(G, s)``: the Gram matrix of X's columns scaled to unit norm (``s`` their norms), or
    None when a column is zero."""
    gram = flat.T @ flat
    s = np.sqrt(gram.diagonal())
    if not (s.min() > 0 and np.isfinite(s.max())):  # NaN fails both; finite norms bound G
        return None
    return gram / s / s[:, None], s


def _design_gram(design: Design) -> tuple[np.ndarray, np.ndarray] | None:
    """``_scaled_gram`` of the design's X, found once per design (the rank check and the
    least-squares start both read it)."""
    return design.derived("scaled_gram",
                          lambda d: _scaled_gram(d.X.reshape(-1, d.n_fixed)))


def _clearly_full_rank(flat: np.ndarray, scaled: tuple | None = None) -> bool:
    """Whether X has full column rank by a margin no rounding blurs, from the smallest
    eigenvalue of its unit-norm Gram matrix (one small symmetric eigenproblem, a quarter of
    ``aliased_columns``'s pivoted QR on a model matrix of a few dozen rows).

    ``lambda_min > 1e-8`` gives ``sigma_min > 1e-4`` for the unit-norm columns; every diagonal
    entry of a QR is at least ``sigma_min`` and the first is at most 1, far above
    ``aliased_columns``'s relative tolerance ``max(n, p) eps``, so its answer would be "no
    aliased column" (the eigenvalue's rounding error is about ``p eps``). Designs that fail
    this test go to ``aliased_columns``, which decides and names the columns.
    """
    scaled = _scaled_gram(flat) if scaled is None else scaled
    if scaled is None:
        return False
    w, _, info = scipy.linalg.lapack.dsyevd(scaled[0], compute_v=0)
    return info == 0 and w[0] > GRAM_MIN_EIGENVALUE


def check_full_rank(design: Design) -> None:
    """Raise SpecError naming the aliased fixed-effect columns of a rank-deficient X (checked
    once per design: X does not change)."""
    if design.n_fixed:
        design.derived("full_rank", _check_full_rank)


def _check_full_rank(design: Design) -> bool:
    flat = design.X.reshape(-1, design.n_fixed)
    if _clearly_full_rank(flat, _design_gram(design)):
        return True
    bad = aliased_columns(flat, list(design.fixed_names))
    if bad:
        raise SpecError(
            "the fixed-effects design is rank deficient; aliased columns: " + ", ".join(bad)
        )
    return True


def fit_glm(
    design: Design,
    beta0: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    warn: bool = True,
) -> GlmFit:
    """Newton-Raphson ML for ``eta = X beta + offset`` (random effects ignored).

    Parameters
    ----------
    design : Design
    beta0 : ndarray (p,), optional
        Start; defaults to a least-squares start on the family's empirical log scale.
    """
    fam = design.family
    X = design.X
    p = design.n_fixed
    beta = _default_start(design) if beta0 is None else np.asarray(beta0, dtype=float).copy()

    derivs, data, compiled = _derivatives_function(design)
    info = np.empty((p, p))
    beta = np.ascontiguousarray(beta, dtype=float)
    if compiled:
        from ._loops import newton_glm

        beta, ll, it, converged = newton_glm(data, beta, tol, max_iter, info)
    else:
        from .._jit import bind
        from .._small_linalg import solve_numpy
        from ._loops import newton_template

        core = bind(newton_template, "newton_python", DERIVS=derivs, SOLVE=solve_numpy)
        beta, ll, it, converged = core(data, beta, tol, max_iter, info)
    infinite = np.zeros(0, dtype=int)
    if np.abs(beta).max(initial=0.0) > 15:  # only then can zero cells be collapsing
        mu = fam.mean(X @ beta + design.offset)
        infinite = np.flatnonzero(((fam.y == 0) & (mu < 1e-7 * max(1.0, fam.y.sum()))).ravel())
    if warn and infinite.size:
        cells = fam.cells.ravel()[infinite]
        warnings.warn(
            "sampling zeros push estimates towards infinity (ML estimate does not exist); "
            f"fitted counts collapse to 0 in table rows {cells.tolist()[:20]}",
            InfiniteEstimateWarning,
            stacklevel=2,
        )
    elif warn and not converged:
        warnings.warn(f"Newton did not converge in {max_iter} iterations", ConvergenceWarning,
                      stacklevel=2)
    return GlmFit(beta, ll + float(fam.constant().sum()), info, it, converged, infinite)


def _numpy_derivs(design: Design, beta: np.ndarray, order: int, score: np.ndarray,
                  info: np.ndarray) -> float:
    eta = (design.X @ beta + design.offset)[:, None, :]
    l, g, H, _ = design.family.derivatives(eta, order)
    if order >= 1:
        score[:] = np.einsum("bj,bjp->p", g[:, 0], design.X)
    if order >= 2:
        info[:] = -np.einsum("bjp,bjk,bkr->pr", design.X, H[:, 0], design.X)
    return float(l.sum())


def _derivatives_function(design: Design) -> tuple:
    """``(derivs, data, compiled)`` with ``derivs(data, beta, order, score, info) -> l``
    (without the family constant): the compiled kernel for the families it knows, else the
    family's numpy derivatives."""
    from .. import _jit
    from ..links._families import BINOMIAL, CUMULATIVE_LOGIT, POISSON

    arrays = design.family.compiled() if _jit.HAVE_NUMBA else None
    if arrays is None or arrays.code not in (POISSON, BINOMIAL, CUMULATIVE_LOGIT):
        return _numpy_derivs, design, False
    from ._loops import glm_derivatives_cb

    data = (*arrays, np.ascontiguousarray(design.X, dtype=float),
            np.ascontiguousarray(design.offset, dtype=float))
    return glm_derivatives_cb, data, True


def _default_start(design: Design) -> np.ndarray:
    """Least squares of a crude log-scale response on X (Poisson), else zeros."""
    fam = design.family
    p = design.n_fixed
    if fam.name == "poisson":
        target = (np.log(fam.y + 0.5) - design.offset).reshape(-1)
        flat = design.X.reshape(-1, p)
        scaled = _design_gram(design)
        if scaled is not None:
            # normal equations by Cholesky where they are well conditioned (LAPACK directly:
            # numpy's lstsq wrapper costs more than the solve), else least squares
            gram, s = scaled
            lapack = scipy.linalg.lapack
            chol, info = lapack.dpotrf(gram)
            if info == 0 and lapack.dpocon(chol, np.abs(gram).sum(axis=0).max())[0] > 1e-8:
                return lapack.dpotrs(chol, (flat.T @ target) / s)[0] / s
        return np.linalg.lstsq(flat, target, rcond=None)[0]
    if fam.name == "affine-separable":
        # ordered starting cut points for cumulative-type links keep probabilities positive
        return np.zeros(p)
    return np.zeros(p)
