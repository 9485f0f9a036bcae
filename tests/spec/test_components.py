"""Clusters of formula designs: the union-find components equal a graph search's, and the Z
built from the rows' entries equals the one summed from coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from gllmm.spec import build_design
from gllmm.spec._build import _row_clusters
from gllmm.spec._components import row_components


def _reference(codes: list[np.ndarray]) -> np.ndarray:
    """Components of the graph of rows and groups (scipy), numbered by first row."""
    n = len(codes[0])
    offsets = np.cumsum([0] + [int(c.max()) + 1 for c in codes])
    rows = np.concatenate([np.arange(n)] * len(codes))
    nodes = np.concatenate([n + offsets[i] + c for i, c in enumerate(codes)])
    total = n + offsets[-1]
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, nodes)), shape=(total, total))
    comp = connected_components(graph, directed=False)[1][:n]
    return pd.factorize(comp)[0]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_terms", [1, 2, 3])
def test_components_equal_a_graph_search(seed, n_terms):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    blocks = rng.integers(1, 8, n)  # separate blocks of groups: several components
    codes = [pd.factorize(blocks * 100 + rng.integers(0, int(rng.integers(1, 6)), n))[0]
             for _ in range(n_terms)]
    # exact: the same cluster number for every row
    np.testing.assert_array_equal(_row_clusters(codes, n), _reference(codes))


def test_chain_of_groups_is_one_cluster():
    # a path a0-b0-a1-b1-...: one component, reached only through every link
    k = 500
    a = np.r_[np.arange(k), np.arange(k - 1)]
    b = np.r_[np.arange(k), np.arange(1, k)]
    cluster, count = row_components(np.vstack([a, 1000 + b]).astype(np.int64), 2000)
    assert count == 1 and not cluster.any()


def test_crossed_z_has_one_entry_per_term_and_row():
    rng = np.random.default_rng(3)
    n = 80
    d = pd.DataFrame({"y": rng.poisson(2, n), "x": rng.normal(size=n),
                      "a": rng.choice(list("pqrs"), n), "b": rng.integers(0, 5, n)})
    design = build_design(d, "y ~ x + (1 | a) + (0 + x | b)")
    z = design.z_matrix.toarray()
    order = design.notes["order"]
    # the reference: Z from coordinates (row, group column), rows in the design's order
    a = pd.factorize(d["a"])[0]
    b = pd.factorize(d["b"])[0]
    ref = np.zeros((n, 4 + 5))
    ref[np.arange(n), a] = 1.0
    ref[np.arange(n), 4 + b] = d["x"].to_numpy()
    np.testing.assert_array_equal(z, ref[order])  # exact: the same floats placed
