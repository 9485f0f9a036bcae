"""Figure creation without pyplot: every figure draws on its own Agg canvas.

No global backend is switched and no pyplot state is kept, so the functions work headless (CI,
servers, ``gllmm report``) and inside notebooks alike (a Figure displays itself in Jupyter).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import SpecError
from ..results import FitResult
from ..tables._validate import check_numeric as numbers


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas, constrained layout."""
    kwargs.setdefault("layout", "constrained")
    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_to_base64(fig: Figure, dpi: int = 110) -> str:
    """The figure as a base64 PNG string (for ``<img src="data:image/png;base64,...">``)."""
    return base64.b64encode(figure_to_png(fig, dpi)).decode("ascii")


def as_table(values: Any, name: str = "table") -> pd.DataFrame:
    """A 2-D table (DataFrame kept, array wrapped with 1-based labels); rejects other shapes,
    empty tables and non-numeric entries."""
    if isinstance(values, pd.DataFrame):
        numbers(values.to_numpy(), name)
        table = values
    else:
        arr = numbers(values, name)
        if arr.ndim != 2:
            raise SpecError(f"{name} must be a 2-D table (rows x columns); got shape "
                            f"{arr.shape}")
        table = pd.DataFrame(arr, index=np.arange(1, arr.shape[0] + 1),
                             columns=np.arange(1, arr.shape[1] + 1))
    if table.size == 0:
        raise SpecError(f"{name} is empty (shape {table.shape}); give at least one cell")
    return table


def check_result(result: Any, what: str) -> FitResult:
    """``result`` as a FitResult, else SpecError naming the function that needs one."""
    if not isinstance(result, FitResult):
        raise SpecError(f"{what} needs a FitResult (the value of gllmm.fit), got "
                        f"{type(result).__name__}")
    return result
