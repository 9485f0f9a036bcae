"""``gllmm`` command-line entry point.

Subcommands: ``fit`` (a formula model on a CSV/Parquet table; ordinal and multinomial
logits with ``--family ordinal``), ``marginal`` (constrained-ML models of matched pairs),
``association`` (random association models, paper Section 2.1), ``predict`` (new rows from a
model saved by ``fit --save``), ``smooth`` (cell-wise smoothing
of a table), ``simulate`` (the paper's Table 1 study), ``example`` (the paper's examples by
name: ``table2``, ``table4``, ``table5``, ``hartzel``) and ``report`` (a self-contained HTML
page of a fit or an example). Every subcommand has ``--json``.

Exit codes: 0 success; 2 bad input (file, column, formula, option), with the message on stderr;
1 a fit that could not be carried out; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import FitError, GllmmError
from ._io import CliError, check_output, read_data
from ._run import (
    FAMILIES,
    LINKS,
    METHODS,
    mass_points,
    nodes_or_auto,
    positive_int,
    seed_int,
    whole_number,
)

RAW = argparse.RawDescriptionHelpFormatter
BASE_CHOICES = ("independence", "linear_by_linear", "local", "loess_gam", "penalized")

DESCRIPTION = """\
Generalized log-linear models with random effects for contingency tables
(Coull & Agresti 2003): fit formula models, smooth sparse tables, run the paper's
simulation study, reproduce the paper's tables, write HTML reports."""

EPILOG_MAIN = """\
examples:
  gllmm example table2                 reproduce Table 2 (MBA table smoothing)
  gllmm example table4                 reproduce Table 4 (clinical trial odds ratios)
  gllmm example table5                 reproduce Table 5 (clinical trial fitted counts)
  gllmm fit data.csv --formula "count ~ C(row) + C(col) + (1 | cell)" --add-cell --json
  gllmm smooth data.csv --row row --col col --base linear_by_linear --nagq 15
  gllmm report --example table4 -o report.html
  gllmm fit claims.csv --formula "Claims ~ Age + offset(log(Holders)) + (1 | District)" \\
      --method laplace --save model.json
  gllmm predict model.json new.csv     predict new rows from the saved fit
  gllmm fit wine.csv --family ordinal --convention clmm \\
      --formula "rating ~ temp + contact + (1 | judge)"      ordinal::clmm's model
  gllmm marginal pairs.csv --row first --col second     marginal homogeneity (constrained ML)
  gllmm association trial.csv --stratum center --row treatment --col response --model 5.1

'gllmm COMMAND --help' describes each command."""

