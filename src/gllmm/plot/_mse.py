"""Simulation MSE curves (paper Section 4, Table 1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import SpecError
from ..tables._validate import check_columns, check_integer
from ._common import new_figure, numbers


def mse_curves(
    data: pd.DataFrame,
    *,
    scenario: str | Sequence[str] = "scenario",
    x: str = "n",
    estimator: str = "estimator",
    y: str = "mse",
    se: str | None = None,
    labels: dict[str, str] | None = None,
    logx: bool = True,
    logy: bool = False,
    ncols: int = 3,
    panel_size: float = 3.3,
) -> Figure:
    """MSE against sample size, one panel per scenario and one line per estimator.

    The paper's Table 1 reports the n-normalised MSE ``n * mean_ij (p_hat_ij - p_ij)^2`` of
    each estimator for 3 x 3 tables at n = 50, 200, 1000; this draws it as curves in n.

    Parameters
    ----------
    data : DataFrame
        Long form: one row per (scenario, n, estimator) with the MSE. ``scenario`` may name
        several columns (e.g. ``["scores", "beta"]``, as ``gllmm.simulate.summarise`` returns),
        joined into the panel title.
    se : str, optional
        Column of Monte Carlo SEs, drawn as +-2 SE bars. Default: ``"se"`` or ``"mse_se"`` when
        present.
    labels : dict, optional
        Display names of the estimators.

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = [scenario] if isinstance(scenario, str) else list(scenario)
    check_columns(data, [*keys, x, estimator, y] + ([se] if se is not None else []))
    if data.empty:
        raise SpecError("the data have no rows; give one row per (scenario, n, estimator)")
    for c in [x, y] + ([se] if se is not None else []):
        numbers(data[c], f"column {c!r}")
    ncols = check_integer(ncols, "ncols", minimum=1)
    if se is None:
        se = next((c for c in ("se", "mse_se") if c in data.columns), None)
    df = data.copy()
    if len(keys) > 1:
        df["_panel"] = [", ".join(f"{k} {v}" for k, v in zip(keys, row, strict=True))
                        for row in df[keys].itertuples(index=False)]
    else:
        df["_panel"] = df[keys[0]].astype(str)
    panels = list(dict.fromkeys(df["_panel"]))
    estimators = list(dict.fromkeys(df[estimator]))
    ncols = max(1, min(ncols, len(panels)))
    nrows = int(np.ceil(len(panels) / ncols))
    fig = new_figure(panel_size * ncols + 1.6, panel_size * 0.85 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    xs = sorted(df[x].unique())
    for idx, panel in enumerate(panels):
        ax = axes[idx // ncols][idx % ncols]
        sub = df[df["_panel"] == panel]
        for k, est in enumerate(estimators):
            line = sub[sub[estimator] == est].sort_values(x)
            if line.empty:
                continue
            err = 2 * line[se].to_numpy(float) if se else None
            ax.errorbar(line[x], line[y], yerr=err, marker="o", ms=3, capsize=2,
                        color=f"C{k % 10}", label=(labels or {}).get(est, str(est)))
            if "failures" in line:  # summarise's count of failed fits, left out of the mean
                for xv, yv, nf in zip(line[x], line[y], line["failures"], strict=True):
                    if nf and pd.notna(yv):
                        ax.annotate(f"{int(nf)} failed", (xv, yv), fontsize=6,
                                    color=f"C{k % 10}", xytext=(3, 3),
                                    textcoords="offset points")
        if logx:
            ax.set_xscale("log")
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{v:g}" for v in xs])
            ax.minorticks_off()
        if logy:
            ax.set_yscale("log")
        ax.set_title(panel, fontsize=9)
        if idx % ncols == 0:
            ax.set_ylabel(y)
        if idx // ncols == nrows - 1:
            ax.set_xlabel(x)
    for idx in range(len(panels), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=8, frameon=False)
    return fig
