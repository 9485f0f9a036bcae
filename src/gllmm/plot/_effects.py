"""Cluster-specific effects: shrinkage of fixed-effects estimates (paper Table 4) and
caterpillar plots of empirical Bayes predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._distributions import norm_ppf
from ..errors import SpecError
from ..tables._validate import check_choice, check_level
from ._common import check_result, new_figure, numbers

LABEL_MAX_CLUSTERS = 60


def shrinkage_plot(
    fixed: Any,
    random: Any,
    *,
    pooled: float | Mapping[str, float] | Sequence[float] | None = None,
    labels: Sequence[Any] | None = None,
    titles: Sequence[str] | None = None,
    ylabel: str = "log odds ratio",
    panel_size: float = 3.4,
) -> Figure:
    """Cluster-specific estimates without and with random effects, joined per cluster.

    The left end of each line is the cluster's own fixed-effects ML estimate (e.g. the center's
    log odds ratio fitted to its table alone), the right end the random-effects prediction
    ``beta_hat + u_hat_k`` (posterior mode); the dashed line is the pooled ``beta_hat``. Lines
    bend toward it, most for clusters with little information: the comparison the paper makes
    with Table 4 (Coull & Agresti 2003, Section 5.2).

    Parameters
    ----------
    fixed, random : array-like (K,), or DataFrames (K, P) with the same columns
        One panel per column for DataFrames (e.g. local and global odds ratios).
    pooled : float, or one per panel (mapping by column or sequence), optional
        Population-level estimate drawn as a dashed line.
    labels : sequence (K,), optional
        Cluster labels (default: the index of ``fixed``, or 1..K).
    titles : sequence of str, optional
        Panel titles (default: the column names).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fx, rd = _frame(fixed, "fixed"), _frame(random, "random")
    if fx.shape != rd.shape:
        raise SpecError(f"fixed {fx.shape} and random {rd.shape} estimates differ in shape; "
                        "give one of each per cluster (and per panel)")
    rd.columns = fx.columns
    if labels is None:
        labels = list(fixed.index) if isinstance(fixed, (pd.Series, pd.DataFrame)) else \
            list(range(1, len(fx) + 1))
    _check_count(labels, len(fx), "labels", "clusters")
    names = list(titles) if titles is not None else [str(c) for c in fx.columns]
    _check_count(names, fx.shape[1], "titles", "panels")
    pools = _per_panel(pooled, list(fx.columns))
    fig = new_figure(panel_size * fx.shape[1] + 0.3, panel_size + 0.6)
    axes = fig.subplots(1, fx.shape[1], squeeze=False, sharey=True)[0]
    show_labels = len(fx) <= LABEL_MAX_CLUSTERS
    for ax, col, title, pool in zip(axes, fx.columns, names, pools, strict=True):
        a, b = fx[col].to_numpy(float), rd[col].to_numpy(float)
        for k in range(len(a)):
            ax.plot([0, 1], [a[k], b[k]], color="0.45", lw=0.9, marker="o", ms=4,
                    markerfacecolor="C0", markeredgecolor="C0")
            if show_labels:
                ax.annotate(str(labels[k]), (0, a[k]), xytext=(-6, 0),
                            textcoords="offset points", ha="right", va="center", fontsize=7)
        if pool is not None:
            ax.axhline(pool, color="C3", ls="--", lw=1, label=f"pooled {pool:.2f}")
            ax.legend(loc="best", fontsize=7, frameon=False)
        ax.set_xlim(-0.35, 1.2)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["fixed effects\n(per cluster)", "random effects\n(EB mode)"],
                           fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel(ylabel)
    return fig


