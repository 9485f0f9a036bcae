"""Invalid table input raises TableError naming the problem and the offending rows or cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gllmm.errors import TableError
from gllmm.tables import from_array, from_long, from_wide


def _frame(counts, a=("x", "x", "y", "y"), b=(1, 2, 1, 2)):
    return pd.DataFrame({"a": list(a), "b": list(b), "count": list(counts)})


@pytest.mark.parametrize(
    ("df", "pattern"),
    [
        (_frame([1, -2, 3, 4]), r"negative counts in 1 row\(s\): row 1 \(a=x, b=2\): -2"),
        (_frame([1, np.nan, 3, 4]), r"NaN counts in 1 row\(s\): row 1 \(a=x, b=2\)"),
        (_frame([1, 2, np.inf, 4]), r"infinite counts in 1 row\(s\): row 2 \(a=y, b=1\)"),
        (_frame([1, 2.5, 3, 4.25]), r"non-integer counts in 2 row\(s\).*2\.5.*4\.25.*"
                                    r"allow_noninteger"),
        (_frame(["1", "two", 3, 4]), r"non-numeric counts in 1 row\(s\): row 1 .*'two'"),
        (_frame([1, 2, 3, 4], a=("x", "x", "x", "y"), b=(1, 2, 1, 2)),
         r"duplicated cells \(1\): \(a=x, b=1\) in rows 0, 2"),
        (_frame([0, 0, 0, 0]), "all-zero table"),
        (_frame([1, 2, 3, 4], a=("x", None, "y", "y")), r"missing values in factor 'a': row 1"),
        (_frame([1, 2, 3, 4]).drop(columns="b"), r"missing columns \['b'\]"),
        (_frame([1, 2, 3, 4]).iloc[:0], "empty table"),
    ],
    ids=["negative", "nan", "inf", "noninteger", "nonnumeric", "duplicate", "all-zero",
         "nan-factor", "missing-column", "empty"],
)
def test_invalid_long_input(df, pattern):
    with pytest.raises(TableError, match=pattern):
        from_long(df, ["a", "b"])


def test_noninteger_allowed_as_weights():
    t = from_long(_frame([1, 2.5, 3, 4.25]), ["a", "b"], allow_noninteger=True)
    np.testing.assert_array_equal(t.counts, [1, 2.5, 3, 4.25])
    # copies keep the flag
    assert t.with_counts([0.5, 0.5, 0, 0]).allow_noninteger


def test_value_outside_given_levels():
    with pytest.raises(TableError, match=r"values of 'b' not among its levels \[1\]: row 1"):
        from_long(_frame([1, 2, 3, 4]), ["a", "b"], levels={"b": [1]})
    with pytest.raises(TableError, match=r"levels given for \['z'\]"):
        from_long(_frame([1, 2, 3, 4]), ["a", "b"], levels={"z": [1]})
    with pytest.raises(TableError, match=r"duplicated: \[1\]"):
        from_long(_frame([1, 2, 3, 4]), ["a", "b"], levels={"b": [1, 2, 1]})


def test_structural_zeros_from_column_rows_and_cells():
    df = _frame([0, 2, 3, 4])
    df["sz"] = [True, False, False, False]
    by_col = from_long(df, ["a", "b"], structural_zeros="sz")
    by_rows = from_long(df, ["a", "b"], structural_zeros=df["sz"].to_numpy())
    by_cells = from_long(df, ["a", "b"], structural_zeros=pd.DataFrame({"a": ["x"], "b": [1]}))
    for t in (by_col, by_rows, by_cells):
        np.testing.assert_array_equal(t.structural_zero, [True, False, False, False])


def test_structural_zero_with_positive_count_names_cell():
    df = _frame([0, 2, 3, 4])
    df["sz"] = [False, True, False, False]
    with pytest.raises(TableError, match=r"structural zero cells with positive counts: "
                                         r"\(a=x, b=2\): 2\.0"):
        from_long(df, ["a", "b"], structural_zeros="sz")


def test_array_validation_names_cells():
    arr = np.array([[1.0, -1.0], [np.nan, 2.0]])
    with pytest.raises(TableError, match=r"NaN counts in 1 cell\(s\): \(a=2, b=1\)"):
        from_array(arr, ["a", "b"])
    with pytest.raises(TableError, match=r"negative counts in 1 cell\(s\): \(a=1, b=2\): -1\.0"):
        from_array(np.array([[1.0, -1.0], [0.0, 2.0]]), ["a", "b"])
    with pytest.raises(TableError, match="empty table"):
        from_array(np.zeros((0, 3)), ["a", "b"])
    with pytest.raises(TableError, match="all-zero table: all 6 counts"):
        from_array(np.zeros((2, 3)), ["a", "b"])


def test_wide_validation():
    wide = pd.DataFrame([[1, -3], [2, 2]], index=["p", "q"], columns=["u", "v"])
    with pytest.raises(TableError, match=r"negative counts .*\(row=p, column=v\): -3"):
        from_wide(wide)
    dup = pd.DataFrame([[1, 3], [2, 2]], index=["p", "p"], columns=["u", "v"])
    with pytest.raises(TableError, match=r"duplicated cells \(2\): \(row=p, column=u\)"):
        from_wide(dup)
    with pytest.raises(TableError, match="share names"):
        from_wide(wide, row="f", column="f")


def test_many_offenders_are_counted_not_all_listed():
    df = pd.DataFrame({"a": range(20), "count": [-1] * 20})
    with pytest.raises(TableError, match=r"negative counts in 20 row\(s\).*and 15 more"):
        from_long(df, ["a"])
