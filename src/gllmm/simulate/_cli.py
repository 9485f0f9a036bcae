"""``gllmm simulate``: run (or resume) the paper's Table 1 study and write its outputs.

    gllmm simulate [--size 3|6] [--replicates N] [--workers K] [--scheduler ADDR] [--db PATH]
                   [--out DIR] [--estimators NAME ...] [--seed S] [--no-progress]

The study is checkpointed in ``--db`` (default ``<out>/table1_<size>x<size>.sqlite``): a run
that is interrupted, even killed, continues where it stopped when started again with the same
arguments. Outputs in ``--out``: ``table1.csv`` (average n-normalised MSE and Monte Carlo SE per
scenario and estimator), ``table1.md`` / ``table1.txt`` (rendered), ``table1_mse_by_n.png`` and,
for 3 x 3, ``table1_vs_published.csv`` (each entry against the printed value in MC SE units).
Exit codes: 0 success, 2 bad arguments or a store of another study, 1 other failures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import GllmmError

EPILOG = """examples:
  gllmm simulate --replicates 200 --workers 2 --out results/
  gllmm simulate --size 6 --estimators sample_proportions glm_independence --replicates 100
  gllmm simulate --scheduler tcp://10.0.0.5:8786 --db table1.sqlite
"""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``gllmm simulate`` (added to ``parser`` when given, for subcommands)."""
    from ._estimators import ESTIMATORS, TABLE1_ESTIMATORS
    from ._spec import DEFAULT_SEED

    p = parser or argparse.ArgumentParser(
        prog="gllmm simulate", description="Reproduce Table 1 of Coull & Agresti (2003).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", type=int, choices=(3, 6), default=3,
                   help="table size: 3 (Table 1) or 6 (default 3)")
    p.add_argument("--replicates", type=int, default=1000,
                   help="tables per scenario (default 1000)")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes (default 1: in this process)")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address; run on that cluster instead of local workers")
    p.add_argument("--db", default=None,
                   help="SQLite checkpoint file (default <out>/table1_<size>x<size>.sqlite)")
    p.add_argument("--out", default="simulation_output", help="output directory")
    p.add_argument("--estimators", nargs="+", default=None, metavar="NAME",
                   help="estimators (default: Table 1's columns available here); valid: "
                        + ", ".join(sorted(ESTIMATORS)))
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"study seed (default {DEFAULT_SEED})")
    p.add_argument("--fit-scores", choices=("equally_spaced", "true"),
                   default="equally_spaced",
                   help="scores given to the L x L and local-likelihood estimators")
    p.add_argument("--overwrite", action="store_true", help="start the checkpoint afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_table1=TABLE1_ESTIMATORS)
    return p


def main_simulate(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gllmm simulate``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the study described by parsed arguments (shared with the ``gllmm`` command)."""
    from ._estimators import TABLE1_ESTIMATORS, available_estimators
    from ._report import compare_with_published, render_table, write_outputs
    from ._runner import run_study
    from ._spec import paper_table1_study
    from ._store import StoreMismatchError

    if args.replicates < 1 or args.workers < 1:
        print("error: --replicates and --workers must be positive", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"error: --seed must be a non-negative integer, got {args.seed}", file=sys.stderr)
        return 2
    if Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"error: --out {args.out} is a file; give a directory for the tables and plots",
              file=sys.stderr)
        return 2
    try:
        if args.estimators is None:
            estimators = available_estimators(TABLE1_ESTIMATORS)
            skipped = sorted(set(TABLE1_ESTIMATORS) - set(estimators))
            if skipped:
                print(f"note: not available here, skipped: {', '.join(skipped)}",
                      file=sys.stderr)
        else:
            estimators = list(args.estimators)
        spec = paper_table1_study(args.size, args.replicates, args.seed, estimators)
        spec = spec.with_options(fit_scores=args.fit_scores)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        db = args.db or str(out / f"table1_{args.size}x{args.size}.sqlite")
        run = run_study(spec, db, n_workers=args.workers, scheduler=args.scheduler,
                        progress=not args.no_progress, overwrite=args.overwrite)
    except StoreMismatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GllmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError | ImportError) else 1
    table = run.table1()
    paths = write_outputs(table, out, spec)
    print(render_table(table, "text"))
    print(f"{run.computed} replicates computed, {run.skipped} resumed from {db}; "
          f"{run.elapsed:.1f} s on {run.n_workers} worker(s) ({run.backend})")
    if spec.size == 3:
        cmp = compare_with_published(table)
        if len(cmp):
            inside = int(cmp["within_3se"].sum())
            print(f"{inside} of {len(cmp)} entries within 3 Monte Carlo SEs of the printed "
                  "Table 1")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main_simulate())
