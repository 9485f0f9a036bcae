"""A fit whose search ends at sigma = 0 looks into the interior (``BOUNDARY_RESTARTS``): on a
table whose profile likelihood in sigma rises from 0 to a maximum near 0.04 and falls below
l(0) by sigma = 0.1, the search stops at sigma = 0 (a stationary point: the likelihood is even
in sigma) and the probes at 0.1 and 0.5 do not rise; ``gllmm.fit`` now reaches the maximum of a
brute-force profile over a grid of sigma. The cell-wise strategy follows the same rule
(``best_of_starts``) on a table whose profile is bimodal with a local maximum at sigma = 0, and
a fit that ends interior runs no restart."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import gllmm
from gllmm import models
from gllmm.fitting import make_objective
from gllmm.fitting._optimize import BOUNDARY_RESTARTS

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


# a bimodal profile for the cell-wise strategy: l(sigma) falls from the Poisson GLM at
# sigma = 0 to a minimum near 0.15 and rises to an interior maximum near 0.34, 0.02 above
# l(0); the mixed stage's moment start (0.1) lies in the basin of sigma = 0
BIMODAL = np.array([[2, 4, 4], [3, 6, 0], [3, 63, 8]])


def _cellwise_design(table):
    rows, cols = np.divmod(np.arange(table.size), table.shape[1])
    df = pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": table.ravel()})
    return models.cellwise_smoothing(df, "row", "col", base="independence")


def _counted_cellwise_fit(design, monkeypatch, restarts=True):
    """The cell-wise fit and the number of Newton searches it ran (GLM stage included)."""
    from gllmm.fitting import _cellwise

    calls = []
    original = _cellwise.maximise

    def counted(*args, **kwargs):
        calls.append(kwargs.get("stage"))
        return original(*args, **kwargs)

    monkeypatch.setattr(_cellwise, "maximise", counted)
    if not restarts:
        monkeypatch.setattr(_cellwise, "best_of_starts", lambda best, *a, **k: best)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit(design, method="agq", n_nodes=15, strategy="cellwise")
    monkeypatch.undo()
    return res, calls


def test_cellwise_fit_restarts_past_a_boundary_maximum(monkeypatch):
    design = _cellwise_design(BIMODAL)
    res, calls = _counted_cellwise_fit(design, monkeypatch)
    assert res.strategy == "cellwise"
    objective = make_objective(design, "agq", 15)
    beta0 = np.asarray(res.params[:-1], dtype=float)
    step = 0.01
    grid = np.arange(0.0, 0.6 + step / 2, step)
    prof = np.array([_profile(objective, beta0, s) for s in grid])
    best = int(np.argmax(prof))
    # bimodal: sigma = 0 is a local maximum (the profile falls by 0.05 to 0.1), the interior
    # maximum is higher by more than 0.02
    assert prof[np.isclose(grid, 0.1)][0] < prof[0] - 0.05
    assert prof[best] > prof[0] + 0.02 and grid[best] > 0.2
    # the fit is at the grid's maximum (1e-8: BFGS tolerances), sigma within one grid step
    assert res.loglik >= prof[best] - 1e-8
    assert float(res.params[-1]) == pytest.approx(grid[best], abs=step)
    assert not res.opt.boundary
    # GLM, the mixed search from the moment start (ends at 0), then one per restart
    assert calls == ["glm"] + ["mixed"] * (1 + len(BOUNDARY_RESTARTS))
    # without the restarts the same fit stops at the boundary maximum, 0.02 lower
    stuck, _ = _counted_cellwise_fit(design, monkeypatch, restarts=False)
    assert stuck.opt.boundary and float(stuck.params[-1]) == 0.0
    assert abs(stuck.loglik - prof[0]) < 1e-8 and res.loglik > stuck.loglik + 0.02


def test_cellwise_fit_ending_interior_pays_nothing(monkeypatch):
    # the table above whose maximum near 0.036 the mixed search reaches from its start: two
    # Newton searches (GLM, mixed), no restart; the same maximum as gllmm.fit's scalar strategy
    design = _design()
    res, calls = _counted_cellwise_fit(design, monkeypatch)
    assert calls == ["glm", "mixed"]
    assert res.strategy == "cellwise" and 0.03 < float(res.params[-1]) < 0.04
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scalar = gllmm.fit(design, method="agq", n_nodes=15)
    assert abs(res.loglik - scalar.loglik) < 1e-8


def test_restart_from_the_first_searchs_own_start_is_skipped(monkeypatch):
    """MBA (2.6) ends at sigma = 0 from the GLLM start (SDs at 0.5): the restart at 0.5 would
    start there again (the boundary fit's fixed effects are the GLLM's), so only the one at
    1.5 runs; the fit still equals glmmTMB's (log-likelihood to 1e-3, the fixture's digits)
    and the grid-profile check above covers a restart that changes the answer."""
    import json
    from pathlib import Path

    import gllmm.fitting._fit as fit_module
    from gllmm.fitting._fit import _new_starts

    # the rule itself: a start within SAME_START of the first search's is dropped
    x0 = np.array([1.0, -2.0, 0.5])
    assert _new_starts(x0, np.array([1.0 + 1e-9, -2.0, 0.0]), np.array([2]), (0.5, 1.5)) == (1.5,)
    assert _new_starts(x0, np.array([1.1, -2.0, 0.0]), np.array([2]), (0.5, 1.5)) == (0.5, 1.5)
    assert _new_starts(x0, np.array([1.0, -2.0, 0.0]), np.array([], dtype=int), (0.5,)) == ()

    starts = []
    real = fit_module.maximize

    def counted(objective, start, *args, **kw):
        starts.append(float(start[-1]))
        return real(objective, start, *args, **kw)

    monkeypatch.setattr(fit_module, "maximize", counted)
    mba = gllmm.datasets.load("mba")
    design = models.cellwise_smoothing(mba, "statistics", "economics", base="linear_by_linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit(design, method="laplace")
    assert starts == [0.5, 1.5] and BOUNDARY_RESTARTS == (0.5, 1.5)
    fx = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "r"
                     / "mba_2_6_glmmtmb.json").read_text())
    ll = fx["loglik"]["value"] if isinstance(fx["loglik"], dict) else fx["loglik"]
    assert abs(res.loglik - ll) < 1e-3
    assert res.random_sd["statistics:economics"] == 0.0