def caterpillar_plot(
    result: Any = None,
    *,
    modes: Any = None,
    sds: Any = None,
    level: float = 0.95,
    fixed: str | None = None,
    sd_kind: str = "sd",
    sort: bool = True,
    labels: Sequence[Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Empirical Bayes predictions per cluster with intervals ``mode +- z sd``, sorted.

    For each random-effect component a panel shows ``u_hat_k`` (posterior mode, as the paper's
    tables) with the interval ``u_hat_k +- z_{(1+level)/2} sd_k`` (1.96 posterior SDs for 95%),
    clusters sorted by their mode. With ``fixed`` the panel shows the cluster-specific parameter
    ``beta_hat[fixed] + u_hat_k`` instead, and the dashed reference line is ``beta_hat``.

    Parameters
    ----------
    result : FitResult, optional
        Source of ``modes`` (``random_effects("mode")``) and ``sds``
        (``random_effects(sd_kind)``: ``"sd"`` the posterior SD, ``"mode_sd"`` the curvature
        SD at the mode).
    modes, sds : DataFrame or array (K,) / (K, q), optional
        Given directly instead of ``result``.
    level : float
        Coverage of the normal interval.

    Returns
    -------
    matplotlib.figure.Figure
    """
    level = check_level(level)
    if result is not None:
        check_result(result, "caterpillar_plot")
        modes = result.random_effects("mode")
        sds = result.random_effects(check_choice(sd_kind, "sd_kind", ("sd", "mode_sd")))
    if modes is None or sds is None:
        raise SpecError("give a fit result, or both modes and sds")
    m, s = _frame(modes, "modes"), _frame(sds, "sds")
    if m.shape != s.shape:
        raise SpecError(f"modes {m.shape} and sds {s.shape} differ in shape; give one SD "
                        "per mode")
    if np.any(s.to_numpy(float) < 0):
        raise SpecError("sds must be non-negative (posterior standard deviations)")
    s.columns = m.columns
    if labels is not None:
        _check_count(labels, len(m), "labels", "clusters")
        m.index = s.index = list(labels)
    shift = 0.0
    if fixed is not None:
        if result is None:
            raise SpecError("'fixed' needs a fit result (it adds beta_hat[fixed])")
        if fixed not in result.beta.index:
            raise SpecError(f"unknown fixed effect {fixed!r}; fixed effects: "
                            f"{', '.join(map(str, result.beta.index))}")
        shift = float(result.beta[fixed])
    z = float(norm_ppf(0.5 + level / 2))
    n, q = m.shape
    fig = new_figure(3.6 * q + 0.6, min(max(2.5, 0.18 * n + 1.2), 14))
    axes = fig.subplots(1, q, squeeze=False)[0]
    for ax, col in zip(axes, m.columns, strict=True):
        est = m[col].to_numpy(float) + shift
        half = z * s[col].to_numpy(float)
        order = np.argsort(est, kind="stable") if sort else np.arange(n)
        y = np.arange(n)
        ax.errorbar(est[order], y, xerr=half[order], fmt="o", ms=3, color="C0",
                    ecolor="0.5", elinewidth=1, capsize=0)
        ax.axvline(shift, color="C3", ls="--", lw=1)
        if n <= LABEL_MAX_CLUSTERS:
            ax.set_yticks(y)
            ax.set_yticklabels([str(m.index[i]) for i in order], fontsize=7)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{n} clusters, sorted")
        what = f"{fixed} + u" if fixed else f"u[{col}]"
        ax.set_xlabel(f"{what}: mode +- {z:.2f} SD")
        ax.set_title(str(col) if q > 1 else (title or "empirical Bayes predictions"),
                     fontsize=10)
    if q > 1 and title:
        fig.suptitle(title, fontsize=11)
    return fig


def _frame(values: Any, name: str) -> pd.DataFrame:
    numbers(values, name)
    if isinstance(values, pd.DataFrame):
        frame = values.copy()
    elif isinstance(values, pd.Series):
        frame = values.to_frame(name=values.name if values.name is not None else name)
    else:
        arr = np.asarray(values, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise SpecError(f"{name} must be 1-D or 2-D; got shape {arr.shape}")
        cols = [name] if arr.shape[1] == 1 else [f"{name}{i}" for i in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=cols)
    if frame.size == 0:
        raise SpecError(f"{name} is empty; give one value per cluster")
    return frame


def _check_count(values: Sequence[Any], n: int, what: str, of: str) -> None:
    if len(values) != n:
        raise SpecError(f"{len(values)} {what} for {n} {of}; give one per {of[:-1]}")


def _per_panel(pooled: Any, columns: list[Any]) -> list[float | None]:
    if pooled is None:
        return [None] * len(columns)
    if isinstance(pooled, Mapping):
        values = [pooled.get(c) for c in columns]
    elif np.ndim(pooled) == 0:
        values = [pooled] * len(columns)
    else:
        values = list(pooled)
        _check_count(values, len(columns), "pooled values", "panels")
    return [None if v is None else float(numbers(v, "pooled")) for v in values]
