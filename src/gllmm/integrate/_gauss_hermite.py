"""Gauss-Hermite rules for the standard normal distribution.

Golub-Welsch: nodes are eigenvalues of the Jacobi matrix of the probabilists' Hermite
polynomials (MixedModels.jl ``GHnorm``, lme4 ``GHrule``), polished by Newton steps on the
polynomial. Weights are the Christoffel numbers ``w_i = 1 / sum_{k<n} p_k(z_i)^2`` of the
orthonormal polynomials ``p_k``: a sum of positive terms, accurate to a few ulps *relative*
even for the outermost nodes. (The squared first components of the eigenvectors are accurate
only in absolute terms, about 1e-16: from about 60 nodes on, the outer weights were wrong by
factors up to e^130, which adaptive quadrature multiplies by ``exp(z^2 / 2)``: a 150-node fit
reported a log-likelihood of +4539.) Weights sum to one, so ``sum(w * f(z))`` approximates
``E[f(Z)]`` for ``Z ~ N(0, 1)``.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from ..tables._validate import check_integer

# Beyond this the outer weights (about exp(-z^2 / 2) with z up to sqrt(4 n + 2)) and the
# polynomial sums ~ exp(z^2 / 2) leave float64's range (1e-308 .. 1e308).
MAX_NODES = 300
TOO_MANY = (" (float64 cannot hold the outer weights of larger rules); use fewer nodes or the "
            "Laplace approximation (1 node): 15-50 nodes already agree to about 1e-10")


@lru_cache(maxsize=64)
def gauss_hermite(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n_nodes``-point rule for N(0, 1).

    Parameters
    ----------
    n_nodes : int
        Number of nodes, at least 1. One node gives (0, 1): the Laplace approximation.

    Returns
    -------
    nodes, weights : ndarray of shape (n_nodes,)
        Symmetric nodes (``nodes == -nodes[::-1]``) and positive weights summing to 1.
    """
    n_nodes = check_integer(n_nodes, "n_nodes (quadrature nodes per dimension)", 1, MAX_NODES,
                            hint=TOO_MANY)
    if n_nodes == 1:
        return np.zeros(1), np.ones(1)
    k = np.arange(1, n_nodes, dtype=float)
    jacobi = np.diag(np.sqrt(k), 1) + np.diag(np.sqrt(k), -1)
    nodes = np.linalg.eigvalsh(jacobi)
    for _ in range(2):
        p, p_prev, _sq = _orthonormal(nodes, n_nodes)
        nodes = nodes - p / (np.sqrt(n_nodes) * p_prev)  # p_n' = sqrt(n) p_{n-1}
    # symmetrise: removes the tiny asymmetry left by the eigensolver
    nodes = (nodes - nodes[::-1]) / 2.0
    weights = 1.0 / _orthonormal(nodes, n_nodes)[2]
    weights = (weights + weights[::-1]) / 2.0
    weights = weights / weights.sum()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _orthonormal(z: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p_n(z)``, ``p_{n-1}(z)`` and ``sum_{k<n} p_k(z)^2`` of the orthonormal Hermite
    polynomials for N(0, 1): ``p_{k+1} = (z p_k - sqrt(k) p_{k-1}) / sqrt(k + 1)``."""
    prev, cur = np.zeros_like(z), np.ones_like(z)
    total = np.ones_like(z)
    for j in range(n):
        prev, cur = cur, (z * cur - np.sqrt(j) * prev) / np.sqrt(j + 1.0)
        if j < n - 1:
            total += cur * cur
    return cur, prev, total


@lru_cache(maxsize=64)
def product_rule(n_nodes: int, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product Gauss-Hermite rule for N(0, I_dimension).

    Returns
    -------
    nodes : ndarray of shape (n_nodes ** dimension, dimension)
    weights : ndarray of shape (n_nodes ** dimension,), summing to 1
    """
    z, w = gauss_hermite(n_nodes)
    if dimension == 0:
        return np.zeros((1, 0)), np.ones(1)
    nodes = np.array(list(itertools.product(z, repeat=dimension)), dtype=float)
    weights = np.prod(np.array(list(itertools.product(w, repeat=dimension))), axis=1)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights
