"""GLLMMs in their general matrix form ``C log(A pi) = X beta + Z u`` (no closed form).

Each block (a multinomial: one stratum's table, one cluster's response pattern) has the same C
and A; pi is found by inversion at every quadrature node (``links.ImplicitMultinomial``). This
is the general path of the paper's Sections 3 and 6; closed-form families are faster where
they apply, and both give the same estimates (tests/models/test_general.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from ..errors import SpecError
from ..links._implicit import ImplicitMultinomial
from ..spec import Design, block_structure, global_odds_ratios, marginal_logits
from ..tables._validate import check_array, check_counts, check_integer


def general_design(
    counts: np.ndarray,
    C: np.ndarray,
    A: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    fixed_names: tuple[str, ...] | None = None,
    random_names: tuple[str, ...] | None = None,
    covariance: str = "unstructured",
    group: str = "cluster",
    individual: bool = True,
    notes: dict[str, Any] | None = None,
) -> Design:
    """Design for ``C log(A pi_b) = X_b beta + offset_b + Z_b u_c(b)`` with multinomial blocks.

    Parameters
    ----------
    counts : ndarray (B, K)
    C : ndarray (K - 1, R);  A : ndarray (R, K)
    X : ndarray (B, K - 1, p);  Z : ndarray (B, K - 1, q), optional
    cluster : ndarray (B,), cluster index of each block (non-decreasing after sorting)
    covariance : {"identity", "diagonal", "unstructured"}
    """
    counts = check_counts(counts, "counts")
    if counts.ndim != 2:
        raise SpecError(f"counts must be a (blocks, categories) array; got shape {counts.shape}")
    nb, k = counts.shape
    C = check_array(C, "C", (2,), (k - 1, None))
    A = check_array(A, "A", (2,), (C.shape[1], k))
    X = check_array(X, "X", (2, 3), (nb, k - 1, None))
    if X.ndim == 2:
        X = np.broadcast_to(X, (nb,) + X.shape).copy()
    fam = ImplicitMultinomial(counts, C, A)
    fam.coefficient = not individual
    if Z is None:
        Z = np.zeros((nb, k - 1, 0))
    Z = check_array(Z, "Z", (2, 3), (nb, k - 1, None))
    if Z.ndim == 2:
        Z = np.broadcast_to(Z, (nb,) + Z.shape).copy()
    q = Z.shape[2]
    cluster = np.arange(nb) if cluster is None else np.asarray(cluster)
    if cluster.shape != (nb,):
        raise SpecError(f"cluster must have one entry per block ({nb}); got shape "
                        f"{cluster.shape}")
    if pd.isna(cluster).any():
        raise SpecError(f"cluster has missing values at blocks "
                        f"{np.flatnonzero(pd.isna(cluster))[:10].tolist()}; give every block "
                        "a cluster")
    order = np.argsort(cluster, kind="stable")
    _, cl = np.unique(cluster[order], return_inverse=True)
    offset = np.zeros((nb, k - 1)) if offset is None else check_array(
        offset, "offset", (2,), (nb, k - 1))
    fam = fam.subset(order)
    fam.coefficient = not individual
    p = X.shape[2]
    fixed_names = fixed_names or tuple(f"beta{i}" for i in range(p))
    random_names = random_names or tuple(f"u{i}" for i in range(q))
    cov = block_structure([(group, random_names, covariance if q > 1 else "identity",
                            [np.arange(q)])], q) if q else None
    return Design(fam, X[order], Z[order], offset[order], cl, cov, tuple(fixed_names),
                  tuple(np.unique(cluster[order])), tuple(random_names), dict(notes or {}))


def dale_matrices(n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """C and A of Dale's bivariate ordinal model for an I x J table (row-major cells).

    Rows of ``C log(A pi)``: the I - 1 marginal cumulative logits of the row variable
    ``log P(X <= i) - log P(X > i)``, the J - 1 of the column variable, then the
    (I - 1)(J - 1) log global odds ratios ``log[P(X<=i,Y<=j) P(X>i,Y>j) / (P(X<=i,Y>j)
    P(X>i,Y<=j))]`` (Dale 1986; paper model 6.1-6.3): ``spec.marginal_logits`` and
    ``spec.global_odds_ratios`` stacked.
    """
    shape = (check_integer(n_rows, "n_rows", minimum=2),
             check_integer(n_cols, "n_cols", minimum=2))
    n_rows, n_cols = shape
    margins = marginal_logits(shape, (0, 1), "cumulative", sparse=False)
    odds = global_odds_ratios(shape, (0, 1), sparse=False)
    labels = ([f"row logit {i + 1}" for i in range(n_rows - 1)]
              + [f"col logit {j + 1}" for j in range(n_cols - 1)]
              + [f"log global OR {i + 1},{j + 1}" for i in range(n_rows - 1)
                 for j in range(n_cols - 1)])
    return (scipy.linalg.block_diag(margins.C, odds.C), np.vstack([margins.A, odds.A]),
            labels)
