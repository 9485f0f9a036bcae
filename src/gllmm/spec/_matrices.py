"""Builders of ``C`` and ``A`` in ``C log(A mu) = X beta + Z u`` for the standard special cases.

Cells are in row-major order of the table's factors (the last varies fastest), as in
``gllmm.tables.Table``. Every builder acts along one or two axes with identity on the others,
so the same function gives the stratified version (block diagonal when the stratifying factors
come first): the matrices are Kronecker products ``M_1 (x) ... (x) M_K`` with ``M_k = I`` for
the untouched axes. Rows of ``C`` are in row-major order of the table's shape with the acted-on
axes' levels replaced by the logit / odds-ratio index; ``row_index`` records that index.

Conventions (Agresti 2013, Chapter 8), lower categories in the numerator throughout, for a
response with categories 1..K and probabilities pi_j within each combination of other factors:

- baseline-category logits ``log(pi_j / pi_b)``, j != b (b = K by default);
- adjacent-categories logits ``log(pi_j / pi_{j+1})``, j = 1..K-1;
- cumulative logits ``log(P(Y <= j) / P(Y > j))``, j = 1..K-1;
- continuation-ratio logits ``log(pi_j / P(Y > j))``, j = 1..K-1.

Glossary: n cells, m rows of ``A`` (the linear combinations of means), r rows of ``C`` (the
linear predictors), p columns of ``X``.

References
----------
Agresti, A. (2013). Categorical Data Analysis, 3rd ed. Wiley. Sections 2.4, 8.2-8.3, 10.3.
Lang, J. B. and Agresti, A. (1994). Simultaneously modeling joint and marginal distributions
of multivariate categorical responses. JASA 89, 625-632.
Coull, B. A. and Agresti, A. (2003). Generalized log-linear models with random effects, with
application to smoothing contingency tables. Statistical Modelling 3, 251-271. Section 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp

from ..errors import SpecError

Matrix = Any  # numpy.ndarray or scipy.sparse.csr_array

# Above this many cells the builders return scipy.sparse matrices by default: a dense A of the
# global odds ratios of 1000 cells already holds ~4 * 10^6 floats.
DENSE_MAX_CELLS = 1000


class _TableLike(Protocol):
    factors: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]: ...

    def levels(self, name: str) -> Sequence[Any]: ...


@dataclass(frozen=True)
class _Grid:
    shape: tuple[int, ...]
    names: tuple[str, ...]
    levels: tuple[tuple[Any, ...], ...]

    def axis(self, a: int | str) -> int:
        if isinstance(a, str):
            if a not in self.names:
                raise SpecError(f"unknown factor {a!r}; factors are {list(self.names)}")
            return self.names.index(a)
        if not -len(self.shape) <= a < len(self.shape):
            raise SpecError(f"axis {a} out of range for a table of shape {self.shape}")
        return int(a) % len(self.shape)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))


def _grid(table: _TableLike | Sequence[int] | _Grid) -> _Grid:
    if isinstance(table, _Grid):
        return table
    if hasattr(table, "factors"):
        t: Any = table
        return _Grid(tuple(t.shape), tuple(t.factors), tuple(tuple(t.levels(f)) for f in t.factors))
    shape = tuple(int(k) for k in table)  # type: ignore[union-attr]
    if not shape or min(shape) < 1:
        raise SpecError(f"invalid table shape {shape}")
    return _Grid(shape, tuple(f"x{k + 1}" for k in range(len(shape))),
                 tuple(tuple(range(1, k + 1)) for k in shape))


@dataclass(frozen=True, eq=False)
class LinkMatrices:
    """``C`` (r, m) and ``A`` (m, n) of one generalized log-linear model, with row bookkeeping.

    Unpacks as ``C, A = builder(...)``.

    Attributes
    ----------
    C, A : ndarray or scipy.sparse.csr_array
    kind : str
        Which builder made them (e.g. ``cumulative_logit``).
    row_index : ndarray (r, n_factors) of int
        For each row of ``C``: the level index of every factor left as is, the logit / odds
        ratio index j (0-based) on the acted-on axes, and -1 on factors summed out (marginal
        models). Use it to build ``X`` (e.g. one intercept per cumulative logit).
    axis_names : tuple of str
    axis_labels : tuple of callables
        ``axis_labels[k](j)`` describes index j of axis k in a row label.
    """

    C: Matrix
    A: Matrix
    kind: str
    row_index: np.ndarray
    axis_names: tuple[str, ...]
    axis_labels: tuple[Callable[[int], str], ...]

    def __iter__(self) -> Iterator[Matrix]:
        return iter((self.C, self.A))

    @property
    def n_rows(self) -> int:
        return int(self.C.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.A.shape[1])

    def labels(self) -> list[str]:
        """One readable label per row of ``C``, e.g. ``cumulative_logit[y<=2, x=1]``."""
        out = []
        for row in self.row_index:
            parts = [self.axis_labels[k](int(j)) for k, j in enumerate(row) if j >= 0]
            out.append(f"{self.kind}[{', '.join(parts)}]")
        return out


# ---------------------------------------------------------------- building blocks (sparse)
def _diff(k: int) -> sp.csr_array:
    """(k-1, k): row j is e_{j+1} - e_j."""
    return sp.csr_array(sp.eye_array(k - 1, k, k=1) - sp.eye_array(k - 1, k))


def _lower(k: int) -> sp.csr_array:
    """(k-1, k): row j sums categories 0..j (P(Y <= j))."""
    return sp.csr_array(np.tril(np.ones((k - 1, k))))


def _upper(k: int) -> sp.csr_array:
    """(k-1, k): row j sums categories j+1..k-1 (P(Y > j))."""
    return sp.csr_array(1.0 - np.tril(np.ones((k - 1, k))))


def _along(shape: tuple[int, ...], mats: dict[int, sp.csr_array]) -> sp.csr_array:
    """``M_1 (x) ... (x) M_K`` with ``M_k = mats[k]`` or the identity: acts on row-major cells."""
    out = sp.csr_array(np.ones((1, 1)))
    for k, n in enumerate(shape):
        out = sp.kron(out, mats.get(k, sp.eye_array(n)), format="csr")
    return sp.csr_array(out)


def _interleave(blocks: list[sp.csr_array]) -> sp.csr_array:
    """Stack blocks so that row ``b`` of the group for index i is ``blocks[b][i]``."""
    m, nb = blocks[0].shape[0], len(blocks)
    perm = (np.arange(nb)[None, :] * m + np.arange(m)[:, None]).reshape(-1)
    return sp.csr_array(sp.vstack(blocks, format="csr")[perm])


def _contrast(m: int, weights: Sequence[float]) -> sp.csr_array:
    """``I_m (x) w``: each linear predictor combines its own group of ``len(w)`` rows of A."""
    return sp.csr_array(sp.kron(sp.eye_array(m), sp.csr_array(np.atleast_2d(weights)),
                                format="csr"))


def _row_index(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), axis=1)


def _level_labels(g: _Grid) -> list[Callable[[int], str]]:
    return [lambda j, k=k: f"{g.names[k]}={g.levels[k][j]}" for k in range(len(g.shape))]


def _is_sparse(g: _Grid, sparse: bool | None) -> bool:
    return g.n_cells > DENSE_MAX_CELLS if sparse is None else sparse


def _finish(g: _Grid, C: sp.csr_array, A: sp.csr_array, kind: str, row_shape: tuple[int, ...],
            labels: list[Callable[[int], str]], sparse: bool | None) -> LinkMatrices:
    if not _is_sparse(g, sparse):
        C, A = C.toarray(), A.toarray()
    return LinkMatrices(C, A, kind, _row_index(row_shape), g.names, tuple(labels))


def _on_cells(g: _Grid, C: sp.csr_array, kind: str, row_shape: tuple[int, ...],
              labels: list[Callable[[int], str]], sparse: bool | None) -> LinkMatrices:
    """A model on the cells themselves: ``A = I_n``, so ``C log(A mu) = C log mu``."""
    A = sp.csr_array(sp.eye_array(g.n_cells, format="csr"))
    return _finish(g, C, A, kind, row_shape, labels, sparse)


def _need_levels(g: _Grid, k: int, what: str, minimum: int = 2) -> int:
    n = g.shape[k]
    if n < minimum:
        raise SpecError(f"{what} need at least {minimum} levels of {g.names[k]!r}, it has {n}")
    return n


def _pair(g: _Grid, axes: Sequence[int | str]) -> tuple[int, int]:
    if len(axes) != 2:
        raise SpecError(f"odds ratios need two axes, got {list(axes)}")
    a, b = (g.axis(x) for x in axes)
    if a == b:
        raise SpecError(f"odds ratios need two different axes, got {list(axes)}")
    return a, b


# ---------------------------------------------------------------- builders
def loglinear_matrices(table: _TableLike | Sequence[int], *,
                       sparse: bool | None = None) -> LinkMatrices:
    """Log-linear model: ``C = A = I_n``, so ``C log(A mu) = log mu``.

    Parameters
    ----------
    table : Table or shape
    sparse : bool, optional
        Return scipy.sparse matrices; default when the table has more than
        ``DENSE_MAX_CELLS`` cells.

    References
    ----------
    Coull & Agresti (2003), Section 1 (the log-linear special case of the GLLM).
    """
    g = _grid(table)
    eye = sp.csr_array(sp.eye_array(g.n_cells, format="csr"))
    return _on_cells(g, eye, "log_mu", g.shape, _level_labels(g), sparse)


def local_odds_ratios(table: _TableLike | Sequence[int], axes: Sequence[int | str] = (0, 1), *,
                      sparse: bool | None = None) -> LinkMatrices:
    """Local log odds ratios of two factors, within each combination of the others.

    ``log theta_ij = log mu_ij + log mu_{i+1,j+1} - log mu_{i,j+1} - log mu_{i+1,j}`` for
    i = 1..I-1, j = 1..J-1: ``A = I_n`` and ``C = D_I (x) D_J`` (identity on other axes), with
    ``D_K`` the (K-1) x K first-difference matrix. (I-1)(J-1) rows per stratum.

    Parameters
    ----------
    table : Table or shape
    axes : two factor names or positions
        The row and column factors (I and J levels).
    sparse : bool, optional

    References
    ----------
    Agresti (2013), Section 2.4.5; Coull & Agresti (2003), Section 1.
    """
    g = _grid(table)
    a, b = _pair(g, axes)
    n_a, n_b = (_need_levels(g, k, "local odds ratios") for k in (a, b))
    C = _along(g.shape, {a: _diff(n_a), b: _diff(n_b)})
    labels = _level_labels(g)
    for k in (a, b):
        labels[k] = lambda j, k=k: f"{g.names[k]}={g.levels[k][j]}:{g.levels[k][j + 1]}"
    row_shape = tuple(n - 1 if k in (a, b) else n for k, n in enumerate(g.shape))
    return _on_cells(g, C, "log_local_or", row_shape, labels, sparse)


def global_odds_ratios(table: _TableLike | Sequence[int], axes: Sequence[int | str] = (0, 1), *,
                       sparse: bool | None = None) -> LinkMatrices:
    """Global log odds ratios of two ordinal factors, within each combination of the others.

    For each split (i, j), A sums the cells into the quadrant probabilities
    ``q11 = P(X <= i, Y <= j)``, ``q12 = P(X <= i, Y > j)``, ``q21 = P(X > i, Y <= j)``,
    ``q22 = P(X > i, Y > j)`` (four consecutive rows of A) and C takes
    ``log q11 + log q22 - log q12 - log q21`` (Dale 1986). With a third factor first, the
    matrices are block diagonal by its levels (stratified global odds ratios).

    Parameters
    ----------
    table : Table or shape
    axes : two factor names or positions
    sparse : bool, optional

    References
    ----------
    Agresti (2013), Section 2.4.5 and 10.3; Lang & Agresti (1994); Coull & Agresti (2003),
    Section 1 (the Dale global odds ratio model).
    """
    g = _grid(table)
    a, b = _pair(g, axes)
    n_a, n_b = (_need_levels(g, k, "global odds ratios") for k in (a, b))
    lo_a, up_a, lo_b, up_b = _lower(n_a), _upper(n_a), _lower(n_b), _upper(n_b)
    quadrants = [_along(g.shape, {a: ma, b: mb}) for ma, mb in
                 ((lo_a, lo_b), (lo_a, up_b), (up_a, lo_b), (up_a, up_b))]
    A = _interleave(quadrants)
    C = _contrast(quadrants[0].shape[0], [1.0, -1.0, -1.0, 1.0])
    labels = _level_labels(g)
    for k in (a, b):
        labels[k] = lambda j, k=k: f"{g.names[k]}<={g.levels[k][j]}"
    row_shape = tuple(n - 1 if k in (a, b) else n for k, n in enumerate(g.shape))
    return _finish(g, C, A, "log_global_or", row_shape, labels, sparse)


def _logit_rows(g: _Grid, response: int | str) -> tuple[int, int, tuple[int, ...]]:
    r = g.axis(response)
    k = _need_levels(g, r, "logits")
    row_shape = tuple(k - 1 if a == r else n for a, n in enumerate(g.shape))
    return r, k, row_shape


def baseline_logits(table: _TableLike | Sequence[int], response: int | str = -1,
                    baseline: int = -1, *, sparse: bool | None = None) -> LinkMatrices:
    """Baseline-category logits ``log(pi_j / pi_b)``, j != b, within each other-factor cell.

    ``A = I_n``; C has rows ``e_j - e_b`` along the response axis. Multinomial-logit models.

    Parameters
    ----------
    table : Table or shape
    response : factor name or position
    baseline : int
        Index (0-based, negative from the end) of the baseline category; default the last.
    sparse : bool, optional

    References
    ----------
    Agresti (2013), Section 8.1.
    """
    g = _grid(table)
    r, k, row_shape = _logit_rows(g, response)
    if not -k <= baseline < k:
        raise SpecError(f"baseline {baseline} out of range for {k} categories of {g.names[r]!r}")
    base = baseline % k
    others = [j for j in range(k) if j != base]
    D = np.zeros((k - 1, k))
    D[np.arange(k - 1), others] = 1.0
    D[:, base] = -1.0
    C = _along(g.shape, {r: sp.csr_array(D)})
    labels = _level_labels(g)
    lv, name = g.levels[r], g.names[r]
    labels[r] = lambda j: f"{name}={lv[others[j]]} vs {lv[base]}"
    return _on_cells(g, C, "baseline_logit", row_shape, labels, sparse)


def adjacent_logits(table: _TableLike | Sequence[int], response: int | str = -1, *,
                    sparse: bool | None = None) -> LinkMatrices:
    """Adjacent-categories logits ``log(pi_j / pi_{j+1})``, j = 1..K-1, per other-factor cell.

    ``A = I_n``; ``C = -D_K`` along the response axis.

    References
    ----------
    Agresti (2013), Section 8.3.4.
    """
    g = _grid(table)
    r, k, row_shape = _logit_rows(g, response)
    C = _along(g.shape, {r: sp.csr_array(-_diff(k))})
    labels = _level_labels(g)
    lv, name = g.levels[r], g.names[r]
    labels[r] = lambda j: f"{name}={lv[j]} vs {lv[j + 1]}"
    return _on_cells(g, C, "adjacent_logit", row_shape, labels, sparse)


def cumulative_logits(table: _TableLike | Sequence[int], response: int | str = -1, *,
                      sparse: bool | None = None) -> LinkMatrices:
    """Cumulative logits ``log(P(Y <= j) / P(Y > j))``, j = 1..K-1, per other-factor cell.

    A has two consecutive rows per logit, ``P(Y <= j)`` and ``P(Y > j)`` (sums of cells, the
    common normalising total cancels); ``C = I (x) [1, -1]``.

    References
    ----------
    Agresti (2013), Section 8.2; Coull & Agresti (2003), Section 1 (cumulative logit models as
    GLLMs).
    """
    g = _grid(table)
    r, k, row_shape = _logit_rows(g, response)
    A = _interleave([_along(g.shape, {r: _lower(k)}), _along(g.shape, {r: _upper(k)})])
    C = _contrast(A.shape[0] // 2, [1.0, -1.0])
    labels = _level_labels(g)
    lv, name = g.levels[r], g.names[r]
    labels[r] = lambda j: f"{name}<={lv[j]}"
    return _finish(g, C, A, "cumulative_logit", row_shape, labels, sparse)


def continuation_logits(table: _TableLike | Sequence[int], response: int | str = -1, *,
                        sparse: bool | None = None) -> LinkMatrices:
    """Continuation-ratio logits ``log(pi_j / P(Y > j))``, j = 1..K-1, per other-factor cell.

    A has two consecutive rows per logit, ``pi_j`` and ``P(Y > j)``; ``C = I (x) [1, -1]``.

    References
    ----------
    Agresti (2013), Section 8.3.5.
    """
    g = _grid(table)
    r, k, row_shape = _logit_rows(g, response)
    first = sp.csr_array(sp.eye_array(k - 1, k))
    A = _interleave([_along(g.shape, {r: first}), _along(g.shape, {r: _upper(k)})])
    C = _contrast(A.shape[0] // 2, [1.0, -1.0])
    labels = _level_labels(g)
    lv, name = g.levels[r], g.names[r]
    labels[r] = lambda j: f"{name}={lv[j]} vs >{lv[j]}"
    return _finish(g, C, A, "continuation_logit", row_shape, labels, sparse)


# Registry of logit builders (style: registries, not if/elif).
LOGITS: dict[str, Callable[..., LinkMatrices]] = {
    "baseline": baseline_logits,
    "adjacent": adjacent_logits,
    "cumulative": cumulative_logits,
    "continuation": continuation_logits,
}


def logits(table: _TableLike | Sequence[int], response: int | str = -1,
           kind: str = "cumulative", *, sparse: bool | None = None) -> LinkMatrices:
    """Logits of a response factor by name of their kind (see ``LOGITS``)."""
    if kind not in LOGITS:
        raise SpecError(f"unknown logit kind {kind!r}; known: {sorted(LOGITS)}")
    return LOGITS[kind](table, response, sparse=sparse)


def margin_matrix(table: _TableLike | Sequence[int], keep: Sequence[int | str], *,
                  sparse: bool | None = None) -> Matrix:
    """The (m, n) matrix summing the cells into the margin of the ``keep`` factors.

    ``(M mu)`` lists the marginal totals in row-major order of the kept factors (in grid order):
    ``M = M_1 (x) ... (x) M_K`` with ``M_k = I`` for kept and ``1'`` (a row of ones) for summed
    factors.

    References
    ----------
    Lang & Agresti (1994), Section 2 (marginal models as ``C log(A mu)``).
    """
    g = _grid(table)
    kept = {g.axis(k) for k in keep}
    M = _along(g.shape, {k: sp.csr_array(np.ones((1, n))) for k, n in enumerate(g.shape)
                         if k not in kept})
    return M if _is_sparse(g, sparse) else M.toarray()


def marginal_logits(table: _TableLike | Sequence[int], responses: Sequence[int | str] = (0, 1),
                    kind: str = "cumulative", strata: Sequence[int | str] = (), *,
                    sparse: bool | None = None) -> LinkMatrices:
    """Logits of each response's marginal distribution, stacked (a marginal model).

    For each response factor R, ``A_R = A_logit M_R`` where ``M_R`` sums the cells into the
    margin of (strata, R) and ``A_logit``, ``C_R`` are the ``kind`` logits of that margin;
    ``C = blockdiag(C_R)``, ``A = [A_R1; A_R2; ...]``. Rows of ``C`` come response by response.
    With ``responses = (0, 1)`` on a square I x I table and ``X = [I; I]`` (the same cut
    points for both margins), the model is marginal homogeneity; adding a column of -1/+1 for
    the second margin gives the marginal location shift model.

    Parameters
    ----------
    table : Table or shape
    responses : factor names or positions
    kind : str
        A key of ``LOGITS``.
    strata : factor names or positions
        Factors the margins are taken within (e.g. a covariate or cluster).
    sparse : bool, optional

    References
    ----------
    Lang & Agresti (1994); Agresti (2013), Sections 11.2-11.3; Coull & Agresti (2003),
    Section 1.
    """
    g = _grid(table)
    if kind not in LOGITS:
        raise SpecError(f"unknown logit kind {kind!r}; known: {sorted(LOGITS)}")
    resp = [g.axis(x) for x in responses]
    strat = sorted({g.axis(x) for x in strata})
    if not resp or len(set(resp)) != len(resp) or set(resp) & set(strat):
        raise SpecError(f"responses {list(responses)} must be distinct, non-empty and not among "
                        f"strata {list(strata)}")
    Cs, As, index = [], [], []
    labels = _level_labels(g)
    for r in resp:
        keep = sorted([*strat, r])
        sub = _Grid(tuple(g.shape[k] for k in keep), tuple(g.names[k] for k in keep),
                    tuple(g.levels[k] for k in keep))
        inner = LOGITS[kind](sub, keep.index(r), sparse=True)
        M = margin_matrix(g, keep, sparse=True)
        Cs.append(inner.C)
        As.append(sp.csr_array(inner.A @ M))
        full = -np.ones((inner.n_rows, len(g.shape)), dtype=np.intp)
        full[:, keep] = inner.row_index
        index.append(full)
        labels[r] = inner.axis_labels[keep.index(r)]
    C = sp.csr_array(sp.block_diag(Cs, format="csr"))
    A = sp.csr_array(sp.vstack(As, format="csr"))
    if not _is_sparse(g, sparse):
        C, A = C.toarray(), A.toarray()
    return LinkMatrices(C, A, f"marginal_{inner.kind}", np.vstack(index), g.names, tuple(labels))


# ---------------------------------------------------------------- checks
def check_conformable(C: Matrix, A: Matrix, X: Matrix, n_cells: int,
                      Z: Matrix | None = None) -> None:
    """Raise ``SpecError`` unless ``C log(A mu) = X beta (+ Z u)`` is well formed.

    Requires A (m, n_cells), C (r, m), X (r, p), Z (r, q), and A non-negative with no zero row
    (so ``A mu > 0`` whenever ``mu > 0``).

    Raises
    ------
    SpecError
        Listing every mismatch with the shapes involved.
    """
    named = {"C": C, "A": A, "X": X} | ({} if Z is None else {"Z": Z})
    shapes = {k: tuple(np.shape(v)) for k, v in named.items()}  # np.shape reads sparse .shape
    bad = [f"{k} has shape {s}, not 2-D" for k, s in shapes.items() if len(s) != 2]
    if bad:
        raise SpecError("; ".join(bad))
    (r, m), (m_a, n), (r_x, _) = shapes["C"], shapes["A"], shapes["X"]
    problems = []
    if n != n_cells:
        problems.append(f"A {shapes['A']} has {n} columns but the table has {n_cells} cells")
    if m != m_a:
        problems.append(f"C {shapes['C']} has {m} columns but A {shapes['A']} has {m_a} rows")
    if r_x != r:
        problems.append(f"X {shapes['X']} has {r_x} rows but C {shapes['C']} has {r} rows "
                        "(one per linear predictor)")
    if Z is not None and shapes["Z"][0] != r:
        problems.append(f"Z {shapes['Z']} has {shapes['Z'][0]} rows but C {shapes['C']} has "
                        f"{r} rows")
    if problems:
        raise SpecError("non-conformable model matrices: " + "; ".join(problems))
    Ad = sp.csr_array(A) if sp.issparse(A) else np.asarray(A, dtype=np.float64)
    if (Ad.min() if Ad.size else 0.0) < 0:
        raise SpecError("A has negative entries: A mu must be positive sums of means")
    empty = np.flatnonzero(np.asarray(abs(Ad).sum(axis=1)).reshape(-1) == 0)
    if empty.size:
        raise SpecError(f"A has {empty.size} all-zero row(s) (log of 0): rows "
                        f"{empty[:10].tolist()}")


def aliased_columns(X: Matrix, names: Sequence[str] | None = None,
                    tol: float | None = None) -> list[str]:
    """Names of the columns of X that are linear combinations of earlier columns.

    Column k is aliased when ``rank(X[:, :k+1]) = rank(X[:, :k])`` (the lexicographically first
    basis is kept, as R's ``lm``). The rank and the null space come from a pivoted QR,
    ``X_s P = Q [R11 R12; 0 R22]`` of X with unit-norm columns; ``rank`` counts
    ``|R_ii| > tol |R_00|``. The null space ``P [-R11^{-1} R12; I]`` is then brought to echelon
    form from the last column backwards; its pivot columns are the aliased ones.

    Parameters
    ----------
    X : array (n, p)
    names : sequence of str, optional
        Column names; default ``column 0``, ``column 1``, ...
    tol : float, optional
        Relative tolerance on the diagonal of R; default ``max(n, p) * eps`` (numpy's
        ``matrix_rank`` rule).

    Returns
    -------
    list of str, in column order
    """
    Xd = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    if Xd.ndim != 2:
        raise SpecError(f"X must be 2-D, got shape {Xd.shape}")
    n, p = Xd.shape
    names = [f"column {k}" for k in range(p)] if names is None else list(names)
    if len(names) != p:
        raise SpecError(f"{len(names)} names for the {p} columns of X")
    if p == 0:
        return []
    norms = np.linalg.norm(Xd, axis=0)
    Xs = Xd / np.where(norms > 0, norms, 1.0)
    # LAPACK's pivoted QR (what scipy.linalg.qr(pivoting=True) calls) without the wrapper's
    # checks, which cost eight times the factorisation of a model matrix of a few dozen rows
    qr, jpvt, _, _, info = scipy.linalg.lapack.dgeqp3(Xs)
    if info != 0:
        raise SpecError(f"QR of X failed (LAPACK dgeqp3 info {info})")
    R, piv = np.triu(qr[: min(n, p)]), jpvt - 1
    diag = np.abs(np.diag(R))
    tol = max(n, p) * np.finfo(float).eps if tol is None else tol
    rank = int(np.sum(diag > tol * diag[0])) if diag.size and diag[0] > 0 else 0
    if rank == p:
        return []
    null = np.zeros((p, p - rank))
    if rank:
        null[piv[:rank]] = -scipy.linalg.solve_triangular(R[:rank, :rank], R[:rank, rank:])
    null[piv[rank:]] = np.eye(p - rank)
    # Echelon form from the right: each null vector's last non-zero entry is an aliased column.
    M = np.linalg.qr(null)[0].T
    aliased = []
    for c in range(p - 1, -1, -1):
        if M.shape[0] == 0:
            break
        k = int(np.argmax(np.abs(M[:, c])))
        if abs(M[k, c]) <= np.sqrt(np.finfo(float).eps):
            continue
        pivot = M[k] / M[k, c]
        M = np.delete(M, k, axis=0)
        M -= np.outer(M[:, c], pivot)
        aliased.append(c)
    return [names[c] for c in sorted(aliased)]


def check_full_rank(X: Matrix, names: Sequence[str] | None = None,
                    tol: float | None = None) -> None:
    """Raise ``SpecError`` naming the aliased columns if X is not of full column rank.

    See ``aliased_columns`` for the rule and tolerance.
    """
    aliased = aliased_columns(X, names, tol)
    if aliased:
        p = np.shape(X)[1]
        raise SpecError(f"X ({np.shape(X)[0]} x {p}) has rank {p - len(aliased)} < {p}: columns "
                        f"{aliased} are linear combinations of earlier columns (aliased)")
