"""Random association models for two-way and stratified ordinal tables (paper Section 2.1).

Local odds ratios are log-linear (Lang et al. 1999; paper Section 3.1): a model
``L log pi = W beta + R u`` for the (I-1)(J-1) local log odds ratios ``L log pi`` is the
log-linear model ``log pi = P alpha + S (W beta + R u)`` with ``P`` spanning the null space of
``L`` (row and column effects) and ``S`` any right inverse of ``L`` (``L S = I``). Two codings
``S`` are offered, and with random effects in ``S R u`` the fit depends on the choice (the
random effects then move the margins too; reference note, Section 5.2):

- ``"cumulative"`` (default of ``random_association``, as the model is usually written):
  ``S[(a, b), (i, j)] = 1`` if ``a > i`` and ``b > j``: the local log odds ratio of (i, j)
  accumulates into every cell below and to the right of it (uncentred scores 0, 1, ... in
  ``S 1``);
- ``"centred"`` (default of ``stratified_random_association``): ``S = L'(L L')^{-1}``,
  orthogonal to the row and column effects (Lang et al.'s choice); ``S 1`` is the product of
  centred unit-spaced scores, so the ``sigma_u = 0`` special case of (2.4) is the paper's model
  (5.1) with centred scores. It is also the coding that reproduces the paper's Table 1 column
  "(2.1) with beta = 0" (n-normalised MSE minus the sample-proportion MSE; Laplace, posterior
  modes, multinomial given n): uniform scores, beta 0.4, n 200, 600 replicates: centred
  -0.0155 +- 0.0009, cumulative -0.0076 +- 0.0017, printed 0.084 - 0.098 = -0.014;
  non-uniform, beta 0.4, n 200, 200 replicates: centred -0.0129 +- 0.0014, cumulative
  -0.0084 +- 0.0024, printed -0.012.

Global odds ratios use Dale's formula (eq. 3.1), with each table's marginal distributions
either plugged in as sample proportions (``dale_plugin_family``, as the paper's SAS code) or
estimated jointly by full ML (``dale_full_family``); ``design.notes["marginals"]`` says which.

Models (Coull & Agresti 2003):

- (2.1) ``log theta_ij = beta + u_ij``, ``u_ij ~ N(0, sigma_u^2)`` (and ``beta = 0``);
- R + C: ``log theta_ij = beta + u_i + v_j`` with two variance components;
- (2.3) ``log theta_ij(k) = beta_k + u_ijk``;
- (2.4) ``beta_k ~ N(beta, sigma_b^2)``, ``u_ijk ~ N(0, sigma_u^2)``; (5.1) is ``sigma_u = 0``.

The random effects of a two-way table form one vector (one cluster); in stratified tables each
stratum is a cluster holding ``b_k`` and its ``u_ijk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import null_space
from scipy.special import logit

from ..errors import SpecError
from ..links import Multinomial, Poisson, dale_plugin_family
from ..links._dale_full import dale_full_family
from ..spec import Design, block_structure, local_odds_ratios
from ..spec._build import count_column
from ..tables._validate import check_columns, check_counts, check_integer, check_no_missing
from ._association import _levels

_TOL = 1e-9


# ---------------------------------------------------------------------- odds-ratio algebra
def local_coding(n_rows: int, n_cols: int, coding: str = "cumulative") -> np.ndarray:
    """A right inverse ``S`` of the local contrasts, shape (I J, (I-1)(J-1)); see module doc."""
    n_rows = check_integer(n_rows, "n_rows", minimum=2)
    n_cols = check_integer(n_cols, "n_cols", minimum=2)
    if coding == "cumulative":
        a = (np.arange(n_rows)[:, None] > np.arange(n_rows - 1)[None, :]).astype(float)
        b = (np.arange(n_cols)[:, None] > np.arange(n_cols - 1)[None, :]).astype(float)
        return np.kron(a, b)
    if coding == "centred":
        L = local_odds_ratios((n_rows, n_cols), sparse=False).C  # D_I (x) D_J
        return L.T @ np.linalg.inv(L @ L.T)
    raise SpecError(f"unknown coding {coding!r}; use 'cumulative' or 'centred'")


@dataclass
class _Term:
    """A variance component on the odds-ratio scale: ``R`` maps its effects to odds ratios."""

    name: str
    component: str
    R: np.ndarray  # (m, q_t)


def check_identifiable(W: np.ndarray, terms: list[_Term], what: str = "the odds ratios") -> None:
    """Refuse variance components the odds ratios cannot identify.

    On the log odds-ratio scale the model is linear, ``W beta + sum_t R_t u_t``, with covariance
    ``sum_t sigma_t^2 R_t R_t'``. After removing the fixed effects (projection ``Q`` onto the
    complement of span(W)) the patterns ``Q' R_t R_t' Q`` must be non-zero and linearly
    independent; otherwise some sigma_t is confounded with beta or with another sigma.
    """
    m = W.shape[0]
    if W.shape[1] and np.linalg.matrix_rank(W, tol=_TOL) < W.shape[1]:
        raise SpecError(f"the fixed association effects on the {what} are linearly dependent")
    Q = null_space(W.T) if W.shape[1] else np.eye(m)
    n_par = W.shape[1] + len(terms)
    if terms and n_par > m:
        raise SpecError(
            f"the model has {n_par} association parameters (fixed effects and variance "
            f"components) for {what}: the random effects have more dimensions than the table "
            "can identify"
        )
    pats = []
    for t in terms:
        pat = Q.T @ t.R @ t.R.T @ Q
        if np.max(np.abs(pat), initial=0.0) < _TOL:
            raise SpecError(
                f"the variance of {t.name} is not identified: its random effects only shift "
                f"the {what} in directions the fixed effects already cover (e.g. a single "
                "random level, or one odds ratio per table, confounded with beta)"
            )
        pats.append(pat.ravel())
    if len(pats) > 1 and np.linalg.matrix_rank(np.array(pats), tol=1e-8) < len(pats):
        names = ", ".join(t.name for t in terms)
        raise SpecError(
            f"the variance components ({names}) are not separately identified: their "
            f"covariance patterns on the {what} coincide once the fixed effects are removed "
            "(e.g. one odds ratio per stratum makes u_ijk and b_k the same effect)"
        )


def _covariance(terms: list[_Term]) -> Any:
    specs, pos = [], 0
    for t in terms:
        q = t.R.shape[1]
        specs.append((t.name, (t.component,), "identity", [np.array([pos + k]) for k in range(q)]))
        pos += q
    return block_structure(specs, pos)


# ---------------------------------------------------------------------- data handling
def _tables(data: Any, stratum: str | None, row: str, col: str, count: str) -> tuple:
    """Counts (K, I, J), input row of each cell (K, I J), level labels, and the data frame."""
    if hasattr(data, "data") and isinstance(data.data, pd.DataFrame):
        data = data.data
    if isinstance(data, np.ndarray | list):
        arr = check_counts(data, "the table")
        if arr.ndim != 2:
            raise SpecError("an array input must be a two-way table (I x J)")
        ii, jj = np.meshgrid(np.arange(1, arr.shape[0] + 1), np.arange(1, arr.shape[1] + 1),
                             indexing="ij")
        data = pd.DataFrame({row: ii.ravel(), col: jj.ravel(), count: arr.ravel()})
    if not isinstance(data, pd.DataFrame):
        raise SpecError("data must be a DataFrame, a gllmm Table or a two-way array")
    df = data.reset_index(drop=True)
    keys = [row, col] + ([stratum] if stratum else [])
    check_columns(df, [*keys, count])
    check_no_missing(df, keys, "factor")
    y = count_column(df, count)
    rl, cl = _levels(df[row]), _levels(df[col])
    sl = _levels(df[stratum]) if stratum else [None]
    ni, nj, nk = len(rl), len(cl), len(sl)
    if ni < 2 or nj < 2:
        raise SpecError(f"a {ni} x {nj} table has no odds ratios: association models need at "
                        "least two rows and two columns")
    si = df[stratum].map({s: i for i, s in enumerate(sl)}).to_numpy() if stratum else \
        np.zeros(len(df), dtype=int)
    ri = df[row].map({s: i for i, s in enumerate(rl)}).to_numpy()
    ci = df[col].map({s: i for i, s in enumerate(cl)}).to_numpy()
    tables = np.zeros((nk, ni, nj))
    np.add.at(tables, (si, ri, ci), y)
    cells = np.full((nk, ni * nj), -1)
    cells[si, ri * nj + ci] = np.arange(len(df))
    if (cells < 0).any():
        raise SpecError("every table needs one input row per cell (missing cells found)")
    if np.bincount(si * ni * nj + ri * nj + ci, minlength=nk * ni * nj).max() > 1:
        raise SpecError("duplicated cells in the input")
    for k in range(nk):
        where = "" if stratum is None else f" in {stratum} {_label(sl[k])!r}"
        for axis, name, levels in ((1, row, rl), (0, col, cl)):
            empty = np.flatnonzero(tables[k].sum(axis=axis) == 0)
            if empty.size:
                raise SpecError(
                    f"{name} {_label(levels[empty[0]])!r}{where} has no observations: the odds "
                    "ratios involving it are undefined (log 0); drop or merge that category"
                )
    return tables, cells, rl, cl, sl, df


# the valid values of each option, checked before any identifiability reasoning (a misspelt
# option used to surface as "more parameters than odds ratios")
_OPTIONS = {"odds_ratio": ("local", "global"), "sampling": ("multinomial", "poisson"),
            "marginals": ("ml", "plug-in"), "coding": ("cumulative", "centred")}


def _check_options(**given: str) -> None:
    for name, value in given.items():
        if value not in _OPTIONS[name]:
            raise SpecError(f"unknown {name} {value!r}; use "
                            + " or ".join(repr(v) for v in _OPTIONS[name]))


def _label(x: Any) -> Any:
    """A level as users typed it (numpy scalars to Python scalars, for messages)."""
    return x.item() if isinstance(x, np.generic) else x


def _beta_spec(beta: Any) -> float | None:
    """None for a free beta, else the fixed value (``beta=0``: association through u only)."""
    if isinstance(beta, str):
        if beta != "free":
            raise SpecError(f"beta must be 'free' or a number, got {beta!r}")
        return None
    return float(beta)


# ---------------------------------------------------------------------- shared assembly
@dataclass
class _Parts:
    """Odds-ratio-scale pieces per stratum: fixed columns W (K, m, p_w), names, terms."""

    W: np.ndarray
    w_names: tuple[str, ...]
    w_offset: np.ndarray  # (K, m)
    terms_per_stratum: list[_Term]  # R of each term within one stratum (same for all)
    shared: np.ndarray  # (K, m, q): random effects of each stratum's cluster


def _local_design(tables: np.ndarray, cells: np.ndarray, parts: _Parts, sampling: str,
                  coding: str, labels: tuple, names: dict[str, Any], notes: dict) -> Design:
    nk, ni, nj = tables.shape
    k = ni * nj
    S = local_coding(ni, nj, coding)
    rows = np.repeat(np.eye(ni)[:, 1:], nj, axis=0)  # (k, I-1)
    cols = np.tile(np.eye(nj)[:, 1:], (ni, 1))  # (k, J-1)
    nuis = np.hstack([rows, cols])
    strata = names["strata"]
    pre = [f"{names['stratum']}[{s}]:" if names["stratum"] else "" for s in strata]
    nuis_names = [[f"{p}{names['row']}[{r}]" for r in names["rl"][1:]]
                  + [f"{p}{names['col']}[{c}]" for c in names["cl"][1:]] for p in pre]
    poisson = sampling == "poisson"
    if sampling not in ("poisson", "multinomial"):
        raise SpecError(f"unknown sampling {sampling!r}; use 'multinomial' or 'poisson'")
    if poisson:
        nuis = np.hstack([np.ones((k, 1)), nuis])
        nuis_names = [[f"{p}(Intercept)" if p else "(Intercept)"] + n
                      for p, n in zip(pre, nuis_names, strict=True)]
    pn = nuis.shape[1]
    pw = parts.W.shape[2]
    X = np.zeros((nk, k, nk * pn + pw))
    for s in range(nk):
        X[s, :, s * pn:(s + 1) * pn] = nuis
    X[:, :, nk * pn:] = np.einsum("km,smp->skp", S, parts.W)
    Z = np.einsum("km,smq->skq", S, parts.shared)
    offset = np.einsum("km,sm->sk", S, parts.w_offset)
    fixed = tuple(n for group in nuis_names for n in group) + parts.w_names
    terms = parts.terms_per_stratum
    cov = _covariance(terms) if terms else None
    notes = {**notes, "coding": coding, "sampling": sampling,
             "marginals": "row and column effects of the log-linear model (fixed)",
             "scores": _coding_scores(coding, ni, nj, names)}
    if poisson:
        fam: Any = Poisson(tables.reshape(-1), cells.reshape(-1, 1))
        q = Z.shape[2]
        return Design(fam, X.reshape(nk * k, 1, -1), Z.reshape(nk * k, 1, q),
                      offset.reshape(nk * k, 1), np.repeat(np.arange(nk), k), cov, fixed,
                      labels, names["random"], notes)
    fam = Multinomial(tables.reshape(nk, k), cells, coefficient=not names["individual"])
    return Design(fam, X, Z, offset, np.arange(nk), cov, fixed, labels, names["random"], notes)


def _coding_scores(coding: str, ni: int, nj: int, names: dict) -> dict[str, np.ndarray]:
    """Row and column scores whose product is the coding's uniform-association column."""
    shift = 0.0 if coding == "cumulative" else 1.0
    return {names["row"]: np.arange(ni) - shift * (ni - 1) / 2,
            names["col"]: np.arange(nj) - shift * (nj - 1) / 2}


