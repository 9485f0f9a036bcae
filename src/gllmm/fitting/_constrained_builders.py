"""Builders of C, A, X for standard GLLMs with no closed form for mu (square I x I tables).

Cells are in row-major order: cell (i, j) of the I x I table (row = first response, column =
second response of a matched pair) is index ``i * I + j``. Each builder returns a
:class:`ConstrainedModel` whose ``fit`` calls :func:`fit_constrained` with multinomial sampling
by default (one sample of n matched pairs).

References: Agresti (2002), Categorical Data Analysis, 2nd ed., Sections 10.2-10.4 (marginal
homogeneity, marginal cumulative logit model for matched pairs); Lang & Agresti (1994), JASA 89,
625-632 (simultaneous models for marginal distributions and association); Coull & Agresti (2003)
Section 6, models (6.1)-(6.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..errors import SpecError
from ..spec import local_odds_ratios, marginal_logits
from ._constrained import fit_constrained
from ._constrained_result import ConstrainedFit

__all__ = [
    "ConstrainedModel",
    "marginal_cumulative_logit_model",
    "marginal_homogeneity_association_model",
    "marginal_homogeneity_model",
]


@dataclass(frozen=True, eq=False)
class ConstrainedModel:
    """The matrices of a GLLM ``C log(A mu) = X beta`` with names and a description."""

    C: np.ndarray
    A: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    description: str
    n_categories: int = field(default=0)

    @property
    def n_cells(self) -> int:
        return int(self.A.shape[1])

    @property
    def df(self) -> int:
        """Number of constraints q = rows(C) - columns(X)."""
        return int(self.C.shape[0] - self.X.shape[1])

    def fit(
        self,
        counts: object,
        sampling: str = "multinomial",
        strata: object | None = None,
        tol: float = 1e-10,
        max_iter: int = 500,
    ) -> ConstrainedFit:
        """Fit to an (I, I) table or its row-major flattening (see :func:`fit_constrained`)."""
        y = np.asarray(counts, dtype=np.float64).reshape(-1)
        if y.shape[0] != self.n_cells:
            raise SpecError(f"{self.description} needs {self.n_cells} cells, got {y.shape[0]}")
        return fit_constrained(
            y, self.C, self.A, self.X, sampling=sampling, strata=strata, names=self.names,
            tol=tol, max_iter=max_iter,
        )


def _check_categories(n_categories: int) -> int:
    n = int(n_categories)
    if n < 2 or n != n_categories:
        raise SpecError(f"n_categories must be an integer >= 2, got {n_categories!r}")
    return n


def marginal_homogeneity_model(n_categories: int) -> ConstrainedModel:
    """Marginal homogeneity of an I x I table as a GLLM.

    With ``A = [row sums; column sums]`` (2I x I^2) and C the baseline-category logits of each
    margin, ``C log(A mu) = X beta`` with ``X = [I_{I-1}; I_{I-1}]`` says

        log(mu_{k+} / mu_{I+}) = log(mu_{+k} / mu_{+I}) = beta_k,   k = 1, ..., I-1,

    i.e. mu_{k+} = mu_{+k}: I - 1 constraints, no closed form for mu_hat when I > 2 (Agresti
    2002, Section 10.3; Lang & Agresti 1994). beta_k are the common marginal baseline logits.
    """
    n = _check_categories(n_categories)
    margins = marginal_logits((n, n), (0, 1), "baseline", sparse=False)
    X = np.vstack([np.eye(n - 1), np.eye(n - 1)])
    names = tuple(f"beta[logit {k + 1} vs {n}]" for k in range(n - 1))
    return ConstrainedModel(
        C=margins.C, A=margins.A, X=X, names=names,
        description=f"marginal homogeneity ({n}x{n})", n_categories=n,
    )


def marginal_cumulative_logit_model(n_categories: int) -> ConstrainedModel:
    """Marginal cumulative logit model for matched pairs (a shift between the two margins).

        logit P(Row <= j) = alpha_j + beta,   logit P(Col <= j) = alpha_j,   j = 1, ..., I-1,

    so ``logit Row_j - logit Col_j = beta`` for every cut-point j; I - 2 constraints. Here A holds
    the cumulative sums ``mu(Row <= j)``, ``mu(Row > j)`` (and the same for columns), C takes the
    log ratios, and X = [[I_{I-1}, 1]; [I_{I-1}, 0]] with beta last (Agresti 2002, Section
    10.3.2, model (10.13); Lang & Agresti 1994).
    """
    n = _check_categories(n_categories)
    margins = marginal_logits((n, n), (0, 1), "cumulative", sparse=False)
    X = np.vstack([
        np.hstack([np.eye(n - 1), np.ones((n - 1, 1))]),
        np.hstack([np.eye(n - 1), np.zeros((n - 1, 1))]),
    ])
    names = tuple(f"alpha[{j + 1}]" for j in range(n - 1)) + ("beta[row - column]",)
    return ConstrainedModel(
        C=margins.C, A=margins.A, X=X, names=names,
        description=f"marginal cumulative logit ({n}x{n})", n_categories=n,
    )


def marginal_homogeneity_association_model(
    n_categories: int,
    row_scores: Sequence[float] | None = None,
    column_scores: Sequence[float] | None = None,
) -> ConstrainedModel:
    """Simultaneous model: marginal homogeneity plus uniform (linear-by-linear) local association.

    In the style of Lang & Agresti (1994), the joint distribution's local log odds ratios and
    the marginal distributions are modelled at once:

        log theta_ij = beta_assoc (u_{i+1} - u_i)(v_{j+1} - v_j),   i, j = 1, ..., I-1,
        log(mu_{k+} / mu_{I+}) = log(mu_{+k} / mu_{+I}) = beta_k,     k = 1, ..., I-1,

    with ``A = [I_{I^2}; row sums; column sums]`` and C block-diagonal (local log odds ratio
    contrasts, baseline logits of each margin). Equally spaced scores give uniform association
    (all theta_ij equal). (I-1)^2 - 1 + (I-1) constraints; local odds ratios and margins are
    variation independent, so the two sets of constraints are compatible.
    """
    n = _check_categories(n_categories)
    u = np.arange(1.0, n + 1.0) if row_scores is None else np.asarray(row_scores, float)
    v = np.arange(1.0, n + 1.0) if column_scores is None else np.asarray(column_scores, float)
    if u.shape != (n,) or v.shape != (n,):
        raise SpecError(f"row_scores and column_scores need {n} entries each")
    du, dv = np.diff(u), np.diff(v)
    if np.any(du == 0) or np.any(dv == 0):
        raise SpecError("scores must be distinct for adjacent categories")
    local = local_odds_ratios((n, n), sparse=False)
    margins = marginal_logits((n, n), (0, 1), "baseline", sparse=False)
    C = scipy.linalg.block_diag(local.C, margins.C)
    A = np.vstack([local.A, margins.A])
    x_assoc = np.outer(du, dv).reshape(-1, 1)
    X = scipy.linalg.block_diag(x_assoc, np.vstack([np.eye(n - 1), np.eye(n - 1)]))
    names = ("beta[uniform association]",) + tuple(
        f"beta[logit {k + 1} vs {n}]" for k in range(n - 1)
    )
    return ConstrainedModel(
        C=C, A=A, X=X, names=names,
        description=f"marginal homogeneity + uniform association ({n}x{n})", n_categories=n,
    )
