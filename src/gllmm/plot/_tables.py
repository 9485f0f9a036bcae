"""Observed and smoothed contingency tables as heatmaps side by side (paper Table 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import SpecError
from ..tables._validate import check_columns
from ._common import as_table, check_result, new_figure, numbers

ANNOTATE_MAX_CELLS = 400


def table_heatmaps(
    observed: Any,
    smoothed: Any,
    *,
    titles: Sequence[str] | None = None,
    row_label: str | None = None,
    col_label: str | None = None,
    annotate: bool | None = None,
    cmap: str = "viridis",
    digits: int = 2,
    panel_size: float = 3.6,
) -> Figure:
    """Heatmaps of an observed table and one or more smoothed versions, on one colour scale.

    The panels share the colour scale ``[0, max count]`` so that shrinkage toward the base
    model shows as a change of colour; cells are annotated with their values for tables of up
    to 400 cells (``annotate``). NaN cells (structural zeros, cells absent from the data) are
    left blank.

    Parameters
    ----------
    observed : DataFrame or array (I, J)
        Observed counts; a DataFrame's index and columns label the rows and columns.
    smoothed : DataFrame or array (I, J), a sequence of them, or a mapping title -> table
        Smoothed (fitted) counts, e.g. the paper's Table 2 columns (a), (b), (c).
    titles : sequence of str, optional
        Panel titles (observed first). Default "observed" and the mapping's keys or
        "smoothed", "smoothed 2", ...
    row_label, col_label : str, optional
        Axis labels (default: the DataFrame's index / columns names).

    Returns
    -------
    matplotlib.figure.Figure
    """
    obs = as_table(observed, "observed")
    if isinstance(smoothed, Mapping):
        names, tables = list(smoothed), list(smoothed.values())
    elif isinstance(smoothed, (list, tuple)):
        tables = list(smoothed)
        names = ["smoothed"] + [f"smoothed {i + 2}" for i in range(len(tables) - 1)]
    elif smoothed is None:
        raise SpecError("smoothed is None; give the smoothed table(s) to draw beside observed")
    else:
        tables, names = [smoothed], ["smoothed"]
    if not tables:
        raise SpecError("no smoothed tables given; give at least one")
    panels = [obs] + [as_table(t, "smoothed").reindex(index=obs.index, columns=obs.columns)
                      if isinstance(t, pd.DataFrame) else _like(obs, t) for t in tables]
    labels = list(titles) if titles is not None else ["observed"] + names
    if len(labels) != len(panels):
        raise SpecError(f"{len(labels)} titles for {len(panels)} panels (observed and "
                        f"{len(tables)} smoothed); give one title per panel")
    n_i, n_j = obs.shape
    if annotate is None:
        annotate = n_i * n_j <= ANNOTATE_MAX_CELLS
    finite = [v for p in panels for v in p.to_numpy(float).ravel() if np.isfinite(v)]
    vmax = max(finite, default=0.0) or 1.0
    aspect = n_i / max(n_j, 1)
    fig = new_figure(panel_size * len(panels) + 0.8, panel_size * min(max(aspect, 0.5), 2) + 0.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, table, title, k in zip(axes, panels, labels, range(len(panels)), strict=True):
        values = table.to_numpy(float)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=vmax,
                          aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=10)
        _ticks(ax, table)
        ax.set_xlabel(col_label if col_label is not None else str(obs.columns.name or ""))
        if k == 0:
            ax.set_ylabel(row_label if row_label is not None else str(obs.index.name or ""))
        if annotate:
            fmt = "{:g}" if k == 0 else f"{{:.{digits}f}}"
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 * vmax else "black")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="count")
    return fig


def fitted_heatmaps(result: Any, row: str, col: str, *, kind: str = "mode",
                    title: str | None = None, **kwargs: Any) -> Figure:
    """:func:`table_heatmaps` of a fit's observed and fitted counts, pivoted by ``row``, ``col``.

    ``result`` is a :class:`gllmm.FitResult` (fitted counts with the random effects at their
    posterior modes by default, as the paper's Table 2) whose data hold the two columns.
    """
    df = check_result(result, "fitted_heatmaps").fitted(kind)
    check_columns(df, [row, col])
    obs = df.pivot_table(index=row, columns=col, values="observed", aggfunc="sum",
                         observed=False)
    fitted = df.pivot_table(index=row, columns=col, values="fitted", aggfunc="sum",
                            observed=False)
    name = title or ("fitted (posterior modes)" if kind == "mode" else f"fitted ({kind})")
    return table_heatmaps(obs, {name: fitted}, **kwargs)


def _like(obs: pd.DataFrame, values: Any) -> pd.DataFrame:
    arr = numbers(values, "smoothed")
    if arr.shape != obs.shape:
        raise SpecError(f"smoothed table has shape {arr.shape}, observed {obs.shape}; give "
                        "tables of the same rows and columns")
    return pd.DataFrame(arr, index=obs.index, columns=obs.columns)


def _ticks(ax: Any, table: pd.DataFrame, max_ticks: int = 25) -> None:
    n_i, n_j = table.shape
    step_i = max(1, int(np.ceil(n_i / max_ticks)))
    step_j = max(1, int(np.ceil(n_j / max_ticks)))
    ax.set_yticks(np.arange(0, n_i, step_i))
    ax.set_yticklabels([str(v) for v in table.index[::step_i]], fontsize=8)
    ax.set_xticks(np.arange(0, n_j, step_j))
    ax.set_xticklabels([str(v) for v in table.columns[::step_j]], fontsize=8,
                       rotation=0 if n_j <= 12 else 90)