def _global_design(tables: np.ndarray, cells: np.ndarray, parts: _Parts, marginals: str,
                   labels: tuple, names: dict[str, Any], notes: dict) -> Design:
    nk, ni, nj = tables.shape
    m = (ni - 1) * (nj - 1)
    terms = parts.terms_per_stratum
    cov = _covariance(terms) if terms else None
    if marginals in ("plug-in", "plugin"):
        fam: Any = dale_plugin_family(tables, cells)
        fam.coefficient = not names["individual"]
        notes = {**notes, "marginals": "plug-in sample proportions"}
        return Design(fam, parts.W, parts.shared, parts.w_offset, np.arange(nk), cov,
                      parts.w_names, labels, names["random"], notes)
    if marginals not in ("ml", "full"):
        raise SpecError(f"unknown marginals {marginals!r}; use 'ml' or 'plug-in'")
    fam = dale_full_family(tables, cells, coefficient=not names["individual"])
    nr, nc = ni - 1, nj - 1
    pn = nr + nc
    pw = parts.W.shape[2]
    X = np.zeros((nk, pn + m, nk * pn + pw))
    Z = np.zeros((nk, pn + m, parts.shared.shape[2]))
    offset = np.zeros((nk, pn + m))
    start = np.zeros(nk * pn + pw)
    fixed: list[str] = []
    for s in range(nk):
        X[s, :pn, s * pn:(s + 1) * pn] = np.eye(pn)
        pre = f"{names['stratum']}[{names['strata'][s]}]:" if names["stratum"] else ""
        fixed += [f"{pre}logit P({names['row']} <= {r})" for r in names["rl"][:-1]]
        fixed += [f"{pre}logit P({names['col']} <= {c})" for c in names["cl"][:-1]]
        n = tables[s].sum()
        start[s * pn:s * pn + nr] = logit(np.cumsum(tables[s].sum(1))[:-1] / n)
        start[s * pn + nr:(s + 1) * pn] = logit(np.cumsum(tables[s].sum(0))[:-1] / n)
    X[:, pn:, nk * pn:] = parts.W
    Z[:, pn:, :] = parts.shared
    offset[:, pn:] = parts.w_offset
    notes = {**notes, "marginals": "estimated jointly by ML (marginal cumulative logits)",
             "start": start}
    return Design(fam, X, Z, offset, np.arange(nk), cov, tuple(fixed) + parts.w_names, labels,
                  names["random"], notes)


