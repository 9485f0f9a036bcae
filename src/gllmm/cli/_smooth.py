"""``gllmm smooth``: cell-wise GLLMM smoothing of a table (paper Section 2.2, eqs. 2.5-2.6) or
the local linear likelihood comparators (Simonoff 1998; the loess GAM of Table 2 (c)), from
long data."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from .._distributions import chi2_sf
from ..results._result import _jsonable
from ._io import CliError, apply_levels, require_columns, require_counts
from ._run import parse_scores

CONNECT_TIMEOUT = 20.0  # seconds to reach a --scheduler before giving up
BASES = ("independence", "linear_by_linear", "local", "loess_gam", "penalized")


def _fit_cellwise() -> Any:
    """The scalable cell-wise path when present, else None (then the general engine is used)."""
    try:
        from ..smooth import fit_cellwise  # type: ignore[attr-defined]
    except ImportError:
        try:
            from ..smooth._cellwise import fit_cellwise
        except ImportError:
            return None
    return fit_cellwise


class _Axis:
    """One classifying column: labels as given, codes in level order, scores."""

    def __init__(self, data: pd.DataFrame, column: str, scores: list[float] | None,
                 option: str) -> None:
        series = data[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            self.levels = np.asarray(series.cat.categories, dtype=object)
            self.codes = series.cat.codes.to_numpy()
        else:
            self.levels, self.codes = np.unique(series.to_numpy(), return_inverse=True)
        numeric = np.issubdtype(np.asarray(self.levels).dtype, np.number)
        if scores is None:
            scores = list(np.asarray(self.levels, float)) if numeric else \
                list(np.arange(1.0, len(self.levels) + 1))
        if len(scores) != len(self.levels):
            raise CliError(f"{option}: {len(scores)} scores for the {len(self.levels)} levels "
                           f"of {column!r} ({', '.join(map(str, self.levels))})")
        self.scores = np.asarray(scores, float)


def run_smooth(data: pd.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    """Fit the smoother described by ``args``; returns the JSON-ready result."""
    cols = [args.row, args.col] + ([args.stratum] if args.stratum else [])
    require_columns(data, cols)
    if len(set(cols)) < len(cols):
        raise CliError(f"--row, --col (and --stratum) name the same column {cols}; give "
                       "different columns for the table's dimensions")
    check_table_layout(data, cols)
    apply_levels(data, args.levels)
    y = require_counts(data, args.count)
    rows = _Axis(data, args.row, parse_scores(args.row_scores, "--row-scores"), "--row-scores")
    cols_ = _Axis(data, args.col, parse_scores(args.col_scores, "--col-scores"),
                  "--col-scores")
    if getattr(args, "scheduler", None) and args.base in ("local", "loess_gam", "penalized"):
        raise CliError(f"--scheduler runs the cell-wise bases only, not --base {args.base}")
    if args.base in ("local", "loess_gam"):
        if args.stratum:
            raise CliError(f"--base {args.base} smooths one two-way table; drop --stratum or "
                           "use a cell-wise base")
        return _local(data, y, rows, cols_, args)
    if args.base == "penalized":
        if args.stratum:
            raise CliError("--base penalized smooths one two-way table; drop --stratum or use "
                           "a cell-wise base")
        return _penalized(data, y, rows, cols_, args)
    out = _cellwise(data, y, rows, cols_, args, args.base)
    if args.compare:
        other = "linear_by_linear" if args.base == "independence" else "independence"
        alt = _cellwise(data, y, rows, cols_, args, other)
        out["comparison"] = _compare(out if args.base == "independence" else alt,
                                     alt if args.base == "independence" else out)
    return out


def check_table_layout(data: pd.DataFrame, cols: list[str]) -> None:
    """One row per cell of a complete table with at least 2 x 2 cells (per stratum)."""
    from ..tables._validate import check_no_missing, check_unique_cells

    check_no_missing(data, cols, "factor", error=CliError)
    check_unique_cells(data, cols, error=CliError)
    sizes = [data[c].nunique() for c in cols]
    if sizes[0] < 2 or sizes[1] < 2:
        raise CliError(f"the table has {sizes[0]} x {sizes[1]} cells ({cols[0]} x {cols[1]}); "
                       "smoothing needs at least two rows and two columns")
    n_cells = int(np.prod(sizes))
    if len(data) < n_cells:
        full = pd.MultiIndex.from_product([pd.unique(data[c]) for c in cols], names=cols)
        present = pd.MultiIndex.from_frame(data[cols])
        missing = full.difference(present)
        first = ", ".join(f"{c}={v}" for c, v in zip(cols, missing[0], strict=True))
        raise CliError(f"{len(missing)} cell(s) of the {' x '.join(map(str, sizes))} table "
                       f"have no row (e.g. {first}); add them with count 0 if they are "
                       "sampling zeros")


def _cellwise(data: pd.DataFrame, y: np.ndarray, rows: _Axis, cols: _Axis,
              args: argparse.Namespace, base: str) -> dict[str, Any]:
    fit_cellwise = _fit_cellwise()
    if fit_cellwise is None or args.engine == "general":
        if getattr(args, "scheduler", None):
            raise CliError("--scheduler runs the cell-wise path only; drop --engine general")
        if args.stratum:
            raise CliError("stratified smoothing needs the scalable cell-wise path "
                           "(gllmm.smooth.fit_cellwise)")
        return _general(data, rows, cols, args, base)
    elif getattr(args, "scheduler", None) and args.association == "random":
        raise CliError("--association random is fitted in one process only; drop --scheduler")
    parts: tuple[Any, ...] = (rows.codes, cols.codes, y)
    if args.stratum:
        strata = _Axis(data, args.stratum, None, "--stratum")
        parts = (*parts, strata.codes)
    callback, bar = _progress(args.progress, f"smoothing ({base})")
    try:
        fit = fit_cellwise(parts, rows.scores, cols.scores, base=base, n_nodes=args.nagq,
                           association=args.association, progress=callback,
                           client=getattr(args, "client", None),
                           partitions=getattr(args, "partitions", None))
    finally:
        if bar is not None:
            bar.close()
    return _cellwise_json(fit, data, rows, cols, args)


@contextlib.contextmanager
def connect(scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``scheduler`` (None: no client), closed
    on exit."""
    if not scheduler:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise CliError("--scheduler needs Dask: pip install 'gllmm[dask]'") from exc
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CliError(f"could not connect to the Dask scheduler at {scheduler!r} ({exc}); "
                       "check the address (tcp://HOST:8786) and that the scheduler runs"
                       ) from exc
    with client:
        yield client


