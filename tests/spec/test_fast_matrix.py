"""The formulaic-free model matrices equal formulaic's (values, column order and names)."""

from __future__ import annotations

import formulaic
import numpy as np
import pandas as pd
import pytest

from gllmm.spec._fast_matrix import fast_model_matrix


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(4)
    n = 60
    return pd.DataFrame({
        "a": rng.choice(["lo", "mid", "hi"], n),
        "b": pd.Categorical(rng.choice(["z", "y"], n), categories=["z", "y"]),
        "c": rng.integers(1, 5, n),
        "x": rng.normal(size=n),
        "w": rng.integers(0, 3, n).astype(float),
    })


@pytest.mark.parametrize("expr", [
    "1", "x", "0 + x", "x + w", "C(a)", "C(a) + C(b) + x", "C(c) + x",
    "C(a) * C(b)", "C(a) * C(b) + C(a) * C(c) + x", "C(a) * C(b) * C(c)",
    "C(a) + C(b) + C(a):C(b)", "C(b) * C(a) + w",
])
def test_equals_formulaic(frame, expr):
    fast = fast_model_matrix(expr, frame)
    assert fast is not None
    ref = formulaic.model_matrix(expr, frame)
    assert fast[1] == tuple(str(c) for c in ref.columns)
    np.testing.assert_array_equal(fast[0], np.asarray(ref, dtype=float))


@pytest.mark.parametrize("expr", [
    "C(a):C(b)",          # margins missing: formulaic's full-rank coding
    "0 + C(a)",           # no intercept: full dummy coding
    "x:w",                # numeric interaction
    "a",                  # bare string column
    "C(x)",               # float factor levels
    "I(x * w)", "np.log(w + 1)", "unknown",
])
def test_other_shapes_left_to_formulaic(frame, expr):
    assert fast_model_matrix(expr, frame) is None
