"""The compiled inversion of ``C log(A pi) = eta`` against closed forms (Plackett/Dale)."""

from __future__ import annotations

import numpy as np
import pytest

from gllmm.errors import FitError
from gllmm.links import dale_full_family
from gllmm.links._implicit import ImplicitMultinomial
from gllmm.models._general import dale_matrices


def _dale_points(rng: np.random.Generator, ni: int, nj: int, nb: int, nn: int) -> np.ndarray:
    """eta (nb, nn, I J - 1) inside Dale's range: spread cut points, moderate log ORs."""
    nr, nc = ni - 1, nj - 1
    eta = np.empty((nb, nn, ni * nj - 1))
    eta[..., :nr] = 0.3 * rng.normal(size=(nb, nn, 1)) + np.linspace(-1, 1, nr)
    eta[..., nr:nr + nc] = 0.3 * rng.normal(size=(nb, nn, 1)) + np.linspace(-1, 1, nc)
    eta[..., nr + nc:] = 0.6 * rng.normal(size=(nb, nn, nr * nc))
    return eta


@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (3, 3)])
def test_derivatives_equal_plackett_closed_form(shape):
    """l, g, H, T through the numerical inverse equal Dale's closed form (Plackett's F and
    its implicit-function derivatives, ``links.DaleFull``) to 1e-8 relative."""
    ni, nj = shape
    rng = np.random.default_rng(sum(shape))
    y = rng.poisson(3, size=(4, ni * nj)).astype(float)
    eta = _dale_points(rng, ni, nj, 4, 3)
    C, A, _ = dale_matrices(ni, nj)
    got = ImplicitMultinomial(y, C, A).derivatives(eta, 3)
    ref = dale_full_family(y.reshape(4, ni, nj)).derivatives(eta, 3)
    for u, v in zip(got, ref, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-8, atol=1e-8 * np.abs(v).max())


def test_warm_starts_do_not_change_values():
    """A family that solved other points first (warm starts from its cache) gives the values
    of a fresh one to 1e-10."""
    rng = np.random.default_rng(5)
    C, A, _ = dale_matrices(3, 3)
    y = rng.poisson(3, size=(6, 9)).astype(float)
    first, second = _dale_points(rng, 3, 3, 6, 5), _dale_points(rng, 3, 3, 6, 5)
    warm = ImplicitMultinomial(y, C, A)
    warm.derivatives(first, 3)
    warm.derivatives(first[:, :1], 2)
    got = warm.derivatives(second, 3)
    ref = ImplicitMultinomial(y, C, A).derivatives(second, 3)
    for u, v in zip(got, ref, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-10)


def test_probabilities_reproduce_the_constraints():
    """pi solved for eta satisfies C log(A pi) = eta to 1e-10, for any leading shape."""
    rng = np.random.default_rng(9)
    C, A, _ = dale_matrices(2, 3)
    eta = _dale_points(rng, 2, 3, 3, 4).reshape(2, 6, 5)
    pi = ImplicitMultinomial(np.ones((3, 6)), C, A).probabilities(eta)
    assert pi.shape == (2, 6, 6)
    np.testing.assert_allclose(np.log(pi @ A.T) @ C.T, eta, atol=1e-10)


def test_outside_the_range_raises_fit_error():
    """Log global ORs that make a cell negative (no pi solves them) raise FitError."""
    C, A, _ = dale_matrices(3, 3)
    eta = np.array([[[-3.0, 3.0, -3.0, 3.0, 12.0, -12.0, -12.0, 12.0]]])
    with pytest.raises(FitError, match="did not converge"):
        ImplicitMultinomial(np.ones((1, 9)), C, A).derivatives(eta, 1)