def run_partitioned(args: argparse.Namespace) -> int:
    """``gllmm smooth DIR``: a directory of Parquet files listing (at least) the non-zero cells,
    fitted partition by partition (on ``--scheduler``'s cluster if given); the smoothed cells
    go to Parquet files in ``-o DIR`` or next to the input (``DIR_smoothed``)."""
    import sys

    from ..smooth import fit_cellwise

    unsupported = [(args.base in ("local", "penalized"), f"--base {args.base}"),
                   (args.compare, "--compare"), (args.engine == "general", "--engine general"),
                   (bool(args.levels), "--levels"),
                   (args.association == "random", "--association random")]
    bad = [name for flag, name in unsupported if flag]
    if bad:
        raise CliError(f"{', '.join(bad)}: not available for a directory input (partitioned "
                       "cell-wise fit); drop it, or give one file")

    def line(info: dict) -> None:
        print(f"{info['stage']:>5} iteration {info['iteration']:3d}  loglik "
              f"{info['loglik']:.6f}  decrement {info['decrement']:.3g}  "
              f"{info['elapsed']:.1f} s", file=sys.stderr, flush=True)

    columns = [args.row, args.col, args.count] + ([args.stratum] if args.stratum else [])
    with connect(args.scheduler) as client:
        fit = fit_cellwise(args.data, parse_scores(args.row_scores, "--row-scores"),
                           parse_scores(args.col_scores, "--col-scores"), base=args.base,
                           n_nodes=args.nagq, association=args.association,
                           progress=line if args.progress else None, client=client,
                           partitions=args.partitions, output=args.output,
                           columns=tuple(columns))
    if args.json:
        import json

        print(json.dumps(_jsonable(fit.to_dict()), indent=2))
    else:
        files = fit.output_files
        print(fit.summary())
        print(f"  {fit.elapsed:.1f} s; smoothed cells in {len(files)} Parquet file(s): "
              f"{files[0] if files else ''}{' ...' if len(files) > 1 else ''}")
    return 0


