"""The engine's compiled form of a GLLMM: stacked arrays per block and cluster.

``eta_b = X_b beta + offset_b + Z_b Lambda(theta) v_c``, ``v_c ~ N(0, I_q)``, for block b in
cluster c. ``Lambda = sum_k theta_k E_k`` is linear in theta (lme4's relative covariance factor:
``u = Lambda v``, ``Sigma = Lambda Lambda'``), so a zero variance is an ordinary point of the
parameter space and the curvature in v is positive definite everywhere.

Large designs (crossed factors with thousands of levels) keep X, Z and the templates E_k sparse:
``Z`` as a (B J) x q CSR matrix and the E_k as one coordinate list of Lambda's pattern with a value
per template, so nothing of size rows x q or q x q exists unless a consumer asks for the dense
arrays (the AGQ paths, for small q per cluster).

Glossary: B blocks, J predictors per block, p fixed effects, q random effects per cluster,
C clusters, m covariance parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import SpecError
from ..links import Family


@dataclass(frozen=True)
class LambdaPattern:
    """The templates ``E_k`` of ``Lambda = sum_k theta_k E_k`` as one coordinate list.

    Attributes
    ----------
    rows, cols : ndarray (nnz,) of int
        Positions of Lambda's structural non-zeros, sorted by row then column, no repeats.
    values : ndarray (nnz, m)
        ``E_k[rows[e], cols[e]] = values[e, k]``.
    dimension : int
        q (Lambda is q x q).
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    dimension: int

    @classmethod
    def from_coordinates(cls, rows: Any, cols: Any, values: Any, q: int) -> LambdaPattern:
        """Sorted, with repeated positions summed (an entry may list one template's part)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=float).reshape(len(rows), -1)
        key = rows * q + cols
        if np.all(key[1:] > key[:-1]):  # sorted already, no repeats (e.g. identity blocks)
            return cls(rows, cols, values, int(q))
        key, inv = np.unique(key, return_inverse=True)
        merged = np.zeros((len(key), values.shape[1]))
        np.add.at(merged, inv.ravel(), values)
        return cls(key // q, key % q, merged, int(q))

    @classmethod
    def from_dense(cls, templates: np.ndarray) -> LambdaPattern:
        t = np.asarray(templates, dtype=float)
        r, c = np.nonzero(np.any(t != 0, axis=0))
        return cls(r.astype(np.int64), c.astype(np.int64), t[:, r, c].T.copy(), t.shape[1])

    @property
    def n_params(self) -> int:
        return self.values.shape[1]

    def dense(self) -> np.ndarray:
        """The templates as one (m, q, q) array."""
        out = np.zeros((self.n_params, self.dimension, self.dimension))
        out[:, self.rows, self.cols] = self.values.T
        return out

    def factor(self, theta: np.ndarray) -> sp.csr_matrix:
        """Lambda(theta) as a q x q CSR matrix."""
        q = self.dimension
        return sp.csr_matrix((self.values @ np.asarray(theta, dtype=float),
                              (self.rows, self.cols)), shape=(q, q))


class CovarianceStructure:
    """Map from covariance parameters theta to the q x q factor Lambda, with display names.

    Parameters
    ----------
    templates : ndarray (m, q, q) or LambdaPattern
        ``Lambda = sum_k theta_k templates[k]``; a LambdaPattern keeps them sparse (the dense
        array is then built only when ``templates`` is read).
    lower : ndarray (m,)
        Lower bounds: 0 for diagonal entries (standard deviations), -inf for off-diagonals.
    names : tuple of str
        Parameter names as users read them, e.g. ``sd(cell)``, ``cor(center)``.
    blocks : tuple of (term, component names, positions, kind)
        One entry per covariance block (its first repetition), for reporting SDs and
        correlations.
    roles : tuple of str
        What each parameter is: ``"sd"`` (a standard deviation), ``"cholesky_diagonal"`` or
        ``"cholesky_offdiagonal"`` (entries of an unstructured factor, as lme4's theta). Tests
        read them: a parameter whose role is in ``VARIANCE_ROLES`` is a variance direction,
        on the boundary of the parameter space at 0. Default: bounded entries are SDs,
        unbounded ones off-diagonal factor entries.
    """

    def __init__(self, templates: np.ndarray | LambdaPattern, lower: Any,
                 names: tuple[str, ...], blocks: tuple = (),
                 roles: tuple[str, ...] = ()) -> None:
        if isinstance(templates, LambdaPattern):
            self._pattern: LambdaPattern | None = templates
            self._templates: np.ndarray | None = None
        else:
            self._pattern = None
            self._templates = np.asarray(templates, dtype=float)
        self.lower = np.asarray(lower, dtype=float)
        self.names = tuple(names)
        self.blocks = tuple(blocks)
        self.roles = tuple(roles) or tuple(
            "sd" if lo == 0 else "cholesky_offdiagonal" for lo in self.lower)
        if len(self.roles) != len(self.names):
            raise SpecError(f"{len(self.roles)} roles for {len(self.names)} covariance "
                            "parameters")

    def __repr__(self) -> str:
        return (f"CovarianceStructure(q={self.dimension}, names={self.names}, "
                f"{'sparse' if self._templates is None else 'dense'})")

    @property
    def pattern(self) -> LambdaPattern:
        """The templates as a sparse coordinate list (built once from dense templates)."""
        if self._pattern is None:
            self._pattern = LambdaPattern.from_dense(self._templates)
        return self._pattern

    @property
    def templates(self) -> np.ndarray:
        """The templates as a dense (m, q, q) array (built once from a sparse pattern)."""
        if self._templates is None:
            self._templates = self.pattern.dense()
        return self._templates

    @property
    def n_params(self) -> int:
        return len(self.names) if self._templates is None else self._templates.shape[0]

    @property
    def dimension(self) -> int:
        return self.pattern.dimension if self._templates is None else self._templates.shape[1]

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """Lambda(theta), dense q x q."""
        if self._templates is None:
            return self.pattern.factor(theta).toarray()
        return np.tensordot(theta, self._templates, axes=1)

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        lam = self.factor(theta)
        return lam @ lam.T

    def compact(self) -> CovarianceStructure:
        """The same parameters on the positions of ``blocks`` (and the columns their rows of
        Lambda reach) only: Sigma and dSigma/dtheta there are those of the full structure, at
        the size of one repetition of each block instead of q (e.g. 2 instead of 3000 for two
        crossed intercepts)."""
        if not self.blocks:
            return self
        pat = self.pattern
        rows = np.unique(np.concatenate([np.asarray(b[2]).ravel() for b in self.blocks]))
        reach = np.isin(pat.rows, rows)
        keep = np.union1d(rows, pat.cols[reach])
        if len(keep) == pat.dimension:
            return self
        new = np.full(pat.dimension, -1, dtype=np.int64)
        new[keep] = np.arange(len(keep))
        inside = (new[pat.rows] >= 0) & (new[pat.cols] >= 0)
        small = LambdaPattern(new[pat.rows[inside]], new[pat.cols[inside]],
                              pat.values[inside], len(keep))
        blocks = tuple((t, c, new[np.asarray(i)], k) for t, c, i, k in self.blocks)
        return CovarianceStructure(small.dense(), self.lower, self.names, blocks, self.roles)


#: Roles of covariance parameters that are (square roots of) variances: 0 is a boundary point.
VARIANCE_ROLES = frozenset({"sd", "cholesky_diagonal"})


def scalar_structure(term: str, q: int = 1, component: str = "(Intercept)") -> CovarianceStructure:
    """One SD shared by q independent components (scaled identity)."""
    comp = np.arange(q)
    return CovarianceStructure(
        LambdaPattern(comp, comp, np.ones((q, 1)), q), np.zeros(1), (f"sd({term})",),
        ((term, (component,), comp, "identity"),)
    )


def block_structure(
    specs: list[tuple[str, tuple[str, ...], str, Any]], q: int
) -> CovarianceStructure:
    """Covariance parameters for several terms sharing a cluster.

    Parameters
    ----------
    specs : list of (term name, component names, kind, index arrays)
        ``kind`` is ``identity`` (one SD for all components), ``diagonal`` (one SD per component)
        or ``unstructured`` (log-Cholesky-free lower-triangular factor, as lme4). The index
        arrays (a list of arrays or one (repetitions, components) array) list the positions of
        the term's components in each repetition (for nested and crossed terms the same
        covariance block repeats for every group of the cluster).
    q : int
        Total number of random effects per cluster.

    Returns
    -------
    CovarianceStructure
        With sparse templates (one coordinate list): O(q) memory.
    """
    lower: list[float] = []
    names: list[str] = []
    roles: list[str] = []
    blocks = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    which: list[np.ndarray] = []  # template of each entry

    def add(r: np.ndarray, c: np.ndarray, low: float, name: str, role: str = "sd") -> None:
        roles.append(role)
        rows.append(r)
        cols.append(c)
        which.append(np.full(len(r), len(names)))
        lower.append(low)
        names.append(name)

    for term, comps, kind, reps in specs:
        idx = np.asarray(reps, dtype=np.int64).reshape(-1, len(comps))  # (repetitions, d)
        d = len(comps)
        if kind == "identity" or d == 1:
            add(idx.ravel(), idx.ravel(), 0.0, f"sd({term})")
        elif kind == "diagonal":
            for a in range(d):
                add(idx[:, a], idx[:, a], 0.0, f"sd({term}:{comps[a]})")
        elif kind == "unstructured":
            for a in range(d):
                for b in range(a + 1):
                    add(idx[:, a], idx[:, b], 0.0 if a == b else -np.inf,
                        f"lambda({term})[{a},{b}]",
                        "cholesky_diagonal" if a == b else "cholesky_offdiagonal")
        else:
            raise SpecError(f"unknown covariance kind {kind!r}; "
                            "use identity, diagonal or unstructured")
        blocks.append((term, comps, idx[0], kind))
    m = len(names)
    k = np.concatenate(which) if which else np.zeros(0, dtype=np.int64)
    values = np.zeros((len(k), m))
    values[np.arange(len(k)), k] = 1.0
    pattern = LambdaPattern.from_coordinates(
        np.concatenate(rows) if rows else k, np.concatenate(cols) if cols else k, values, q)
    return CovarianceStructure(pattern, np.array(lower), tuple(names), tuple(blocks),
                               tuple(roles))


def _as_matrix(a: Any, name: str) -> np.ndarray | sp.csr_matrix:
    """A 3-D (B, J, k) array as given, or a 2-D sparse matrix as CSR (float64)."""
    if isinstance(a, sp.csr_matrix) and a.dtype == np.float64:
        return a  # as built (a copy would share the arrays anyway)
    if sp.issparse(a):
        return sp.csr_matrix(a, dtype=float)
    a = np.asarray(a, dtype=float)
    if a.ndim != 3:
        raise SpecError(f"{name} must be a (blocks, predictors, columns) array or a "
                        f"scipy.sparse (blocks * predictors, columns) matrix; got shape {a.shape}")
    return a


class Design:
    """Stacked arrays of a GLLMM (or GLLM when q = 0) ready for the engine.

    Parameters
    ----------
    family : Family
        Conditional distribution of each block given eta.
    X : ndarray (B, J, p) or scipy.sparse matrix (B J, p)
    Z : ndarray (B, J, q) or scipy.sparse matrix (B J, q)
        Row ``b J + j`` of a sparse matrix is predictor j of block b.
    offset : ndarray (B, J)
    cluster : ndarray (B,) of int, non-decreasing
    covariance : CovarianceStructure or None
    fixed_names : tuple of str
    cluster_labels : sequence, one label per cluster

    Attributes
    ----------
    X, Z : ndarray (B, J, p), (B, J, q)
        Dense, built on first access when the design stores them sparse (only the AGQ paths,
        whose clusters are small, read these).
    x_matrix, z_matrix : ndarray or scipy.sparse.csr_matrix (B J, p), (B J, q)
        As stored: the dense arrays reshaped, or the sparse matrices.
    z_sparse : scipy.sparse.csr_matrix (B J, q)
        Z as CSR whichever way it is stored.
    """

    def __init__(self, family: Family, X: Any, Z: Any, offset: np.ndarray,
                 cluster: np.ndarray, covariance: CovarianceStructure | None,
                 fixed_names: tuple[str, ...], cluster_labels: tuple = (),
                 random_names: tuple[str, ...] = (), notes: dict | None = None) -> None:
        self.family = family
        self._x = _as_matrix(X, "X")
        self._z = _as_matrix(Z, "Z")
        self._cache: dict[str, Any] = {}
        self.offset = np.asarray(offset, dtype=float)
        self.cluster = np.asarray(cluster)
        self.covariance = covariance
        self.fixed_names = tuple(fixed_names)
        self.cluster_labels = tuple(cluster_labels)
        self.random_names = tuple(random_names)
        self.notes = {} if notes is None else notes
        self._check()

    def __repr__(self) -> str:
        return (f"Design({self.family.name}, blocks={self.n_blocks}, J={self.n_eta}, "
                f"p={self.n_fixed}, q={self.n_random}, clusters={self.n_clusters})")

    def _check(self) -> None:
        nb, nj = self.family.n_blocks, self.family.n_eta
        for name, a in (("X", self._x), ("Z", self._z)):
            rows = a.shape[0] if sp.issparse(a) else a.shape[:2]
            want = nb * nj if sp.issparse(a) else (nb, nj)
            if rows != want:
                raise SpecError(f"{name} has shape {a.shape}, expected "
                                f"({nb}, {nj}, k) or sparse ({nb * nj}, k) for a family with "
                                f"{nb} blocks of {nj} predictors")
        p = self.n_fixed
        if self.offset.shape != (nb, nj):
            raise SpecError(f"offset has shape {self.offset.shape}, expected ({nb}, {nj})")
        if len(self.fixed_names) != p:
            raise SpecError(f"{len(self.fixed_names)} fixed-effect names for {p} columns")
        if self.cluster.shape != (nb,) or np.any(np.diff(self.cluster) < 0):
            raise SpecError("cluster must give one non-decreasing index per block")
        q = self.n_random
        if q and (self.covariance is None or self.covariance.dimension != q):
            raise SpecError("covariance structure does not match the number of random effects")

    def _dense(self, key: str, a: Any) -> np.ndarray:
        if not sp.issparse(a):
            return a
        if key not in self._cache:
            self._cache[key] = a.toarray().reshape(self.n_blocks, self.n_eta, a.shape[1])
        return self._cache[key]

    @property
    def X(self) -> np.ndarray:
        return self._dense("X", self._x)

    @property
    def Z(self) -> np.ndarray:
        return self._dense("Z", self._z)

    @property
    def x_matrix(self) -> np.ndarray | sp.csr_matrix:
        x = self._x
        return x if sp.issparse(x) else x.reshape(-1, x.shape[2])

    @property
    def z_matrix(self) -> np.ndarray | sp.csr_matrix:
        z = self._z
        return z if sp.issparse(z) else z.reshape(-1, z.shape[2])

    @property
    def z_sparse(self) -> sp.csr_matrix:
        if "z_sparse" not in self._cache:
            z = self.z_matrix
            self._cache["z_sparse"] = z if sp.issparse(z) else sp.csr_matrix(z)
        return self._cache["z_sparse"]

    @property
    def is_sparse(self) -> bool:
        """Whether Z is stored sparse."""
        return sp.issparse(self._z)

    @property
    def n_blocks(self) -> int:
        return self.family.n_blocks

    @property
    def n_eta(self) -> int:
        return self.family.n_eta

    @property
    def n_fixed(self) -> int:
        return self._x.shape[-1]

    @property
    def n_random(self) -> int:
        return self._z.shape[-1]

    @property
    def n_theta(self) -> int:
        return 0 if self.covariance is None else self.covariance.n_params

    @property
    def n_clusters(self) -> int:
        return int(self.cluster[-1]) + 1 if self.cluster.size else 0

    @property
    def param_names(self) -> tuple[str, ...]:
        theta = () if self.covariance is None else self.covariance.names
        return tuple(self.fixed_names) + tuple(theta)

    @property
    def param_roles(self) -> tuple[str, ...]:
        """Role of each parameter of ``param_names``: ``"fixed"`` then the covariance roles."""
        theta = () if self.covariance is None else self.covariance.roles
        return ("fixed",) * self.n_fixed + tuple(theta)

    @property
    def param_lower(self) -> np.ndarray:
        """Lower bound of each parameter of ``param_names``: -inf for the fixed effects, then
        the covariance structure's bounds (0 for standard deviations)."""
        theta = [] if self.covariance is None else self.covariance.lower
        return np.r_[np.full(self.n_fixed, -np.inf), theta]

    def derived(self, key: str, build: Callable[[Design], Any]) -> Any:
        """``build(self)``, computed once per design (the fit's steps share it): only for what
        X, Z, the offset, the clusters and the covariance structure determine, never the
        counts (``with_counts`` copies share these). Callers must not modify the result."""
        if key not in self._cache:
            self._cache[key] = build(self)
        return self._cache[key]

    def starts(self) -> np.ndarray:
        """Index of the first block of each cluster (for ``np.add.reduceat``)."""
        c = self.cluster
        new = np.empty(len(c), dtype=bool)
        new[:1] = True
        np.not_equal(c[1:], c[:-1], out=new[1:])
        return np.flatnonzero(new)

    def with_counts(self, y: np.ndarray) -> Design:
        """The same model on new counts of the same shape, without rebuilding X, Z or the
        covariance structure (a simulation refits one design to thousands of tables).

        ``y`` has the shape of ``family.y`` (or is its ravel). Notes that describe the old
        counts (``data``, ``start``) are dropped.
        """
        old = self.family.y
        y = np.asarray(y, dtype=float)
        if y.size != old.size:
            raise SpecError(f"new counts have {y.size} cells, the design has {old.size}; "
                            "build a design for the new table instead")
        new = copy.copy(self)  # X, Z and their cached forms do not depend on the counts
        new.family = replace(self.family, y=y.reshape(old.shape))
        new.notes = {k: v for k, v in self.notes.items() if k not in ("data", "start")}
        return new
