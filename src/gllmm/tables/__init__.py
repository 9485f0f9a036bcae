"""Table input: contingency tables as full grids of cells, with levels, scores and strata.

A ``Table`` holds counts in row-major order of its factors (the last varies fastest), the order
the ``C``/``A`` builders of ``gllmm.spec`` assume. Build one from long, wide, array or sparse
input, or read it from CSV/Parquet; invalid input raises ``TableError`` naming rows or cells.
"""

from ._checks import check_margins
from ._construct import from_array, from_cells, from_long, from_wide
from ._io import READERS, read_csv, read_frame, read_table
from ._table import Table

__all__ = [
    "READERS",
    "Table",
    "check_margins",
    "from_array",
    "from_cells",
    "from_long",
    "from_wide",
    "read_csv",
    "read_frame",
    "read_table",
]
