"""From a data frame and a formula to the engine's Design (one block per row).

Clusters are the connected components of the random-effect groupings: one grouping gives one
cluster per group; nested terms ``(1 | a) + (1 | a:b)`` give one cluster per ``a`` holding
``u_a`` and every ``u_ab``; crossed terms give a single cluster (Laplace over the joint vector).
Within a cluster, each term has as many slots as it has groups there; the covariance block of a
term repeats over its slots.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import SpecError
from ..links import Binomial, Poisson
from ._design import Design, block_structure
from ._formula import group_codes, model_matrix, parse_formula


def count_column(data: pd.DataFrame, name: str) -> np.ndarray:
    """The count column as floats; SpecError naming rows with missing, negative or non-integer
    counts, or saying the column is empty or zero throughout."""
    if name not in data.columns:
        raise SpecError(f"unknown count column {name!r}; available: {', '.join(data.columns)}")
    y = pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y)
    if bad.any():
        raise SpecError(f"count column {name!r} has missing or non-numeric values in rows "
                        f"{np.flatnonzero(bad)[:10].tolist()}")
    if (y < 0).any():
        raise SpecError(f"count column {name!r} has negative counts in rows "
                        f"{np.flatnonzero(y < 0)[:10].tolist()}")
    if np.any(y != np.round(y)):
        raise SpecError(f"count column {name!r} has non-integer counts in rows "
                        f"{np.flatnonzero(y != np.round(y))[:10].tolist()}")
    if y.size == 0:
        raise SpecError(f"count column {name!r} is empty: the data have no rows")
    if not y.any():
        # every estimate would run off to -infinity (a fit "converges" at its start values)
        raise SpecError(f"count column {name!r} is zero in every row: there is nothing to fit")
    return y


def build_design(
    data: Any,
    formula: str,
    family: str = "poisson",
    covariance: str | None = None,
    title: str | None = None,
    scores: dict[str, Any] | None = None,
) -> Design:
    """Design for a Poisson log-linear or binomial logit GLLMM given by an lme4-style formula.

    Parameters
    ----------
    data : DataFrame or Table
        One row per cell (Poisson) or per binomial (``cbind(successes, failures) ~ ...``).
    formula : str
        ``count ~ fixed + (expr | group) + ...``.
    family : {"poisson", "binomial"}
    covariance : {"identity", "diagonal", "unstructured"}, optional
        Overrides the covariance implied by ``|`` (unstructured) / ``||`` (diagonal).
    """
    if hasattr(data, "data") and isinstance(data.data, pd.DataFrame):
        data = data.data
    if not isinstance(data, pd.DataFrame):
        raise SpecError("data must be a pandas DataFrame or a gllmm Table")
    if len(data) == 0:
        raise SpecError("the data have no rows")
    data = data.reset_index(drop=True)
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise SpecError("the formula needs a response: 'count ~ ...'")
    fam_name = family.lower()
    if fam_name == "poisson":
        y = count_column(data, parsed.response.strip())
    elif fam_name == "binomial":
        m = re.fullmatch(r"cbind\((\w+)\s*,\s*(\w+)\)", parsed.response.strip())
        if not m:
            raise SpecError("binomial formulas need 'cbind(successes, failures) ~ ...'")
        y = np.column_stack([count_column(data, m.group(1)), count_column(data, m.group(2))])
    else:
        raise SpecError(f"unknown family {family!r} for formula designs; use 'poisson' or "
                        "'binomial' (ordinal and association models have builders in "
                        "gllmm.models)")
    X, xnames = model_matrix(parsed.fixed, data, sparse_ok=True)
    n = len(data)
    terms = []
    for term in parsed.random:
        Zt, znames = model_matrix(term.expr, data)
        codes, labels = group_codes(data, term.group)
        terms.append((term, Zt, znames, codes, labels))

    if not terms:
        cluster = np.zeros(n, dtype=int)
        order = np.arange(n)
        Z = np.zeros((n, 1, 0))
        cov = None
        labels_out: tuple = ()
        rnames: tuple[str, ...] = ()
    else:
        cluster, order, Z, cov, labels_out, rnames = _random_layout(terms, n, covariance)
    fam = Poisson(y[order], np.arange(n)[order][:, None]) if fam_name == "poisson" else \
        Binomial(y[order], np.column_stack([2 * order, 2 * order + 1]))
    notes: dict[str, Any] = {"data": data, "formula": formula, "title": title or formula}
    if scores:
        notes["scores"] = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    if fam_name == "binomial":
        rows = data.loc[np.repeat(np.arange(n), 2)].reset_index(drop=True)
        rows["outcome"] = np.tile(["success", "failure"], n)
        notes["data"] = rows
    X = X[order] if sp.issparse(X) else X[order][:, None, :]
    return Design(fam, X, Z, np.zeros((n, 1)), cluster, cov, xnames,
                  labels_out, rnames, notes)


def _slots(cluster: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each row's slot: the rank of its group among its cluster's groups, in order of first
    appearance (0 when every cluster is one group)."""
    key = cluster.astype(np.int64) * (int(codes.max()) + 1) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    by_cluster = np.lexsort((first, cluster[first]))  # unique keys by cluster, then appearance
    c_sorted = cluster[first][by_cluster]
    starts = np.r_[0, np.flatnonzero(np.diff(c_sorted)) + 1]
    rank = np.arange(len(c_sorted)) - np.repeat(starts, np.diff(np.r_[starts, len(c_sorted)]))
    slot_of_key = np.empty(len(first), dtype=np.int64)
    slot_of_key[by_cluster] = rank
    return slot_of_key[inverse.ravel()]


