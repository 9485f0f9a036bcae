"""The paper's named models as thin builders returning a Design."""

from ._association import (
    centred_scores,
    stratified_global_association,
    stratified_local_association,
)
from ._bivariate import bivariate_ordinal
from ._general import dale_matrices, general_design
from ._ordinal import ordinal_mixed
from ._smoothing import cellwise_smoothing

__all__ = [
    "bivariate_ordinal",
    "dale_matrices",
    "general_design",
    "cellwise_smoothing",
    "centred_scores",
    "ordinal_mixed",
    "stratified_global_association",
    "stratified_local_association",
]
