"""The paper's named models as thin builders returning a Design."""

from ._association import (
    centred_scores,
    stratified_global_association,
    stratified_local_association,
)
from ._association_gllmm import (
    association_from_contrasts,
    local_coding,
    random_association,
    stratified_random_association,
)
from ._bivariate import bivariate_ordinal
from ._general import dale_matrices, general_design
from ._ordinal import ordinal_mixed
from ._smoothing import cellwise_smoothing

__all__ = [
    "association_from_contrasts",
    "local_coding",
    "random_association",
    "stratified_random_association",
    "bivariate_ordinal",
    "dale_matrices",
    "general_design",
    "cellwise_smoothing",
    "centred_scores",
    "ordinal_mixed",
    "stratified_global_association",
    "stratified_local_association",
]
