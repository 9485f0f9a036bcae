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
    """A 2-D table (DataFrame kept, array wrapped with 1-based labels); rejects other shapes."""
    if isinstance(values, pd.DataFrame):
        return values
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table (rows x columns); got shape {arr.shape}")
    return pd.DataFrame(arr, index=np.arange(1, arr.shape[0] + 1),
                        columns=np.arange(1, arr.shape[1] + 1))