# ---------------------------------------------------------------------- public builders
def random_association(
    data: Any,
    row: str = "row",
    col: str = "col",
    count: str = "count",
    *,
    odds_ratio: str = "local",
    beta: Any = "free",
    random: str = "cell",
    sampling: str = "multinomial",
    marginals: str = "ml",
    coding: str = "centred",
    individual: bool = True,
) -> Design:
    """Random association model for a two-way ordinal table (paper Section 2.1).

    ``random="cell"``: model (2.1), ``log theta_ij = beta + u_ij``, ``u_ij ~ N(0, sigma_u^2)``
    iid, one (I-1)(J-1)-dimensional random vector (a single cluster: the integral does not
    factor by cell). ``random="row+column"``: ``log theta_ij = beta + u_i + v_j``,
    ``u_i ~ N(0, sigma_u^2)``, ``v_j ~ N(0, sigma_v^2)``. ``random="none"``: uniform
    association (``beta`` free) or independence (``beta=0``).

    Parameters
    ----------
    data : DataFrame (one row per cell), gllmm Table, or 2-D array of counts
    row, col, count : str
        Column names (arrays get levels 1..I and 1..J).
    odds_ratio : {"local", "global"}
        Local odds ratios as a log-linear model; global odds ratios by Dale's formula.
    beta : "free" or float
        A number fixes beta (``beta=0``: shrink towards independence).
    sampling : {"multinomial", "poisson"}
        Local odds ratios only: one multinomial given n (default, the paper's Section 4), or
        Poisson cells with an intercept (not equivalent once u is integrated out).
    marginals : {"ml", "plug-in"}
        Global odds ratios only: marginal distributions estimated jointly (full ML) or plugged
        in as sample proportions.
    coding : {"cumulative", "centred"}
        Local odds ratios only: the right inverse that turns odds ratios into log means (see
        the module docstring; the fit depends on it once u is integrated out, and "centred"
        is the one that reproduces the paper's Table 1).
    individual : bool
        Log-likelihood of the individual responses (no multinomial coefficient).

    Returns
    -------
    Design
        ``notes`` records ``model``, ``odds_ratio``, ``marginals`` and (local) ``coding``,
        ``sampling`` and the implied ``scores``.
    """
    b0 = _beta_spec(beta)
    tables, cells, rl, cl, _, df = _tables(data, None, row, col, count)
    ni, nj = tables.shape[1:]
    m = (ni - 1) * (nj - 1)
    W = np.ones((1, m, 1)) if b0 is None else np.zeros((1, m, 0))
    w_offset = np.zeros((1, m)) if b0 is None else np.full((1, m), b0)
    terms: list[_Term] = []
    rnames: list[str] = []
    if random == "cell":
        terms.append(_Term("odds_ratio", "u", np.eye(m)))
        rnames = [f"u[{i + 1},{j + 1}]" for i in range(ni - 1) for j in range(nj - 1)]
    elif random in ("row+column", "row+col"):
        terms.append(_Term(row, "u", np.repeat(np.eye(ni - 1), nj - 1, axis=0)))
        terms.append(_Term(col, "v", np.tile(np.eye(nj - 1), (ni - 1, 1))))
        rnames = [f"u[{i + 1}]" for i in range(ni - 1)] + [f"v[{j + 1}]" for j in range(nj - 1)]
    elif random != "none":
        raise SpecError(f"unknown random {random!r}; use 'cell', 'row+column' or 'none'")
    check_identifiable(W[0], terms, f"only {m} {odds_ratio} odds ratio{'s' * (m > 1)}")
    shared = np.concatenate([t.R for t in terms], axis=1)[None] if terms else np.zeros((1, m, 0))
    parts = _Parts(W, ("beta",) if b0 is None else (), w_offset, terms, shared)
    model = {"cell": "2.1", "none": "uniform association" if b0 is None else "independence"}
    notes = {"data": df, "model": model.get(random, "row + column random association"),
             "odds_ratio": odds_ratio, "beta": "free" if b0 is None else b0,
             "title": f"Random association model on {odds_ratio} odds ratios "
                      f"(Coull & Agresti 2003, Section 2.1; random={random})"}
    names = {"row": row, "col": col, "rl": rl, "cl": cl, "stratum": None, "strata": [None],
             "random": tuple(rnames), "individual": individual}
    if odds_ratio == "local":
        return _local_design(tables, cells, parts, sampling, coding, (0,), names, notes)
    if odds_ratio == "global":
        return _global_design(tables, cells, parts, marginals, (0,), names, notes)
    raise SpecError(f"unknown odds_ratio {odds_ratio!r}; use 'local' or 'global'")


