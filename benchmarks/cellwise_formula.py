"""Benchmark: the cell-wise model as a formula through ``gllmm.fit`` against ``gllmm smooth``.

    python benchmarks/cellwise_formula.py [--sizes 300 1000] [--timeout 900]

The model (2.6) ``count ~ C(row) + C(col) + xy + (1 | cell)`` on the generated n x n tables of
``smoothing.py`` (about 3 counts per cell), AGQ with 15 nodes, fitted two ways, each in its own
one-thread process:

- ``smooth``: the smoothing command, ``gllmm smooth data.csv --base linear_by_linear --nagq 15``
  (integer scores 1..n; the linear-by-linear term is the same model as with the formula's
  linspace scores, up to row and column effects, so the log-likelihoods agree);
- ``formula``: ``gllmm.build_design(df, formula)`` then ``gllmm.fit(design, method="agq",
  n_nodes=15)``, which chooses the cell-wise strategy from X's structure.

Printed per size and way: whole-process wall seconds and peak resident MB (``os.wait4``), and
for the formula path the in-process design and fit seconds (wall, and the fit's CPU seconds:
with one thread, the time on a core, robust to other load on the machine), the strategy and
the log-likelihood. Targets (issue 15): the formula path within 1.5x of the smoothing command at
300 x 300; at 1000 x 1000 under 10 s of fitting and 2 GB.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from smoothing import run_measured, write_csv  # noqa: E402

FORMULA = "count ~ C(row) + C(col) + x + (1 | cell)"


def child(csv: Path, out: Path) -> None:
    """The formula path in this process; a JSON record with in-process timings."""
    import numpy as np
    import pandas as pd

    import gllmm

    df = pd.read_csv(csv)
    df["cell"] = np.arange(len(df))
    t0 = time.perf_counter()
    design = gllmm.build_design(df, FORMULA)
    t1, c1 = time.perf_counter(), time.process_time()
    res = gllmm.fit(design, method="agq", n_nodes=15)
    t2, c2 = time.perf_counter(), time.process_time()
    out.write_text(json.dumps({
        "design_s": t1 - t0, "fit_s": t2 - t1, "fit_cpu": c2 - c1, "strategy": res.strategy,
        "loglik": res.loglik, "sigma": float(res.params[-1]), "converged": res.converged,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 1000])
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.csv, a.out)
        return
    gllmm_cli = str(Path(sys.executable).with_name("gllmm"))
    print(f"# {FORMULA}, AGQ 15; whole process, one thread")
    print(f"{'size':>10} {'way':>8} {'status':>8} {'wall s':>8} {'peak MB':>8} "
          f"{'design s':>9} {'fit s':>7} {'fit cpu':>7} {'strategy':>9} {'loglik':>16} "
          f"{'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            csv = Path(tmp) / f"table{n}.csv"
            write_csv(n, csv)
            smooth_out = Path(tmp) / f"smooth{n}.json"
            cmd = (f"exec {shlex.quote(gllmm_cli)} smooth {shlex.quote(str(csv))} --row row "
                   f"--col col --base linear_by_linear --nagq 15 --json > "
                   f"{shlex.quote(str(smooth_out))}")  # exec: the measured process is gllmm
            status, wall_s, mb_s, tail = run_measured(["sh", "-c", cmd], a.timeout)
            ll_s = json.loads(smooth_out.read_text())["loglik"] if smooth_out.exists() else None
            print(f"{n:>4} x {n:<3} {'smooth':>8} {status:>8} {wall_s:>8.1f} {mb_s:>8.0f} "
                  f"{'':>9} {'':>7} {'':>7} {'':>9} {ll_s if ll_s is not None else '':>16} "
                  + ("" if status == "ok" else tail))
            out = Path(tmp) / f"formula{n}.json"
            status, wall, mb, tail = run_measured(
                [sys.executable, str(Path(__file__).resolve()), "--child", "--csv", str(csv),
                 "--out", str(out)], a.timeout)
            rec = json.loads(out.read_text()) if status == "ok" and out.exists() else {}
            ratio = wall / wall_s if status == "ok" else float("nan")
            print(f"{n:>4} x {n:<3} {'formula':>8} {status:>8} {wall:>8.1f} {mb:>8.0f} "
                  f"{rec.get('design_s', float('nan')):>9.2f} "
                  f"{rec.get('fit_s', float('nan')):>7.2f} "
                  f"{rec.get('fit_cpu', float('nan')):>7.2f} "
                  f"{rec.get('strategy', ''):>9} "
                  f"{rec.get('loglik', float('nan')):>16.6f} {ratio:>6.2f} "
                  + ("" if status == "ok" else tail), flush=True)


if __name__ == "__main__":
    main()
