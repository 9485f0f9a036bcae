"""``build_design`` on a ``Table``: structural zeros, scores and strata (issue 15).

References: R's glm on the 8 modelled cells of a 3 x 3 table with a structural zero
(quasi-independence and linear-by-linear with the table's scores; glmmTMB with a random cell
effect), and the product-multinomial fit given the row totals (glm's estimates, the
log-likelihood summed from dmultinom), all recorded by validation/table_designs.R in
tests/fixtures/r/table_designs.json; for a random effect within strata, the marginal
log-likelihood by numerical integration (scipy quad).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import quiet_fit
from scipy import integrate, stats
from scipy.special import gammaln, logsumexp

import gllmm
from gllmm import SpecError, build_design
from gllmm.errors import TableError
from gllmm.tables import Table, from_array

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "r"
                  / "table_designs.json").read_text())
LEVELS = {"row": ["a", "b", "c"], "col": ["x", "y", "z"]}
SCORES = {"row": REF["model"]["row_scores"], "col": REF["model"]["col_scores"]}
# R's coefficient names -> gllmm's
NAMES = {"(Intercept)": "Intercept", "rowb": "C(row)[T.b]", "rowc": "C(row)[T.c]",
         "coly": "C(col)[T.y]", "colz": "C(col)[T.z]", "u:v": "row_score:col_score"}


def _table(**kw):
    counts = np.array(REF["model"]["counts"], dtype=float).reshape(3, 3)
    return from_array(counts, ["row", "col"], LEVELS, scores=SCORES, **kw)


def _zero_table():
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 2] = True  # cell (a, z)
    return _table(structural_zeros=mask)


def _check(res, ref):
    """Estimates to 1e-6 and the log-likelihood to 1e-7 (glm's IRLS ran to 1e-12)."""
    est = dict(zip(res.design.fixed_names, res.params, strict=False))
    for r_name, value in ref["estimates"].items():
        if NAMES[r_name] in est:
            assert est[NAMES[r_name]] == pytest.approx(value, abs=1e-6), r_name
    assert res.loglik == pytest.approx(ref["loglik"], abs=1e-7)


@pytest.mark.parametrize("model, formula", [
    ("quasi_independence", "count ~ C(row) + C(col)"),
    ("linear_by_linear", "count ~ C(row) + C(col) + row_score:col_score"),
])
def test_structural_zero_leaves_the_cell_out(model, formula):
    ref = REF[model]
    d = build_design(_zero_table(), formula)
    assert d.n_blocks == ref["n_cells"] == 8
    res = quiet_fit(d)
    _check(res, ref)
    assert len(res.params) == len(ref["estimates"])
    fitted = res.fitted()
    cells = (fitted["row"].astype(str) + ":" + fitted["col"].astype(str)).tolist()
    assert cells == ref["cells"]
    np.testing.assert_allclose(fitted["fitted"], ref["fitted"], rtol=1e-6)
    np.testing.assert_array_equal(d.notes["cells"], [0, 1, 3, 4, 5, 6, 7, 8])


def test_random_cell_effects_on_the_modelled_cells():
    """``(1 | row:col)`` on the 8 cells against glmmTMB's Laplace fit (estimates and SD to
    1e-4, log-likelihood to 1e-6: glmmTMB stopped at max|grad| ~1e-5)."""
    ref = REF["cellwise_glmmtmb"]
    res = quiet_fit(build_design(_zero_table(), "count ~ C(row) + C(col) + (1 | row:col)"),
               method="laplace")
    assert res.design.n_blocks == ref["n_cells"] == 8
    for r_name, value in ref["estimates"].items():
        assert res.params[res.design.fixed_names.index(NAMES[r_name])] == pytest.approx(
            value, abs=1e-4), r_name
    assert res.params[-1] == pytest.approx(ref["sd"], abs=1e-4)
    assert res.loglik == pytest.approx(ref["loglik"], abs=1e-6)


def test_the_table_scores_are_the_formula_columns():
    """New scores (``with_scores``) give the fit of the same model written on a data frame
    with the score product computed by hand (log-likelihoods to 1e-9)."""
    t = _zero_table().with_scores(row=[1, 2, 3])
    d = build_design(t, "count ~ C(row) + C(col) + row_score:col_score")
    np.testing.assert_array_equal(d.notes["scores"]["row"], [1, 2, 3])
    frame = t.data[~t.structural_zero].reset_index(drop=True)
    frame["uv"] = (frame["row"].cat.codes + 1.0) * np.array(SCORES["col"])[frame["col"].cat.codes]
    by_hand = quiet_fit(build_design(frame, "count ~ C(row) + C(col) + uv"))
    res = quiet_fit(d)
    assert res.loglik == pytest.approx(by_hand.loglik, abs=1e-9)
    assert res.loglik != pytest.approx(REF["linear_by_linear"]["loglik"], abs=1e-3)


def test_strata_make_product_multinomial_blocks():
    ref = REF["product_multinomial"]
    d = build_design(_table(strata=["row"]).with_counts(ref["counts"]),
                     "count ~ C(row) + C(col) + row_score:col_score")
    assert (d.family.name, d.n_blocks, d.n_eta) == ("multinomial", 3, 3)
    # the intercept and row effects only move the row totals, which the strata fix
    assert d.notes["fixed_by_strata"] == ("Intercept", "C(row)[T.b]", "C(row)[T.c]")
    _check(quiet_fit(d), ref)


def test_random_effect_within_strata_by_quadrature():
    """Each stratum (row) is one multinomial with its own random association slope u_i:
    the AGQ log-likelihood at a parameter point equals the integral by scipy quad (1e-8)."""
    t = _table(strata=["row"])
    d = build_design(t, "count ~ C(col) + row_score:col_score + (0 + col_score | row)")
    assert (d.n_blocks, d.n_eta, d.n_clusters) == (3, 3, 3)
    beta, sd = np.array([0.3, -0.4, 0.2]), 0.7
    objective = gllmm.fitting.make_objective(d, "agq", 25)
    value = objective(np.r_[beta, sd])  # the marginal log-likelihood, full scale
    y = np.array(REF["model"]["counts"], dtype=float).reshape(3, 3)
    u_scores, v_scores = np.array(SCORES["row"]), np.array(SCORES["col"])
    total = 0.0
    for i in range(3):
        eta0 = np.r_[0.0, beta[:2]] + beta[2] * u_scores[i] * v_scores

        def density(u, i=i, eta0=eta0):
            eta = eta0 + u * v_scores
            logp = eta - logsumexp(eta)
            return np.exp(y[i] @ logp + stats.norm.logpdf(u, scale=sd))

        integral = integrate.quad(density, -12 * sd, 12 * sd, epsabs=0, epsrel=1e-13)[0]
        n = y[i].sum()
        total += np.log(integral) + gammaln(n + 1) - gammaln(y[i] + 1).sum()
    assert value == pytest.approx(total, abs=1e-8)


def test_strata_with_unequal_modelled_cells_are_refused():
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 2] = True
    t = _table(structural_zeros=mask, strata=["row"])
    with pytest.raises(SpecError, match="structural zeros in some of them"):
        build_design(t, "count ~ C(col)")
    with pytest.raises(SpecError, match="product-multinomial"):
        build_design(t, "count ~ C(col)", weights=np.ones(9))


