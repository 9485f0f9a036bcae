import numpy as np
import pytest

from gllmm.integrate import gauss_hermite, product_rule


def test_one_node_is_laplace():
    z, w = gauss_hermite(1)
    assert z.tolist() == [0.0] and w.tolist() == [1.0]


def test_two_nodes():
    z, w = gauss_hermite(2)
    np.testing.assert_allclose(z, [-1.0, 1.0], atol=1e-14)
    np.testing.assert_allclose(w, [0.5, 0.5], atol=1e-14)


@pytest.mark.parametrize("k", [3, 7, 15, 30])
def test_weights_sum_to_one_and_symmetric(k):
    z, w = gauss_hermite(k)
    assert abs(w.sum() - 1) < 1e-14
    np.testing.assert_array_equal(z, -z[::-1])


def test_second_moment_of_shifted_normal():
    # E[X^2] for X ~ N(3, 2^2) is 9 + 4 = 13, exact for k >= 2
    z, w = gauss_hermite(5)
    assert abs(np.sum(w * (3 + 2 * z) ** 2) - 13.0) < 1e-12


def test_high_moment_exactness():
    # a k-node rule integrates polynomials up to degree 2k - 1 exactly: E[Z^8] = 105
    z, w = gauss_hermite(5)
    assert abs(np.sum(w * z**8) - 105.0) < 1e-10


def test_product_rule():
    nodes, weights = product_rule(4, 2)
    assert nodes.shape == (16, 2)
    assert abs(weights.sum() - 1) < 1e-14
    # E[Z1^2 Z2^2] = 1
    assert abs(np.sum(weights * nodes[:, 0] ** 2 * nodes[:, 1] ** 2) - 1) < 1e-12


def test_invalid():
    with pytest.raises(ValueError):
        gauss_hermite(0)


@pytest.mark.parametrize("n", [60, 100, 150, 200, 300])
def test_outer_weights_accurate_relative_to_exp_z2(n):
    """Adaptive quadrature multiplies each weight by exp(z^2 / 2): the rule must integrate
    the wide normal density N(0, 2^2) exactly in that form (sum w_i e^{z_i^2/2} s phi(s z_i)
    sqrt(2 pi) = 1 for s = 1/2). Eigenvector weights were off by up to e^130 here from ~60
    nodes on (a 150-node fit gave log-likelihood +4539). Tolerance 1e-10."""
    z, w = gauss_hermite(n)
    s = 0.5
    total = np.sum(w * np.exp(z**2 / 2 - (s * z) ** 2 / 2)) * s
    assert total == pytest.approx(1.0, abs=1e-10)
    assert np.all(w > 0)


@pytest.mark.parametrize("bad,match", [(0, "at least 1"), (2.7, "must be an integer"),
                                       (True, "must be an integer"), ("3", "must be an integer"),
                                       (301, "at most 300"), (1000, "at most 300")])
def test_node_counts_refused(bad, match):
    from gllmm.errors import SpecError

    with pytest.raises(SpecError, match=match):
        gauss_hermite(bad)
