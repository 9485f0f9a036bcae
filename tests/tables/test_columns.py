"""Column values and factorization without Series: the same codes and levels as pandas'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gllmm.errors import SpecError
from gllmm.spec import build_design
from gllmm.tables._columns import column_values, factorize

CASES = {
    "arrow str": pd.array(["b", "a", None, "b", "c", ""], dtype="string[pyarrow]"),
    "python str": pd.array(["b", "a", None, "b"], dtype="string[python]"),
    "int": np.array([3, 1, 3, 2]),
    "float": np.array([1.5, np.nan, 1.5]),
    "object": np.array(["u", "v", None, "u"], dtype=object),
    "categorical": pd.Categorical(["x", "y", "x", None], categories=["y", "x"]),
    "arrow chunks": pd.arrays.ArrowStringArray(pa.chunked_array(
        [pa.array(["x", "y"], pa.large_string()), pa.array(["z", "x", None], pa.large_string())])),
    # no nulls: the compiled hash of the Arrow buffers (tables._string_codes)
    "arrow str, no nulls": pd.array(["b", "a", "b", "c", "", "a", ""], dtype="string[pyarrow]"),
    "arrow non-ASCII": pd.array(["é", "e", "日本", "é", "e\u0301", "日本"],
                                dtype="string[pyarrow]"),
    "arrow large_string": pd.arrays.ArrowStringArray(
        pa.chunked_array([pa.array(["q", "r", "q"], pa.large_string())])),
    "arrow slice": pd.arrays.ArrowStringArray(
        pa.chunked_array([pa.array(["s", "t", "u", "t", "v", "u"]).slice(2, 3)])),
    "arrow all empty": pd.array(["", "", ""], dtype="string[pyarrow]"),
    "arrow empty": pd.array([], dtype="string[pyarrow]"),
    # 5000 levels of 20000 rows: hash collisions, probing and the table's growth
    "arrow many levels": pd.array(np.random.default_rng(5).integers(0, 5000, 20000)
                                  .astype(str), dtype="string[pyarrow]"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_factorize_equals_pandas(name):
    values = CASES[name]
    codes, levels = factorize(values)
    ref_codes, ref_levels = pd.factorize(values, sort=False)
    np.testing.assert_array_equal(codes, ref_codes)  # exact
    assert levels == ref_levels.tolist()


def test_column_values_are_a_read_only_view():
    d = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "x"]})
    values = column_values(d, "a")
    np.testing.assert_array_equal(values, [1, 2, 3])
    assert not values.flags.writeable
    assert column_values(d, "s").tolist() == ["x", "y", "x"]


def test_a_repeated_column_name_is_refused():
    d = pd.DataFrame([[1, 0.5, 2], [3, 0.1, 4]], columns=["y", "x", "g"])
    d.columns = ["y", "x", "x"]
    with pytest.raises(SpecError, match="'x' appears 2 times"):
        build_design(d, "y ~ x")
