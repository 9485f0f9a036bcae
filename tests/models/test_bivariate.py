"""Model (6.1)-(6.3): bivariate ordinal responses, marginal logits and global odds ratios with
random effects, fitted by inversion nested in adaptive quadrature."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm.links import plackett
from gllmm.models._bivariate import bivariate_ordinal

TRUE = {"alpha1": 0.3, "alpha2": -0.2, "beta0": 1.0, "sd_assoc": 0.8}


def simulate_pairs(rng: np.random.Generator, n_clusters: int = 40, per: int = 8) -> pd.DataFrame:
    """Matched binary pairs (Ten Have & Morabia 1999 type): random log global odds ratio."""
    u = rng.normal(size=n_clusters) * TRUE["sd_assoc"]
    g1 = 1 / (1 + np.exp(-TRUE["alpha1"]))
    g2 = 1 / (1 + np.exp(-TRUE["alpha2"]))
    f = plackett(TRUE["beta0"] + u, np.full(n_clusters, g1), np.full(n_clusters, g2))
    p = np.column_stack([f, g1 - f, g2 - f, 1 - g1 - g2 + f])
    cells = np.array([rng.choice(4, size=per, p=pi) for pi in p])
    ids = np.repeat(np.arange(n_clusters), per)
    return pd.DataFrame({"id": ids, "y1": cells.ravel() // 2, "y2": cells.ravel() % 2})


def fit_pairs(df: pd.DataFrame, n_nodes: int = 7):
    d = bivariate_ordinal(df, "y1", "y2", "id", random=("association",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(d, method="agq", n_nodes=n_nodes)


def test_fit_runs_and_reports():
    res = fit_pairs(simulate_pairs(np.random.default_rng(11)))
    assert res.converged
    assert set(res.beta.index) == {"alpha1[0]", "alpha2[0]", "beta0"}
    # probabilities implied at the estimates reproduce the observed marginal proportions
    # to sampling accuracy (a weak but failing-capable sanity check)
    assert abs(res.beta["alpha1[0]"] - TRUE["alpha1"]) < 0.5


def test_general_agq_gradient_matches_differences():
    from gllmm.integrate import MarginalLikelihood

    d = bivariate_ordinal(simulate_pairs(np.random.default_rng(2), 10, 6), "y1", "y2", "id",
                          random=("marginal1", "association"))
    ml = MarginalLikelihood(d, 3)
    x = np.array([0.2, -0.1, 0.9, 0.5, 0.7])
    _, g = ml.value_and_gradient(x)
    eps = 1e-6
    fd = np.array([(ml(x + eps * e) - ml(x - eps * e)) / (2 * eps) for e in np.eye(len(x))])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_recovers_parameters_200_replicates():
    """Bias of the general GLLMM fit within Monte Carlo error (3 SE) on 200 replicates."""
    ss = np.random.SeedSequence(2003)
    est = []
    for child in ss.spawn(200):
        res = fit_pairs(simulate_pairs(np.random.default_rng(child), 60, 8))
        est.append([res.beta["alpha1[0]"], res.beta["alpha2[0]"], res.beta["beta0"]])
    est = np.array(est)
    truth = np.array([TRUE["alpha1"], TRUE["alpha2"], TRUE["beta0"]])
    bias = est.mean(axis=0) - truth
    mc_se = est.std(axis=0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(bias) < 3 * mc_se), (bias, mc_se)