EPILOG_FIT = """\
examples:
  # MBA table, model (2.5): one random effect per cell, AGQ with 15 nodes
  gllmm fit mba.csv --formula "count ~ C(statistics) + C(economics) + (1 | cell)" \\
      --add-cell --nagq 15
  # clinical trial, model (5.1): random center slope on centred scores x*s, as JSON
  gllmm fit trial.csv --scores treatment=0.5,-0.5 \\
      --levels response=much_better,better,unchanged_or_worse --scores response=1,0,-1 \\
      --formula "count ~ C(center)*C(treatment) + C(center)*C(response)
                 + I(treatment_score*response_score)
                 + (0 + I(treatment_score*response_score) | center)" --json
  # clmm/polr/vglm data as they come: one row per rating, a frequency column, or
  # cbind(c1, c2, c3) counts; --convention clmm for their sign (theta_j - x'beta)
  gllmm fit housing.csv --family ordinal --weights Freq --levels Sat=Low,Medium,High \\
      --formula "Sat ~ Infl + Type + Cont" --convention clmm
  # cumulative logit with correlated random intercept and slope (2-D AGQ, 10 nodes each)
  gllmm fit trial.csv --family multinomial --link cumulative \\
      --levels response=much_better,better,unchanged_or_worse \\
      --formula "response ~ x + (1 + x | center)" --nagq 10

  # R idioms: cbind with expressions, factor(), an offset, nested groups, weights
  gllmm fit cbpp.csv --family binomial \\
      --formula "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"
  gllmm fit insurance.csv --formula "Claims ~ Group + Age + offset(log(Holders))"
  gllmm fit grouseticks.csv --formula "TICKS ~ factor(YEAR) + cHEIGHT + (1 | LOCATION/BROOD)"
  gllmm fit ucb.csv --family binomial --weights Freq \\
      --formula "cbind(admitted, 1 - admitted) ~ Gender + Dept"

Formulas are lme4-style: fixed terms as in R/patsy (factor(f) or C(f) for factors, a*b,
(a + b)^2, log(x), I(a*b) for products, `odd name` for columns with dots or spaces,
offset(expr)), random terms '(expr | group)' (correlated), '(expr || group)' (independent),
'(1 | a/b)' = '(1 | a) + (1 | a:b)'. Binomial responses: cbind(successes, failures) with any
expressions, or a 0/1 column. --offset and --weights (frequency weights) take a column or an
expression. --save MODEL.json keeps the fit for 'gllmm predict'.
--scores COL=s1,s2,... adds a numeric column COL_score (levels in --levels order, else
sorted). JSON keys: loglik, converged, boundary, method, nagq, params, se, random_sd,
random_sd_se, fitted (the input rows with observed and fitted counts), aic, bic, ..."""

EPILOG_PREDICT = """\
examples:
  gllmm fit cbpp.csv --family binomial --method laplace --save cbpp.json \\
      --formula "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"
  gllmm predict cbpp.json herds.csv                      probabilities, herd effects included
  gllmm predict cbpp.json new_herds.csv --allow-new-levels   herds not in the fit at u = 0
  gllmm predict cbpp.json new_herds.csv --fixed-only --type link -o eta.csv

The new file needs the columns of the formula's right-hand side (and of its offset), not
the response. A group the fit has not seen is an error (a misspelt level?) unless
--allow-new-levels, which predicts it at u = 0 (lme4's allow.new.levels = TRUE);
--levels and --scores given at the fit are applied to the new rows too."""

EPILOG_SMOOTH = """\
examples:
  gllmm smooth mba.csv --row statistics --col economics --nagq 15
  gllmm smooth mba.csv --row statistics --col economics --base linear_by_linear --compare
  gllmm smooth mba.csv --row statistics --col economics --base local --json
  gllmm smooth mba.csv --row statistics --col economics --base loess_gam
  gllmm smooth big.parquet --row r --col c --nagq 1 --progress -o smoothed.csv
  gllmm smooth strata.csv --row x --col y --stratum k --base linear_by_linear \\
      --association random --nagq 1

Bases: independence (model 2.5), linear_by_linear (2.6, row/column scores: the level values
when numeric, else 1, 2, ...), local (local linear likelihood, span by AICc), penalized
(penalised likelihood, eq. 2.2: lambda by AICc, or --lambda).
Fitted counts are exp(x'beta + u) at the posterior modes of the cell effects (the paper's
Table 2); 'probability' renormalises them to sum to 1 (per stratum)."""

EPILOG_EXAMPLE = """\
examples:
  gllmm example table2          Section 5.1, Table 2: smoothing the MBA table
  gllmm example table4          Section 5.2, Table 4: center-specific log odds ratios
  gllmm example table5          Section 5.2, Table 5: fitted counts of the clinical trial
  gllmm example hartzel         the cumulative / adjacent-categories logit comparison
  gllmm example all             all of the above
  gllmm example table4 --json   machine-readable (estimates, tables, paper values)

Each prints gllmm's result next to the values printed in the paper."""