_ONE = np.zeros((3, 3), dtype=bool)
_ONE[0, 1] = True  # cell (a, y)
_BASE = np.array(REF["model"]["counts"], dtype=float).reshape(3, 3)  # all positive
_NAN, _NEG = _BASE.copy(), _BASE.copy()
_NAN[0, 1], _NEG[0, 1] = np.nan, -1.0


@pytest.mark.parametrize("counts,mask,message", [
    (_NAN, None, r"NaN counts in 1 cell\(s\): \(row=a, col=y\)"),
    (_NEG, None, r"negative counts in 1 cell\(s\): \(row=a, col=y\): -1\.0"),
    (_BASE, _ONE, r"structural zero cells with positive counts: \(row=a, col=y\)"),
    (np.zeros((3, 3)), np.ones((3, 3), dtype=bool), "all-zero table: all 9 counts"),
], ids=["nan", "negative", "structural-zero-positive", "all-structural-zeros"])
def test_bad_tables_never_reach_the_design(counts, mask, message):
    """A Table with NaN or negative counts, a positive count in a structural zero, or only
    structural zeros: TableError naming the cell, both through ``from_array`` and through the
    ``Table`` constructor that ``build_design`` could be handed directly."""
    with pytest.raises(TableError, match=message):
        build_design(from_array(counts, ["row", "col"], LEVELS, structural_zeros=mask),
                     "count ~ C(row) + C(col)")
    good = _table()
    with pytest.raises(TableError, match=message):
        build_design(Table(good.factors, good.factor_levels, counts.ravel(),
                           structural_zero=None if mask is None else mask.ravel()),
                     "count ~ C(row) + C(col)")


def test_cellwise_smoothing_takes_the_table():
    """``models.cellwise_smoothing`` on a Table: its 8 modelled cells and its scores, the same
    design (and Laplace log-likelihood, 1e-10) as the data frame of those cells with the
    scores given by hand."""
    t = _zero_table()
    d = gllmm.models.cellwise_smoothing(t, "row", "col", base="linear_by_linear")
    frame = t.data[~t.structural_zero].reset_index(drop=True)
    by_hand = gllmm.models.cellwise_smoothing(frame, "row", "col", base="linear_by_linear",
                                              row_scores=SCORES["row"],
                                              col_scores=SCORES["col"])
    assert d.n_blocks == 8
    np.testing.assert_array_equal(d.X, by_hand.X)
    a, b = quiet_fit(d, method="laplace"), quiet_fit(by_hand, method="laplace")
    assert a.loglik == pytest.approx(b.loglik, abs=1e-10)
    np.testing.assert_array_equal(d.notes["scores"]["row"], SCORES["row"])
