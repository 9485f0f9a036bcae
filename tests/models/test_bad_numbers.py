"""Numbers and names given as the wrong type (text, lists, None) to the fitting entry points,
build_design and the smoothers raise SpecError naming the argument (were TypeError, ValueError
or AttributeError from float(), numpy or str methods; covariance='bogus' was ignored)."""

from __future__ import annotations

import numpy as np
import pytest

import gllmm
from gllmm import smooth
from gllmm.errors import FitError, SpecError

F = "count ~ C(statistics) + C(economics) + (1 | cell)"
TABLE = np.full((3, 3), 3.0)


@pytest.fixture(scope="module")
def data(mba):
    return mba.assign(cell=np.arange(len(mba)))


@pytest.fixture(scope="module")
def design(data):
    return gllmm.build_design(data, F)


CASES = [
    ("fit method None", lambda d, x: gllmm.fit(x, method=None), "method must be a string"),
    ("fit method number", lambda d, x: gllmm.fit(x, method=3), "method must be a string"),
    ("fit start text", lambda d, x: gllmm.fit(x, start="abc"), "start must hold numbers"),
    ("fit start NaN", lambda d, x: gllmm.fit(x, start=np.full(len(x.param_names), np.nan)),
     "start has NaN"),
    ("make_objective not a design", lambda d, x: gllmm.make_objective(3),
     "make_objective needs a Design"),
    ("build_design family number", lambda d, x: gllmm.build_design(d, F, family=3),
     "unknown family 3"),
    ("build_design covariance", lambda d, x: gllmm.build_design(d, F, covariance="bogus"),
     "unknown covariance 'bogus'"),
    ("build_design scores list", lambda d, x: gllmm.build_design(d, F, scores=[1, 2]),
     "scores must be a dict"),
    ("local_likelihood bandwidth list",
     lambda d, x: smooth.local_likelihood(np.ones((4, 4)), bandwidth=[1, 2]),
     "bandwidth must be a number or a criterion"),
    ("penalized_smoother lam list",
     lambda d, x: smooth.penalized_smoother(np.ones((4, 4)), lam=["a"]),
     "lam must be a number or a criterion"),
    ("loess_gam span list", lambda d, x: smooth.loess_gam(np.ones((5, 5)), span=[0.5]),
     "span must be a number"),
    ("fit_cellwise text scores",
     lambda d, x: smooth.fit_cellwise(TABLE, ["a", "b", "c"], base="linear_by_linear"),
     "row_scores must hold numbers"),
    ("fit_cellwise tol text", lambda d, x: smooth.fit_cellwise(TABLE, tol="x"),
     "tol must be a number"),
    ("fit_cellwise tol 0", lambda d, x: smooth.fit_cellwise(TABLE, tol=0), "tol must be positive"),
    ("fit_cellwise max_iter text", lambda d, x: smooth.fit_cellwise(TABLE, max_iter="x"),
     "max_iter must be an integer"),
    ("fit_cellwise chunk_size 0", lambda d, x: smooth.fit_cellwise(TABLE, chunk_size=0),
     "chunk_size must be at least 1"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_types(data, design, call, match):
    with pytest.raises(SpecError, match=match):
        call(data, design)


def test_make_objective_method_number(design):
    with pytest.raises(FitError, match="unknown method 3; valid methods: agq"):
        gllmm.make_objective(design, 3)