EPILOG_REPORT = """\
examples:
  gllmm report --example table4 -o table4.html
  gllmm report --example table2 -o table2.html
  gllmm report mba.csv --formula "count ~ C(statistics) + C(economics) + (1 | cell)" \\
      --add-cell --heatmap statistics economics -o mba.html

The page is one self-contained HTML file (figures inlined as PNG): summary, coefficient and
variance-component tables, fitted table, caterpillar plot of the empirical Bayes effects."""

EPILOG_SIMULATE = """\
examples:
  gllmm simulate --replicates 200 --workers 2 --out results/
  gllmm simulate --size 6 --estimators sample_proportions glm_independence --replicates 100

Runs (or resumes, from its SQLite checkpoint) the paper's Table 1 study; see
'gllmm simulate --help' for all options."""


# ---------------------------------------------------------------------- commands
def _emit(payload: dict[str, Any], text: str, as_json: bool) -> None:
    print(json.dumps(payload, indent=2, allow_nan=False) if as_json else text)


def _write_table(rows: Any, path: str) -> None:
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    try:
        if path.lower().endswith((".parquet", ".pq")):
            from ._io import _require_parquet_engine

            _require_parquet_engine(path)
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"wrote {path} ({len(df)} rows)", file=sys.stderr)


def _cmd_fit(args: argparse.Namespace) -> int:
    from ._run import build_model, resolve_method, run_fit

    check_output(args.output, args.data)
    data = read_data(args.data)
    raw = data.copy() if args.save else None
    design = build_model(data, args)
    method, nodes = resolve_method(args)
    res = run_fit(design, method, nodes, progress=args.progress, seed=args.seed)
    payload = res.to_dict()
    text = res.summary()
    if args.profile:
        table = res.conf_int(level=args.profile, method="profile")
        payload["profile_interval"] = {
            "level": args.profile,
            **{str(n): [float(lo), float(hi)] for n, (lo, hi) in zip(
                table.index, table.to_numpy(), strict=True)}}
        text += f"\n\nProfile-likelihood intervals ({args.profile:.0%})\n" + table.to_string()
    if args.output:
        _write_table(payload["fitted"], args.output)
    if args.save:
        from ._saved import save_model

        save_model(args.save, res, raw, args)
    _emit(payload, text, args.json)
    return 0


def _cmd_marginal(args: argparse.Namespace) -> int:
    from ._families import run_marginal

    fit = run_marginal(read_data(args.data), args)
    _emit(fit.to_dict(), fit.summary(), args.json)
    return 0


def _cmd_association(args: argparse.Namespace) -> int:
    from ._families import build_association
    from ._run import resolve_method, run_fit

    design = build_association(read_data(args.data), args)
    method, nodes = resolve_method(args)
    res = run_fit(design, method, nodes, progress=args.progress, seed=None)
    _emit(res.to_dict(), res.summary(), args.json)
    return 0


#: --method's help, per method a command offers
METHOD_HELP = {
    "agq": "agq (default)", "laplace": "laplace (= --nagq 1)",
    "laplace2": "laplace2 (second-order Laplace, for effects of dimension 4 or more)",
    "mcem": "mcem (Monte Carlo EM, slow; --seed)", "pql": "pql (penalized quasi-likelihood)",
    "npml": "npml (nonparametric ML: --mass-points)",
}


def _add_method_args(p: argparse.ArgumentParser,
                     methods: tuple[str, ...] = ("agq", "laplace")) -> None:
    """--method (one of ``methods``), --nagq, --progress: the integration options of a GLLMM
    fit, defined once for every command that fits one."""
    helps = [METHOD_HELP[m] for m in methods]
    p.add_argument("--method", default="agq", type=str.lower, choices=methods,
                   help=", ".join(helps[:-1]) + " or " + helps[-1])
    p.add_argument("--nagq", type=nodes_or_auto, default=15, metavar="Q",
                   help="adaptive Gauss-Hermite nodes per dimension (default 15; 1 = Laplace; "
                        "auto = Laplace, then more nodes until the fit stops moving)")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar (likelihood evaluations) on stderr")