def _random_layout(terms: list, n: int, covariance: str | None) -> tuple:
    # connected components of rows linked through shared groups
    offsets = np.cumsum([0] + [len(t[4]) for t in terms])
    rows = np.concatenate([np.arange(n)] * len(terms))
    nodes = np.concatenate([n + offsets[i] + t[3] for i, t in enumerate(terms)])
    total = n + offsets[-1]
    graph = coo_matrix((np.ones(len(rows)), (rows, nodes)), shape=(total, total))
    _, comp = connected_components(graph, directed=False)
    row_comp = comp[:n]
    _, cluster_of_row = np.unique(row_comp, return_inverse=True)
    order = np.argsort(cluster_of_row, kind="stable")
    cluster = cluster_of_row[order]
    n_clusters = int(cluster.max()) + 1

    specs = []
    z_rows, z_cols, z_vals = [], [], []
    pos = 0
    rnames: list[str] = []
    first_term_labels = None
    for term, Zt, znames, codes, labels in terms:
        qt = Zt.shape[1]
        # slot of each row's group within its cluster
        slot = _slots(cluster_of_row, codes)
        n_slots = int(slot.max()) + 1
        reps = pos + np.arange(n_slots)[:, None] * qt + np.arange(qt)[None, :]
        kind = covariance or ("diagonal" if term.diagonal else "unstructured")
        if qt == 1:
            kind = "identity"
        specs.append((term.group, znames, kind, reps))
        # Z's entries in O(rows x components): row r has Zt[r] in its group's columns
        z_rows.append(np.repeat(np.arange(n), qt))
        z_cols.append((pos + slot[:, None] * qt + np.arange(qt)[None, :]).ravel())
        z_vals.append(np.asarray(Zt, dtype=float).ravel())
        rnames.extend(f"{term.group}:{zn}" if n_slots == 1 else f"{term.group}[{s}]:{zn}"
                      for s in range(n_slots) for zn in znames)
        pos += n_slots * qt
        if first_term_labels is None and n_slots == 1:
            # cluster labels = group labels of the first single-slot term
            lab = np.empty(n_clusters, dtype=object)
            lab[cluster_of_row] = np.asarray(labels, dtype=object)[codes]
            first_term_labels = tuple(lab.tolist())
    q = pos
    # rows in cluster order; a (rows x q) CSR matrix, never dense (crossed designs have q in
    # the thousands)
    new_row = np.empty(n, dtype=np.int64)
    new_row[order] = np.arange(n)
    Z = sp.csr_matrix((np.concatenate(z_vals), (new_row[np.concatenate(z_rows)],
                                                np.concatenate(z_cols))), shape=(n, q))
    Z.sum_duplicates()
    Z.eliminate_zeros()
    cov = block_structure(specs, q)
    labels_out = first_term_labels or tuple(range(n_clusters))
    return cluster, order, Z, cov, labels_out, tuple(rnames)