def stratified_random_association(
    data: Any,
    stratum: str,
    row: str,
    col: str,
    count: str = "count",
    *,
    odds_ratio: str = "local",
    strata: str = "random",
    within: bool = True,
    sampling: str = "poisson",
    marginals: str = "ml",
    coding: str = "centred",
    individual: bool = True,
) -> Design:
    """Random association models for K stratified I x J ordinal tables (paper 2.3, 2.4, 5.1).

    ``log theta_ij(k) = beta_k + u_ijk``, ``u_ijk ~ N(0, sigma_u^2)`` (``within=True``), with

    - ``strata="fixed"``: model (2.3), one fixed ``beta_k`` per stratum;
    - ``strata="random"``: model (2.4), ``beta_k = beta + b_k``, ``b_k ~ N(0, sigma_b^2)``;
      with ``within=False`` this is model (5.1) (``sigma_u = 0``);
    - ``strata="common"``: ``beta_k = beta`` for all strata.

    Each stratum is one cluster holding ``b_k`` and its ``u_ijk``; the covariance has the two
    SD parameters ``sd(<stratum>)`` (sigma_b) and ``sd(<stratum>:odds_ratio)`` (sigma_u).

    Parameters
    ----------
    sampling : {"poisson", "multinomial"}
        Local odds ratios: Poisson cells with stratum-specific intercepts, row and column
        effects (the paper's Section 5.2 model), or one multinomial per stratum.
    coding : {"centred", "cumulative"}
        Local odds ratios: the default centred coding makes (5.1) the paper's centred-score
        model (x = +-1/2, s = 1, 0, -1 on the clinical trial).
    marginals : {"ml", "plug-in"}
        Global odds ratios: each stratum's marginal distributions estimated by ML or plugged in
        as its sample proportions (the paper's SAS code).
    individual : bool
        Log-likelihood of the individual responses (no multinomial coefficients).
    """
    if strata not in ("fixed", "random", "common"):
        raise SpecError(f"unknown strata {strata!r}; use 'fixed', 'random' or 'common'")
    _check_options(odds_ratio=odds_ratio, sampling=sampling, marginals=marginals, coding=coding)
    tables, cells, rl, cl, sl, df = _tables(data, stratum, row, col, count)
    nk, ni, nj = tables.shape
    m = (ni - 1) * (nj - 1)
    one = np.ones((m, 1))
    if strata == "fixed":
        W = np.zeros((nk, m, nk))
        W[np.arange(nk), :, np.arange(nk)] = 1.0
        w_names = tuple(f"beta[{s}]" for s in sl)
    else:
        W = np.ones((nk, m, 1))
        w_names = ("beta",)
    terms: list[_Term] = []
    rnames: list[str] = []
    if strata == "random":
        terms.append(_Term(str(stratum), "b", one))
        rnames.append(f"{stratum}:b")
    if within:
        terms.append(_Term(f"{stratum}:odds_ratio", "u", np.eye(m)))
        rnames += [f"u[{i + 1},{j + 1}]" for i in range(ni - 1) for j in range(nj - 1)]
    shared = np.concatenate([t.R for t in terms], axis=1) if terms else np.zeros((m, 0))
    shared = np.broadcast_to(shared, (nk,) + shared.shape).copy()
    # identifiability over all strata: block-diagonal random effects
    big_W = W.reshape(nk * m, -1)
    big_terms = [_Term(t.name, t.component, np.kron(np.eye(nk), t.R)) for t in terms]
    if strata == "random" and nk < 2:
        raise SpecError("sigma_b needs at least two strata: with one stratum b_k is confounded "
                        "with beta")
    check_identifiable(big_W, big_terms, f"only {nk * m} {odds_ratio} odds ratios "
                                         f"({nk} strata x {m})")
    parts = _Parts(W, w_names, np.zeros((nk, m)), terms, shared)
    model = {("fixed", True): "2.3", ("random", True): "2.4", ("random", False): "5.1"}
    notes = {"data": df, "model": model.get((strata, within), f"strata={strata}"),
             "odds_ratio": odds_ratio,
             "title": f"Stratified random association model on {odds_ratio} odds ratios "
                      f"(Coull & Agresti 2003, model {model.get((strata, within), strata)})"}
    names = {"row": row, "col": col, "rl": rl, "cl": cl, "stratum": stratum, "strata": sl,
             "random": tuple(rnames), "individual": individual}
    if odds_ratio == "local":
        return _local_design(tables, cells, parts, sampling, coding, tuple(sl), names, notes)
    if odds_ratio == "global":
        return _global_design(tables, cells, parts, marginals, tuple(sl), names, notes)
    raise SpecError(f"unknown odds_ratio {odds_ratio!r}; use 'local' or 'global'")