def _cmd_predict(args: argparse.Namespace) -> int:
    from ._saved import load_model, predict_file

    res, options = load_model(args.model)
    out = predict_file(res, options, read_data(args.data), args.type, args.fixed_only,
                       args.allow_new_levels)
    if args.output:
        _write_table(out, args.output)
    payload = {"type": args.type, "re_form": "NA" if args.fixed_only else "NULL",
               "predicted": out["predicted"].tolist()}
    _emit(payload, out.to_string(index=False), args.json)
    return 0


def _cmd_smooth(args: argparse.Namespace) -> int:
    from ._smooth import as_json, connect, format_smooth, run_partitioned, run_smooth

    if os.path.isdir(args.data):
        return run_partitioned(args)
    check_output(args.output, args.data)
    data = read_data(args.data)
    with connect(args.scheduler) as client:
        args.client = client
        out = run_smooth(data, args)
    if args.output:
        _write_table(out["fitted"], args.output)
    if args.json:
        _emit(as_json(out), "", True)
    else:
        print(format_smooth(out, args))
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from ._examples import DESCRIPTIONS, EXAMPLES, resolve, run_example

    if args.name == "list":
        payload = dict(DESCRIPTIONS)
        _emit(payload, "\n".join(f"{k:<9} {v}" for k, v in payload.items()), args.json)
        return 0
    try:
        names = list(EXAMPLES) if args.name.lower() == "all" else [resolve(args.name)]
    except KeyError:
        raise CliError(f"unknown example {args.name!r}; available: all, list, "
                       + ", ".join(EXAMPLES) + " (see 'gllmm example --help')") from None
    runs = {name: run_example(name, progress=args.progress) for name in names}
    if args.json:
        payload = runs[names[0]].json if len(runs) == 1 else {k: r.json for k, r in runs.items()}
        print(json.dumps(payload, indent=2, allow_nan=False))
    else:
        for name, run in runs.items():
            print(f"{'#' * 72}\n# gllmm example {name}: {run.title}\n{'#' * 72}\n")
            print(run.text, "\n")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report import example_report, fit_report

    command = "gllmm " + " ".join(shlex.quote(a) for a in (args._argv or []))
    check_output(args.output, args.data)
    if args.example and args.data:
        raise CliError("give either DATA (with --formula) or --example NAME, not both")
    if args.example:
        from ._examples import EXAMPLES, resolve, run_example

        try:
            name = resolve(args.example)
        except KeyError:
            raise CliError(f"unknown example {args.example!r}; available: "
                           + ", ".join(EXAMPLES)) from None
        rep = example_report(run_example(name, progress=args.progress), command=command)
        if args.title:
            rep.title = args.title
    elif args.data:
        if not args.formula:
            raise CliError("a report of DATA needs --formula (or use --example NAME)")
        from ..plot import fitted_heatmaps
        from ._run import build_model, resolve_method, run_fit

        data = read_data(args.data)
        design = build_model(data, args)
        method, nodes = resolve_method(args)
        res = run_fit(design, method, nodes, progress=args.progress, seed=args.seed)
        fixed = list(res.design.fixed_names)
        if args.cluster_parameter and args.cluster_parameter not in fixed:
            raise CliError(f"--cluster-parameter {args.cluster_parameter!r} is not a fixed "
                           f"effect of the model; choose one of: {', '.join(fixed)}")
        figures = []
        if args.heatmap:
            row, col = args.heatmap
            try:
                figures.append((fitted_heatmaps(res, row, col),
                                "Observed and fitted counts"))
            except ValueError as exc:
                raise CliError(f"--heatmap: {exc}") from exc
        rep = fit_report(res, args.title or f"gllmm fit of {Path(args.data).name}",
                         figures=figures, command=command,
                         cluster_parameter=args.cluster_parameter,
                         notes=[f"Formula: {args.formula}"])
    else:
        raise CliError("nothing to report: give DATA --formula F, or --example NAME "
                       "(e.g. gllmm report --example table4 -o report.html)")
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise CliError(f"cannot write {out}: directory {out.parent} does not exist")
    try:
        rep.write(out)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
    payload = {"path": str(out), "figures": rep.n_figures, "bytes": out.stat().st_size}
    _emit(payload, f"wrote {out} ({payload['bytes'] // 1024} KiB, {rep.n_figures} figures)",
          args.json)
    return 0