def _progress(enabled: bool, label: str) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(desc=label, unit=" it", leave=False)

    def callback(info: dict) -> None:
        bar.update(1)
        if "loglik" in info:
            bar.set_postfix_str(f"{info.get('stage', '')} loglik {info['loglik']:.4f}",
                                refresh=False)

    return callback, bar


def _cellwise_json(fit: Any, data: pd.DataFrame, rows: _Axis, cols: _Axis,
                   args: argparse.Namespace) -> dict[str, Any]:
    ri = np.searchsorted(fit.row_levels, rows.codes)
    ci = np.searchsorted(fit.col_levels, cols.codes)
    index: tuple[Any, ...] = (ri, ci)
    if fit.stratum_levels is not None and fit.fitted_counts.ndim == 3:
        strata = _Axis(data, args.stratum, None, "--stratum")
        index = (ri, ci, np.searchsorted(fit.stratum_levels, strata.codes))
    fitted = fit.fitted_counts[index]
    prob = fit.fitted(normalised=True)[index]
    total = _stratum_totals(data, args)
    table = data.copy()
    table["observed"] = data[args.count].to_numpy(float)
    table["fitted"] = fitted
    table["probability"] = prob / total
    beta = None if fit.beta is None else np.atleast_1d(fit.beta)
    params: dict[str, Any] = {}
    se: dict[str, Any] = {}
    if np.ndim(fit.alpha) == 0:  # two-way table: intercept, row and column effects
        params["(Intercept)"] = fit.alpha
        for axis, name, effects in ((rows, args.row, fit.row_effects),
                                    (cols, args.col, fit.col_effects)):
            for code, value in zip(fit.row_levels if axis is rows else fit.col_levels,
                                   effects, strict=True):
                if np.isfinite(value) and value != 0:
                    params[f"{name}[{axis.levels[int(code)]}]"] = value
    if beta is not None:
        names = ["beta"] if beta.size == 1 else [f"beta[{s}]" for s in _labels(
            data, args.stratum, fit.stratum_levels)]
        bse = np.atleast_1d(fit.beta_se)
        params.update(zip(names, beta, strict=True))
        se.update(zip(names, bse, strict=True))
    random_sd: dict[str, Any] = {"cell": fit.sigma}
    random_sd_se: dict[str, Any] = {"cell": fit.sigma_se}
    if fit.sigma_beta is not None:
        random_sd["beta"] = fit.sigma_beta
        random_sd_se["beta"] = fit.sigma_beta_se
    boundary = ["sd(cell)"] if fit.boundary else []
    n_params = _n_params(fit)
    return {**_jsonable({
        "model": "cellwise", "base": fit.base, "association": fit.association,
        "loglik": fit.loglik, "converged": fit.converged, "boundary": boundary,
        "method": "laplace" if fit.n_nodes == 1 else "agq", "nagq": fit.n_nodes,
        "params": params, "se": se, "random_sd": random_sd, "random_sd_se": random_sd_se,
        "loglik_sigma0": fit.loglik_sigma0, "lr_sigma": fit.lr_sigma,
        "p_sigma": 0.5 * chi2_sf(fit.lr_sigma, 1) if fit.lr_sigma > 0 else 1.0,
        "n_params": n_params, "aic": -2 * fit.loglik + 2 * n_params,
        "scores": {args.row: list(rows.scores), args.col: list(cols.scores)},
        "iterations": fit.n_iter, "seconds": fit.elapsed,
        "infinite_estimates": _empty_margins(data, args)}), "fitted": table}


