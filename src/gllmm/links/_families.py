"""Conditional log-likelihoods of the counts given the linear predictor, with derivatives.

Glossary: B blocks (a Poisson cell, a binomial, or one multinomial), N quadrature nodes, J linear
predictors per block, K cells per block. Every family maps ``eta`` of shape (B, N, J) to

- ``l`` (B, N): the block log-likelihood without its constant (``constant`` holds that),
- ``g`` (B, N, J): its gradient in eta,
- ``H`` (B, N, J, J): its Hessian,
- ``T`` (B, N, J, J, J): its third derivative (order 3 only),

the pieces the adaptive quadrature needs for exact derivatives of the marginal likelihood
(third derivatives enter through the derivative of the curvature at the mode).
A family knows nothing about random effects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.special import expit, gammaln

from ._elementwise import binomial_jets, poisson_jets

Derivs = tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]

#: Codes of the families the compiled kernels know (``links._jets``): Poisson (log link) and
#: binomial (logit), one predictor per block; multinomial with cumulative logits
#: ``pi = D F(eta) + c`` (F logistic); multinomial with ``pi = softmax(eta)``.
POISSON, BINOMIAL, CUMULATIVE_LOGIT, MULTINOMIAL = 0, 1, 2, 3
#: codes of the families with one linear predictor per block (``links._jets.glm_jets``)
ONE_PREDICTOR = (POISSON, BINOMIAL)


class CompiledFamily(NamedTuple):
    """A family as the compiled kernels take it: its code, the counts (B, K), and for
    cumulative logits ``pi = D F(eta) + c`` the matrices D (K, J) and c (B, K)."""

    code: int
    y: np.ndarray
    D: np.ndarray
    c: np.ndarray


def compiled_family(code: int, y: np.ndarray, D: np.ndarray | None = None,
                    c: np.ndarray | None = None) -> CompiledFamily:
    """A :class:`CompiledFamily` with contiguous float arrays (D and c unused unless given)."""
    y = np.ascontiguousarray(y, dtype=float)
    D = np.zeros((1, 1)) if D is None else np.ascontiguousarray(D, dtype=float)
    c = np.zeros(y.shape) if c is None else np.ascontiguousarray(c, dtype=float)
    return CompiledFamily(code, y, D, c)


class Family(ABC):
    """A conditional distribution of one block of counts given its linear predictor.

    Attributes
    ----------
    y : ndarray (B, K)
        Counts per block and cell.
    n_eta : int
        Number of linear predictors per block (J).
    cells : ndarray (B, K) of int
        Row of the input table that holds each block cell (for fitted tables).
    """

    name: str = "family"
    y: np.ndarray
    cells: np.ndarray
    n_eta: int

    @property
    def n_blocks(self) -> int:
        return self.y.shape[0]

    @abstractmethod
    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        """Log-likelihood and its derivatives in eta up to ``order`` (0 to 3)."""

    @abstractmethod
    def mean(self, eta: np.ndarray) -> np.ndarray:
        """Expected counts (B, K) given eta (B, J)."""

    @abstractmethod
    def constant(self) -> np.ndarray:
        """Per-block constant of the log-likelihood (B,), e.g. ``-log y!``."""

    def subset(self, blocks: np.ndarray) -> Family:
        """The family restricted to some blocks (used by per-cluster fits)."""
        raise NotImplementedError(f"{self.name} does not support subsetting")

    def compiled(self) -> CompiledFamily | None:
        """The family as the compiled kernels know it (``links._jets``), or None: the strategies
        then use :meth:`derivatives`. A family with the same maths as a known one declares its
        code here; the kernels choose their fast path from it."""
        return None


def multinomial_constant(y: np.ndarray, coefficient: bool = True) -> np.ndarray:
    """``log(n! / prod y!)`` per block, or zeros for individual-response log-likelihoods."""
    if not coefficient:
        return np.zeros(y.shape[0])
    n = y.sum(axis=1)
    return gammaln(n + 1) - gammaln(y + 1).sum(axis=1)


def _one_predictor(jets: tuple, order: int) -> Derivs:
    """The shapes of ``derivatives`` from the elementwise jets (value and three derivatives)
    of eta (B, N, 1)."""
    l, g, h, t = jets
    return (l[..., 0], g if order >= 1 else None, h[..., None] if order >= 2 else None,
            t[..., None, None] if order >= 3 else None)


def _as_counts(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y if y.ndim == 2 else y[:, None]


@dataclass
class Poisson(Family):
    """Poisson counts with a log link: ``l = y eta - exp(eta) - log y!`` (one cell per block).

    The log-linear model ``log mu = X beta + Z u`` (C = A = I in the paper's notation).
    """

    y: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "poisson"
    n_eta: int = 1
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = _as_counts(self.y)
        if self.cells is None:
            self.cells = np.arange(self.y.shape[0])[:, None]

    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        return _one_predictor(poisson_jets(self.y[:, None, :], eta, order), order)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)

    def constant(self) -> np.ndarray:
        if self.weights is not None:
            # frequency weight w: y holds w y0 and eta has log w added, so the kernel's
            # y eta - e^eta is w (y0 eta0 - e^eta0) + y log w; the rest of w log f(y0)
            w = self.weights
            return -(w * gammaln(self.y[:, 0] / w + 1.0) + self.y[:, 0] * np.log(w))
        return -gammaln(self.y + 1.0).sum(axis=1)

    def subset(self, blocks: np.ndarray) -> Poisson:
        w = None if self.weights is None else self.weights[blocks]
        return Poisson(self.y[blocks], self.cells[blocks], weights=w)

    def compiled(self) -> CompiledFamily:
        return compiled_family(POISSON, self.y)


@dataclass
class Binomial(Family):
    """Binomial counts with a logit link: ``l = y eta - n log(1 + exp(eta)) + log C(n, y)``.

    ``y`` holds (successes, failures) per block; the paper's C has +1/-1 on the pair.
    """

    y: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "binomial"
    n_eta: int = 1
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        if self.y.ndim != 2 or self.y.shape[1] != 2:
            raise ValueError("Binomial needs y of shape (B, 2): successes, failures")
        if self.cells is None:
            self.cells = np.arange(2 * self.y.shape[0]).reshape(-1, 2)

    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        s = self.y[:, None, 0:1]
        return _one_predictor(binomial_jets(s, s + self.y[:, None, 1:2], eta, order), order)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        n = self.y.sum(axis=1, keepdims=True)
        p = expit(eta[..., 0:1])
        return np.concatenate([n * p, n * (1.0 - p)], axis=-1)

    def constant(self) -> np.ndarray:
        if self.weights is not None:
            # frequency weight w: y holds w (s, f), whose kernel terms are w times those of
            # (s, f); the constant is w log C(n, s)
            return self.weights * multinomial_constant(self.y / self.weights[:, None])
        return multinomial_constant(self.y)

    def subset(self, blocks: np.ndarray) -> Binomial:
        w = None if self.weights is None else self.weights[blocks]
        return Binomial(self.y[blocks], self.cells[blocks], weights=w)

    def compiled(self) -> CompiledFamily:
        return compiled_family(BINOMIAL, self.y)


def _logsumexp(eta: np.ndarray) -> np.ndarray:
    """``log sum_j exp(eta_j)`` over the last axis, shifted by the maximum against overflow
    (scipy's logsumexp spends ten times the arithmetic on array-API dispatch here)."""
    top = eta.max(axis=-1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(eta - top[..., None]).sum(axis=-1))


@dataclass
class Multinomial(Family):
    """Multinomial counts with log-linear probabilities ``pi = softmax(eta)`` within each block.

    ``l = y' eta - n logsumexp(eta) + log(n! / prod y!)``. Baseline-category and adjacent-category
    logit models, and log-linear models given a fixed total, are this family with suitable X
    (paper Section 1: C and A turn the logits into log-linear cell predictors).
    """

    y: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "multinomial"
    coefficient: bool = True

    def __post_init__(self) -> None:
        self.y = _as_counts(self.y)
        self.n_eta = self.y.shape[1]
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)

    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        y = self.y[:, None, :]
        n = y.sum(axis=-1)
        lse = _logsumexp(eta)
        l = (y * eta).sum(axis=-1) - n * lse
        if order == 0:
            return l, None, None, None
        p = np.exp(eta - lse[..., None])
        g = y - n[..., None] * p
        if order == 1:
            return l, g, None, None
        eye = np.eye(self.n_eta)
        pp = p[..., :, None] * p[..., None, :]
        H = -n[..., None, None] * (p[..., :, None] * eye - pp)
        T = None
        if order >= 3:
            # d/d eta_c (delta_ab p_a - p_a p_b)
            #   = delta_ab p_a (delta_ac - p_c) - p_a p_b (delta_ac + delta_bc - 2 p_c)
            pa = p[..., :, None, None]
            pb = p[..., None, :, None]
            pc = p[..., None, None, :]
            d_ab = eye[:, :, None]
            d_ac = eye[:, None, :]
            d_bc = eye[None, :, :]
            T = -n[..., None, None, None] * (
                d_ab * pa * (d_ac - pc) - pa * pb * (d_ac + d_bc - 2.0 * pc)
            )
        return l, g, H, T

    def mean(self, eta: np.ndarray) -> np.ndarray:
        n = self.y.sum(axis=1, keepdims=True)
        return n * np.exp(eta - _logsumexp(eta)[..., None])

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def subset(self, blocks: np.ndarray) -> Multinomial:
        return Multinomial(self.y[blocks], self.cells[blocks], coefficient=self.coefficient)

    def compiled(self) -> CompiledFamily:
        return compiled_family(MULTINOMIAL, self.y)


@dataclass
class ContinuationRatio(Family):
    """Continuation-ratio logits ``logit P(Y = j | Y >= j) = eta_j``, j = 1..K-1.

    The multinomial factorises into binomials: ``l = sum_j [y_j eta_j - r_j log(1 + e^eta_j)]``
    with ``r_j = sum_{k >= j} y_k`` (Agresti 2002, Section 7.4.3); derivatives are diagonal.
    """

    y: np.ndarray
    cells: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = "continuation-ratio"
    coefficient: bool = True

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        self.n_eta = self.y.shape[1] - 1
        self._at_risk = np.cumsum(self.y[:, ::-1], axis=1)[:, ::-1][:, :-1]
        if self.cells is None:
            self.cells = np.arange(self.y.size).reshape(self.y.shape)

    def derivatives(self, eta: np.ndarray, order: int = 2) -> Derivs:
        # one binomial (y_j of r_j, logit eta_j) per predictor: diagonal derivatives
        l, g, h, t = binomial_jets(self.y[:, None, :-1], self._at_risk[:, None, :], eta, order)
        l = l.sum(-1)
        if order == 0:
            return l, None, None, None
        if order == 1:
            return l, g, None, None
        eye = np.eye(self.n_eta)
        H = h[..., :, None] * eye
        T = t[..., :, None, None] * (eye[:, :, None] * eye[None, :, :]) if order >= 3 else None
        return l, g, H, T

    def mean(self, eta: np.ndarray) -> np.ndarray:
        n = self.y.sum(axis=1, keepdims=True)
        p = expit(eta)
        surv = np.cumprod(np.concatenate([np.ones_like(p[:, :1]), 1 - p], axis=1), axis=1)
        probs = np.concatenate([p, np.ones_like(p[:, :1])], axis=1) * surv
        return n * probs

    def constant(self) -> np.ndarray:
        return multinomial_constant(self.y, self.coefficient)

    def subset(self, blocks: np.ndarray) -> ContinuationRatio:
        return ContinuationRatio(self.y[blocks], self.cells[blocks], coefficient=self.coefficient)