def _cmd_simulate(argv: Sequence[str]) -> int:
    try:
        from ..simulate._cli import main_simulate
    except ImportError as exc:
        raise GllmmError(f"the simulation module is not available in this installation "
                         f"({exc}); reinstall gllmm") from exc
    try:
        return int(main_simulate(list(argv)))
    except SystemExit as exc:  # argparse inside the simulate command
        return _exit_code(exc)


# ---------------------------------------------------------------------- parser
def _add_model_args(p: argparse.ArgumentParser, formula_required: bool) -> None:
    p.add_argument("--formula", required=formula_required, metavar="F",
                   help="lme4-style formula, e.g. 'count ~ C(a) + C(b) + (1 | cell)'")
    p.add_argument("--family", default="poisson", type=str.lower, choices=FAMILIES,
                   help="conditional distribution of the counts (default poisson; binomial: "
                        "'cbind(successes, failures) ~ ...', a 0/1 or a two-level factor "
                        "response; ordinal / multinomial: ordinal or nominal logits (--link) "
                        "of a factor response, or of 'cbind(c1, c2, ...) ~ ...' counts)")
    p.add_argument("--link", default="cumulative", choices=LINKS,
                   help="ordinal / multinomial logit (default cumulative)")
    p.add_argument("--count", default=None, metavar="COL",
                   help="frequencies of an ordinal / multinomial response (or --weights); "
                        "default: the column 'count' if there is one, else one row per "
                        "observation")
    p.add_argument("--convention", default="paper", choices=("paper", "clmm"),
                   help="sign of covariates in ordinal logits: paper (alpha_j + x'beta, "
                        "default) or clmm (theta_j - x'beta, as ordinal::clm and MASS::polr)")
    _add_method_args(p, METHODS)
    p.add_argument("--mass-points", type=mass_points, default=2, metavar="K",
                   help="npml: number of mass points, or a range K1:K2 chosen by BIC "
                        "(default 2)")
    p.add_argument("--covariance", choices=("identity", "diagonal", "unstructured"),
                   default=None, help="override the random-effect covariance structure")
    p.add_argument("--levels", action="append", metavar="COL=a,b,...",
                   help="order of a factor's levels (repeatable)")
    p.add_argument("--scores", action="append", metavar="COL=s1,s2,...",
                   help="scores of a factor's levels: adds the column COL_score (repeatable)")
    p.add_argument("--add-cell", action="store_true",
                   help="add a column 'cell' numbering the rows (for '(1 | cell)')")
    p.add_argument("--offset", metavar="EXPR",
                   help="offset: a column or expression, e.g. 'log(Holders)' (added to any "
                        "offset() terms of the formula)")
    p.add_argument("--weights", metavar="EXPR",
                   help="frequency weights: a column or expression (each row counts w times)")
    p.add_argument("--seed", type=seed_int, default=None, help="random seed (MCEM)")


