"""The estimators of cell probabilities compared in Table 1 (paper Section 4), as a registry.

Each estimator maps ``(counts, scores) -> p_hat``: ``counts`` an (I, J) array of one simulated
table, ``scores`` the scores the analyst uses for ordinal structure (the study's
``fit_scores``: equally spaced 1..I by default), ``p_hat`` an (I, J) array of estimated cell
probabilities. Estimators are pure functions of their arguments, so a replicate's result does
not depend on which worker computes it or what it computed before.

Names match the columns of ``tests/fixtures/paper/table1_mse.csv``:

======================================  =================================================
``sample_proportions``                  ``y / n`` (saturated model)
``glm_independence``                    ``y_i+ y_+j / n^2`` ((2.1) with beta = sigma = 0)
``glm_uniform_association``             Poisson L x L ML, ``log mu = lambda + lambda_i +
                                        lambda_j + beta x_i x_j`` ((2.1) with sigma = 0)
``cellwise_gllmm_independence``         (2.5), AGQ 15 nodes, posterior modes, ``mu_hat / n``
``cellwise_gllmm_uniform_association``  (2.6), AGQ 15 nodes, posterior modes, ``mu_hat / n``
``association_gllmm_beta0``             (2.1) with beta = 0, multinomial, Laplace, modes,
                                        centred coding of the odds ratios
``association_gllmm_free_beta``         (2.1) with free beta, global ML (boundary included)
``local_likelihood``                    local linear Poisson likelihood, AICc-chosen span,
                                        renormalised (``gllmm.smooth._local``)
``loess_gam``                           Poisson GAM with one loess term, AICc_HST span
                                        (``gllmm.smooth._loess``): how the paper's LL
                                        column was most likely made (reference note 5.1)
======================================  =================================================

The GLLMMs and the L x L GLM are fitted by the engine (``integrate.MarginalLikelihood`` and
``fitting.optimize`` / ``fitting.fit_glm``): the design and objective of each model are built
once per table shape and scores (``models.cellwise_smoothing``, ``models.random_association``)
and handed each table's counts (``MarginalLikelihood.with_counts``), so a replicate costs the
fit alone. The fits are global ML (``optimize(..., sd_starts=...)``): the boundary fit
sigma = 0 against interior searches. The same models through the other layers are registered
too, as references: ``*_engine`` (a design built per table + ``gllmm.fit``, one local search)
and ``*_smooth`` (``smooth._cellwise.fit_cellwise``). Adapters import their module lazily and
raise :class:`EstimatorUnavailable` when it is missing (``local_likelihood`` included).
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GllmmError, SpecError
from ..fitting import fit_glm
from ..spec import Design


class EstimatorUnavailable(GllmmError, ImportError):
    """An estimator's implementation (another gllmm module) is not importable."""


EstimatorFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Estimator:
    """A named cell-probability estimator.

    Attributes
    ----------
    name : str
        Registry key and result-column name.
    label : str
        Short heading for rendered tables and plots.
    group : str
        Table 1's column group (SP, GLM, Cellwise GLLMM, Association GLLMM, LL).
    function : callable ``(counts (I, J), scores (I,)) -> p_hat (I, J)``
    requires : str or None
        Module the function imports lazily (for :meth:`available`).
    description : str
    version : int
        Definition version, recorded with stored results: bump it when the estimator's
        definition changes, so a checkpoint never mixes rows of two definitions.
    """

    name: str
    label: str
    group: str
    function: EstimatorFunction
    requires: str | None = None
    description: str = ""
    version: int = 1

    def __call__(self, counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_hat = np.asarray(self.function(counts, np.asarray(scores, dtype=float)), float)
        if p_hat.shape != counts.shape:
            raise GllmmError(f"estimator {self.name!r} returned shape {p_hat.shape}, "
                             f"expected {counts.shape}")
        return p_hat

    def available(self) -> bool:
        """Whether the module this estimator needs can be imported."""
        if self.requires is None:
            return True
        try:
            importlib.import_module(self.requires)
        except ImportError:
            return False
        return True


def _require(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EstimatorUnavailable(
            f"estimator {what!r} needs {module}, which is not available ({exc}); "
            "choose another estimator or install the module"
        ) from exc


# ---------------------------------------------------------------------------------------------
# fixed-effects and saturated estimators
# ---------------------------------------------------------------------------------------------


def sample_proportions(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``p_hat_ij = y_ij / n``."""
    return counts / counts.sum()


def glm_independence(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Independence ML: ``p_hat_ij = (y_i+ / n)(y_+j / n)``."""
    n = counts.sum()
    return np.outer(counts.sum(axis=1), counts.sum(axis=0)) / (n * n)


def glm_uniform_association(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Linear-by-linear association ML with row and column scores ``scores``:
    ``log mu_ij = lambda + lambda_i + lambda_j + beta x_i x_j`` (uniform association when the
    scores are equally spaced); ``p_hat = mu_hat / n``. Newton's method of the engine
    (``fitting.fit_glm``) on a design prepared once per table shape."""
    design = _prepared("glm", counts.shape, scores).with_counts(counts.ravel())
    beta = fit_glm(design, warn=False).beta
    mu = design.family.mean(design.X @ beta + design.offset)
    return mu.reshape(counts.shape) / counts.sum()


# ---------------------------------------------------------------------------------------------
# GLLMMs: the engine (integrate.MarginalLikelihood + fitting.optimize) on objectives prepared
# once per table shape and handed each table's counts
# ---------------------------------------------------------------------------------------------

#: Interior starting SDs of the global ML fits (paper Section 4: the likelihood in sigma can be
#: bimodal); each is compared with the boundary fit sigma = 0.
CELLWISE_SD_STARTS = (0.5,)
ASSOCIATION_SD_STARTS = (0.5, 1.5)


def _cellwise_design(shape: tuple[int, int], scores: tuple[float, ...], base: str) -> Any:
    from ..models import cellwise_smoothing

    size_rows, size_cols = shape
    return cellwise_smoothing(_long_frame(np.ones(shape)), "row", "col", base=base,
                              row_scores=list(scores[:size_rows]),
                              col_scores=list(scores[:size_cols]))


@functools.lru_cache(maxsize=64)
def _prepared_cached(model: str, shape: tuple[int, int], scores: tuple[float, ...]) -> Any:
    from ..fitting import make_objective

    if model == "glm":
        design = _cellwise_design(shape, scores, "linear_by_linear")
        return Design(design.family, design.X, design.Z[:, :, :0], design.offset,
                      design.cluster, None, design.fixed_names)
    if model.startswith("cellwise_"):
        design = _cellwise_design(shape, scores, model.removeprefix("cellwise_"))
        objective = make_objective(design, "agq", 15)
        objective.method_name = "agq"
        return objective
    from ..models import random_association

    _, beta, coding = model.split(":")
    design = random_association(np.ones(shape), beta="free" if beta == "free" else 0.0,
                                coding=coding)
    objective = make_objective(design, "laplace")
    objective.method_name = "laplace"
    return objective


def _prepared(model: str, shape: tuple[int, ...], scores: np.ndarray) -> Any:
    """The design (``glm``) or objective prepared once per model, table shape and scores."""
    return _prepared_cached(model, tuple(shape), tuple(float(s) for s in scores))


def _global_fit(model: str, counts: np.ndarray, scores: np.ndarray,
                sd_starts: tuple[float, ...]) -> np.ndarray:
    """Global ML (boundary and interior searches, ``fitting.optimize(sd_starts=...)``) of a
    prepared model on ``counts``; fitted probabilities at the posterior modes."""
    from ..fitting import optimize

    objective = _prepared(model, counts.shape, scores).with_counts(counts.ravel())
    opt = optimize(objective, objective.design, sd_starts=sd_starts)
    mu = objective.design.family.mean(objective.posterior(opt.final)["eta_mode"])
    return mu.reshape(counts.shape) / counts.sum()


def cellwise_gllmm_independence(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Model (2.5) by 15-node AGQ; fitted counts at the posterior modes over n."""
    return _global_fit("cellwise_independence", counts, scores, CELLWISE_SD_STARTS)


def cellwise_gllmm_uniform_association(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Model (2.6) with row = column scores ``scores``, 15-node AGQ, posterior modes, over n."""
    return _global_fit("cellwise_linear_by_linear", counts, scores, CELLWISE_SD_STARTS)


def association_gllmm(counts: np.ndarray, free_beta: bool, coding: str = "centred") -> np.ndarray:
    """Model (2.1) (``models.random_association``, multinomial given n), Laplace, global ML,
    fitted probabilities at the posterior modes; ``coding`` of the odds ratios as there."""
    model = f"association:{'free' if free_beta else '0'}:{coding}"
    return _global_fit(model, counts, np.zeros(0), ASSOCIATION_SD_STARTS)


def association_gllmm_beta0(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Model (2.1) with beta = 0: multinomial given n, centred coding, Laplace, modes."""
    return association_gllmm(counts, free_beta=False)


def association_gllmm_free_beta(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Model (2.1) with free beta, centred coding: global ML (sigma = 0 boundary and interior
    searches)."""
    return association_gllmm(counts, free_beta=True)


# ---------------------------------------------------------------------------------------------
# adapters to other layers (lazy imports)
# ---------------------------------------------------------------------------------------------


def local_likelihood_aicc(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Local linear Poisson likelihood (Simonoff 1998), nearest-neighbour span chosen by AICc
    (the smoother's loess-like default), fitted counts renormalised to probabilities."""
    module = _require("gllmm.smooth._local", "local_likelihood")
    fit = module.local_likelihood(counts, [scores, scores], criterion="aicc")
    return np.asarray(fit.probabilities)


def local_likelihood_bandwidth_aicc(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """As :func:`local_likelihood_aicc` with a product-kernel bandwidth chosen by AICc."""
    module = _require("gllmm.smooth._local", "local_likelihood_bandwidth")
    fit = module.local_likelihood(counts, [scores, scores], bandwidth="aicc")
    return np.asarray(fit.probabilities)


def loess_gam_aicc(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Poisson GAM ``gam(y ~ lo(row, col, degree = 1))`` (local scoring, k-d tree loess as R's
    ``gam``), standardised scores, span chosen over every distinct fit with span <= 1 by the
    Hurvich-Simonoff-Tsai AICc ``D + 2 K (df + 1) / (K - df - 2)`` (``aicc_hst``: the form
    that reproduces the printed LL column at beta = 1, n = 1000, where the forms differ; see
    docs/simulation.md); fitted counts over their total (= over n: the intercept keeps it)."""
    module = _require("gllmm.smooth._loess", "loess_gam")
    fit = module.loess_gam(counts, [scores[:counts.shape[0]], scores[:counts.shape[1]]],
                           span="aicc_hst")
    return np.asarray(fit.probabilities)


def _long_frame(counts: np.ndarray) -> Any:
    import pandas as pd

    size_rows, size_cols = counts.shape
    rows, cols = np.divmod(np.arange(counts.size), size_cols)
    return pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": counts.ravel()})


def _engine_cellwise(counts: np.ndarray, scores: np.ndarray, base: str) -> np.ndarray:
    """Cell-wise GLLMM through the general engine (``models.cellwise_smoothing`` + ``fit``);
    slower, kept as the reference the specialised fit is tested against."""
    import gllmm
    from gllmm import models

    size_rows, size_cols = counts.shape
    design = models.cellwise_smoothing(
        _long_frame(counts), "row", "col", base=base,
        row_scores=list(scores[:size_rows]), col_scores=list(scores[:size_cols]),
    )
    result = gllmm.fit(design, method="agq", n_nodes=15)
    return np.asarray(result.fitted_counts()).reshape(counts.shape) / counts.sum()


def cellwise_gllmm_independence_engine(counts: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Model (2.5) fitted by :func:`gllmm.fit` (AGQ 15)."""
    return _engine_cellwise(counts, scores, "independence")


def cellwise_gllmm_uniform_association_engine(counts: np.ndarray,
                                              scores: np.ndarray) -> np.ndarray:
    """Model (2.6) fitted by :func:`gllmm.fit` (AGQ 15)."""
    return _engine_cellwise(counts, scores, "linear_by_linear")


def cellwise_gllmm_smooth(counts: np.ndarray, scores: np.ndarray, base: str) -> np.ndarray:
    """Model (2.5)/(2.6) through the scalable smoothing path ``gllmm.smooth._cellwise``
    (``fit_cellwise``) when that module exists."""
    module = _require("gllmm.smooth._cellwise", f"cellwise_gllmm_{base}_smooth")
    fit = module.fit_cellwise(counts, scores, scores, base=base, n_nodes=15)
    return np.asarray(fit.fitted_counts, dtype=float).reshape(counts.shape) / counts.sum()


def association_gllmm_engine(counts: np.ndarray, free_beta: bool) -> np.ndarray:
    """Model (2.1) built by ``gllmm.models._association_gllmm.random_association``
    (multinomial, centred coding) and fitted by :func:`gllmm.fit` with Laplace: one local
    search from the engine's start, so it may stop at a local maximum in sigma."""
    import gllmm

    name = f"association_gllmm_{'free_beta' if free_beta else 'beta0'}_engine"
    module = _require("gllmm.models._association_gllmm", name)
    design = module.random_association(counts, beta="free" if free_beta else 0.0,
                                       sampling="multinomial", coding="centred")
    result = gllmm.fit(design, method="laplace")
    return np.asarray(result.fitted_counts(), dtype=float).reshape(counts.shape) / counts.sum()


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


def _entries() -> list[Estimator]:
    return [
        Estimator("sample_proportions", "SP", "SP", sample_proportions,
                  description="sample proportions y / n"),
        Estimator("glm_independence", "GLM indep.", "GLM", glm_independence,
                  description="independence ML"),
        Estimator("glm_uniform_association", "GLM LxL", "GLM", glm_uniform_association,
                  description="uniform (linear-by-linear) association ML"),
        Estimator("cellwise_gllmm_independence", "Cellwise indep.", "Cellwise GLLMM",
                  cellwise_gllmm_independence,
                  description="(2.5) cell-wise random effects on independence, AGQ 15"),
        Estimator("cellwise_gllmm_uniform_association", "Cellwise LxL", "Cellwise GLLMM",
                  cellwise_gllmm_uniform_association,
                  description="(2.6) cell-wise random effects on L x L, AGQ 15"),
        Estimator("association_gllmm_beta0", "Assoc. beta=0", "Association GLLMM",
                  association_gllmm_beta0, version=2,
                  description="(2.1) random local log odds ratios around 0, centred coding, "
                              "Laplace"),
        Estimator("association_gllmm_free_beta", "Assoc. free beta", "Association GLLMM",
                  association_gllmm_free_beta, version=2,
                  description="(2.1) random local log odds ratios around beta, centred "
                              "coding, Laplace"),
        Estimator("association_gllmm_beta0_cumulative", "Assoc. beta=0 (cum.)",
                  "Association GLLMM", lambda c, s: association_gllmm(c, False, "cumulative"),
                  description="(2.1), beta = 0, cumulative coding"),
        Estimator("association_gllmm_free_beta_cumulative", "Assoc. free beta (cum.)",
                  "Association GLLMM", lambda c, s: association_gllmm(c, True, "cumulative"),
                  description="(2.1), free beta, cumulative coding"),
        Estimator("local_likelihood", "LL", "LL", local_likelihood_aicc,
                  requires="gllmm.smooth._local",
                  description="local linear likelihood, AICc-chosen nearest-neighbour span"),
        Estimator("loess_gam", "LL (loess GAM)", "LL", loess_gam_aicc,
                  requires="gllmm.smooth._loess", version=2,
                  description="Poisson GAM with one loess term (R's gam::lo), span chosen by "
                              "AICc (Hurvich-Simonoff-Tsai form)"),
        Estimator("local_likelihood_bandwidth", "LL (bandwidth)", "LL",
                  local_likelihood_bandwidth_aicc, requires="gllmm.smooth._local",
                  description="local linear likelihood, AICc-chosen product-kernel bandwidth"),
        Estimator("cellwise_gllmm_independence_engine", "Cellwise indep. (engine)",
                  "Cellwise GLLMM", cellwise_gllmm_independence_engine,
                  description="(2.5) through gllmm.fit (reference path, slow)"),
        Estimator("cellwise_gllmm_uniform_association_engine", "Cellwise LxL (engine)",
                  "Cellwise GLLMM", cellwise_gllmm_uniform_association_engine,
                  description="(2.6) through gllmm.fit (reference path, slow)"),
        Estimator("association_gllmm_beta0_engine", "Assoc. beta=0 (engine)",
                  "Association GLLMM", lambda c, s: association_gllmm_engine(c, False),
                  requires="gllmm.models._association_gllmm",
                  description="(2.1), beta = 0, through models.random_association + gllmm.fit"),
        Estimator("association_gllmm_free_beta_engine", "Assoc. free beta (engine)",
                  "Association GLLMM", lambda c, s: association_gllmm_engine(c, True),
                  requires="gllmm.models._association_gllmm",
                  description="(2.1), free beta, through models.random_association + gllmm.fit"),
        Estimator("cellwise_gllmm_independence_smooth", "Cellwise indep. (smooth)",
                  "Cellwise GLLMM",
                  lambda c, s: cellwise_gllmm_smooth(c, s, "independence"),
                  requires="gllmm.smooth._cellwise",
                  description="(2.5) through gllmm.smooth._cellwise.fit_cellwise"),
        Estimator("cellwise_gllmm_uniform_association_smooth", "Cellwise LxL (smooth)",
                  "Cellwise GLLMM",
                  lambda c, s: cellwise_gllmm_smooth(c, s, "linear_by_linear"),
                  requires="gllmm.smooth._cellwise",
                  description="(2.6) through gllmm.smooth._cellwise.fit_cellwise"),
    ]


#: Every registered estimator by name.
ESTIMATORS: dict[str, Estimator] = {e.name: e for e in _entries()}

#: Table 1's columns, in its order.
TABLE1_ESTIMATORS: tuple[str, ...] = (
    "sample_proportions",
    "glm_independence",
    "glm_uniform_association",
    "cellwise_gllmm_independence",
    "cellwise_gllmm_uniform_association",
    "association_gllmm_beta0",
    "association_gllmm_free_beta",
    "local_likelihood",
)


def get_estimator(name: str) -> Estimator:
    """The registered estimator ``name``; an unknown name lists the valid ones."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise SpecError(
            f"unknown estimator {name!r}; valid: {', '.join(sorted(ESTIMATORS))}"
        ) from None


def register_estimator(estimator: Estimator, replace: bool = False) -> None:
    """Add an estimator to the registry (in this process; workers see it only if the module
    that registers it is imported there too)."""
    if not isinstance(estimator, Estimator):
        raise SpecError(f"register an Estimator(name, label, function, ...), got "
                        f"{type(estimator).__name__}")
    if estimator.name in ESTIMATORS and not replace:
        raise SpecError(f"estimator {estimator.name!r} is already registered")
    ESTIMATORS[estimator.name] = estimator


def available_estimators(names: Any = None) -> list[str]:
    """The names among ``names`` (default: Table 1's) whose implementation imports."""
    names = TABLE1_ESTIMATORS if names is None else names
    return [n for n in names if get_estimator(n).available()]
