"""``FitResult.predict`` on the fitted rows reproduces the fit's own linear predictor at the
posterior modes (``eta_mode``, computed by the engine from Z), in the data's row order, for
every random-effects layout: one grouping, nested, crossed, and correlated vector effects
(to 1e-10: the same numbers summed in another order). New groups are refused by default
(lme4's ``allow.new.levels = FALSE``), naming them; with ``allow_new_levels=True`` they get
u = 0 exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm import SpecError

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"


@pytest.fixture(scope="module")
def crossed():
    d = pd.read_csv(R_DIR / "crossed.csv")
    return d.iloc[:240].reset_index(drop=True)


@pytest.mark.parametrize("formula", [
    "count ~ x + (1 | a)",
    "count ~ x + (1 | a/b)",
    "count ~ x + (1 | a) + (1 | b)",
    "count ~ x + (1 + x | a)",
])
def test_predict_on_fitted_rows_equals_eta_mode(crossed, formula):
    perm = np.random.default_rng(4).permutation(len(crossed))
    data = crossed.iloc[perm]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit(formula, data=data, method="laplace")
    order = res.design.notes["order"]
    eta_rows = np.empty(len(data))
    eta_rows[order] = np.asarray(res.linear_predictor("mode")).ravel()
    np.testing.assert_allclose(res.predict(), eta_rows, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.predict(data), eta_rows, rtol=0, atol=1e-10)
    fixed = np.asarray(res.linear_predictor("fixed")).ravel()
    eta_fixed = np.empty(len(data))
    eta_fixed[order] = fixed
    np.testing.assert_allclose(res.predict(data, re_form="NA"), eta_fixed, atol=1e-10)
    # a group the fit has not seen: its effects are 0, the fixed part alone
    new = data.iloc[:3].assign(a=-1, b=-1)
    np.testing.assert_allclose(res.predict(new, allow_new_levels=True),
                               res.predict(new, re_form="NA"), atol=0)
    np.testing.assert_allclose(res.predict(new, type="response", allow_new_levels=True),
                               np.exp(res.predict(new, allow_new_levels=True)), rtol=1e-15)
    # by default (lme4's allow.new.levels = FALSE) an unseen level is an error naming it
    with pytest.raises(SpecError, match=r"'-1'.*allow_new_levels=True"):
        res.predict(new)


def test_predict_names_the_unseen_levels_only(crossed):
    """One misspelt level among known ones: the error names it (not the known levels), the
    rest of the rows predict as before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit("count ~ x + (1 | a)", data=crossed, method="laplace")
    known = crossed.iloc[:4]
    typo = known.assign(a=known.a.astype(str).where(known.index != 2, "3x"))
    with pytest.raises(SpecError) as info:
        res.predict(typo)
    message = str(info.value)
    assert "'3x'" in message and "of 'a'" in message and "--allow-new-levels" in message
    assert f"'{known.a.iloc[0]}'" not in message
    eta = res.predict(typo, allow_new_levels=True)
    np.testing.assert_allclose(eta[[0, 1, 3]], res.predict(known)[[0, 1, 3]], atol=1e-12)
    np.testing.assert_allclose(eta[2], res.predict(known, re_form="NA")[2], atol=1e-12)
    many = crossed.iloc[:7].assign(a=[f"z{i}" for i in range(7)])
    with pytest.raises(SpecError, match=r"'z4'.* and 2 more of 'a'"):
        res.predict(many)


def test_predict_refusals(crossed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit("count ~ C(b) + (1 | a)", data=crossed.assign(b=crossed.b % 3),
                        method="laplace")
    with pytest.raises(SpecError, match="type"):
        res.predict(type="probability")
    with pytest.raises(SpecError, match="re_form"):
        res.predict(re_form="~(1 | a)")
    with pytest.raises(SpecError, match="levels the fitted data lack"):
        res.predict(crossed.iloc[:2].assign(b=7))