def _json_and_run(p: argparse.ArgumentParser, func, json_help: str) -> None:
    """Every command's last option, --json (its help ``json_help``), and the function that
    runs the command."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gllmm", description=DESCRIPTION,
                                     epilog=EPILOG_MAIN, formatter_class=RAW)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"gllmm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("fit", help="fit a GLLMM given by a formula to a CSV/Parquet table",
                       description="Fit a generalized log-linear mixed model by maximum "
                       "likelihood (AGQ, Laplace or MCEM).", epilog=EPILOG_FIT,
                       formatter_class=RAW)
    p.add_argument("data", help="CSV, TSV or Parquet file, one row per cell")
    _add_model_args(p, formula_required=True)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="also write the fitted table (CSV, or Parquet by suffix)")
    p.add_argument("--save", metavar="MODEL.json",
                   help="save the fitted model for 'gllmm predict MODEL.json NEW.csv'")
    p.add_argument("--profile", nargs="?", type=float, const=0.95, default=None,
                   metavar="LEVEL", help="also profile-likelihood intervals of every "
                   "parameter (refits; default level 0.95)")
    _json_and_run(p, _cmd_fit, "print the result as JSON")

    q = sub.add_parser("predict", help="predict new rows from a model saved by 'fit --save'",
                       description="Predict the rows of a new table from a model saved by "
                       "'gllmm fit ... --save MODEL.json' (lme4's predict(fit, newdata)).",
                       epilog=EPILOG_PREDICT, formatter_class=RAW)
    q.add_argument("model", help="a model saved by 'gllmm fit ... --save MODEL.json'")
    q.add_argument("data", help="CSV, TSV or Parquet file of the rows to predict")
    q.add_argument("--type", choices=("link", "response"), default="response",
                   help="response (default): mean count, or probability for binomial; "
                        "link: the linear predictor")
    q.add_argument("--fixed-only", action="store_true",
                   help="leave out the random effects (lme4's re.form = NA); by default "
                        "groups of the fit get their predicted effects")
    q.add_argument("--allow-new-levels", action="store_true",
                   help="predict groups the fit has not seen at u = 0 (lme4's "
                        "allow.new.levels = TRUE); by default they are an error")
    q.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows with a column 'predicted' (CSV, or Parquet by suffix)")
    _json_and_run(q, _cmd_predict, "print {type, re_form, predicted}")

    s = sub.add_parser("smooth", help="smooth a sparse table by cell-wise random effects",
                       description="Smooth a contingency table toward a base model with one "
                       "random effect per cell (Coull & Agresti 2003, eqs. 2.5-2.6), or by "
                       "local linear likelihood.", epilog=EPILOG_SMOOTH, formatter_class=RAW)
    s.add_argument("data", help="CSV, TSV or Parquet file in long form, one row per cell; or a "
                   "directory of Parquet files listing the non-zero cells (fitted partition "
                   "by partition, smoothed cells written as Parquet next to it or to -o DIR)")
    s.add_argument("--row", required=True, metavar="COL", help="row classification column")
    s.add_argument("--col", required=True, metavar="COL", help="column classification column")
    s.add_argument("--count", default="count", metavar="COL", help="counts (default 'count')")
    s.add_argument("--stratum", metavar="COL", help="stratum column (three-way tables)")
    s.add_argument("--base", default="independence", type=str.lower, choices=BASE_CHOICES,
                   help="base model (default independence)")
    s.add_argument("--association", default="heterogeneous",
                   choices=("heterogeneous", "common", "random"),
                   help="stratified linear_by_linear tables: beta per stratum, one beta, or "
                        "random beta_k (needs --nagq 1)")
    s.add_argument("--nagq", type=positive_int, default=15, metavar="Q",
                   help="adaptive Gauss-Hermite nodes per cell (default 15; 1 = Laplace)")
    s.add_argument("--row-scores", metavar="s1,s2,...", help="row scores in level order")
    s.add_argument("--col-scores", metavar="s1,s2,...", help="column scores in level order")
    s.add_argument("--levels", action="append", metavar="COL=a,b,...",
                   help="order of a classification's levels (repeatable)")
    s.add_argument("--lambda", dest="penalty", default="aicc", metavar="L",
                   help="penalized base: smoothing parameter >= 0, inf (independence), or a "
                        "criterion choosing it (default aicc)")
    s.add_argument("--span", type=float, default=None,
                   help="local and loess_gam bases: nearest-neighbour span (default: chosen "
                        "by AICc)")
    s.add_argument("--compare", action="store_true",
                   help="also fit the other cell-wise base; print the LR test of beta = 0")
    s.add_argument("--engine", choices=("auto", "general"), default="auto",
                   help="auto: the scalable cell-wise path; general: the general GLLMM engine")
    s.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="fit the cell-wise bases on the Dask cluster of this scheduler "
                        "(tcp://HOST:8786); the estimates equal the one-process fit")
    s.add_argument("--partitions", type=whole_number("partitions", 1), default=None, metavar="N",
                   help="with --scheduler: row blocks of cells (default two per worker)")
    s.add_argument("-o", "--output", metavar="FILE",
                   help="write the smoothed table (CSV, or Parquet by suffix; a directory for "
                        "a directory input)")
    s.add_argument("--progress", action="store_true",
                   help="show a progress bar on stderr (directory input: one line per "
                        "Newton iteration)")
    _json_and_run(s, _cmd_smooth, "print the result as JSON")

    sub.add_parser("simulate", help="run the paper's simulation study (Table 1)",
                   description="Run or resume the Table 1 study (options: 'gllmm simulate "
                   "--help').", epilog=EPILOG_SIMULATE, formatter_class=RAW, add_help=False)

    e = sub.add_parser("example", help="reproduce the paper's tables (table2, table4, table5)",
                       description="Fit the paper's examples and print them next to the "
                       "published values.", epilog=EPILOG_EXAMPLE, formatter_class=RAW)
    e.add_argument("name", metavar="NAME",
                   help="table2, table4, table5, hartzel, all, or list")
    e.add_argument("--progress", action="store_true", help="show a progress bar of the fits")
    _json_and_run(e, _cmd_example, "print the results as JSON")

    r = sub.add_parser("report", help="write a self-contained HTML report of a fit or example",
                       description="Write one HTML page (figures inlined) for a fit of DATA "
                       "by --formula, or for one of the paper's examples.",
                       epilog=EPILOG_REPORT, formatter_class=RAW)
    r.add_argument("data", nargs="?", help="CSV, TSV or Parquet file (with --formula)")
    r.add_argument("--example", metavar="NAME", help="table2, table4, table5 or hartzel")
    r.add_argument("-o", "--output", default="gllmm_report.html", metavar="FILE",
                   help="HTML file to write (default gllmm_report.html)")
    r.add_argument("--title", help="page title")
    r.add_argument("--heatmap", nargs=2, metavar=("ROW", "COL"),
                   help="add observed vs fitted heatmaps of the table ROW x COL")
    r.add_argument("--cluster-parameter", metavar="NAME",
                   help="fixed effect whose cluster-specific values beta + u_k the "
                        "caterpillar plot shows")
    _add_model_args(r, formula_required=False)
    _json_and_run(r, _cmd_report, "print {path, figures, bytes} as JSON")

    from ._families import add_association_parser, add_marginal_parser

    add_marginal_parser(sub, RAW)
    sub.choices["marginal"].set_defaults(func=_cmd_marginal)
    add_association_parser(sub, RAW, _add_method_args)
    sub.choices["association"].set_defaults(func=_cmd_association)
    return parser


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "simulate":
            return _cmd_simulate(argv[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            return _exit_code(exc)
        args._argv = argv
        return int(args.func(args))
    except FitError as exc:
        print(f"gllmm: error: the fit failed: {exc}", file=sys.stderr)
        return 1
    except GllmmError as exc:
        print(f"gllmm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gllmm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, or a numerical failure the library did not classify
        if os.environ.get("GLLMM_DEBUG"):
            raise
        print(f"gllmm: error: {type(exc).__name__}: {exc} (set GLLMM_DEBUG=1 for the "
              "traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
