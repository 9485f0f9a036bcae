"""Fitting: the pipeline make_objective -> optimize -> make_result, and GLLM Newton fits."""

from ._constrained import SAMPLING_SCHEMES, fit_constrained
from ._constrained_builders import (
    ConstrainedModel,
    marginal_cumulative_logit_model,
    marginal_homogeneity_association_model,
    marginal_homogeneity_model,
)
from ._constrained_result import ConstrainedFit, ConvergenceInfo, HypothesisTest
from ._fit import (
    FITTERS,
    OBJECTIVES,
    STRATEGIES,
    fit,
    make_objective,
    make_result,
    optimize,
)
from ._glm import aliased_columns, check_full_rank, fit_glm
from ._inference import check_nodes, fit_auto_nodes, profile_interval
from ._mcem import fit_mcem
from ._npml import NPMLResult, fit_npml
from ._optimize import OptSummary, maximize
from ._pql import fit_pql
from ._start import default_start

__all__ = [
    "SAMPLING_SCHEMES",
    "ConstrainedFit",
    "ConstrainedModel",
    "ConvergenceInfo",
    "HypothesisTest",
    "fit_constrained",
    "marginal_cumulative_logit_model",
    "marginal_homogeneity_association_model",
    "marginal_homogeneity_model",
    "FITTERS",
    "OBJECTIVES",
    "STRATEGIES",
    "fit_mcem",
    "fit_npml",
    "NPMLResult",
    "fit_pql",
    "OptSummary",
    "aliased_columns",
    "check_full_rank",
    "check_nodes",
    "fit_auto_nodes",
    "profile_interval",
    "default_start",
    "fit",
    "fit_glm",
    "make_objective",
    "make_result",
    "maximize",
    "optimize",
]
