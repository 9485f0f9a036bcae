"""Bad arguments to a fit's methods, the tests and the refit-based inference raise SpecError
naming the problem (were NaN intervals, KeyError, IndexError, AttributeError, LinAlgError or
numpy's ValueError)."""

from __future__ import annotations

import numpy as np
import pytest

import gllmm
from gllmm.errors import SpecError

LEVEL_CASES = [1.5, 0, -0.1, 95, float("nan"), "0.95", True]


@pytest.mark.parametrize("level", LEVEL_CASES, ids=repr)
@pytest.mark.parametrize("call", [
    lambda f, lv: f.coefficients(lv),
    lambda f, lv: f.conf_int(lv),
    lambda f, lv: gllmm.profile_interval(f, f.names[0], lv),
], ids=["coefficients", "conf_int", "profile_interval"])
def test_level_outside_0_1(clinical_local, call, level):
    with pytest.raises(SpecError, match="between 0 and 1"):
        call(clinical_local, level)


CASES = [
    ("conf_int method number", lambda f: f.conf_int(method=3), "unknown interval method 3"),
    ("conf_int method unknown", lambda f: f.conf_int(method="boot"), "'wald', 'profile'"),
    ("conf_int parameter name", lambda f: f.conf_int(parameters="nosuch"), "'nosuch'"),
    ("random_effects kind", lambda f: f.random_effects("bogus"), "unknown kind 'bogus'"),
    ("ranef kind", lambda f: f.ranef("bogus"), "unknown kind 'bogus'"),
    ("cluster_coefficients fixed", lambda f: f.cluster_coefficients("nosuch"),
     "unknown fixed effect 'nosuch'.*beta"),
    ("cluster_coefficients position", lambda f: f.cluster_coefficients("beta", 5),
     "component 5"),
    ("cluster_coefficients component", lambda f: f.cluster_coefficients("beta", "zz"),
     "component 'zz'"),
    ("lr_test number", lambda f: gllmm.lr_test(f, 3), "argument 2 is a int, not a fit"),
    ("lr_test None", lambda f: f.lr_test(None), "NoneType, not a fit"),
    ("anova number", lambda f: gllmm.anova(f, 3), "not a fit"),
    ("anova list", lambda f: gllmm.anova([f, f], f), "argument 1 is a list"),
    ("wald_test empty", lambda f: f.wald_test([]), "L is empty"),
    ("wald_test text", lambda f: f.wald_test([["a", 1.0]]), "L .*must hold numbers"),
    ("wald_test NaN", lambda f: f.wald_test([np.nan]), "NaN"),
    ("wald_test rhs text", lambda f: f.wald_test([1.0], rhs="a"), "rhs must hold numbers"),
    ("wald_test rhs NaN", lambda f: f.wald_test([1.0], rhs=np.nan), "finite"),
    ("profile_interval not a fit", lambda f: gllmm.profile_interval(3, "beta"),
     "needs a FitResult"),
    ("check_nodes not a fit", lambda f: gllmm.check_nodes("fit"), "needs a FitResult"),
    ("fit_pql not a design", lambda f: gllmm.fit_pql(f), "fit_pql needs a Design.*FitResult"),
    ("fit_mcem not a design", lambda f: gllmm.fit_mcem(3), "fit_mcem needs a Design.*int"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_arguments(clinical_local, call, match):
    with pytest.raises(SpecError, match=match):
        call(clinical_local)


def test_cluster_coefficients_by_position_and_name(clinical_local):
    re = clinical_local.random_effects()
    by_pos = clinical_local.cluster_coefficients("beta", 0)
    by_name = clinical_local.cluster_coefficients("beta", re.columns[0])
    expected = clinical_local.beta["beta"] + re.iloc[:, 0].to_numpy()
    np.testing.assert_allclose(by_pos.to_numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by_name.to_numpy(), expected, rtol=0, atol=1e-12)


LXL = "count ~ C(statistics) + C(economics) + statistics:economics"


def test_lr_test_refuses_fits_of_different_counts(mba):
    """Two fits of tables of the same size gave a likelihood-ratio statistic between unrelated
    data sets (the observation counts agree); now refused. Reordered rows are the same data."""
    other = mba.assign(count=mba["count"] + (mba.index == 0))  # one count changed
    null = gllmm.fit(gllmm.build_design(mba, "count ~ C(statistics) + C(economics)"))
    full = gllmm.fit(gllmm.build_design(other, LXL))
    with pytest.raises(SpecError, match="different data"):
        gllmm.lr_test(full, null)
    with pytest.raises(SpecError, match="different data"):
        gllmm.anova(null, full)
    same = gllmm.fit(gllmm.build_design(mba.iloc[::-1], LXL))
    test = gllmm.lr_test(same, null)
    # the LR statistic of nested GLMs is the difference of their deviances G^2
    g2 = null.goodness_of_fit()["G2"] - same.goodness_of_fit()["G2"]
    np.testing.assert_allclose(test.statistic, g2, rtol=1e-6)
