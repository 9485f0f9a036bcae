"""Conditional distributions of counts given the linear predictor, with derivatives.

Each family turns ``eta = X beta + Z u`` (per block) into the conditional log-likelihood and its
derivatives in eta; the paper's ``C log(A mu)`` is closed form in eta for these families.
"""

from ._dale_full import DaleFull, dale_full_family, plackett_partials
from ._families import Binomial, ContinuationRatio, Family, Multinomial, Poisson
from ._separable import (
    AffineSeparable,
    PlackettJets,
    cumulative_logit_family,
    dale_plugin_family,
    logistic_jets,
    plackett,
    plackett_jets,
)

__all__ = [
    "DaleFull",
    "dale_full_family",
    "plackett_partials",
    "AffineSeparable",
    "Binomial",
    "ContinuationRatio",
    "Family",
    "Multinomial",
    "PlackettJets",
    "Poisson",
    "cumulative_logit_family",
    "dale_plugin_family",
    "logistic_jets",
    "plackett",
    "plackett_jets",
]
