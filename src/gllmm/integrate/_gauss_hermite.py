"""Gauss-Hermite rules for the standard normal distribution.

Golub-Welsch: nodes are eigenvalues of the Jacobi matrix of the probabilists' Hermite
polynomials, weights the squared first components of the eigenvectors. Weights sum to one, so
``sum(w * f(z))`` approximates ``E[f(Z)]`` for ``Z ~ N(0, 1)`` (MixedModels.jl ``GHnorm``,
lme4 ``GHrule``).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np


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
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be at least 1, got {n_nodes}")
    if n_nodes == 1:
        return np.zeros(1), np.ones(1)
    k = np.arange(1, n_nodes, dtype=float)
    jacobi = np.diag(np.sqrt(k), 1) + np.diag(np.sqrt(k), -1)
    nodes, vectors = np.linalg.eigh(jacobi)
    weights = vectors[0] ** 2
    # symmetrise: removes the tiny asymmetry left by the eigensolver
    nodes = (nodes - nodes[::-1]) / 2.0
    weights = (weights + weights[::-1]) / 2.0
    weights = weights / weights.sum()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


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
