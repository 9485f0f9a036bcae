"""Model specification: the matrices of ``C log(A mu) = X beta + Z u`` and their compiled form.

Glossary: B blocks, J predictors per block, p fixed effects, q random effects per cluster.
"""

from ._build import build_design
from ._design import CovarianceStructure, Design, block_structure, scalar_structure
from ._formula import ParsedFormula, RandomTerm, parse_formula

__all__ = [
    "CovarianceStructure",
    "Design",
    "ParsedFormula",
    "RandomTerm",
    "block_structure",
    "build_design",
    "parse_formula",
    "scalar_structure",
]
