"""Fitting: the pipeline make_objective -> optimize -> make_result, and GLLM Newton fits."""

from ._fit import OBJECTIVES, default_start, fit, make_objective, make_result, optimize
from ._inference import check_nodes, profile_interval
from ._glm import aliased_columns, check_full_rank, fit_glm
from ._optimize import OptSummary, maximize

__all__ = [
    "OBJECTIVES",
    "OptSummary",
    "aliased_columns",
    "check_full_rank",
    "check_nodes",
    "profile_interval",
    "default_start",
    "fit",
    "fit_glm",
    "make_objective",
    "make_result",
    "maximize",
    "optimize",
]