def _empty_margins(data: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    """Row and column effects with no ML estimate (-inf): levels whose counts are all zero
    (within their stratum); the smoother leaves their cells out and fits them as 0."""
    out = []
    groups = data.groupby(args.stratum, sort=False) if args.stratum else [(None, data)]
    for k, part in groups:
        for column in (args.row, args.col):
            totals = part.groupby(column, observed=True, sort=False)[args.count].sum()
            where = "" if k is None else f" ({args.stratum} {k})"
            out += [f"{column}[{lev}]{where}" for lev in totals.index[totals.to_numpy() == 0]]
    return out


def _labels(data: pd.DataFrame, column: str | None, levels: Any) -> list[str]:
    if column is None:
        return ["all"]
    axis = _Axis(data, column, None, "--stratum")
    return [str(axis.levels[int(k)]) for k in np.atleast_1d(levels)]


def _stratum_totals(data: pd.DataFrame, args: argparse.Namespace) -> np.ndarray:
    counts = data[args.count].astype(float)
    if args.stratum:
        return data.groupby(args.stratum, observed=True)[args.count].transform("sum") \
            .to_numpy(float)
    return np.full(len(data), counts.sum())


def _n_params(fit: Any) -> int:
    alpha = np.atleast_1d(fit.alpha)
    n_strata = int(np.isfinite(alpha).sum())
    n = n_strata
    n += int(np.isfinite(fit.row_effects).sum()) - n_strata
    n += int(np.isfinite(fit.col_effects).sum()) - n_strata
    if fit.beta is not None:
        n += 1 if fit.association == "random" else int(np.atleast_1d(fit.beta).size)
    n += 1 + (fit.sigma_beta is not None)
    return n


def _compare(indep: dict[str, Any], lxl: dict[str, Any]) -> dict[str, Any]:
    lr = max(2.0 * (lxl["loglik"] - indep["loglik"]), 0.0)
    df = lxl["n_params"] - indep["n_params"]
    return {
        "models": [{"base": m["base"], "loglik": m["loglik"], "n_params": m["n_params"],
                    "aic": m["aic"], "sd_cell": m["random_sd"]["cell"]} for m in (indep, lxl)],
        "lr_beta": lr, "df": df, "p_value": float(chi2_sf(lr, df)) if df > 0 else math.nan,
    }


def _general(data: pd.DataFrame, rows: _Axis, cols: _Axis, args: argparse.Namespace,
             base: str) -> dict[str, Any]:
    """The general engine (``models.cellwise_smoothing`` + ``gllmm.fit``), same contract."""
    from .. import models
    from ._run import run_fit

    df = data.copy()
    design = models.cellwise_smoothing(
        df, args.row, args.col, count=args.count, base=base,
        row_scores=dict(zip(rows.levels, rows.scores, strict=True)),
        col_scores=dict(zip(cols.levels, cols.scores, strict=True)))
    res = run_fit(design, "laplace" if args.nagq == 1 else "agq", args.nagq,
                  progress=args.progress)
    out = res.to_dict()
    fitted = res.fitted()
    fitted["probability"] = fitted["fitted"] / fitted["fitted"].sum()
    out["fitted"] = fitted
    # the command's names (as the cell-wise path's): cell for sd(row:col), beta for the
    # row_score:col_score term
    (cell,) = out["random_sd"]
    sd = out["random_sd"].pop(cell, 0.0)
    sd_se = out["random_sd_se"].pop(cell, None)
    out["random_sd"]["cell"], out["random_sd_se"]["cell"] = sd, sd_se
    out["boundary"] = ["sd(cell)"] if res.boundary else []
    n = res.n_params
    association = design.fixed_names[-1] if base != "independence" else None
    if association is not None:
        out["params"] = {"beta": out["params"][association]}
        out["se"] = {"beta": out["se"][association]}
    else:
        out["params"], out["se"] = {}, {}
    out.update(model="cellwise", base=base, association=None, n_params=n,
               aic=-2 * res.loglik + 2 * n)
    return out


def _local(data: pd.DataFrame, y: np.ndarray, rows: _Axis, cols: _Axis,
           args: argparse.Namespace) -> dict[str, Any]:
    from ..smooth import local_likelihood, loess_gam

    grid = np.zeros((len(rows.levels), len(cols.levels)))
    np.add.at(grid, (rows.codes, cols.codes), y)
    kwargs: dict[str, Any] = {}
    if args.span is not None:
        kwargs["span"] = args.span
    if args.base == "loess_gam":  # the paper's Table 2 (c): a Poisson GAM, one loess term
        fit = loess_gam(grid, scores=[rows.scores, cols.scores], **kwargs)
        table = data.copy()
        table["observed"] = y
        table["fitted"] = fit.fitted[rows.codes, cols.codes]
        table["probability"] = table["fitted"] / fit.fitted.sum()
        return {**_jsonable({
            "model": "loess_gam", "base": "loess_gam", "loglik": fit.loglik,
            "converged": fit.converged, "boundary": [], "method": "loess_gam", "nagq": None,
            "params": {"span": fit.span, "df": fit.df}, "se": {}, "random_sd": {},
            "random_sd_se": {}, "criteria": dict(fit.criteria), "kernel": "tricube",
            "scores": {args.row: list(rows.scores), args.col: list(cols.scores)}}),
            "fitted": table}
    fit = local_likelihood(grid, scores=[rows.scores, cols.scores], **kwargs)
    table = data.copy()
    table["observed"] = y
    table["fitted"] = fit.fitted[rows.codes, cols.codes]
    table["probability"] = table["fitted"] / fit.fitted.sum()
    smoothing = {"span": fit.span} if fit.span is not None else {"bandwidth": fit.bandwidth}
    return {**_jsonable({
        "model": "local_likelihood", "base": "local", "loglik": fit.loglik,
        "converged": fit.converged, "boundary": [], "method": "local_likelihood",
        "nagq": None, "params": {**smoothing, "df": fit.df}, "se": {}, "random_sd": {},
        "random_sd_se": {}, "criteria": dict(fit.criteria), "kernel": fit.kernel,
        "scores": {args.row: list(rows.scores), args.col: list(cols.scores)}}),
        "fitted": table}


def _penalized(data: pd.DataFrame, y: np.ndarray, rows: _Axis, cols: _Axis,
               args: argparse.Namespace) -> dict[str, Any]:
    """Penalised likelihood, eq. (2.2): lambda from --lambda (a number, inf, or a criterion)."""
    from ..smooth import penalized_smoother

    grid = np.zeros((len(rows.levels), len(cols.levels)))
    np.add.at(grid, (rows.codes, cols.codes), y)
    lam: float | str = args.penalty
    try:
        lam = float(lam)
    except ValueError:
        pass
    try:
        fit = penalized_smoother(grid, lam)
    except ValueError as exc:  # an unknown criterion or a negative lambda
        raise CliError(f"--lambda: {exc}") from exc
    table = data.copy()
    table["observed"] = y
    table["fitted"] = fit.fitted[rows.codes, cols.codes]
    table["probability"] = fit.probabilities[rows.codes, cols.codes]
    loglik = float(np.sum(np.where(grid > 0, grid * np.log(np.where(grid > 0,
                                                                      fit.probabilities, 1)), 0)))
    return {**_jsonable({
        "model": "penalized_likelihood", "base": "penalized", "loglik": loglik,
        "converged": fit.converged, "boundary": [], "method": "penalized_likelihood",
        "nagq": None, "params": {"lambda": fit.lam, "df": fit.df}, "se": {}, "random_sd": {},
        "random_sd_se": {}, "criteria": dict(fit.criteria), "deviance": fit.deviance}),
        "fitted": table}


def _short_list(values: list[float], keep: int = 12) -> str:
    shown = [f"{v:g}" for v in values]
    if len(shown) > keep:
        shown = shown[:keep - 2] + ["...", shown[-1]]
    return "[" + ", ".join(shown) + f"]{f' ({len(values)} levels)' if len(values) > keep else ''}"


def as_json(out: dict[str, Any]) -> dict[str, Any]:
    """The result with its fitted table as JSON records (the ``--json`` contract)."""
    return {**out, "fitted": _jsonable(out["fitted"].to_dict(orient="records"))}


def format_smooth(out: dict[str, Any], args: argparse.Namespace, max_cells: int = 900) -> str:
    """Text output of ``gllmm smooth``: the fit, the base-model comparison, the smoothed table."""
    lines = []
    if out["model"] == "penalized_likelihood":
        p = out["params"]
        lines += ["Penalised-likelihood smoothing towards independence, eq. (2.2) "
                  "(Simonoff 1983)",
                  f"  lambda {p['lambda']:.4g}, effective df {p['df']:.3f}; deviance "
                  f"{out['deviance']:.4f}; log-likelihood {out['loglik']:.4f}"]
    elif out["model"] == "loess_gam":
        p = out["params"]
        lines += ["Poisson GAM with one loess term, local scoring (Hastie & Tibshirani 1990)",
                  f"  degree 1, span {p['span']:.4f}, equivalent df {p['df']:.3f}; "
                  f"log-likelihood {out['loglik']:.4f}"]
    elif out["model"] == "local_likelihood":
        p = out["params"]
        which = f"span {p['span']:.4f}" if "span" in p else f"bandwidth {p['bandwidth']:.4g}"
        lines += ["Local linear likelihood smoothing (Simonoff 1998)",
                  f"  {out['kernel']} kernel, {which}, effective df {p['df']:.3f}; "
                  f"log-likelihood {out['loglik']:.4f}"]
    else:
        method = "Laplace" if out["nagq"] == 1 else f"AGQ, {out['nagq']} nodes"
        lines += [f"Cell-wise log-linear smoothing, {out['base']} base ({method})",
                  f"  log-likelihood {out['loglik']:.4f}   AIC {out['aic']:.2f}   "
                  f"converged {out['converged']}"]
        sd, sd_se = out["random_sd"]["cell"], out["random_sd_se"].get("cell")
        se_txt = f" (SE {sd_se:.4f})" if sd_se is not None else ""
        lines.append(f"  sd(cell) = {sd:.4f}{se_txt}"
                     + ("  [boundary: no extra variation, the fit is the Poisson GLM]"
                        if out["boundary"] else ""))
        if "lr_sigma" in out:
            lines.append(f"  LR test of sd(cell) = 0: {out['lr_sigma']:.3f} "
                         f"(p = {out['p_sigma']:.3g}, half the chi-square(1) tail)")
        for name, v in out["params"].items():
            if not name.startswith("beta"):
                continue  # row and column effects: in --json
            lines.append(f"  {name} = {v:.4f} (SE {out['se'].get(name, float('nan')):.4f})")
        if "beta" in out.get("random_sd", {}):
            lines.append(f"  sd(beta) = {out['random_sd']['beta']:.4f}")
        if out.get("infinite_estimates"):
            lines.append("  NOT ESTIMATES (no counts, effect -inf, cells fitted as 0): "
                         + ", ".join(out["infinite_estimates"]))
    if out.get("scores"):
        lines.append("  scores: " + "; ".join(f"{k} = {_short_list(v)}"
                                              for k, v in out["scores"].items()))
    if "comparison" in out:
        c = out["comparison"]
        lines += ["", "Base models (both with cell-wise random effects):"]
        for m in c["models"]:
            lines.append(f"  {m['base']:<17} loglik {m['loglik']:10.4f}  AIC {m['aic']:9.2f}  "
                         f"sd(cell) {m['sd_cell']:.4f}")
        lines.append(f"  LR test of beta = 0: {c['lr_beta']:.3f} on {c['df']} df "
                     f"(p = {c['p_value']:.3g})")
    table = out["fitted"]
    lines.append("")
    if args.stratum is None and len(table) <= max_cells:
        wide = table.pivot_table(index=args.row, columns=args.col, values="fitted",
                                 aggfunc="sum", observed=False)
        lines.append(f"Smoothed counts (rows {args.row}, columns {args.col}; posterior modes)"
                     if out["model"] == "cellwise" else "Smoothed counts")
        lines.append(wide.to_string(float_format=lambda v: f"{v:.2f}"))
    else:
        lines.append(f"First rows of {len(table)} (write them all with -o FILE):")
        lines.append(table.head(20).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)
