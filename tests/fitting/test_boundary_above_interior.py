"""A search that ends at an interior maximum below the boundary fit (every SD 0, the fixed
effects at the GLLM's ML) is not reported: on the 3 x 5 table below the AGQ likelihood of the
cell-wise model (paper eq. 2.5) has a local maximum at sigma = 0.3186 with log-likelihood
-18.91365, below l(0) = -18.90928 (the independence GLM's), and ``gllmm.fit`` used to report
the interior one; every strategy now compares with the GLLM's log-likelihood (which the
objective reproduces at sigma = 0; no evaluation) through ``best_of_starts`` and reports the
boundary fit with a BoundaryWarning. A fit whose interior maximum is above the boundary runs
the same single search as before, to the last bit and evaluation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize as sopt

import gllmm
from gllmm import models
from gllmm.errors import BoundaryWarning
from gllmm.fitting import _fit, fit_glm, make_objective
from gllmm.fitting._optimize import FTOL_ZERO, best_of_starts, maximize

TABLE = np.array([[0, 0, 1, 0, 0], [2, 1, 0, 1, 13], [1, 1, 0, 2, 0]])


def _frame():
    rows, cols = np.divmod(np.arange(TABLE.size), TABLE.shape[1])
    return pd.DataFrame({"row": rows + 1, "col": cols + 1, "count": TABLE.ravel()})


def _design():
    return models.cellwise_smoothing(_frame(), "row", "col", base="independence")


def _profile(objective, beta0, sigma):
    """max over the fixed effects of l(beta, sigma), by scipy's BFGS from ``beta0``."""
    def neg(beta):
        v, g = objective.value_and_gradient(np.r_[beta, sigma])
        return -v, -g[:-1]

    return -sopt.minimize(neg, beta0, jac=True, method="BFGS", options={"gtol": 1e-9}).fun


@pytest.fixture(scope="module")
def profile():
    """The AGQ (15 nodes) profile log-likelihood on a grid of sigma, and l(0) from the GLM."""
    design = _design()
    glm = fit_glm(design, warn=False)
    objective = make_objective(design, "agq", 15)
    grid = np.r_[np.arange(0.0, 1.0 + 1e-9, 0.02), 0.3186]
    prof = np.array([_profile(objective, glm.beta, s) for s in grid])
    return grid, prof, glm.loglik


def test_profile_has_an_interior_maximum_below_the_boundary(profile):
    grid, prof, l0 = profile
    # the quadrature reproduces the GLM at sigma = 0; the profile dips (by 0.0066 near 0.2)
    # and rises again to a local maximum near 0.32 that stays below l(0) by about 0.0044
    assert abs(prof[0] - l0) < 1e-9
    dip = prof[(grid > 0.1) & (grid < 0.3)].min()
    assert dip < l0 - 0.006 and dip < prof[-1] - 0.002
    assert prof[-1] > prof[(grid > 0.33) & (grid < 0.9)].max()
    assert l0 - 0.006 < prof[-1] < l0 - 0.003


@pytest.mark.parametrize("route", [
    {"design": "model"},
    {"design": "model", "strategy": "product"},
    {"design": "model", "strategy": "cellwise"},
    {"design": "formula"},
], ids=["scalar", "product", "cellwise", "formula"])
def test_fit_reports_the_boundary_above_a_lower_interior_maximum(profile, route):
    grid, prof, l0 = profile
    kw = {k: v for k, v in route.items() if k != "design"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if route["design"] == "model":
            res = gllmm.fit(_design(), method="agq", n_nodes=15, **kw)
        else:
            res = gllmm.fit("count ~ C(row) + C(col) + (1 | row:col)", data=_frame(),
                            method="agq", n_nodes=15, **kw)
    assert any(issubclass(w.category, BoundaryWarning) for w in caught)
    assert res.opt.boundary == (res.design.param_names[-1],)
    assert float(res.params[-1]) == 0.0
    # the boundary fit is the GLM (1e-8: Newton / BFGS tolerances), at or above the profile
    # everywhere on the grid; the old fit reported sigma 0.3186 at -18.91365
    assert abs(res.loglik - l0) < 1e-8
    assert res.loglik >= prof.max() - 1e-8
    glm = fit_glm(res.design, warn=False)
    np.testing.assert_allclose(res.params[:-1], glm.beta, atol=1e-6)


def test_interior_maximum_above_the_boundary_unchanged(monkeypatch):
    # Laplace on the same table: the interior maximum (sigma 0.382, l = -18.90143) is above
    # l(0) = -18.90928; the fit is the single search from the GLLM start, to 1e-10 and with
    # its evaluations, and no other search runs
    design = _design()
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return maximize(*args, **kwargs)

    monkeypatch.setattr(_fit, "maximize", counted)
    res = gllmm.fit(design, method="laplace")
    monkeypatch.undo()
    assert len(calls) == 1 and not res.opt.boundary
    l0 = fit_glm(design, warn=False).loglik
    assert res.loglik > l0 + 0.005 and 0.35 < float(res.params[-1]) < 0.42
    objective = make_objective(design, "laplace")
    start, hinv = _fit._glm_start(design)[:2]
    alone = maximize(objective, start, design.param_lower, design.param_names, "laplace", 1,
                     np.array([design.n_fixed]), hinv0=hinv)
    np.testing.assert_allclose(res.params, alone.final, rtol=0, atol=1e-10)
    assert abs(res.loglik - alone.final_loglik) < 1e-10
    assert res.opt.n_evaluations == alone.n_evaluations


class _Fit:
    def __init__(self, loglik):
        self.loglik = loglik


def test_rule_searches_from_the_boundary_only_when_it_is_higher():
    searched = []

    def from_boundary():
        searched.append(1)
        return _Fit(-10.0)

    def interior(sd):
        raise AssertionError("no restart was asked for")

    ll = lambda f: f.loglik  # noqa: E731
    # an interior end below the boundary by more than FTOL_ZERO: the boundary search wins
    out = best_of_starts(_Fit(-10.5), interior, ll, (), (-10.0, from_boundary))
    assert out.loglik == -10.0 and searched == [1]
    # within FTOL_ZERO, or above: the interior fit is kept and nothing runs
    for end in (-10.0 - FTOL_ZERO / 2, -9.0):
        out = best_of_starts(_Fit(end), interior, ll, (), (-10.0, from_boundary))
        assert out.loglik == end and searched == [1]
    # a NaN boundary log-likelihood (a GLLM with infinite estimates) never replaces a fit
    out = best_of_starts(_Fit(-10.5), interior, ll, (), (float("nan"), from_boundary))
    assert out.loglik == -10.5 and searched == [1]


def test_global_fit_takes_the_boundary_log_likelihood_from_the_glm():
    # global ML (optimize with sd_starts, the simulation studies' fits): the boundary fit's
    # log-likelihood is the GLLM's, no evaluation, equal to the objective there to 1e-9; on
    # this table it beats the interior search from sigma = 0.5 (the maximum at 0.3186)
    design = _design()
    objective = make_objective(design, "agq", 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = _fit.optimize(objective, design, sd_starts=(0.5,))
    assert opt.boundary == (design.param_names[-1],) and opt.n_evaluations == 0
    value = objective.value_and_gradient(opt.final, gradient=False)[0]
    assert opt.final[-1] == 0.0 and abs(opt.final_loglik - value) < 1e-9
    assert abs(opt.final_loglik - fit_glm(design, warn=False).loglik) < 1e-12
