"""Benchmark: the paper's full 3x3 Table 1 study on 1 and 2 local workers.

Runs ``paper_table1_study(3)`` (2 score sets x 3 betas x 3 sample sizes, every Table 1 estimator
available here) once per worker count into a fresh checkpoint, prints the wall times and the
speed-up (goals: under 10 minutes, speed-up >= 1.8 on a 2-core machine), checks the runs agree
exactly, prints the mean time per fit of each estimator, and compares every Table 1 entry with
the published value in units of Monte Carlo SE.

    python benchmarks/simulation.py                       # 1000 replicates, workers 1 and 2
    python benchmarks/simulation.py --replicates 100      # quicker
    python benchmarks/simulation.py --workers 2 --out results/   # one run, outputs written

Numbers are measured in the run that prints them; the machine's load at the time matters. On a
shared machine the wall-time speed-up mixes parallelism with contention, so each run also
prints its busy time (the sum of the per-table times measured inside the workers) and the
effective parallelism busy / wall: when other processes take CPU, the per-table time inflates
and the parallelism stays below the worker count.
"""

from __future__ import annotations

import os

# one BLAS thread in this process too, as the runner gives its workers, so that the 1-worker
# baseline is not slowed by idle BLAS threads (must precede the numpy import)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gllmm.simulate import (  # noqa: E402
    TABLE1_ESTIMATORS,
    available_estimators,
    compare_with_published,
    paper_table1_study,
    render_table,
    run_study,
    summarise,
    write_outputs,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", type=int, default=3, choices=(3, 6))
    ap.add_argument("--estimators", nargs="+", default=None)
    ap.add_argument("--out", default=None, help="write Table 1 outputs of the last run here")
    ap.add_argument("--db-dir", default=None, help="where the checkpoints go (default: temp)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    estimators = args.estimators or available_estimators(TABLE1_ESTIMATORS)
    spec = paper_table1_study(args.size, replicates=args.replicates, estimators=estimators)
    n_tasks = len(spec.scenarios) * spec.replicates
    print(f"study: {spec.name}; {len(spec.scenarios)} scenarios x {spec.replicates} replicates "
          f"= {n_tasks} tables; estimators: {', '.join(estimators)}")
    print(f"machine: {os.cpu_count()} CPUs; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    db_dir = Path(args.db_dir or tempfile.mkdtemp(prefix="gllmm_sim_"))
    db_dir.mkdir(parents=True, exist_ok=True)

    runs = {}
    for w in args.workers:
        db = db_dir / f"table1_{args.size}x{args.size}_{spec.replicates}_w{w}.sqlite"
        t0 = time.perf_counter()
        run = run_study(spec, db, n_workers=w, progress=args.progress, overwrite=True)
        wall = time.perf_counter() - t0
        runs[w] = (run, wall)
        busy = float(run.results["seconds"].sum())
        print(f"workers={w}: {wall:8.1f} s wall  ({n_tasks / wall:6.1f} tables/s, "
              f"backend {run.backend}); {1000 * busy / n_tasks:6.1f} ms per table inside the "
              f"workers, effective parallelism {busy / wall:4.2f}; load average now "
              f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if 1 in runs and len(runs) > 1:
        base = runs[1][1]
        for w, (_, wall) in runs.items():
            if w != 1:
                print(f"speed-up 1 -> {w} workers: {base / wall:.2f}x")
        keys = ["scenario", "replicate", "estimator"]
        ref = runs[1][0].results.sort_values(keys)[keys + ["mse", "status"]]
        for w, (run, _) in runs.items():
            other = run.results.sort_values(keys)[keys + ["mse", "status"]]
            same = ref.reset_index(drop=True).equals(other.reset_index(drop=True))
            print(f"results with {w} workers identical to 1 worker: {same}")

    run, wall = runs[args.workers[-1]]
    if wall > 0:
        full = wall * (len(spec.scenarios) * 1000) / n_tasks
        print(f"projected wall time of the 1000-replicate study on {run.n_workers} "
              f"worker(s): {full / 60:.1f} min")
    long = summarise(run.results, spec)
    cpu = long.groupby("estimator", sort=False)["seconds"].mean() * 1000
    print("\nmean time per fit (ms):")
    print(cpu.round(2).to_string())
    table = run.table1()
    print("\nTable 1 (n-normalised MSE, Monte Carlo SE in parentheses):")
    print(render_table(table, "text"))
    if args.size == 3:
        cmp = compare_with_published(table)
        cmp["se_paper"] = cmp["se"] * np.sqrt(spec.replicates / 1000)
        cmp["z_combined"] = cmp["difference"] / np.sqrt(cmp["se"] ** 2 + cmp["se_paper"] ** 2)
        print("entries within 3 MC SEs of the printed value, by estimator "
              "(own SE | SE combined with the paper's):")
        by = cmp.groupby("estimator", sort=False).agg(
            within=("within_3se", "sum"), total=("within_3se", "size"),
            within_combined=("z_combined", lambda z: int((z.abs() <= 3).sum())),
            max_abs_z=("z", lambda z: float(z.abs().max())))
        print(by.to_string())
        pd.set_option("display.width", 160)
        print("\nentries outside 3 SEs (z = (ours - printed) / our SE):")
        out = cmp[~cmp["within_3se"]]
        print(out[["scores", "beta", "n", "estimator", "mse", "se", "published", "z"]]
              .round(4).to_string(index=False))
    if args.out:
        paths = write_outputs(table, args.out, spec)
        for kind, path in paths.items():
            print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
