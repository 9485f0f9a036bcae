"""R formula idioms, offsets, frequency weights and per-row inputs in any row order (issue 16).

References: closed forms (a row of weight w is w copies of the row; an offset is a column with
coefficient 1), the same model written two ways, and the fit of the sorted rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import SpecError, build_design
from gllmm.spec._formula import parse_formula, translate

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"


def _fit(design, method="laplace"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, method=method)


@pytest.fixture(scope="module")
def insurance():
    d = pd.read_csv(R_DIR / "insurance.csv")
    d["Group"] = pd.Categorical(d["Group"], ["<1l", "1-1.5l", "1.5-2l", ">2l"])
    d["Age"] = pd.Categorical(d["Age"], ["<25", "25-29", "30-35", ">35"])
    return d


@pytest.fixture(scope="module")
def cbpp():
    return pd.read_csv(R_DIR / "cbpp.csv")


def test_parse_nested_offset_and_translation():
    p = parse_formula("y ~ x + offset(log(n)) + (1 | a/b/c) + (x || g)")
    assert [t.group for t in p.random] == ["a", "a:b", "a:b:c", "g"]
    assert p.random[-1].diagonal
    assert p.offsets == ("log(n)",) and p.fixed == "x"
    cols = ["exposure.time", "x", "a b"]
    assert translate("factor(x) + as.factor(x) + exposure.time + I(x^2) + (x + a)^2", cols) == \
        "C(x) + C(x) + `exposure.time` + I(x**2) + (x + a)^2"


def test_idioms_give_the_same_columns_as_their_spelled_out_forms():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"a": rng.choice(list("pqr"), 40), "b": rng.choice(list("uv"), 40),
                      "x.1": rng.normal(size=40), "my x": rng.uniform(1, 2, 40),
                      "y": rng.poisson(3, 40)})
    d["lx"] = np.log(d["my x"])
    one = build_design(d, "y ~ (a + b)^2 + `x.1` + log(`my x`)")
    two = build_design(d, "y ~ C(a) * C(b) + `x.1` + lx")
    three = build_design(d, "y ~ factor(a)*factor(b) + x.1 + lx")
    assert np.array_equal(one.X, two.X) and np.array_equal(two.X, three.X)  # exact
    assert three.fixed_names == two.fixed_names


def test_dot_is_every_column_but_the_response(cbpp):
    d = cbpp.assign(fail=cbpp["size"] - cbpp["incidence"])
    a = build_design(d, "cbind(incidence, fail) ~ . - herd", family="binomial")
    b = build_design(d, "cbind(incidence, fail) ~ size + period", family="binomial")
    assert a.fixed_names == b.fixed_names == ("Intercept", "size", "period")


def test_nested_slash_equals_the_two_terms(cbpp):
    d = cbpp.assign(block=np.arange(len(cbpp)) % 3)
    a = build_design(d, "incidence ~ 1 + (1 | herd/block)")
    b = build_design(d, "incidence ~ 1 + (1 | herd) + (1 | herd:block)")
    assert a.random_names == b.random_names and a.n_clusters == b.n_clusters == 15
    fa, fb = _fit(a), _fit(b)
    assert abs(fa.loglik - fb.loglik) < 1e-9


def test_cbind_expressions_and_binary_responses(cbpp):
    d = cbpp.assign(fail=cbpp["size"] - cbpp["incidence"])
    a = build_design(d, "cbind(incidence, size - incidence) ~ factor(period)", family="binomial")
    b = build_design(d, "cbind(incidence, fail) ~ C(period)", family="binomial")
    assert np.array_equal(a.family.y, b.family.y)
    # a 0/1 column and a two-level factor (first level = failure, as R's glm)
    e = pd.DataFrame({"ok": [1, 0, 1, 1], "res": ["yes", "no", "yes", "yes"], "x": [0, 1, 2, 3]})
    y01 = build_design(e, "ok ~ x", family="binomial").family.y
    yf = build_design(e, "res ~ x", family="binomial").family.y
    assert np.array_equal(y01, [[1, 0], [0, 1], [1, 0], [1, 0]]) and np.array_equal(y01, yf)


def test_proportions_with_trials_as_weights(cbpp):
    """R's glm(p ~ x, weights = n, family = binomial) is cbind(n p, n (1 - p)) ~ x (exact)."""
    d = cbpp.assign(p=cbpp["incidence"] / cbpp["size"])
    a = _fit(build_design(d, "p ~ factor(period) + (1 | herd)", family="binomial",
                          weights="size"))
    b = _fit(build_design(d, "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)",
                          family="binomial"))
    assert abs(a.loglik - b.loglik) < 1e-12
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-12)
    with pytest.raises(SpecError, match="numbers of trials"):
        build_design(d, "p ~ 1", family="binomial", weights=np.full(len(d), 0.5))


