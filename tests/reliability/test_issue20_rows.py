"""Issue 20: every row of the audit's table, with the input as written there.

Each test asserts gllmm's own error class and a message naming the problem and the fix, or the
warning, the flag on the result and a correct result. Tolerances are stated where numbers are
compared.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import models
from gllmm.errors import InfiniteEstimateWarning, SpecError

DATA = Path(__file__).resolve().parents[2] / "src" / "gllmm" / "data"

# the audit's tables (issue 20, "Tables used above")
ALL_ZERO_ROW = pd.DataFrame(
    [(1, 1, 0), (1, 2, 0), (1, 3, 0), (2, 1, 3), (2, 2, 5), (2, 3, 2), (3, 1, 4), (3, 2, 2),
     (3, 3, 5)], columns=["row", "col", "count"])
SEPARATED = pd.DataFrame(
    [(x, s, f, g) for g in (1, 2, 3) for x, s, f in ((-2, 0, 10), (-1, 0, 10), (1, 10, 0),
                                                     (2, 10, 0))],
    columns=["x", "s", "f", "g"])
TABLE3 = pd.DataFrame({"row": np.repeat([1, 2, 3], 3), "col": np.tile([1, 2, 3], 3),
                       "count": [2, 3, 4, 3, 5, 2, 4, 2, 5]})
DUPLICATED = pd.concat([TABLE3, pd.DataFrame([{"row": 1, "col": 1, "count": 4}])],
                       ignore_index=True)
MISSING_CELL = TABLE3.iloc[1:].reset_index(drop=True)


def _fit_warns(*args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = gllmm.fit(*args, **kw)
    return res, [w for w in caught if issubclass(w.category, InfiniteEstimateWarning)]


# ---------------------------------------------------------------------- rows 1-3, 8
def test_row1_zero_margin_with_cell_effects_is_flagged():
    res, warned = _fit_warns("count ~ C(row) + C(col) + (1 | cell)",
                             data=ALL_ZERO_ROW.assign(cell=range(9)))
    assert set(res.infinite_estimates) == {"Intercept", "C(row)[T.2]", "C(row)[T.3]"}
    assert not res.converged
    msg = str(warned[0].message)
    assert "does not exist" in msg and "C(row)[T.2]" in msg and "row=1, col=1" in msg
    assert res.to_dict()["infinite_estimates"] == list(res.infinite_estimates)
    assert "(*) NOT ESTIMATES" in res.summary()
    # the column effects are estimable: log of the column totals' ratios (7 : 7 : 7), tol 1e-6
    np.testing.assert_allclose(res.beta[["C(col)[T.2]", "C(col)[T.3]"]], 0.0, atol=1e-6)


def test_row2_separated_binomial_is_flagged():
    res, warned = _fit_warns("cbind(s, f) ~ x + (1 | g)", data=SEPARATED, family="binomial")
    assert "x" in res.infinite_estimates and "sd(g)" in res.infinite_estimates
    assert warned and "x=-2, s=0, f=10, g=1" in str(warned[0].message)
    assert not res.converged


def test_row3_clinical_stratum_with_an_empty_row_is_flagged():
    trial = pd.read_csv(DATA / "clinical_trial.csv")
    trial.loc[(trial.center == 1) & (trial.treatment == "placebo"), "count"] = 0
    d = models.stratified_local_association(trial, "center", "treatment", "response")
    res, warned = _fit_warns(d)
    assert res.infinite_estimates and warned
    assert any("C(center)[T." in n or n == "Intercept" for n in res.infinite_estimates)
    assert "center=1, treatment=placebo" in str(warned[0].message)
    # the other centres' association is still estimated: beta finite with a sensible SE
    assert "beta" not in res.infinite_estimates and res.se["beta"] < 1.0


def test_row8_all_zero_table_refused_by_cellwise_smoothing():
    t = TABLE3.assign(count=0)
    with pytest.raises(SpecError, match="zero in every row: there is nothing to fit"):
        models.cellwise_smoothing(t, "row", "col")


# ---------------------------------------------------------------------- row 6, 9, 10, 11
@pytest.mark.parametrize("build", [
    lambda d: models.cellwise_smoothing(d, "row", "col"),
    lambda d: models.stratified_local_association(d.assign(k=1), "k", "row", "col"),
    lambda d: models.stratified_global_association(d.assign(k=1), "k", "row", "col"),
])
def test_row6_duplicated_cells_refused(build):
    """Builders of table models refuse a cell listed twice. (build_design does not: its rows
    are observations, and repeated rows are frequency weights written out; ``gllmm fit
    --add-cell`` refuses them before numbering the cells, tests/reliability/
    test_issue20_cli.py.)"""
    with pytest.raises(SpecError, match=r"duplicated cells: rows \[0, 9\].*row=1, col=1.*once"):
        build(DUPLICATED)


def _general(counts=None, X=None, Z=None, cluster=None):
    C, A, _ = models.dale_matrices(2, 2)
    counts = np.array([[3.0, 2.0, 1.0, 4.0], [2.0, 2.0, 3.0, 3.0]]) if counts is None else counts
    X = np.eye(3) if X is None else X
    return models.general_design(counts, C, A, X, Z=Z, cluster=cluster)


@pytest.mark.parametrize("counts,match", [
    ([[3.0, -2.0, 1.0, 4.0], [2.0, 2.0, 3.0, 3.0]], "negative counts at rows"),
    ([[3.0, np.nan, 1.0, 4.0], [2.0, 2.0, 3.0, 3.0]], r"missing \(NaN\)"),
    ([[3.0, np.inf, 1.0, 4.0], [2.0, 2.0, 3.0, 3.0]], "infinite values"),
    ([[3.0, 2.5, 1.0, 4.0], [2.0, 2.0, 3.0, 3.0]], "non-integer counts"),
    ([[3 + 1j, 2, 1, 4], [2, 2, 3, 3]], "complex numbers"),
])
def test_row9_11_general_design_refuses_bad_counts(counts, match):
    with pytest.raises(SpecError, match=match):
        _general(np.array(counts))


def test_row9_general_design_refuses_wrong_shapes():
    with pytest.raises(SpecError, match=r"Z has shape \(2, 3, 5\); expected \(2, 3, \*\)|"
                                        r"Z has shape"):
        _general(Z=np.ones((2, 4, 1)))
    with pytest.raises(SpecError, match=r"X has shape"):
        _general(X=np.ones((4, 3)))
    with pytest.raises(SpecError, match=r"cluster must have one entry per block"):
        _general(cluster=np.array([0, 1, 2]))


def test_row10_nan_in_grouping_column_refused():
    df = TABLE3.assign(g=[1, 1, 1, 2, 2, np.nan, 3, 3, 3])
    with pytest.raises(SpecError, match=r"grouping column 'g' has missing .* rows \[5\]"):
        gllmm.spec.build_design(df, "count ~ C(row) + C(col) + (1 | g)")
    with pytest.raises(SpecError, match="cluster has missing values"):
        _general(cluster=np.array([0.0, np.nan]))


def test_row11_complex_counts_refused_by_formula_and_builders():
    df = TABLE3.assign(count=TABLE3["count"] + 1j)
    with pytest.raises(SpecError, match="complex"):
        gllmm.spec.build_design(df, "count ~ C(row) + C(col)")
    with pytest.raises(SpecError, match="complex"):
        models.random_association(np.array([[1 + 1j, 2], [3, 4]]))


# ---------------------------------------------------------------------- rows 7, 11 (nodes)
@pytest.fixture(scope="module")
def mba_design():
    df = pd.read_csv(DATA / "mba_statistics_economics.csv")
    return models.cellwise_smoothing(df, "statistics", "economics")


@pytest.mark.parametrize("n", [150, 200])
def test_row7_many_nodes_give_the_15_node_answer(mba_design, n):
    """Paper model (2.5): log-likelihood -45.8562 and sd 0.2515 at 15 nodes (R fixture);
    150 and 200 nodes gave +4539 .. +5537 before. Tolerance 1e-6 against the 15-node fit."""
    ref = gllmm.fit(mba_design, n_nodes=15)
    res = gllmm.fit(mba_design, n_nodes=n)
    assert res.converged
    assert res.loglik == pytest.approx(ref.loglik, abs=1e-6)
    assert res.loglik == pytest.approx(-45.8562, abs=1e-4)
    assert res.params[-1] == pytest.approx(0.2515, abs=1e-4)


@pytest.mark.parametrize("n,match", [(1000, "at most 300"), (2.7, "must be an integer")])
def test_row7_11_node_count_refused(mba_design, n, match):
    with pytest.raises(SpecError, match=match):
        gllmm.fit(mba_design, n_nodes=n)


# ---------------------------------------------------------------------- row 13 (library)
@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", b"", "the file is empty"),
    ("latin1.csv", "row,col,count\n\xe9,1,2\n".encode("latin-1"), r"not a text \(CSV\) file"),
    ("binary.csv", bytes(range(256)), "as CSV"),
    ("fake.parquet", b"row,col,count\n1,1,2\n", "as Parquet"),
    ("header.csv", b"row,col,count\n", "no data rows"),
])
def test_row13_read_table_bad_files(tmp_path, name, content, needle):
    from gllmm.errors import TableError
    from gllmm.tables import read_table

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError, match=needle):
        read_table(path)
    (tmp_path / "dir.csv").mkdir(exist_ok=True)
    with pytest.raises(TableError, match="it is a directory"):
        read_table(tmp_path / "dir.csv")


@pytest.mark.parametrize("call,match", [
    (lambda: models.cellwise_smoothing(TABLE3, "row", "nope"), "unknown column.*'nope'"),
    (lambda: models.cellwise_smoothing(TABLE3, "row", "col", base="linear_by_linear",
                                       row_scores={1: 1.0, 2: 2.0}),
     r"no score for level\(s\) \[3\]"),
    (lambda: models.cellwise_smoothing(TABLE3, "row", "col", base="linear_by_linear",
                                       row_scores=[1.0, np.nan, 3.0]), "must be finite"),
    (lambda: gllmm.fit(42), "a Design .* or a formula"),
    (lambda: gllmm.fit(models.cellwise_smoothing(TABLE3, "row", "col"), start=np.zeros(2)),
     r"start has 2 values; the model has 6 parameters"),
])
def test_row13_builder_crashes_become_errors(call, match):
    from gllmm.errors import GllmmError

    with pytest.raises(GllmmError, match=match):
        call()


def test_row12_ordinal_with_a_text_factor_is_fitted():
    """``response ~ treatment + (1 | center)`` (treatment a text factor) was refused as rank
    deficient. Reference: R clmm (nAGQ = 15) on the same data, tests/fixtures/r/
    clinical_cumlogit_ri_clmm_agq15.json: x (drug = 1) -0.947499 in theta_j - beta x, so
    placebo's coefficient here is -0.947499; log-likelihood -285.607121; sd 0.596967.
    Tolerances 1e-4 (estimates), 1e-5 (log-likelihood)."""
    trial = pd.read_csv(DATA / "clinical_trial.csv")
    trial["response"] = pd.Categorical(trial["response"],
                                       ["much_better", "better", "unchanged_or_worse"],
                                       ordered=True)
    res = gllmm.fit(models.ordinal_mixed(trial, "response ~ treatment + (1 | center)"))
    assert res.converged and not res.infinite_estimates
    assert res.beta["treatment[T.placebo]"] == pytest.approx(-0.947499, abs=1e-4)
    assert res.loglik == pytest.approx(-285.607121, abs=1e-5)
    assert res.random_sd["center"] == pytest.approx(0.596967, abs=1e-4)
