"""``gllmm`` command-line entry point.

Subcommands: ``fit`` (a formula model on a CSV/Parquet table), ``example`` (the paper's
examples by name). Errors go to stderr with exit code 2 (bad input) or 1 (fit failure).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from ..errors import GllmmError

EPILOG_FIT = """examples:
  gllmm fit mba.csv --formula "count ~ C(statistics) + C(economics) + (1 | cell)" --nagq 15
  gllmm fit trial.csv --formula "count ~ C(center)*C(treatment) + (0 + xs | center)" --json
"""


def _read(path: str):
    import pandas as pd

    try:
        if path.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise GllmmError(f"no such file: {path}") from exc
    except ImportError as exc:
        raise GllmmError(f"cannot read {path}: {exc} (install pyarrow for Parquet)") from exc
    except Exception as exc:  # parse errors from pandas
        raise GllmmError(f"cannot read {path}: {exc}") from exc


def _cmd_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from ..fit import fit
    from ..spec import build_design

    data = _read(args.data)
    if args.add_cell and "cell" not in data.columns:
        data["cell"] = np.arange(len(data))
    design = build_design(data, args.formula, family=args.family)
    method = "laplace" if args.nagq == 1 or args.method == "laplace" else "agq"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(design, method=method, n_nodes=args.nagq)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(res.summary())
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from ._examples import EXAMPLES, run_example

    names = sorted(EXAMPLES) if args.name == "all" else [args.name]
    out = {}
    for name in names:
        if name not in EXAMPLES:
            raise GllmmError(f"unknown example {name!r}; available: all, "
                             + ", ".join(sorted(EXAMPLES)))
        out[name] = run_example(name, json_output=args.json)
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[names[0]], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gllmm",
        description="Generalized log-linear models with random effects (Coull & Agresti 2003).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="fit a model given by a formula", epilog=EPILOG_FIT,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="CSV or Parquet file, one row per cell")
    p.add_argument("--formula", required=True, help="lme4-style formula")
    p.add_argument("--family", default="poisson", choices=["poisson", "binomial"])
    p.add_argument("--nagq", type=int, default=15, help="nodes per dimension (1 = Laplace)")
    p.add_argument("--method", default="agq", choices=["agq", "laplace"])
    p.add_argument("--add-cell", action="store_true",
                   help="add a column 'cell' numbering the rows (for cell-wise effects)")
    p.add_argument("--json", action="store_true", help="print a JSON result")
    p.set_defaults(func=_cmd_fit)
    e = sub.add_parser("example", help="fit the paper's examples by name",
                       epilog="examples:\n  gllmm example all\n  gllmm example table4 --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("name", help="example name or 'all'")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_example)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except GllmmError as exc:
        print(f"gllmm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gllmm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