def test_refusals_name_the_fix(cbpp):
    with pytest.raises(SpecError, match="family='binomial'"):
        build_design(cbpp, "cbind(incidence, size - incidence) ~ 1 + (1 | herd)")
    with pytest.raises(SpecError, match="unknown column.*nothere"):
        build_design(cbpp, "incidence ~ nothere")
    with pytest.raises(SpecError, match="one per row"):
        build_design(cbpp, "incidence ~ 1", offset=np.zeros(3))
    with pytest.raises(SpecError, match=">= 0"):
        build_design(cbpp, "incidence ~ 1", weights=-np.ones(len(cbpp)))
    for bad in ("incidence ~ period +* herd", "incidence ~ (period"):
        with pytest.raises(SpecError) as info:
            build_design(cbpp, bad)
        assert "\x1b" not in str(info.value)  # formulaic colours its messages


def test_offset_term_argument_and_column_agree(insurance):
    a = build_design(insurance, "Claims ~ Group + Age + offset(log(Holders)) + (1 | District)")
    b = build_design(insurance, "Claims ~ Group + Age + (1 | District)", offset="log(Holders)")
    c = build_design(insurance, "Claims ~ Group + Age + (1 | District)",
                     offset=np.log(insurance["Holders"].to_numpy()))
    order = a.notes["order"]
    expected = np.log(insurance["Holders"].to_numpy())[order]
    for d in (a, b, c):
        assert np.array_equal(d.offset[:, 0], expected)  # exact: rows follow their offsets


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_frequency_weights_equal_repeated_rows(cbpp, family):
    """sum_i w_i log f(y_i) is the log-likelihood of the rows repeated w_i times (exact)."""
    rng = np.random.default_rng(11)
    w = rng.integers(0, 4, len(cbpp))
    lhs = "incidence" if family == "poisson" else "cbind(incidence, size - incidence)"
    formula = f"{lhs} ~ factor(period) + (1 | herd)"
    weighted = _fit(build_design(cbpp, formula, family=family, weights=w))
    repeated = _fit(build_design(cbpp.loc[np.repeat(np.arange(len(cbpp)), w)], formula,
                                 family=family))
    assert abs(weighted.loglik - repeated.loglik) < 1e-6
    np.testing.assert_allclose(weighted.params, repeated.params, atol=1e-5)


def test_per_row_inputs_follow_their_rows(insurance):
    """Counts, offsets and weights given in shuffled row order give the sorted rows' fit."""
    rng = np.random.default_rng(5)
    w = rng.integers(1, 3, len(insurance)).astype(float)
    data = insurance.assign(w=w)
    formula = "Claims ~ Group + Age + (1 | District)"
    sorted_fit = _fit(build_design(data, formula, offset=np.log(data["Holders"].to_numpy()),
                                   weights=data["w"].to_numpy()))
    perm = rng.permutation(len(data))
    shuffled = data.iloc[perm].reset_index(drop=True)
    for off, wt in ((np.log(shuffled["Holders"].to_numpy()), shuffled["w"].to_numpy()),
                    ("log(Holders)", "w")):
        res = _fit(build_design(shuffled, formula, offset=off, weights=wt))
        assert abs(res.loglik - sorted_fit.loglik) < 1e-7
        np.testing.assert_allclose(res.params, sorted_fit.params, atol=1e-5)
    # a Series keeps its rows by index, whatever the data frame's order
    series = pd.Series(np.log(data["Holders"].to_numpy()), index=data.index)
    res = _fit(build_design(data.iloc[perm], formula, offset=series, weights=data["w"]))
    assert abs(res.loglik - sorted_fit.loglik) < 1e-7


def test_binomial_trials_follow_their_rows(cbpp):
    formula = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"
    base = _fit(build_design(cbpp, formula, family="binomial"))
    perm = np.random.default_rng(2).permutation(len(cbpp))
    res = _fit(build_design(cbpp.iloc[perm], formula, family="binomial"))
    assert abs(res.loglik - base.loglik) < 1e-7
    np.testing.assert_allclose(res.params, base.params, atol=1e-5)
    # fitted rows come back in the data's own order
    fitted = res.predict(type="response")
    np.testing.assert_allclose(fitted, base.predict(type="response")[perm], atol=1e-5)


def _weights_data():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"g": np.repeat(list("abcd"), 5), "x": rng.normal(size=20)})
    df["y"] = rng.poisson(2.0, size=20)
    return df


def test_negative_weights_refused():
    df = _weights_data()
    w = np.ones(20)
    w[3] = -1.0
    with pytest.raises(SpecError, match=r"weights are negative in rows \[3\]"):
        build_design(df, "y ~ x + (1 | g)", weights=w)


def test_fractional_weights_warn_and_scale_the_loglik():
    # w = 0.5 everywhere: the weighted log-likelihood is half the unweighted one (exactly,
    # at the same parameters), and the user is told it is a pseudo-likelihood
    df = _weights_data()
    with pytest.warns(gllmm.errors.GllmmWarning, match="not whole numbers"):
        half = build_design(df, "y ~ x", weights=np.full(20, 0.5))
    full = build_design(df, "y ~ x")
    b = np.array([0.5, 0.1])
    obj_h, obj_f = gllmm.make_objective(half), gllmm.make_objective(full)
    assert abs(obj_h(b) - 0.5 * obj_f(b)) < 1e-10
