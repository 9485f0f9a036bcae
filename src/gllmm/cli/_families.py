"""``gllmm marginal`` and ``gllmm association``: the model families without a formula.

- ``marginal``: constrained-ML models of a square table of matched pairs (marginal homogeneity,
  marginal cumulative logits, homogeneity + uniform association; Lang & Agresti 1994), fitted
  by ``gllmm.fit_constrained``;
- ``association``: the random association models of the paper's Section 2.1 -- (2.1), the
  random row + column model, uniform association and independence for one table; (2.3), (2.4),
  (5.1) and a common beta for stratified tables -- built by ``gllmm.models`` and fitted by
  ``gllmm.fit``.

Both read a long table (one row per cell: classifying columns and a count column).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from ._io import CliError, apply_levels, require_columns, require_counts

#: --model of ``gllmm marginal`` -> builder in gllmm.fitting
MARGINAL_MODELS = {
    "homogeneity": "marginal_homogeneity_model",
    "cumulative": "marginal_cumulative_logit_model",
    "homogeneity+association": "marginal_homogeneity_association_model",
}
#: --model of ``gllmm association`` for one table -> random_association keywords
TWO_WAY = {
    "2.1": {"random": "cell", "beta": "free"},
    "2.1-beta0": {"random": "cell", "beta": 0.0},
    "row+column": {"random": "row+column", "beta": "free"},
    "uniform": {"random": "none", "beta": "free"},
    "independence": {"random": "none", "beta": 0.0},
}
#: --model of ``gllmm association`` for stratified tables -> stratified_random_association
STRATIFIED = {
    "2.3": {"strata": "fixed", "within": True},
    "2.4": {"strata": "random", "within": True},
    "5.1": {"strata": "random", "within": False},
    "common": {"strata": "common", "within": True},
}


def _levels(series: pd.Series) -> list:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    return sorted(pd.unique(series), key=lambda v: (not isinstance(v, (int, float)), str(v)))


def square_table(data: pd.DataFrame, row: str, col: str, count: str) -> tuple[np.ndarray, list]:
    """The I x I table of matched pairs (rows: first response), categories in level order."""
    require_columns(data, [row, col])
    y = require_counts(data, count)
    levels = _levels(data[row])
    other = _levels(data[col])
    if [str(v) for v in levels] != [str(v) for v in other]:
        raise CliError(f"{row!r} and {col!r} must have the same categories in the same order "
                       f"(matched pairs); got {[str(v) for v in levels]} and "
                       f"{[str(v) for v in other]}: give both orders with --levels")
    index = {str(v): i for i, v in enumerate(levels)}
    table = np.zeros((len(levels), len(levels)))
    np.add.at(table, (data[row].astype(str).map(index).to_numpy(),
                      data[col].astype(str).map(index).to_numpy()), y)
    return table, levels


def run_marginal(data: pd.DataFrame, args: argparse.Namespace) -> Any:
    """Fit the constrained-ML model of ``gllmm marginal``; returns the ConstrainedFit."""
    from .. import fitting

    apply_levels(data, args.levels)
    table, levels = square_table(data, args.row, args.col, args.count)
    model = getattr(fitting, MARGINAL_MODELS[args.model])(len(levels))
    return model.fit(table, sampling=args.sampling)


def build_association(data: pd.DataFrame, args: argparse.Namespace) -> Any:
    """The Design of ``gllmm association`` from the parsed arguments."""
    from .. import models

    cols = [args.row, args.col] + ([args.stratum] if args.stratum else [])
    require_columns(data, cols)
    apply_levels(data, args.levels)
    require_counts(data, args.count)
    model = args.model or ("2.4" if args.stratum else "2.1")
    common = {"odds_ratio": args.odds_ratio, "marginals": args.marginals,
              "coding": args.coding}
    if args.stratum:
        if model not in STRATIFIED:
            raise CliError(f"--model {model} is a model of one table; with --stratum "
                           f"use one of {', '.join(STRATIFIED)}")
        sampling = args.sampling or "poisson"
        return models.stratified_random_association(
            data, args.stratum, args.row, args.col, args.count, sampling=sampling,
            **STRATIFIED[model], **common)
    if model not in TWO_WAY:
        raise CliError(f"--model {model} needs --stratum (stratified tables); for one "
                       f"table use one of {', '.join(TWO_WAY)}")
    sampling = args.sampling or "multinomial"
    return models.random_association(data, args.row, args.col, args.count, sampling=sampling,
                                     **TWO_WAY[model], **common)


def add_marginal_parser(sub: Any, formatter: Any) -> None:
    m = sub.add_parser(
        "marginal", help="constrained-ML models of matched pairs (marginal homogeneity, ...)",
        description="Fit a model for the margins of a square table of matched pairs by "
        "constrained maximum likelihood (Lang & Agresti 1994): marginal homogeneity, the "
        "marginal cumulative logit model (a shift between the margins), or marginal "
        "homogeneity with uniform local association.",
        epilog="examples:\n  gllmm marginal coffee.csv --row first --col second\n"
        "  gllmm marginal vision.csv --row right --col left --model cumulative --json",
        formatter_class=formatter)
    m.add_argument("data", help="CSV, TSV or Parquet file, one row per cell")
    m.add_argument("--row", required=True, metavar="COL", help="first response of the pair")
    m.add_argument("--col", required=True, metavar="COL", help="second response of the pair")
    m.add_argument("--count", default="count", metavar="COL", help="counts (default 'count')")
    m.add_argument("--model", default="homogeneity", choices=tuple(MARGINAL_MODELS),
                   help="default homogeneity")
    m.add_argument("--sampling", default="multinomial", choices=("multinomial", "poisson"),
                   help="one multinomial sample of n pairs (default) or Poisson cells")
    m.add_argument("--levels", action="append", metavar="COL=a,b,...",
                   help="order of the categories (give it for both columns)")
    m.add_argument("--json", action="store_true", help="print the result as JSON")


def add_association_parser(sub: Any, formatter: Any, method_args: Any) -> None:
    a = sub.add_parser(
        "association", help="random association models of ordinal tables (paper 2.1-2.4)",
        description="Fit a random association model for the local (or global) log odds "
        "ratios of a two-way table, or of stratified tables (Coull & Agresti 2003, Section "
        "2.1): (2.1) log theta_ij = beta + u_ij; row+column: beta + u_i + v_j; (2.3) beta_k + "
        "u_ijk; (2.4) beta_k ~ N(beta, sigma_b^2) and u_ijk; (5.1) = (2.4) without u_ijk.",
        epilog="examples:\n  gllmm association mba.csv --row statistics --col economics "
        "--model row+column --nagq 1\n  gllmm association trial.csv --stratum center --row "
        "treatment --col response --model 5.1 --json", formatter_class=formatter)
    a.add_argument("data", help="CSV, TSV or Parquet file, one row per cell")
    a.add_argument("--row", required=True, metavar="COL", help="row classification")
    a.add_argument("--col", required=True, metavar="COL", help="column classification")
    a.add_argument("--stratum", metavar="COL", help="stratum column (stratified tables)")
    a.add_argument("--count", default="count", metavar="COL", help="counts (default 'count')")
    a.add_argument("--model", default=None,
                   choices=tuple(TWO_WAY) + tuple(STRATIFIED),
                   help="one table: 2.1 (default), 2.1-beta0, row+column, uniform, "
                        "independence; stratified: 2.4 (default), 2.3, 5.1, common")
    a.add_argument("--odds-ratio", default="local", choices=("local", "global"),
                   help="local odds ratios (log-linear) or global ones (Dale's model)")
    a.add_argument("--marginals", default="ml", choices=("ml", "plug-in"),
                   help="global odds ratios: margins by ML (default) or sample proportions")
    a.add_argument("--coding", default="centred", choices=("centred", "cumulative"),
                   help="local odds ratios: how they enter the cell means (default centred)")
    a.add_argument("--sampling", default=None, choices=("multinomial", "poisson"),
                   help="default: multinomial for one table, Poisson for strata")
    a.add_argument("--levels", action="append", metavar="COL=a,b,...",
                   help="order of a classification's levels (repeatable)")
    method_args(a)
    a.add_argument("--json", action="store_true", help="print the result as JSON")
