"""From a data frame and a formula to the engine's Design (one block per row).

Clusters are the connected components of the random-effect groupings: one grouping gives one
cluster per group; nested terms ``(1 | a) + (1 | a:b)`` give one cluster per ``a`` holding
``u_a`` and every ``u_ab``; crossed terms give a single cluster (Laplace over the joint vector).
Within a cluster, each term has as many slots as it has groups there; the covariance block of a
term repeats over its slots.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import GllmmWarning, SpecError
from ..links import Binomial, Multinomial, Poisson
from ..tables import Table
from ..tables._validate import check_choice, check_counts
from ._components import row_components
from ._design import Design, block_structure
from ._fast_matrix import csr_from_rows
from ._formula import (
    evaluate,
    expand_dot,
    first_rows,
    group_codes,
    model_matrix,
    parse_formula,
    split_top_level,
)
from ._table_input import stratum_blocks, table_input, within_block_constant

#: the covariance structures of a random term (``covariance=``)
COVARIANCES = ("identity", "diagonal", "unstructured")


def count_column(data: pd.DataFrame, name: str) -> np.ndarray:
    """The count column (or expression of columns) as floats; SpecError naming rows with
    missing, negative or non-integer counts, or saying the column is empty or zero throughout."""
    if name not in data.columns and not _is_expression(name):
        raise SpecError(f"unknown count column {name!r}; available: {', '.join(data.columns)}")
    return count_values(evaluate(name, data, "count"), name)


def _is_expression(text: str) -> bool:
    return not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", text.strip())


def count_values(values: Any, name: str, check_zero: bool = True) -> np.ndarray:
    """``values`` as float counts, or SpecError (see ``count_column``): the shared edge checks
    (``tables._validate.check_counts``)."""
    return check_counts(np.asarray(values).ravel(), f"count column {name!r}",
                        allow_all_zero=not check_zero)


def response_counts(data: pd.DataFrame, response: str, family: str) -> np.ndarray:
    """The response of a Poisson (n,) or binomial (n, 2) formula, in the rows of ``data``.

    Binomial responses: ``cbind(successes, failures)`` with any expressions of columns
    (``cbind(y, n - y)``), a 0/1 or logical column, or a two-level factor (its first level
    is the failure, as in R's glm).
    """
    response = response.strip()
    m = re.fullmatch(r"cbind\((.*)\)", response, flags=re.S)
    if family == "poisson":
        if m:
            raise SpecError(f"the response {response!r} is a binomial (successes, failures) "
                            "pair: fit it with family='binomial' (--family binomial)")
        return count_column(data, response)
    if m:
        parts = [p for p in split_top_level(m.group(1), ",") if p]
        if len(parts) != 2:
            raise SpecError(f"{response!r}: cbind() of {len(parts)} columns is not a binomial "
                            "response; binomial formulas take cbind(successes, failures) "
                            "(several categories: --family multinomial)")
        # successes (or failures) zero throughout: the intercept's estimate runs off to -inf
        return np.column_stack([count_values(evaluate(p, data, "count"), p) for p in parts])
    if response not in data.columns and not _is_expression(response):
        raise SpecError(f"unknown response column {response!r}; binomial formulas take "
                        "'cbind(successes, failures) ~ ...' or a 0/1 column; available: "
                        + ", ".join(map(str, data.columns)))
    values = pd.Series(evaluate(response, data, "response"))
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        y = values.to_numpy(dtype=float)
        if np.all(np.isin(y, (0.0, 1.0))):
            return np.column_stack([y, 1.0 - y])
    elif values.nunique() == 2 and not values.isna().any():
        levels = (list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype)
                  else sorted(values.unique()))
        y = (values != levels[0]).to_numpy(dtype=float)
        return np.column_stack([y, 1.0 - y])
    raise SpecError(f"binomial response {response!r} is neither cbind(successes, failures) "
                    "nor a 0/1 or two-level column: write 'cbind(successes, failures) ~ ...' "
                    "(e.g. cbind(y, n - y))")


def _proportions(data: pd.DataFrame, response: str, w: np.ndarray | None) -> np.ndarray | None:
    """R's binomial ``glm(p ~ x, weights = n)``: a response of proportions with the trials as
    weights is ``cbind(n p, n (1 - p))`` (for a 0/1 response the same log-likelihood as
    frequency weights); None when the response is not proportions with weights."""
    if w is None or re.fullmatch(r"cbind\(.*\)", response.strip(), flags=re.S):
        return None
    p = pd.to_numeric(pd.Series(evaluate(response, data, "response")), errors="coerce")
    p = p.to_numpy(dtype=float)
    if not (np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))) or np.all(np.isin(p, (0, 1))):
        return None
    y = np.column_stack([w * p, w * (1.0 - p)])
    rounded = np.round(y)
    if np.any(np.abs(y - rounded) > 1e-8 * np.maximum(1.0, w[:, None])):
        raise SpecError(f"binomial response {response!r} holds proportions, and proportion x "
                        "weights is not a whole number of successes in rows "
                        f"{np.flatnonzero(np.abs(y - rounded).max(axis=1) > 1e-8)[:10].tolist()}"
                        ": give the weights as the numbers of trials, or write "
                        "cbind(successes, failures) ~ ...")
    return np.column_stack([count_values(rounded[:, 0], response),
                            count_values(rounded[:, 1], f"1 - {response}")])


def row_values(data: pd.DataFrame, value: Any, what: str) -> np.ndarray | None:
    """An offset or weights given as a column name, an expression of columns, or one value per
    row of ``data`` (array, or a Series aligned on ``data``'s index); floats, in data's rows."""
    if value is None:
        return None
    if isinstance(value, str):
        out = evaluate(value, data, what)
    elif isinstance(value, pd.Series) and value.index.isin(data.index).all() \
            and data.index.isin(value.index).all():
        out = value.reindex(data.index).to_numpy()
    else:
        out = np.asarray(value)
    try:
        out = np.asarray(out, dtype=float).ravel()
    except (TypeError, ValueError):
        raise SpecError(f"{what} must be numeric") from None
    if out.shape != (len(data),):
        raise SpecError(f"{what} has {out.size} values for {len(data)} rows: give one per row "
                        "(in the rows' order) or a column name")
    if not np.all(np.isfinite(out)):
        raise SpecError(f"{what} has missing or infinite values in rows "
                        f"{np.flatnonzero(~np.isfinite(out))[:10].tolist()}")
    return out


def build_design(
    data: Any,
    formula: str,
    family: str = "poisson",
    covariance: str | None = None,
    title: str | None = None,
    scores: dict[str, Any] | None = None,
    offset: Any = None,
    weights: Any = None,
) -> Design:
    """Design for a Poisson log-linear or binomial logit GLLMM given by an lme4-style formula.

    ``eta_i = x_i' beta + offset_i + z_i' u``; each row's log-likelihood counts ``w_i`` times
    (frequency weights, as R's ``glm``/``glmer`` ``weights``).

    Parameters
    ----------
    data : DataFrame or Table
        One row per cell (Poisson) or per binomial (``cbind(successes, failures) ~ ...``).
        A ``gllmm.tables.Table`` gives its cells in row-major order, leaves its structural
        zeros out, offers its scores as columns ``<factor>_score`` and, with strata, makes
        each stratum one multinomial block (columns of X constant within every stratum are
        dropped: the fixed totals identify them); see ``notes["cells"]``,
        ``notes["fixed_by_strata"]``.
    formula : str
        ``count ~ fixed + offset(expr) + (expr | group) + ...`` in lme4's idioms:
        ``cbind(y, n - y)``, ``factor(x)``, ``(1 | a/b)``, ``a*b``, ``(a + b)^2``, ``log(x)``,
        back-quoted names.
    family : {"poisson", "binomial"}
    covariance : {"identity", "diagonal", "unstructured"}, optional
        Overrides the covariance implied by ``|`` (unstructured) / ``||`` (diagonal).
    offset : str or array-like, optional
        Added to the formula's ``offset()`` terms: a column, an expression (``"log(n)"``) or
        one value per row of ``data`` (per cell of a Table), in data's row order.
    weights : str or array-like, optional
        Frequency weights >= 0 (column, expression or values per row); rows of weight 0
        are left out.

    Notes
    -----
    The design's blocks are the rows sorted by cluster; ``notes["order"]`` maps them back
    (block b is row ``order[b]`` of ``data``). Counts, offsets and weights are sorted with
    them, so every per-row input is given in the data's own order.
    """
    table = table_input(data) if isinstance(data, Table) else None
    if table is not None:
        data = table.frame
    elif hasattr(data, "data") and isinstance(data.data, pd.DataFrame):
        data = data.data
    if not isinstance(data, pd.DataFrame):
        raise SpecError("data must be a pandas DataFrame or a gllmm Table")
    if len(data) == 0:
        raise SpecError("the data have no rows")
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise SpecError("the formula needs a response: 'count ~ ...'")
    fam_name = family.lower() if isinstance(family, str) else family
    if covariance is not None:  # else silently ignored by one-component terms
        check_choice(covariance, "covariance", COVARIANCES)
    if fam_name not in ("poisson", "binomial"):
        raise SpecError(f"unknown family {family!r} for formula designs; use 'poisson' or "
                        "'binomial' (ordinal and association models have builders in "
                        "gllmm.models)")
    w = row_values(data, weights, "weights")
    off_arg = row_values(data, offset, "offset")
    data = data.reset_index(drop=True)
    keep = np.ones(len(data), dtype=bool) if table is None else table.modelled.copy()
    if w is not None:
        if (w < 0).any():
            raise SpecError(f"weights are negative in rows {np.flatnonzero(w < 0)[:10].tolist()}"
                            ": frequency weights count rows and must be >= 0")
        frac = np.flatnonzero(w != np.round(w))
        if frac.size:
            # a fractional frequency makes the log-likelihood a weighted pseudo-likelihood:
            # its LR tests, AIC and SEs no longer have their usual meaning
            warnings.warn(f"weights are not whole numbers in rows {frac[:10].tolist()}: "
                          "frequency weights count repeated rows, so the fit is a weighted "
                          "pseudo-likelihood (log-likelihood, AIC and LR tests are not on the "
                          "usual scale); round them if they are counts", GllmmWarning,
                          stacklevel=2)
        keep &= w > 0
        if not keep.any():
            raise SpecError("every weight is zero: there is nothing to fit")
    if not keep.all():  # rows of weight 0 and a Table's structural zeros are not modelled
        data = data[keep].reset_index(drop=True)
        w = None if w is None else w[keep]
        off_arg = None if off_arg is None else off_arg[keep]
    strata = () if table is None else table.strata
    if strata and (fam_name != "poisson" or w is not None):
        raise SpecError(f"the table's strata {list(strata)} make the counts product-multinomial"
                        ": use family='poisson' without weights, or drop the strata "
                        "(table.with_strata())")
    stratum = None if not strata else table.stratum[keep]
    trials = _proportions(data, parsed.response, w) if fam_name == "binomial" else None
    if trials is not None:
        y, w = trials, None
    else:
        y = response_counts(data, parsed.response, fam_name)
    n = len(data)
    off = np.zeros(n) if off_arg is None else off_arg
    for expr in parsed.offsets:
        off = off + row_values(data, expr, f"offset({expr})")
    fixed = expand_dot(parsed.fixed, data.columns, parsed.response)
    X, xnames = model_matrix(fixed, data, sparse_ok=True)
    terms = []
    for term in parsed.random:
        Zt, znames = model_matrix(term.expr, data)
        codes, labels = group_codes(data, term.group)  # refuses missing groups
        terms.append((term, Zt, znames, codes, labels))

    if not terms:
        cluster = np.zeros(n, dtype=int)
        order = np.arange(n) if stratum is None else np.argsort(stratum, kind="stable")
        Z = np.zeros((n, 1, 0))
        cov = None
        labels_out: tuple = ()
        rnames: tuple[str, ...] = ()
    else:
        cluster, order, Z, cov, labels_out, rnames, levels = _random_layout(
            terms, n, covariance, stratum)
    fam = _family(fam_name, y, w, order)
    if w is not None and fam_name == "poisson":
        off = off + np.log(w)  # w (y eta - e^eta) = (w y) (eta + log w) - e^(eta + log w) + c
    notes: dict[str, Any] = {"data": data, "formula": formula, "title": title or formula,
                             "frame": data, "family": fam_name, "order": order,
                             "fixed": fixed,
                             "offset_argument": offset if isinstance(offset, str) else None,
                             "offset_values": None if isinstance(offset, str) else off_arg}
    if w is not None:
        notes["weights"] = w
    if terms:
        notes["random_levels"] = levels
    if scores is not None and not isinstance(scores, dict):
        raise SpecError(f"scores must be a dict {{column: scores of its levels}}, got "
                        f"{type(scores).__name__}")
    scores = {**({} if table is None else table.scores), **(scores or {})}
    if scores:
        notes["scores"] = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    if table is not None:
        notes["cells"] = np.flatnonzero(keep)  # the table cell of each row of data
    if strata:
        notes["strata"] = strata
    if fam_name == "binomial":
        rows = data.loc[np.repeat(np.arange(n), 2)].reset_index(drop=True)
        rows["outcome"] = np.tile(["success", "failure"], n)
        notes["data"] = rows
    X = X[order] if sp.issparse(X) else X[order][:, None, :]
    if strata:
        return _stratified(y, X, Z, off, cluster, cov, xnames, labels_out, rnames, notes,
                           stratum, order)
    return Design(fam, X, Z, off[order][:, None], cluster, cov, xnames,
                  labels_out, rnames, notes)


def _stratified(y: np.ndarray, X: Any, Z: Any, off: np.ndarray, cluster: np.ndarray,
                cov: Any, xnames: tuple, labels: tuple, rnames: tuple, notes: dict,
                stratum: np.ndarray, order: np.ndarray) -> Design:
    """The rows (in design order, strata contiguous) as product-multinomial blocks, one per
    stratum; X loses the columns only the fixed totals identify (``_table_input``)."""
    nb, size = stratum_blocks(stratum, tuple(notes["strata"]))
    Xr = X if sp.issparse(X) else X[:, 0, :]
    drop = within_block_constant(Xr, nb, size)
    Xr = Xr[:, ~drop] if sp.issparse(Xr) else Xr[:, ~drop].reshape(nb, size, -1)
    Zr = Z if sp.issparse(Z) else Z.reshape(nb, size, -1)
    notes["family"] = "multinomial"
    notes["fixed_by_strata"] = tuple(n for n, d in zip(xnames, drop, strict=True) if d)
    fam = Multinomial(y[order].reshape(nb, size), order.reshape(nb, size))
    return Design(fam, Xr, Zr, off[order].reshape(nb, size), cluster[::size], cov,
                  tuple(n for n, d in zip(xnames, drop, strict=True) if not d), labels,
                  rnames, notes)


def _family(name: str, y: np.ndarray, w: np.ndarray | None, order: np.ndarray) -> Any:
    """The family of the rows in design order; frequency weights scale the counts (the
    family's ``weights`` restore the log-likelihood's constant)."""
    wo = None if w is None else w[order]
    if name == "poisson":
        yo = y[order] if wo is None else y[order] * wo
        return Poisson(yo, order[:, None], weights=wo)
    yo = y[order] if wo is None else y[order] * wo[:, None]
    return Binomial(yo, np.column_stack([2 * order, 2 * order + 1]), weights=wo)


def _slots(cluster: np.ndarray, codes: np.ndarray, first: np.ndarray,
           n_clusters: int) -> np.ndarray:
    """Each row's slot: the rank of its group among its cluster's groups, in order of first
    appearance. ``codes`` are numbered in order of first appearance and ``first`` holds each
    group's first row, so a stable sort of the groups by cluster keeps that order within
    every cluster: O(rows + groups)."""
    group_cluster = cluster[first]
    by_cluster = np.argsort(group_cluster, kind="stable")
    counts = np.bincount(group_cluster, minlength=n_clusters)
    rank = np.empty(len(first), dtype=np.int64)
    rank[by_cluster] = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank[codes]


def _row_clusters(codes: list[np.ndarray], n: int) -> np.ndarray:
    """Each row's cluster: the connected components of rows linked through shared groups,
    numbered in order of first appearance (``_components``). ``codes`` are the groups of
    each grouping, the first one numbered in order of first appearance (``group_codes``)."""
    if len(codes) == 1:
        return codes[0]  # one grouping: its groups are the clusters
    nodes = np.empty((len(codes), n), dtype=np.int64)
    offset = 0
    for i, c in enumerate(codes):
        np.add(c, offset, out=nodes[i], casting="unsafe")
        offset += int(c.max()) + 1
    return row_components(nodes, offset)[0]


def _random_layout(terms: list, n: int, covariance: str | None,
                   stratum: np.ndarray | None = None) -> tuple:
    """Clusters, row order, Z, covariance and names of the random terms; the last item is,
    per term, (group, expression, {group label: (cluster, first column of its effects)}),
    which ``predict`` uses to place new data's groups in a cluster's u. Rows of one
    ``stratum`` (a multinomial block) share a cluster and are contiguous in the order."""
    cluster_of_row = _row_clusters([t[3] for t in terms]
                                   + ([] if stratum is None else [stratum]), n)
    n_clusters = int(cluster_of_row.max()) + 1
    if stratum is not None:
        order = np.lexsort((stratum, cluster_of_row))
    elif n_clusters == 1:
        order = np.arange(n)
    else:
        order = np.argsort(cluster_of_row, kind="stable")
    cluster = cluster_of_row[order]

    specs = []
    z_cols, z_vals = [], []
    pos = 0
    rnames: list[str] = []
    first_term_labels = None
    levels = []
    for term, Zt, znames, codes, labels in terms:
        qt = Zt.shape[1]
        # slot of each row's group within its cluster; with one cluster (crossed terms) that
        # is the group's code, already numbered in order of first appearance (group_codes)
        first = first_rows(codes)
        slot = (codes.astype(np.int64) if n_clusters == 1
                else _slots(cluster_of_row, codes, first, n_clusters))
        n_slots = int(slot.max()) + 1
        reps = pos + np.arange(n_slots)[:, None] * qt + np.arange(qt)[None, :]
        kind = covariance or ("diagonal" if term.diagonal else "unstructured")
        if qt == 1:
            kind = "identity"
        specs.append((term.group, znames, kind, reps))
        # row r has Zt[r] in its group's columns: O(rows x components) entries
        z_cols.append(pos + slot[:, None] * qt + np.arange(qt)[None, :])
        z_vals.append(np.asarray(Zt, dtype=float))
        rnames.extend(f"{term.group}:{zn}" if n_slots == 1 else f"{term.group}[{s}]:{zn}"
                      for s in range(n_slots) for zn in znames)
        texts = [str(lab) for lab in labels]  # as group_labels spells new data's groups
        places = dict(zip(texts, zip(cluster_of_row[first].tolist(),
                                     (pos + slot[first] * qt).tolist(), strict=True),
                          strict=True))
        levels.append((term.group, term.expr, places))
        pos += n_slots * qt
        if first_term_labels is None and n_slots == 1:
            # cluster labels = group labels of the first single-slot term
            lab = np.empty(n_clusters, dtype=object)
            lab[cluster_of_row] = np.asarray(labels, dtype=object)[codes]
            first_term_labels = tuple(lab.tolist())
    q = pos
    # rows in cluster order; a (rows x q) CSR matrix, never dense (crossed designs have q in
    # the thousands); within a row the terms' columns increase, as CSR wants them
    cols, vals = np.hstack(z_cols), np.hstack(z_vals)
    if n_clusters > 1 or stratum is not None:
        cols, vals = cols[order], vals[order]
    Z = csr_from_rows(cols, vals, q)
    cov = block_structure(specs, q)
    labels_out = first_term_labels or tuple(range(n_clusters))
    return cluster, order, Z, cov, labels_out, tuple(rnames), tuple(levels)
