"""Helpers shared by test modules of several folders (importable as ``helpers``: pytest puts
``tests/``, the folder of the top ``conftest.py``, on the import path)."""

from __future__ import annotations

import warnings

import numpy as np

import gllmm


def quiet_fit(design, **kw):
    """``gllmm.fit(design, **kw)`` with its warnings silenced (tests that check estimates)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, **kw)


def assert_derivatives_match_differences(family, eta, atol=(1e-6, 1e-6, 1e-5), rtol=5e-5,
                                         eps=1e-6):
    """A family's gradient, Hessian and third derivatives in eta against central differences
    (step ``eps``) of its value, gradient and Hessian, to ``rtol`` and ``atol`` (one each)."""
    _, g, H, T = family.derivatives(eta, 3)
    for a in range(eta.shape[-1]):
        e = eta.copy()
        e[..., a] += eps
        lp, gp, Hp, _ = family.derivatives(e, 3)
        e[..., a] -= 2 * eps
        lm, gm, Hm, _ = family.derivatives(e, 3)
        for up, down, exact, tol in zip((lp, gp, Hp), (lm, gm, Hm), (g, H, T), atol, strict=True):
            np.testing.assert_allclose((up - down) / (2 * eps), exact[..., a], rtol=rtol,
                                       atol=tol)


def assert_same_marginal(one, other, x, atol, posterior_atol=1e-8):
    """Two marginal likelihoods agree at ``x``: value and gradient to ``atol``, posterior
    modes, means, sds and linear predictors to ``posterior_atol``."""
    v1, g1 = one.value_and_gradient(x)
    v2, g2 = other.value_and_gradient(x)
    assert abs(v1 - v2) < atol
    np.testing.assert_allclose(g1, g2, rtol=0, atol=atol)
    p1, p2 = one.posterior(x), other.posterior(x)
    for key in ("mode", "mean", "sd", "mode_sd", "eta_mode"):
        np.testing.assert_allclose(p1[key], p2[key], rtol=0, atol=posterior_atol, err_msg=key)


def stratified_association_table(seed: int = 23):
    """A 20 x 30 x 3 Poisson table with row and column effects, a per-stratum association
    beta_k = 0.3, 0.6, 0.9 on the scores s, t = linspace(-1, 1) and cell-wise N(0, 0.4^2)
    effects; returns (table, s, t)."""
    rng = np.random.default_rng(seed)
    s, t = np.linspace(-1, 1, 20), np.linspace(-1, 1, 30)
    eta = (0.8 + rng.normal(0, 0.3, (20, 1, 1)) + rng.normal(0, 0.3, (1, 30, 1))
           + np.array([0.3, 0.6, 0.9]) * (s[:, None] * t[None, :])[..., None]
           + rng.normal(0, 0.4, (20, 30, 3)))
    return rng.poisson(np.exp(eta)).astype(float), s, t
