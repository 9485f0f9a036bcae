"""Constructors, accessors and copies of gllmm.tables.Table."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm.errors import TableError
from gllmm.tables import (
    READERS,
    Table,
    check_margins,
    from_array,
    from_cells,
    from_long,
    from_wide,
    read_csv,
    read_table,
)

DATA = Path(__file__).resolve().parents[2] / "src" / "gllmm" / "data"


# ---------------------------------------------------------------- level order (table-driven)
@pytest.mark.parametrize(
    ("column", "given", "expected"),
    [
        (["b", "a", "c", "a"], None, ["b", "a", "c"]),  # first seen
        ([3, 1, 2, 3], None, [1, 2, 3]),  # sorted numerics
        ([2.5, -1.0, 2.5, 0.0], None, [-1.0, 0.0, 2.5]),
        ([True, False, True, False], None, [False, True]),
        (pd.Categorical(["lo", "hi", "mid", "lo"], categories=["lo", "mid", "hi"]), None,
         ["lo", "mid", "hi"]),  # categories kept even when first seen differs
        (["b", "a", "c", "a"], ["c", "b", "a", "d"], ["c", "b", "a", "d"]),  # as given (+unseen)
    ],
)
def test_level_order(column, given, expected):
    df = pd.DataFrame({"f": column, "g": ["x", "x", "y", "y"], "count": [1, 2, 3, 4]})
    df = df.drop_duplicates(["f", "g"])
    t = from_long(df, ["f", "g"], levels={"f": given} if given is not None else None)
    assert list(t.levels("f")) == expected
    data = t.data
    assert isinstance(data["f"].dtype, pd.CategoricalDtype) and data["f"].cat.ordered
    assert list(data["f"].cat.categories) == expected


def test_from_long_sorts_to_row_major_and_fills_missing_cells():
    df = pd.DataFrame({"a": [2, 1, 1], "b": ["y", "y", "x"], "count": [5, 3, 1]})
    t = from_long(df, ["a", "b"])
    # levels a: [1, 2]; b: first seen [y, x]; missing (2, x) is a sampling zero
    assert t.shape == (2, 2)
    assert list(t.levels("b")) == ["y", "x"]
    np.testing.assert_array_equal(t.counts, [3.0, 1.0, 5.0, 0.0])
    np.testing.assert_array_equal(t.to_array(), [[3.0, 1.0], [5.0, 0.0]])
    assert t.counts.dtype == np.float64
    assert t.n == 9.0


def test_from_long_default_factors_are_all_but_count():
    df = pd.DataFrame({"x": [1, 2], "y": [1, 1], "n": [4, 6]})
    t = from_long(df, count="n")
    assert t.factors == ("x", "y") and t.count_name == "n"
    assert list(t.data.columns) == ["x", "y", "n"]


def test_from_wide_keeps_index_and_column_order():
    wide = pd.DataFrame([[1, 2, 3], [4, 5, 6]], index=pd.Index(["lo", "hi"], name="r"),
                        columns=pd.Index([30, 10, 20], name="c"))
    t = from_wide(wide)
    assert t.factors == ("r", "c")
    assert list(t.levels("r")) == ["lo", "hi"] and list(t.levels("c")) == [30, 10, 20]
    np.testing.assert_array_equal(t.to_array(), wide.to_numpy())
    back = t.to_wide()
    np.testing.assert_array_equal(back.to_numpy(), wide.to_numpy())
    assert list(back.columns) == [30, 10, 20]


def test_from_wide_default_names_and_multiindex_columns():
    cols = pd.MultiIndex.from_product([["d", "p"], [1, 2]], names=["trt", "resp"])
    wide = pd.DataFrame(np.arange(8).reshape(2, 4) + 1, index=["c1", "c2"], columns=cols)
    t = from_wide(wide)
    assert t.factors == ("row", "trt", "resp")
    assert t.shape == (2, 2, 2)
    np.testing.assert_array_equal(t.to_array().reshape(2, 4), wide.to_numpy())


def test_from_array_levels_and_defaults():
    arr = np.arange(24).reshape(2, 3, 4)
    t = from_array(arr, ["a", "b", "c"], levels={"b": ["x", "y", "z"]})
    assert list(t.levels("a")) == [1, 2] and list(t.levels("b")) == ["x", "y", "z"]
    assert list(t.levels("c")) == [1, 2, 3, 4]
    np.testing.assert_array_equal(t.to_array(), arr)
    assert t.data.loc[5, "c"] == 2 and t.data.loc[5, "b"] == "y"  # row-major: (0, 1, 1)
    with pytest.raises(TableError, match="3 dimensions .* but 2 names"):
        from_array(arr, ["a", "b"])
    with pytest.raises(TableError, match="'b' has 2 levels but axis 1 has length 3"):
        from_array(arr, ["a", "b", "c"], levels=[[1, 2], [1, 2], [1, 2, 3, 4]])


def test_from_cells_large_sparse_is_fast_and_equals_dense():
    rng = np.random.default_rng(0)
    n = 1000
    flat = rng.choice(n * n, 20_000, replace=False)
    counts = rng.integers(1, 9, flat.size)
    df = pd.DataFrame({"a": flat // n, "b": flat % n, "count": counts})
    start = time.perf_counter()
    t = from_cells(df, ["a", "b"], "count", {"a": range(n), "b": range(n)})
    elapsed = time.perf_counter() - start
    dense = np.zeros(n * n)
    dense[flat] = counts
    assert t.shape == (n, n)
    np.testing.assert_array_equal(t.counts, dense)
    assert elapsed < 5.0, f"from_cells took {elapsed:.2f} s for 10^6 cells"


def test_from_cells_requires_levels_of_every_factor():
    df = pd.DataFrame({"a": [1], "b": [2], "count": [3]})
    with pytest.raises(TableError, match=r"missing for \['b'\]"):
        from_cells(df, ["a", "b"], "count", {"a": [1, 2]})


# ---------------------------------------------------------------- readers
def test_read_table_packaged_csv():
    t = read_table(DATA / "clinical_trial.csv", strata=["center", "treatment"])
    raw = pd.read_csv(DATA / "clinical_trial.csv")
    assert t.factors == ("center", "treatment", "response")
    assert t.shape == (8, 2, 3)
    assert list(t.levels("response")) == ["much_better", "better", "unchanged_or_worse"]
    assert t.n == raw["count"].sum()
    assert t.strata == ("center", "treatment")
    np.testing.assert_array_equal(np.bincount(t.stratum_codes()), np.full(16, 3))
    m = read_csv(DATA / "mba_statistics_economics.csv")
    assert list(m.levels("statistics")) == sorted(raw_levels := m.levels("statistics").tolist())
    assert raw_levels[0] == 2


def test_read_table_parquet_without_engine_gives_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    with pytest.raises(TableError, match="needs pyarrow or fastparquet"):
        read_table(path)


def test_read_table_unknown_suffix_lists_known(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(TableError, match=r"unknown table file type '\.xlsx'.*\.parquet"):
        read_table(path)
    assert {".csv", ".parquet"} <= set(READERS)


def test_read_table_tsv_round_trip(tmp_path):
    t = from_array(np.array([[1, 2], [3, 0]]), ["a", "b"])
    path = tmp_path / "t.tsv"
    t.data.to_csv(path, sep="\t", index=False)
    assert read_table(path).equals(t)


# ---------------------------------------------------------------- scores, margins, copies
def test_scores_default_update_and_columns():
    t = from_array(np.arange(1, 7).reshape(2, 3), ["a", "b"], levels={"b": [10, 20, 40]})
    np.testing.assert_array_equal(t.scores["b"], [1.0, 2.0, 3.0])
    u = t.with_scores(b="levels", a=[0.0, 5.0])
    np.testing.assert_array_equal(u.scores["b"], [10.0, 20.0, 40.0])
    np.testing.assert_array_equal(t.scores["b"], [1.0, 2.0, 3.0])  # original unchanged
    np.testing.assert_array_equal(u.score_column("b"), [10, 20, 40, 10, 20, 40])
    np.testing.assert_array_equal(u.score_column("a"), [0, 0, 0, 5, 5, 5])
    with pytest.raises(TableError, match=r"scores for 'b' have shape \(2,\); expected \(3,\)"):
        t.with_scores(b=[1, 2])
    with pytest.raises(TableError, match="not all finite"):
        t.with_scores(b=[1, np.inf, 3])
    with pytest.raises(TableError, match="not a factor"):
        t.with_scores(c=[1, 2])
    s = from_array(np.ones((2, 2)), ["a", "b"], levels={"a": ["x", "y"]})
    with pytest.raises(TableError, match="needs numeric levels"):
        s.with_scores(a="levels")


def test_margin_sums_in_requested_order_and_carries_structure():
    arr = np.arange(24, dtype=float).reshape(2, 3, 4)
    mask = np.zeros_like(arr, dtype=bool)
    mask[:, 0, :] = True
    arr[mask] = 0
    t = from_array(arr, ["a", "b", "c"], structural_zeros=mask, strata=["a"])
    m = t.margin(["c", "a"])
    assert m.factors == ("c", "a") and m.shape == (4, 2)
    np.testing.assert_array_equal(m.to_array(), arr.sum(axis=1).T)
    assert m.strata == ("a",)
    mb = t.margin("b")
    np.testing.assert_array_equal(mb.structural_zero, [True, False, False])
    assert mb.n == t.n


def test_check_margins_names_empty_levels():
    arr = np.array([[0, 0, 0], [1, 0, 2]])
    t = from_array(arr, ["a", "b"], levels={"a": ["x", "y"], "b": ["p", "q", "r"]})
    with pytest.raises(TableError, match=r"margin a has 1 empty.*\(a=x\).*margin b .*\(b=q\)"):
        check_margins(t)
    check_margins(t.margin("a").with_counts([1, 3]))  # no error when all levels observed
    with pytest.raises(TableError, match=r"margin axb has 4 empty"):
        check_margins(t, [("a", "b")])


def test_table_is_immutable_and_copies_are_independent():
    t = from_array(np.array([[1, 2], [3, 4]]), ["a", "b"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.counts = np.zeros(4)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        t.counts[0] = 99
    arr = t.to_array()
    arr[0, 0] = 99
    d = t.data
    d.loc[0, "count"] = 99
    assert t.counts[0] == 1.0
    u = t.with_counts([4, 3, 2, 1])
    assert u.counts[0] == 4.0 and t.counts[0] == 1.0
    assert not u.equals(t) and t.equals(from_array(np.array([[1, 2], [3, 4]]), ["a", "b"]))


def test_to_array_takes_per_cell_values_and_checks_length():
    t = from_array(np.ones((2, 3)), ["a", "b"])
    fitted = np.arange(6.0)
    np.testing.assert_array_equal(t.to_array(fitted), fitted.reshape(2, 3))
    stacked = np.arange(12.0).reshape(6, 2)
    assert t.to_array(stacked).shape == (2, 3, 2)
    with pytest.raises(TableError, match="one row per cell"):
        t.to_array(np.ones(5))


def test_codes_and_axis_lookup():
    t = from_array(np.ones((2, 3, 2)), ["a", "b", "c"])
    np.testing.assert_array_equal(t.codes("b"), np.tile(np.repeat([0, 1, 2], 2), 2))
    assert t.axis(-1) == 2 and t.axis("b") == 1
    with pytest.raises(TableError, match="unknown factor 'z'"):
        t.levels("z")
    assert repr(t) == "Table(a[2] x b[3] x c[2], n=12)"


def test_strata_must_be_factors():
    with pytest.raises(TableError, match=r"strata \['z'\] are not factors"):
        from_array(np.ones((2, 2)), ["a", "b"], strata=["z"])
    t = from_array(np.ones((2, 2)), ["a", "b"]).with_strata("a")
    np.testing.assert_array_equal(t.stratum_codes(), [0, 0, 1, 1])


def test_direct_construction_validates_shape():
    with pytest.raises(TableError, match=r"5 counts for a grid of shape \(2, 3\)"):
        Table(("a", "b"), (pd.Index([1, 2]), pd.Index([1, 2, 3])), np.ones(5))
