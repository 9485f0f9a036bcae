"""A fit whose search ends at sigma = 0 looks into the interior (``BOUNDARY_RESTARTS``): on a
table whose profile likelihood in sigma rises from 0 to a maximum near 0.04 and falls below
l(0) by sigma = 0.1, the search stops at sigma = 0 (a stationary point: the likelihood is even
in sigma) and the probes at 0.1 and 0.5 do not rise; ``gllmm.fit`` now reaches the maximum of a
brute-force profile over a grid of sigma."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import gllmm
from gllmm import models
from gllmm.fitting import make_objective

# Table 1, scenario 11 (uniform, n = 1000), replicate 1 of paper_table1_study(3)
TABLE = np.array([[134, 105, 106], [107, 116, 142], [91, 102, 97]])


def _design():
    rows, cols = np.divmod(np.arange(TABLE.size), 3)
    df = pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": TABLE.ravel()})
    return models.cellwise_smoothing(df, "row", "col", base="independence")


def _profile(objective, beta0, sigma):
    """max over the fixed effects of l(beta, sigma), by scipy's BFGS from ``beta0``."""
    def neg(beta):
        v, g = objective.value_and_gradient(np.r_[beta, sigma])
        return -v, -g[:-1]

    res = optimize.minimize(neg, beta0, jac=True, method="BFGS", options={"gtol": 1e-9})
    return -res.fun


def test_fit_reaches_the_grid_profile_maximum_past_a_boundary_maximum():
    design = _design()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit(design, method="agq", n_nodes=15)
    objective = make_objective(design, "agq", 15)
    beta0 = np.asarray(res.params[:-1], dtype=float)
    step = 0.002
    grid = np.r_[np.arange(0.0, 0.1 + step / 2, step), 0.2, 0.5, 1.0]
    prof = np.array([_profile(objective, beta0, s) for s in grid])
    best = int(np.argmax(prof))
    # the probes of maximize (0.1, 0.5) are below l(0); the interior maximum is above it by 0.04
    assert prof[np.isclose(grid, 0.1)][0] < prof[0] and prof[np.isclose(grid, 0.5)][0] < prof[0]
    assert prof[best] > prof[0] + 0.04
    # the fit is at the grid's maximum: log-likelihood not below it (the grid is coarser than
    # the fit, so 1e-8 for the BFGS tolerances) and sigma within one grid step of its argmax
    assert res.loglik >= prof[best] - 1e-8
    assert float(res.params[-1]) == pytest.approx(grid[best], abs=step)
    assert not res.opt.boundary
