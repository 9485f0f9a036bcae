"""Property tests: round trips between long, array and wide forms; sparse equals dense input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gllmm.errors import TableError
from gllmm.tables import from_array, from_cells, from_long, from_wide

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def count_arrays(draw, min_dims=1):
    shape = draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=3).map(tuple))
    arr = draw(arrays(np.int64, shape, elements=st.integers(0, 50)))
    if arr.sum() == 0:  # all-zero tables are invalid by design
        arr.flat[draw(st.integers(0, arr.size - 1))] = 1
    return arr.astype(float)


def _names(k):
    return [f"f{i}" for i in range(k)]


def _string_levels(arr, draw):
    # non-sorted string levels so that order must be kept, not re-derived
    return {f"f{k}": draw(st.permutations([f"L{j}" for j in range(n)]))
            for k, n in enumerate(arr.shape)}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_array_long_array_round_trip(data):
    arr = data.draw(count_arrays())
    levels = _string_levels(arr, data.draw)
    t = from_array(arr, _names(arr.ndim), levels=levels)
    np.testing.assert_array_equal(t.to_array(), arr)
    back = from_long(t.data, t.factors)
    assert back.equals(t)
    for name in t.factors:
        assert list(back.levels(name)) == list(levels[name])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_long_input_order_does_not_matter(data):
    arr = data.draw(count_arrays())
    t = from_array(arr, _names(arr.ndim), levels=_string_levels(arr, data.draw))
    perm = data.draw(st.permutations(range(t.n_cells)))
    shuffled = t.data.iloc[list(perm)]
    levels = {f: t.levels(f) for f in t.factors}
    assert from_long(shuffled, t.factors, levels=levels).equals(t)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_wide_round_trip(data):
    arr = data.draw(count_arrays(min_dims=2))
    t = from_array(arr, _names(arr.ndim), levels=_string_levels(arr, data.draw))
    n_rows = data.draw(st.integers(1, arr.ndim - 1))
    wide = t.to_wide(row=list(t.factors[:n_rows]), column=list(t.factors[n_rows:]))
    assert wide.shape == (int(np.prod(arr.shape[:n_rows])), int(np.prod(arr.shape[n_rows:])))
    back = from_wide(wide)
    assert back.factors == t.factors
    np.testing.assert_array_equal(back.to_array(), arr)
    for name in t.factors:
        assert list(back.levels(name)) == list(t.levels(name))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_from_cells_equals_dense(data):
    arr = data.draw(count_arrays())
    names = _names(arr.ndim)
    dense = from_array(arr, names)
    long = dense.data
    nonzero = long[long["count"] > 0]
    nonzero = nonzero.iloc[list(data.draw(st.permutations(range(len(nonzero)))))]
    # plain (non-categorical) columns, as a user's sparse file would give them
    plain = pd.DataFrame({f: nonzero[f].astype(int).to_numpy() for f in names})
    plain["count"] = nonzero["count"].to_numpy()
    levels = {f: dense.levels(f) for f in names}
    assert from_cells(plain, names, "count", levels).equals(dense)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), bad=st.sampled_from([-1.0, np.nan, 0.5, np.inf]))
def test_invalid_count_anywhere_is_caught(data, bad):
    arr = data.draw(count_arrays())
    cell = data.draw(st.integers(0, arr.size - 1))
    long = from_array(arr, _names(arr.ndim)).data
    long.loc[cell, "count"] = bad
    arr.flat[cell] = bad
    with pytest.raises(TableError, match=f"row {cell} "):
        from_long(long, _names(arr.ndim))
    with pytest.raises(TableError, match="cell"):
        from_array(arr, _names(arr.ndim))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_duplicate_row_is_named(data):
    arr = data.draw(count_arrays())
    long = from_array(arr, _names(arr.ndim)).data
    row = data.draw(st.integers(0, len(long) - 1))
    dup = pd.concat([long, long.iloc[[row]]], ignore_index=True)
    with pytest.raises(TableError, match=f"duplicated cells \\(1\\).* in rows {row}, {len(long)}"):
        from_long(dup, _names(arr.ndim))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_margins_sum_counts(data):
    arr = data.draw(count_arrays(min_dims=2))
    t = from_array(arr, _names(arr.ndim))
    keep = data.draw(st.permutations(range(arr.ndim)))[: data.draw(st.integers(1, arr.ndim))]
    drop = tuple(k for k in range(arr.ndim) if k not in keep)
    expected = np.transpose(arr.sum(axis=drop), np.argsort(np.argsort(keep)))
    m = t.margin([t.factors[k] for k in keep])
    np.testing.assert_array_equal(m.to_array(), expected)
    assert m.n == t.n