def association_from_contrasts(
    counts: Any,
    contrasts: Any,
    fixed: Any = None,
    random: Any = None,
    *,
    sampling: str = "multinomial",
    fixed_names: tuple[str, ...] | None = None,
    individual: bool = True,
) -> Design:
    """Any model ``L log pi = W beta + R u`` on log odds-ratio contrasts, as a log-linear GLLMM.

    ``log pi = P alpha + L'(L L')^{-1} (W beta + R u)`` with ``P`` spanning the null space of
    ``L`` (without the constant under multinomial sampling), ``u ~ N(0, sigma^2 I)`` (Lang et
    al. 1999; paper Section 3.1).

    Parameters
    ----------
    counts : array (K,)
        Cell counts (any shape; flattened row-major).
    contrasts : array (m, K)
        Rows are log-linear contrasts (each sums to zero), linearly independent, m <= K - 1.
    fixed : array (m, p), optional
        Fixed association design W (default: none, i.e. beta = 0).
    random : array (m, q), optional
        Random-effects design R (default: identity when None and no random effects wanted,
        pass ``np.eye(m)`` for u on every contrast).
    """
    y = check_counts(counts, "counts").ravel()
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    k = y.size
    m = L.shape[0]
    if L.shape[1] != k:
        raise SpecError(f"contrasts have {L.shape[1]} columns for {k} cells")
    if m > k - 1:
        raise SpecError(
            f"more odds-ratio constraints ({m}) than the table allows: a table of {k} cells has "
            f"only {k - 1} free log-probabilities given its total, so at most {k - 1} "
            "independent log odds ratios exist"
        )
    if np.any(np.abs(L.sum(axis=1)) > _TOL * np.abs(L).sum(axis=1)):
        bad = int(np.flatnonzero(np.abs(L.sum(axis=1)) > _TOL * np.abs(L).sum(axis=1))[0])
        raise SpecError(f"contrast row {bad} does not sum to zero: it is not a log odds ratio "
                        "(it would depend on the table total)")
    rank = np.linalg.matrix_rank(L, tol=_TOL)
    if rank < m:
        raise SpecError(f"the {m} odds-ratio contrasts have rank {rank}: some odds ratios are "
                        "determined by others, so the constraints are redundant or singular")
    W = np.zeros((m, 0)) if fixed is None else np.asarray(fixed, dtype=float).reshape(m, -1)
    R = None if random is None else np.asarray(random, dtype=float).reshape(m, -1)
    terms = [] if R is None else [_Term("odds_ratio", "u", R)]
    check_identifiable(W, terms, f"only {m} odds ratio{'s' * (m > 1)}")
    S = L.T @ np.linalg.inv(L @ L.T)
    if sampling == "multinomial":
        P = null_space(np.vstack([L, np.ones(k)]))
        fam: Any = Multinomial(y[None], np.arange(k)[None], coefficient=not individual)
    elif sampling == "poisson":
        P = null_space(L)
        fam = Poisson(y, np.arange(k)[:, None])
    else:
        raise SpecError(f"unknown sampling {sampling!r}; use 'multinomial' or 'poisson'")
    p_names = tuple(f"alpha[{i + 1}]" for i in range(P.shape[1]))
    w_names = fixed_names or tuple(f"beta[{i + 1}]" for i in range(W.shape[1]))
    if len(w_names) != W.shape[1]:
        raise SpecError(f"{len(w_names)} fixed_names for {W.shape[1]} fixed columns")
    Xf = np.hstack([P, S @ W])
    Zf = S @ R if R is not None else np.zeros((k, 0))
    cov = _covariance(terms) if terms else None
    notes = {"model": "odds-ratio contrasts (Lang et al. 1999)", "coding": "centred",
             "marginals": "null-space effects of the contrasts (fixed)", "sampling": sampling}
    rn = tuple(f"u[{i + 1}]" for i in range(Zf.shape[1]))
    if sampling == "multinomial":
        return Design(fam, Xf[None], Zf[None], np.zeros((1, k)), np.zeros(1, dtype=int), cov,
                      p_names + w_names, (0,), rn, notes)
    return Design(fam, Xf[:, None, :], Zf[:, None, :], np.zeros((k, 1)),
                  np.zeros(k, dtype=int), cov, p_names + w_names, (0,), rn, notes)
