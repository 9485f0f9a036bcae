"""Property-based tests (hypothesis): random formulas and random table input raise only
gllmm's own error classes (issue 20). Each always-run test draws a few hundred examples; the
``slow`` variants draw 10,000 (``make test-slow``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gllmm import tables
from gllmm.errors import GllmmError
from gllmm.spec import build_design
from gllmm.spec._formula import parse_formula

DATA = pd.DataFrame({"row": [1, 1, 2, 2], "col": [1, 2, 1, 2], "count": [3, 1, 2, 5],
                     "x": [0.5, -0.5, 0.5, -0.5], "g": ["a", "a", "b", "b"]})
TOKENS = ["count", "row", "col", "x", "g", "cell", "C(", "I(", "np.log(", "factor(", ")", "(",
          "~", "+", "-", "*", ":", "/", "^", "|", "||", "1", "0", " ", ",", "**", "2", "nope",
          "cbind(", "{", "}", "[", "]", "'", '"', "=", "\\", "\x00", "é"]
FORMULAS = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=14).map("".join),
    st.text(alphabet="~+*:|()10 rowcglx.C_-^/", max_size=30),
)
def quiet(n: int) -> settings:
    """Reproducible (derandomized), no per-example deadline, ``n`` examples."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _only_gllmm_errors(call) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except GllmmError:
            pass


@quiet(1000)
@given(FORMULAS)
def test_parser_raises_only_gllmm_errors(text):
    _only_gllmm_errors(lambda: parse_formula(text))


@pytest.mark.slow
@quiet(10_000)
@given(FORMULAS)
def test_parser_raises_only_gllmm_errors_10000(text):
    _only_gllmm_errors(lambda: parse_formula(text))


@quiet(200)
@given(FORMULAS)
def test_formula_to_design_raises_only_gllmm_errors(text):
    """The parser and the model-matrix layer (formulaic) together, on a 2 x 2 table."""
    _only_gllmm_errors(lambda: build_design(DATA, text))


@pytest.mark.slow
@quiet(10_000)
@given(FORMULAS)
def test_formula_to_design_raises_only_gllmm_errors_10000(text):
    _only_gllmm_errors(lambda: build_design(DATA, text))


COUNTS = st.one_of(st.integers(-3, 50), st.floats(allow_nan=True, allow_infinity=True),
                   st.just(None), st.sampled_from(["3", "x", "", "1e400", "2.5"]),
                   st.complex_numbers(max_magnitude=10))
LEVELS = st.one_of(st.integers(0, 3), st.sampled_from(["a", "b", "", None, float("nan")]))


@st.composite
def long_frames(draw):
    n = draw(st.integers(0, 8))
    return pd.DataFrame({"a": draw(st.lists(LEVELS, min_size=n, max_size=n)),
                         "b": draw(st.lists(LEVELS, min_size=n, max_size=n)),
                         "count": pd.Series(draw(st.lists(COUNTS, min_size=n, max_size=n)),
                                            dtype=object)})


def _constructors(df: pd.DataFrame, arr: list) -> None:
    _only_gllmm_errors(lambda: tables.from_long(df, ["a", "b"], "count"))
    _only_gllmm_errors(lambda: tables.from_long(df, ["a", "b"], "count",
                                                allow_noninteger=True))
    _only_gllmm_errors(lambda: tables.from_array(arr, ["a", "b"]))
    _only_gllmm_errors(lambda: tables.from_wide(pd.DataFrame(arr) if len(arr) else
                                                pd.DataFrame()))


ARRAYS = st.lists(st.lists(COUNTS, min_size=0, max_size=3), max_size=3)


@quiet(200)
@given(long_frames(), ARRAYS)
def test_table_constructors_raise_only_gllmm_errors(df, arr):
    _constructors(df, arr)


@pytest.mark.slow
@quiet(10_000)
@given(long_frames(), ARRAYS)
def test_table_constructors_raise_only_gllmm_errors_10000(df, arr):
    _constructors(df, arr)


def test_a_valid_table_still_builds():
    """The properties above are not vacuous: valid input gives a table with its total."""
    t = tables.from_long(DATA, ["row", "col"], "count")
    assert math.isclose(float(np.sum(t.counts)), 11.0)
