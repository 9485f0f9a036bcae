"""Table-driven cases for the lme4-style random-term parser and the design layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gllmm.errors import SpecError
from gllmm.spec import RandomTerm, build_design, parse_formula


@pytest.mark.parametrize("formula,response,fixed,random", [
    ("y ~ x", "y", "x", ()),
    ("y ~ x + (1 | g)", "y", "x", (RandomTerm("1", "g"),)),
    ("y ~ (1 | cell)", "y", "1", (RandomTerm("1", "cell"),)),
    ("y ~ x + (0 + xs | center)", "y", "x", (RandomTerm("0 + xs", "center"),)),
    ("y ~ x + (1 + x | center)", "y", "x", (RandomTerm("1 + x", "center"),)),
    ("y ~ x + (1 + x || center)", "y", "x", (RandomTerm("1 + x", "center", True),)),
    ("y ~ C(a) + (1 | a) + (1 | a:b)", "y", "C(a)",
     (RandomTerm("1", "a"), RandomTerm("1", "a:b"))),
    ("cbind(s, f) ~ I(a * b) + (1 | g)", "cbind(s, f)", "I(a * b)", (RandomTerm("1", "g"),)),
])
def test_parse(formula, response, fixed, random):
    p = parse_formula(formula)
    assert p.response == response
    assert p.fixed == fixed
    assert p.random == random


@pytest.mark.parametrize("bad", ["y ~ x + (1 | g", "y ~ x + ( | g)", "y ~ x + (1 | )"])
def test_parse_errors(bad):
    with pytest.raises(SpecError):
        parse_formula(bad)


def _data():
    rng = np.random.default_rng(3)
    a = np.repeat(["a1", "a2", "a3"], 4)
    b = np.tile(["b1", "b2"], 6)
    c = np.tile(["c1", "c2", "c3"], 4)
    return pd.DataFrame({"a": a, "b": b, "c": c, "x": rng.normal(size=12),
                         "y": rng.poisson(3, size=12)})


def test_single_grouping_layout():
    d = build_design(_data(), "y ~ x + (1 + x | a)")
    assert d.n_clusters == 3 and d.n_random == 2
    assert d.covariance.names == ("lambda(a)[0,0]", "lambda(a)[1,0]", "lambda(a)[1,1]")
    assert list(d.cluster_labels) == ["a1", "a2", "a3"]


def test_nested_layout():
    d = build_design(_data(), "y ~ x + (1 | a) + (1 | a:b)")
    # one cluster per a, holding u_a and the two u_ab of that a
    assert d.n_clusters == 3 and d.n_random == 3
    assert d.covariance.names == ("sd(a)", "sd(a:b)")
    np.testing.assert_array_equal(d.covariance.templates[1], np.diag([0.0, 1.0, 1.0]))


def test_crossed_layout():
    d = build_design(_data(), "y ~ x + (1 | a) + (1 | c)")
    assert d.n_clusters == 1 and d.n_random == 6


def test_nested_agq_equals_brute_force_quadrature():
    """AGQ over (u_a, u_ab1, u_ab2) equals a fine non-adaptive product rule (1e-6)."""
    from gllmm.integrate import MarginalLikelihood, product_rule

    df = _data()
    d = build_design(df, "y ~ x + (1 | a) + (1 | a:b)")
    params = np.array([0.9, 0.2, 0.5, 0.3])
    val = MarginalLikelihood(d, 12).value_and_gradient(params, gradient=False)[0]
    nodes, w = product_rule(40, 3)
    from scipy.special import gammaln, logsumexp

    lam = d.covariance.factor(params[2:])
    total = 0.0
    for c in range(d.n_clusters):
        rows = d.cluster == c
        eta = (d.X[rows, 0] @ params[:2])[:, None] + d.Z[rows, 0] @ lam @ nodes.T
        y = d.family.y[rows]
        ll = (y * eta - np.exp(eta) - gammaln(y + 1)).sum(axis=0)
        total += logsumexp(ll, b=w)
    assert abs(val - total) < 1e-6
