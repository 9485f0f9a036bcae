"""Clusters of formula designs: the union-find components equal a graph search's, the slots of
nested groups and the groups of interactions equal Python references, and the Z built from the
rows' entries equals the one summed from coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from gllmm.spec import build_design
from gllmm.spec._build import _row_clusters, _slots
from gllmm.spec._components import row_components
from gllmm.spec._formula import first_rows, group_codes


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


def _slots_reference(cluster, codes):
    """Rank of each row's group among its cluster's groups by first appearance, in Python."""
    seen: dict = {}
    out = []
    for c, g in zip(cluster.tolist(), codes.tolist(), strict=True):
        ranks = seen.setdefault(c, {})
        out.append(ranks.setdefault(g, len(ranks)))
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_slots_rank_groups_within_clusters_by_first_appearance(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    outer = pd.factorize(rng.integers(0, 9, n))[0]
    inner = pd.factorize(outer * 10 + rng.integers(0, 6, n))[0]  # nested in outer
    slots = _slots(outer, inner, first_rows(inner), int(outer.max()) + 1)
    np.testing.assert_array_equal(slots, _slots_reference(outer, inner))  # exact


@pytest.mark.parametrize("seed", range(4))
def test_interaction_groups_equal_the_tuples_of_their_columns(seed):
    rng = np.random.default_rng(seed)
    n = 120
    d = pd.DataFrame({"s": rng.choice(["x", "y", "z"], n), "i": rng.integers(0, 4, n),
                      "c": pd.Categorical(rng.choice(["p", "q"], n), categories=["q", "p"]),
                      "f": rng.choice([0.5, 1.5], n)})
    for group in ("s:i", "i:c", "c:s:f", "f:i"):
        cols = group.split(":")
        tuples = pd.Series(list(zip(*(d[c].to_numpy() for c in cols), strict=True)),
                           dtype=object)
        ref_codes, ref_levels = pd.factorize(tuples, sort=False)
        codes, labels = group_codes(d, group)
        np.testing.assert_array_equal(codes, ref_codes)  # exact
        assert labels == [":".join(map(str, t)) for t in ref_levels]
