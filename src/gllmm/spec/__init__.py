"""Model specification: the matrices of ``C log(A mu) = X beta + Z u`` and their compiled form.

Glossary: B blocks, J predictors per block, p fixed effects, q random effects per cluster.
"""

from ._build import build_design
from ._design import CovarianceStructure, Design, block_structure, scalar_structure
from ._formula import ParsedFormula, RandomTerm, parse_formula, split_top_level
from ._matrices import (
    DENSE_MAX_CELLS,
    LOGITS,
    LinkMatrices,
    adjacent_logits,
    aliased_columns,
    baseline_logits,
    check_conformable,
    check_full_rank,
    continuation_logits,
    cumulative_logits,
    global_odds_ratios,
    local_odds_ratios,
    logits,
    loglinear_matrices,
    margin_matrix,
    marginal_logits,
)

__all__ = [
    "DENSE_MAX_CELLS",
    "LOGITS",
    "LinkMatrices",
    "adjacent_logits",
    "aliased_columns",
    "baseline_logits",
    "check_conformable",
    "check_full_rank",
    "continuation_logits",
    "cumulative_logits",
    "global_odds_ratios",
    "local_odds_ratios",
    "logits",
    "loglinear_matrices",
    "margin_matrix",
    "marginal_logits",
    "CovarianceStructure",
    "Design",
    "ParsedFormula",
    "RandomTerm",
    "block_structure",
    "build_design",
    "split_top_level",
    "parse_formula",
    "scalar_structure",
]
