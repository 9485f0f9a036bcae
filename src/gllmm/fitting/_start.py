"""Starting values of the likelihood fits: the GLLM's fixed effects (no random effects) and
standard deviations at a fixed value, with a starting curvature for the quasi-Newton search."""

from __future__ import annotations

import numpy as np

from ..spec._design import Design
from ._glm import fit_glm


def default_start(design: Design, sd_start: float = 0.5) -> np.ndarray:
    """Fixed effects from the GLLM fit (no random effects); SDs at ``sd_start``, correlations 0."""
    return _start_and_curvature(design, sd_start)[0]


def _start_and_curvature(design: Design, sd_start: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Start values and an initial inverse-Hessian guess for the quasi-Newton iterations
    (``_glm_start`` without the log-likelihood)."""
    return _glm_start(design, sd_start)[:2]


def _glm_start(design: Design, sd_start: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    """Start values, an initial inverse-Hessian guess for the quasi-Newton iterations and the
    GLLM's log-likelihood (the boundary fit's: every objective reproduces it, to rounding, with
    the covariance parameters at 0 and the fixed effects at the GLLM's; NaN where the GLLM has
    infinite estimates or did not converge).

    The fixed-effects block is the inverse of the GLLM's exact information (random effects
    only inflate it), the covariance block 0.05 I (the inverse curvature of an SD estimated
    with SE about 0.2); BFGS refines both.
    """
    start = design.notes.get("start")
    beta0 = None if start is None else np.asarray(start, dtype=float)[: design.n_fixed]
    glm = fit_glm(design, beta0=beta0, warn=False)
    cov = design.covariance
    theta = np.zeros(0) if cov is None else np.where(np.asarray(cov.lower) == 0, sd_start, 0.0)
    n = design.n_fixed + len(theta)
    # a small covariance block keeps the first steps from jumping onto sigma = 0
    hinv = np.zeros((n, n))
    hinv.flat[:: n + 1] = 0.05
    try:
        inv = np.linalg.inv(glm.information)
        if np.isfinite(inv).all() and (inv.diagonal() > 0).all():
            hinv[: design.n_fixed, : design.n_fixed] = inv
    except np.linalg.LinAlgError:
        pass
    # infinite estimates: the boundary fit is a limit, not a point the search could start from
    finite = glm.converged and glm.infinite_cells.size == 0
    return np.concatenate((glm.beta, theta)), hinv, float(glm.loglik) if finite else float("nan")
