"""Reading one column of a data frame, and its factorization, at the cost of the values alone.

``data[name]`` builds a Series (with copy-on-write bookkeeping) and ``pd.factorize`` of a
Series or of an Arrow-backed string array wraps its result in further pandas objects: on a
frame of a few hundred rows each costs several times the work on the values, and a formula
design reads four or five columns. These helpers go to the values directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._jit import HAVE_NUMBA
from ..errors import GllmmError, SpecError


def column_values(data: pd.DataFrame, name: Any,
                  error: type[GllmmError] = SpecError) -> Any:
    """The values of column ``name``: a read-only ndarray, or the column's pandas extension
    array (categorical, string, nullable), as ``data[name].array`` but an ndarray for numpy
    columns. A name that labels several columns is refused (``error``)."""
    loc = data.columns.get_loc(name)
    if not isinstance(loc, int):
        times = int(np.sum(data.columns == name))
        raise error(f"column {name!r} appears {times} times in the data: give the columns "
                    "distinct names")
    get = getattr(data, "_get_column_array", None)  # pandas >= 1.3; no Series built
    values = get(loc) if get is not None else data.iloc[:, loc].array
    if isinstance(values, np.ndarray):
        values = values.view()
        values.flags.writeable = False  # a view of the caller's frame
    return values


def factorize(values: Any) -> tuple[np.ndarray, list]:
    """Integer codes in order of first appearance (-1 for missing values) and the levels as a
    list, as ``pd.factorize(values, sort=False)``; Arrow-backed strings are encoded by Arrow
    itself (its dictionary encoding numbers values in order of first appearance too)."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow.compute as pc

        arrow = values.__arrow_array__()  # the ExtensionArray interchange protocol
        if getattr(arrow, "num_chunks", 1) != 1:
            arrow = arrow.combine_chunks()
        elif hasattr(arrow, "chunk"):
            arrow = arrow.chunk(0)
        if not arrow.null_count and HAVE_NUMBA:
            found = _arrow_codes(arrow)
            if found is not None:
                return found
        encoded = pc.dictionary_encode(arrow)
        index = encoded.indices
        if index.null_count:
            index = pc.fill_null(index, -1)
        return index.to_numpy().astype(np.intp), encoded.dictionary.to_pylist()
    codes, levels = pd.factorize(values, sort=False)
    return codes, levels.tolist()


def _arrow_codes(arrow: Any) -> tuple[np.ndarray, list] | None:
    """``factorize`` of an Arrow string array without nulls by the compiled hash of its
    buffers (``_string_codes``); None for other layouts (views, dictionaries)."""
    import pyarrow as pa

    kind = arrow.type
    if kind == pa.string():
        width = np.int32
    elif kind == pa.large_string():
        width = np.int64
    else:
        return None
    from ._string_codes import byte_string_codes

    _, offsets, data = arrow.buffers()
    n = len(arrow)
    off = np.frombuffer(offsets, dtype=width)[arrow.offset: arrow.offset + n + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    codes = np.empty(n, dtype=np.intp)
    first = np.empty(n, dtype=np.int64)
    k, ascii = byte_string_codes(off, raw, codes, first)
    bounds = off.tolist()
    if ascii:  # one decode; byte offsets are character offsets
        lo = bounds[0] if n else 0
        text = raw[lo: bounds[-1] if n else 0].tobytes().decode("ascii")
        return codes, [text[bounds[i] - lo: bounds[i + 1] - lo] for i in first[:k].tolist()]
    return codes, [raw[bounds[i]: bounds[i + 1]].tobytes().decode() for i in first[:k].tolist()]
