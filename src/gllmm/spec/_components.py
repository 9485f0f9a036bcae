"""Clusters of a formula design: the connected components of rows linked by shared groups.

Two rows are in one cluster when they share a group of any random term (or a stratum), and
clusters are closed under that relation: union-find (Tarjan 1975) over the groups, with path
halving, in O(rows x groupings) time and O(groups) memory, compiled. A graph search (scipy's
``connected_components``) over rows and groups costs tens of microseconds of conversions on a
small design and a graph of rows + groups nodes on a large one.

References
----------
Tarjan, R. E. (1975). Efficiency of a good but not linear set union algorithm. JACM 22,
215-225.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit


@njit(inline=True)
def _root(parent, x):  # pragma: no cover - compiled
    while parent[x] != x:
        parent[x] = parent[parent[x]]  # path halving
        x = parent[x]
    return x


@njit
def row_components(nodes, n_nodes):  # pragma: no cover - compiled
    """Cluster of each row, numbered in order of first appearance, and the number of clusters.

    ``nodes`` (groupings, rows) holds each row's group in every grouping, as node indices in
    ``0..n_nodes - 1`` (the groupings' codes offset to distinct ranges)."""
    k, n = nodes.shape
    parent = np.arange(n_nodes)
    for r in range(n):
        a = _root(parent, nodes[0, r])
        for t in range(1, k):
            b = _root(parent, nodes[t, r])
            if a < b:
                parent[b] = a
            elif b < a:
                parent[a] = b
                a = b
    label = np.full(n_nodes, -1)
    cluster = np.empty(n, dtype=np.int64)
    count = 0
    for r in range(n):
        root = _root(parent, nodes[0, r])
        if label[root] < 0:
            label[root] = count
            count += 1
        cluster[r] = label[root]
    return cluster, count
