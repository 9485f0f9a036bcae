"""The cell-wise smoother's model and result: a prepared table as the engine's design (levels,
scores, the structure's index maps) and the estimates mapped back to table-shaped effects and
smoothed counts (``CellwiseFit``). Used by ``_cellwise`` (the entry point), ``_cellwise_random``
and ``_cellwise_partitioned``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import SpecError
from ..fitting._block_newton import Structure
from ..links import Poisson
from ..spec import Design, scalar_structure
from ._cellwise_data import CellData


@dataclass
class CellwiseFit:
    """Result of :func:`fit_cellwise`.

    Table-shaped arrays are (I, J) for two-way tables and (I, J, K) for stratified ones, indexed
    by ``row_levels``, ``col_levels`` (and ``stratum_levels``); cells not in the model (absent
    from long input, or in dropped empty rows / columns) hold NaN (fitted counts: 0).

    Attributes
    ----------
    alpha : float or ndarray (K,)
        Intercept: log mean of the first (retained) row and column, per stratum.
    row_effects, col_effects : ndarray (I,) / (J,), or (I, K) / (J, K)
        Effects relative to the first retained level (0 there, -inf for dropped levels).
    beta, beta_se : float, ndarray (K,), or None
        Linear-by-linear association (common, or per stratum) and its SE (observed information).
    sigma, sigma_se : float
        SD of the cell effects; ``sigma_se`` is NaN on the boundary.
    sigma_beta, sigma_beta_se : float or None
        SD of the random stratum associations (``association="random"``).
    beta_strata : ndarray (K,) or None
        Empirical Bayes modes of the stratum associations ``beta_k`` (random association).
    loglik : float
        Marginal log-likelihood (full scale; AGQ with ``n_nodes``, Laplace if 1).
    loglik_sigma0 : float
        Log-likelihood of the model with ``sigma = 0`` (the Poisson GLM, or, for the random
        association model, the model without cell effects); for the LR test of sigma.
    boundary : bool
        sigma (or sigma_beta) was estimated at 0.
    posterior_mode, posterior_mean, posterior_sd : ndarray (table shape)
        Empirical Bayes summaries of the cell effects ``u = sigma v``: modes by 1-D Newton,
        means and SDs by the adaptive rule of the fit (with one node, Laplace: the mean is the
        mode and the SD the curvature SD ``|sigma| / sqrt(1 + sigma^2 mu)``; for the random
        association model, from the joint curvature).
    fitted_counts : ndarray (table shape)
        ``exp(x'beta + u_mode)``: the smoothed counts of the paper's Table 2.
    output_files : list of str
        Partitioned input (Parquet, Dask DataFrame): the Parquet files of the smoothed cells,
        one per partition (the table-shaped arrays above are then None: they would not fit).
    """

    base: str
    association: str | None
    n_nodes: int
    row_levels: np.ndarray
    col_levels: np.ndarray
    stratum_levels: np.ndarray | None
    row_scores: np.ndarray
    col_scores: np.ndarray
    alpha: float | np.ndarray
    row_effects: np.ndarray
    col_effects: np.ndarray
    beta: float | np.ndarray | None
    beta_se: float | np.ndarray | None
    sigma: float
    sigma_se: float
    loglik: float
    loglik_sigma0: float
    converged: bool
    boundary: bool
    n_iter: int
    n_evaluations: int
    message: str
    elapsed: float
    observed: np.ndarray
    fitted_counts: np.ndarray
    posterior_mode: np.ndarray
    posterior_mean: np.ndarray
    posterior_sd: np.ndarray
    sigma_beta: float | None = None
    sigma_beta_se: float | None = None
    beta_strata: np.ndarray | None = None
    history: list[dict] = field(default_factory=list, repr=False)
    output_files: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return "laplace" if self.n_nodes == 1 else f"agq{self.n_nodes}"

    @property
    def lr_sigma(self) -> float:
        """LR statistic for sigma = 0 (compare with the chi-bar-square 0.5 chi2_0 + 0.5 chi2_1)."""
        return max(2.0 * (self.loglik - self.loglik_sigma0), 0.0)

    def fitted(self, normalised: bool = False) -> np.ndarray:
        """Smoothed counts from the posterior modes.

        With ``normalised=True`` they are rescaled to sum to the observed total (per stratum in
        a stratified table). Without it they need not: ``sum exp(x'beta + u_mode)`` equals
        ``n`` only for the Poisson GLM (sigma = 0).
        """
        f = self._table(self.fitted_counts).copy()
        if not normalised:
            return f
        obs = np.nan_to_num(self.observed)
        axes = (0, 1)
        total = obs.sum(axis=axes, keepdims=True)
        fit_total = f.sum(axis=axes, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(fit_total > 0, f * total / fit_total, 0.0)

    def probabilities(self, normalised: bool = True) -> np.ndarray:
        """Smoothed cell probabilities: fitted counts over their sum (or over n if not
        normalised, then they need not sum to one)."""
        f = self._table(self.fitted_counts)
        denom = f.sum() if normalised else np.nansum(self.observed)
        return f / denom

    def _table(self, values: np.ndarray | None) -> np.ndarray:
        if values is None:
            raise SpecError("the smoothed counts of a partitioned fit are in its output files "
                            f"({', '.join(self.output_files[:2]) or 'none written'}...): read "
                            "them (their probability column is normalised per stratum)")
        return values

    def summary(self) -> str:
        lines = [
            f"Cell-wise log-linear smoothing, base {self.base}"
            + (f", association {self.association}" if self.association else ""),
            f"  method {self.method}; log-likelihood {self.loglik:.4f} (sigma = 0: "
            f"{self.loglik_sigma0:.4f}); converged {self.converged}; iterations {self.n_iter}",
            f"  sd(cell) = {self.sigma:.4f} (SE {self.sigma_se:.4f})"
            + ("  [boundary]" if self.boundary else ""),
        ]
        if self.beta is not None:
            b = np.atleast_1d(self.beta)
            se = np.atleast_1d(self.beta_se)
            for k in range(b.size):
                tag = "" if b.size == 1 else f"[{self.stratum_levels[k]}]"
                lines.append(f"  beta{tag} = {b[k]:.4f} (SE {se[k]:.4f})")
        if self.sigma_beta is not None:
            lines.append(f"  sd(beta) = {self.sigma_beta:.4f} (SE {self.sigma_beta_se:.4f})")
        def fmt(v: np.ndarray) -> str:
            return ", ".join(f"{x:g}" for x in v)

        lines.append(f"  scores: rows ({fmt(self.row_scores)}), columns ({fmt(self.col_scores)})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def conv(v: object) -> object:
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, np.generic):
                return v.item()
            return v

        skip = {"history"}
        return {k: conv(v) for k, v in self.__dict__.items() if k not in skip}


# ---------------------------------------------------------------------- model building
@dataclass
class _Model:
    data: CellData
    cells: np.ndarray  # indices of kept cells
    structure: Structure  # sigma free
    glm: Structure  # sigma fixed at 0
    x_assoc: np.ndarray | None  # s_i t_j per kept cell
    kind: str  # "none", "common", "heterogeneous", "random"
    row_first: np.ndarray  # per stratum: global row level of the reference row
    col_ref: np.ndarray  # per stratum: column code of the reference column


def _index(codes: np.ndarray, stratum: np.ndarray, n_levels: int) -> tuple[np.ndarray, ...]:
    key = stratum * n_levels + codes
    uniq, level = np.unique(key, return_inverse=True)
    lev_stratum = uniq // n_levels
    first = np.searchsorted(lev_stratum, lev_stratum, side="left")
    slot = np.arange(len(uniq)) - first
    return level, lev_stratum, slot, uniq % n_levels


def _build(data: CellData, base: str, association: str) -> _Model:
    cells = np.flatnonzero(data.kept)
    k = data.stratum[cells]
    _, k = np.unique(k, return_inverse=True)  # drop empty strata
    n_strata = int(k.max()) + 1
    row, row_stratum, row_slot, _ = _index(data.row[cells], k, len(data.row_levels))
    col, col_stratum, col_slot, col_code = _index(data.col[cells], k, len(data.col_levels))
    col_slot = col_slot - 1  # the first retained column of each stratum is the reference
    x_assoc = None
    kind = "none"
    x_local = None
    x_global = np.zeros((len(cells), 0))
    if base == "linear_by_linear":
        x_assoc = data.row_scores[data.row[cells]] * data.col_scores[data.col[cells]]
        kind = association if n_strata > 1 else "common"
        n_r = np.bincount(row_stratum, minlength=n_strata)
        n_c = np.bincount(col_stratum, minlength=n_strata)
        spread = np.ones(n_strata, dtype=bool)
        for sc in (data.row_scores[data.row[cells]], data.col_scores[data.col[cells]]):
            lo = np.full(n_strata, np.inf)
            hi = np.full(n_strata, -np.inf)
            np.minimum.at(lo, k, sc)
            np.maximum.at(hi, k, sc)
            spread &= hi > lo
        ok = (n_r >= 2) & (n_c >= 2) & spread
        if kind == "common" and not ok.any():
            raise SpecError(
                "the linear-by-linear term needs two rows and two columns with distinct scores"
            )
        if kind in ("heterogeneous", "random") and not ok.all():
            raise SpecError(
                f"strata {list(np.flatnonzero(~ok))} have fewer than two rows or columns with "
                "distinct scores (after dropping empty ones): their association is not estimable"
            )
        if kind == "heterogeneous":
            x_local = x_assoc
        elif kind == "common":
            x_global = x_assoc[:, None]
    common = {
        "stratum": k, "row": row, "col": col, "row_stratum": row_stratum, "row_slot": row_slot,
        "col_stratum": col_stratum, "col_slot": col_slot, "n_strata": n_strata,
    }
    structure = Structure(**common, x_local=x_local, x_global=x_global, sigma_free=True)
    glm = Structure(**common, x_local=x_local, x_global=x_global, sigma_free=False)
    row_first = np.flatnonzero(row_slot == 0)
    col_ref = col_code[col_slot == -1]
    return _Model(data, cells, structure, glm, x_assoc, kind, row_first, col_ref)


def _start(model: _Model, st: Structure) -> np.ndarray:
    """Independence fit per stratum (exact for complete tables): GLM starting values."""
    y = model.data.y[model.cells]
    r_tot = np.bincount(st.row, y, minlength=st.n_rows)
    c_tot = np.bincount(st.col, y, minlength=st.n_cols)
    n_k = np.bincount(st.stratum, y, minlength=st.n_strata)
    ref = np.flatnonzero(st.col_slot == -1)  # one per stratum, in stratum order
    ref_tot = np.zeros(st.n_strata)
    ref_tot[st.col_stratum[ref]] = c_tot[ref]
    theta = np.log(r_tot) + np.log(ref_tot[st.row_stratum]) - np.log(n_k[st.row_stratum])
    phi = np.log(c_tot[st.free_col]) - np.log(ref_tot[st.col_stratum[st.free_col]])
    p = np.concatenate([theta, phi, np.zeros(st.n_local + st.n_lin)])
    return np.concatenate([p, [0.0]]) if st.sigma_free else p


def _design(model: _Model) -> Design:
    """The engine's design of the model: X (sparse) in the structure's parameter order, theta
    (each row level's full effect) | phi (free columns) | per-stratum association | common
    association; one random intercept per cell."""
    st = model.structure
    n = len(model.cells)
    cells = np.arange(n)
    parts = [(cells, st.row, np.ones(n), st.n_rows)]
    free = np.flatnonzero(st.cell_slot >= 0)
    parts.append((free, st.col_param[st.col[free]], np.ones(free.size), st.n_phi))
    if st.has_local:
        parts.append((cells, st.stratum, st.x_local, st.n_strata))
    for g in range(st.n_lin):
        parts.append((cells, np.zeros(n, dtype=np.intp), st.x_global[:, g], 1))
    rows, cols, vals, offset = [], [], [], 0
    for r, c, v, width in parts:
        rows.append(r)
        cols.append(offset + c)
        vals.append(v)
        offset += width
    X = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, offset))
    names = [f"row[{i}]" for i in range(st.n_rows)] + [f"col[{j}]" for j in range(st.n_phi)]
    names += [f"beta[{k}]" for k in range(st.n_local)] + ["beta"] * st.n_lin
    y = model.data.y[model.cells]
    return Design(Poisson(y), X, sp.csr_matrix(np.ones((n, 1))), np.zeros((n, 1)), cells,
                  scalar_structure("cell"), tuple(names))


def _effects(model: _Model, p: np.ndarray) -> dict:
    """Map internal parameters to alpha, row and column effects per stratum."""
    data, st = model.data, model.structure
    nI, nJ = len(data.row_levels), len(data.col_levels)
    strata = np.unique(data.stratum[model.cells])
    theta, phi = p[: st.n_theta], p[st.n_theta : st.n_theta + st.n_phi]
    rows = np.full((nI, len(data.stratum_levels)), -np.inf)
    cols = np.full((nJ, len(data.stratum_levels)), -np.inf)
    alpha = np.full(len(data.stratum_levels), np.nan)
    # global row level -> row code
    row_code = np.empty(st.n_rows, dtype=np.intp)
    row_code[st.row] = data.row[model.cells]
    col_code = np.empty(st.n_cols, dtype=np.intp)
    col_code[st.col] = data.col[model.cells]
    phi_full = np.zeros(st.n_cols)
    phi_full[st.free_col] = phi
    a = theta[model.row_first]
    alpha[strata] = a
    rows[row_code, strata[st.row_stratum]] = theta - a[st.row_stratum]
    cols[col_code, strata[st.col_stratum]] = phi_full
    if not data.stratified:
        return {"alpha": float(alpha[0]), "row_effects": rows[:, 0], "col_effects": cols[:, 0]}
    return {"alpha": alpha, "row_effects": rows, "col_effects": cols}


def _result(
    model: _Model,
    p: np.ndarray,
    post: dict[str, np.ndarray],
    e: np.ndarray,
    beta: float | np.ndarray | None,
    beta_se: float | np.ndarray | None,
    sigma: float,
    sigma_se: float,
) -> dict:
    data = model.data
    n_all = len(data.y)

    def table(v: np.ndarray, fill: float = np.nan) -> np.ndarray:
        full = np.full(n_all, fill)
        full[model.cells] = v
        out = data.to_table(np.where(data.kept, full, fill), fill=np.nan)
        return out

    fitted = table(np.exp(e + post["mode"]), fill=0.0)
    if model.kind == "heterogeneous" and beta is not None:
        beta = _per_stratum(model, beta)
        beta_se = _per_stratum(model, beta_se)
    return dict(
        row_levels=data.row_levels,
        col_levels=data.col_levels,
        stratum_levels=data.stratum_levels if data.stratified else None,
        row_scores=data.row_scores,
        col_scores=data.col_scores,
        **_effects(model, p),
        beta=beta,
        beta_se=beta_se,
        sigma=sigma,
        sigma_se=sigma_se,
        observed=data.to_table(data.y),
        fitted_counts=fitted,
        posterior_mode=table(post["mode"]),
        posterior_mean=table(post["mean"]),
        posterior_sd=table(post["sd"]),
    )


def _per_stratum(model: _Model, v: np.ndarray) -> np.ndarray:
    """Per retained stratum values -> one value per stratum level (NaN for dropped strata)."""
    strata = np.unique(model.data.stratum[model.cells])
    out = np.full(len(model.data.stratum_levels), np.nan)
    out[strata] = v
    return out
