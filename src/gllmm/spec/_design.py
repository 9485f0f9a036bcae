"""The engine's compiled form of a GLLMM: stacked arrays per block and cluster.

``eta_b = X_b beta + offset_b + Z_b Lambda(theta) v_c``, ``v_c ~ N(0, I_q)``, for block b in
cluster c. ``Lambda = sum_k theta_k E_k`` is linear in theta (lme4's relative covariance factor:
``u = Lambda v``, ``Sigma = Lambda Lambda'``), so a zero variance is an ordinary point of the
parameter space and the curvature in v is positive definite everywhere.

Glossary: B blocks, J predictors per block, p fixed effects, q random effects per cluster,
C clusters, m covariance parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..links import Family


@dataclass(frozen=True)
class CovarianceStructure:
    """Map from covariance parameters theta to the q x q factor Lambda, with display names.

    Attributes
    ----------
    templates : ndarray (m, q, q)
        ``Lambda = sum_k theta_k templates[k]``.
    lower : ndarray (m,)
        Lower bounds: 0 for diagonal entries (standard deviations), -inf for off-diagonals.
    names : tuple of str
        Parameter names as users read them, e.g. ``sd(cell)``, ``cor(center)``.
    terms : tuple of (name, slice of components, kind)
        One entry per covariance block, for reporting SDs and correlations.
    """

    templates: np.ndarray
    lower: np.ndarray
    names: tuple[str, ...]
    blocks: tuple[tuple[str, tuple[str, ...], np.ndarray, str], ...] = ()

    @property
    def n_params(self) -> int:
        return self.templates.shape[0]

    @property
    def dimension(self) -> int:
        return self.templates.shape[1]

    def factor(self, theta: np.ndarray) -> np.ndarray:
        return np.tensordot(theta, self.templates, axes=1)

    def covariance(self, theta: np.ndarray) -> np.ndarray:
        lam = self.factor(theta)
        return lam @ lam.T


def scalar_structure(term: str, q: int = 1, component: str = "(Intercept)") -> CovarianceStructure:
    """One SD shared by q independent components (scaled identity)."""
    tmpl = np.eye(q)[None]
    comp = np.arange(q)
    return CovarianceStructure(
        tmpl, np.zeros(1), (f"sd({term})",), ((term, (component,), comp, "identity"),)
    )


def block_structure(
    specs: list[tuple[str, tuple[str, ...], str, list[np.ndarray]]], q: int
) -> CovarianceStructure:
    """Covariance parameters for several terms sharing a cluster.

    Parameters
    ----------
    specs : list of (term name, component names, kind, list of index arrays)
        ``kind`` is ``identity`` (one SD for all components), ``diagonal`` (one SD per component)
        or ``unstructured`` (log-Cholesky-free lower-triangular factor, as lme4). Each index array
        lists the positions of the term's components in one repetition (for nested terms the
        same covariance block repeats for every inner group of the cluster).
    q : int
        Total number of random effects per cluster.
    """
    templates: list[np.ndarray] = []
    lower: list[float] = []
    names: list[str] = []
    blocks = []
    for term, comps, kind, reps in specs:
        d = len(comps)
        if kind == "identity" or d == 1:
            t = np.zeros((q, q))
            for idx in reps:
                t[idx, idx] = 1.0
            templates.append(t)
            lower.append(0.0)
            names.append(f"sd({term})" if d == 1 else f"sd({term})")
        elif kind == "diagonal":
            for a in range(d):
                t = np.zeros((q, q))
                for idx in reps:
                    t[idx[a], idx[a]] = 1.0
                templates.append(t)
                lower.append(0.0)
                names.append(f"sd({term}:{comps[a]})")
        elif kind == "unstructured":
            for a in range(d):
                for b in range(a + 1):
                    t = np.zeros((q, q))
                    for idx in reps:
                        t[idx[a], idx[b]] = 1.0
                    templates.append(t)
                    lower.append(0.0 if a == b else -np.inf)
                    names.append(f"lambda({term})[{a},{b}]")
        else:
            raise SpecError(f"unknown covariance kind {kind!r}; "
                            "use identity, diagonal or unstructured")
        blocks.append((term, comps, np.asarray(reps[0]), kind))
    return CovarianceStructure(np.array(templates), np.array(lower), tuple(names), tuple(blocks))


@dataclass(frozen=True)
class Design:
    """Stacked arrays of a GLLMM (or GLLM when q = 0) ready for the engine.

    Attributes
    ----------
    family : Family
        Conditional distribution of each block given eta.
    X : ndarray (B, J, p)
    Z : ndarray (B, J, q)
    offset : ndarray (B, J)
    cluster : ndarray (B,) of int, non-decreasing
    covariance : CovarianceStructure or None
    fixed_names : tuple of str
    cluster_labels : sequence, one label per cluster
    """

    family: Family
    X: np.ndarray
    Z: np.ndarray
    offset: np.ndarray
    cluster: np.ndarray
    covariance: CovarianceStructure | None
    fixed_names: tuple[str, ...]
    cluster_labels: tuple = ()
    random_names: tuple[str, ...] = ()
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        nb, nj, p = self.X.shape
        if self.family.n_blocks != nb:
            raise SpecError(f"family has {self.family.n_blocks} blocks but X has {nb}")
        if self.family.n_eta != nj:
            raise SpecError(f"family expects {self.family.n_eta} predictors per block, X has {nj}")
        if self.Z.shape[:2] != (nb, nj):
            raise SpecError(f"Z has shape {self.Z.shape}, expected ({nb}, {nj}, q)")
        if self.offset.shape != (nb, nj):
            raise SpecError(f"offset has shape {self.offset.shape}, expected ({nb}, {nj})")
        if len(self.fixed_names) != p:
            raise SpecError(f"{len(self.fixed_names)} fixed-effect names for {p} columns")
        if self.cluster.shape != (nb,) or np.any(np.diff(self.cluster) < 0):
            raise SpecError("cluster must give one non-decreasing index per block")
        q = self.Z.shape[2]
        if q and (self.covariance is None or self.covariance.dimension != q):
            raise SpecError("covariance structure does not match the number of random effects")

    @property
    def n_fixed(self) -> int:
        return self.X.shape[2]

    @property
    def n_random(self) -> int:
        return self.Z.shape[2]

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

    def starts(self) -> np.ndarray:
        """Index of the first block of each cluster (for ``np.add.reduceat``)."""
        return np.flatnonzero(np.r_[True, np.diff(self.cluster) != 0])
