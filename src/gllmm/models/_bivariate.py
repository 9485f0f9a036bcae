"""Bivariate ordinal responses with marginal and association models (paper eqs. 6.1-6.3).

For cluster s with responses ``(Y1s, Y2s)``:

    logit P(Y1s <= j) = alpha_1j + x1s' beta_1 + u_1s          (6.1)
    logit P(Y2s <= j) = alpha_2j + x2s' beta_2 + u_2s          (6.2)
    log theta_ij|s    = beta_0   + x3s' beta_3 + u_3s          (6.3)

with global odds ratios theta; each cluster's I x J table of probabilities follows by
inverting ``C log(A pi) = eta`` (Dale 1986; ``links.ImplicitMultinomial``). With binary
responses and matched pairs this is the model of Ten Have & Morabia (1999). No closed form in
the random effects, no other package: fitted by inversion nested in adaptive quadrature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..spec._build import count_column
from ..spec._formula import model_matrix
from ._general import dale_matrices, general_design

PARTS = ("marginal1", "marginal2", "association")


def _codes(s: pd.Series) -> tuple[np.ndarray, list]:
    levels = list(s.cat.categories) if isinstance(s.dtype, pd.CategoricalDtype) else \
        sorted(pd.unique(s))
    return pd.Categorical(s, levels).codes.astype(int), levels


def bivariate_ordinal(
    data: pd.DataFrame,
    y1: str,
    y2: str,
    cluster: str,
    marginal1: str = "1",
    marginal2: str = "1",
    association: str = "1",
    random: tuple[str, ...] = PARTS,
    covariance: str = "diagonal",
    count: str | None = None,
):
    """Design of model (6.1)-(6.3): one multinomial block per (cluster, covariate pattern).

    Parameters
    ----------
    data : DataFrame
        One row per observed pair (or per pattern with a ``count`` column).
    y1, y2 : str
        The two ordinal responses (categoricals keep their order; otherwise sorted).
    cluster : str
        Grouping of the random effects ``(u_1s, u_2s, u_3s)``.
    marginal1, marginal2, association : str
        Right-hand sides for the covariates of (6.1), (6.2) and (6.3), without intercepts
        (the cut points alpha and beta_0 are always included).
    random : tuple of {"marginal1", "marginal2", "association"}
        Which of the three equations carry a random intercept.
    covariance : {"diagonal", "unstructured", "identity"}
    """
    for c in (y1, y2, cluster):
        if c not in data.columns:
            raise SpecError(f"unknown column {c!r}; available: {', '.join(data.columns)}")
    bad = [r for r in random if r not in PARTS]
    if bad:
        raise SpecError(f"unknown random part(s) {bad}; choose from {PARTS}")
    df = data.reset_index(drop=True).copy()
    c1, l1 = _codes(df[y1])
    c2, l2 = _codes(df[y2])
    ni, nj = len(l1), len(l2)
    if ni < 2 or nj < 2:
        raise SpecError("both responses need at least two categories")
    rhs = {"marginal1": marginal1, "marginal2": marginal2, "association": association}
    mats = {}
    for part, f in rhs.items():
        f = f.strip()
        if f in ("", "1", "0"):
            mats[part] = (np.zeros((len(df), 0)), ())
        else:
            mats[part] = model_matrix(f"0 + {f}", df)
    cov_cols = [np.asarray(m[0]) for m in mats.values()]
    key = np.column_stack([pd.factorize(df[cluster])[0]] + cov_cols) if cov_cols else \
        pd.factorize(df[cluster])[0][:, None]
    _, block, first = _unique_rows(key)
    nb = int(block.max()) + 1
    weights = np.ones(len(df)) if count is None else count_column(df, count)
    y = np.zeros((nb, ni * nj))
    np.add.at(y, (block, c1 * nj + c2), weights)
    C, A, labels = dale_matrices(ni, nj)
    n_or = (ni - 1) * (nj - 1)
    p1, p2, p3 = (mats[p][0].shape[1] for p in PARTS)
    names = ([f"alpha1[{l1[j]}]" for j in range(ni - 1)] + [f"beta1:{n}" for n in
                                                             mats["marginal1"][1]]
             + [f"alpha2[{l2[j]}]" for j in range(nj - 1)] + [f"beta2:{n}" for n in
                                                              mats["marginal2"][1]]
             + ["beta0"] + [f"beta3:{n}" for n in mats["association"][1]])
    p = len(names)
    X = np.zeros((nb, ni - 1 + nj - 1 + n_or, p))
    rows1 = np.arange(ni - 1)
    rows2 = ni - 1 + np.arange(nj - 1)
    rows3 = ni - 1 + nj - 1 + np.arange(n_or)
    col = 0
    X[:, rows1, col + rows1] = 1.0
    col += ni - 1
    X[:, rows1[:, None], col + np.arange(p1)] = mats["marginal1"][0][first][:, None, :]
    col += p1
    X[:, rows2, col + np.arange(nj - 1)] = 1.0
    col += nj - 1
    X[:, rows2[:, None], col + np.arange(p2)] = mats["marginal2"][0][first][:, None, :]
    col += p2
    X[:, rows3, col] = 1.0
    col += 1
    X[:, rows3[:, None], col + np.arange(p3)] = mats["association"][0][first][:, None, :]
    q = len(random)
    Z = np.zeros((nb, X.shape[1], q))
    part_rows = {"marginal1": rows1, "marginal2": rows2, "association": rows3}
    for k, part in enumerate(random):
        Z[:, part_rows[part], k] = 1.0
    clusters = pd.factorize(df[cluster])[0][first]
    labels_c = pd.factorize(df[cluster])[1]
    # start: marginal cumulative logits of the pooled table, independence
    tot = y.sum(0).reshape(ni, nj)
    m1 = np.cumsum(tot.sum(1))[:-1] / tot.sum()
    m2 = np.cumsum(tot.sum(0))[:-1] / tot.sum()
    start = np.zeros(p)
    start[: ni - 1] = np.log(m1 / (1 - m1))
    start[ni - 1 + p1: ni - 1 + p1 + nj - 1] = np.log(m2 / (1 - m2))
    d = general_design(
        y, C, A, X, Z, cluster=clusters, fixed_names=tuple(names),
        random_names=tuple(f"u[{r}]" for r in random), covariance=covariance,
        group=cluster, individual=True,
        notes={"start": start, "title": "Bivariate ordinal model (6.1)-(6.3) with random "
               "effects", "cluster_levels": list(labels_c), "constraints": labels},
    )
    return d


def _unique_rows(key: np.ndarray) -> tuple[None, np.ndarray, np.ndarray]:
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    # blocks ordered by first appearance
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return None, rank[inverse.ravel()], first[order]
