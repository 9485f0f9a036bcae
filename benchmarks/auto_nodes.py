"""Cost of ``n_nodes="auto"`` against the fixed rule, on the paper's Section 5 models.

For each model: the median seconds of ``fit(design, n_nodes=Q)`` (Q the paper's rule) and of
``fit(design, n_nodes="auto")`` in one process (one warm-up each, then ``--reps`` timed fits),
their ratio, the rule auto chose, and the largest parameter difference between the two fits.
The issue's rule: make auto the default only where the ratio is below 2.

Usage::

    .venv/bin/python benchmarks/auto_nodes.py [--reps 7] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import gllmm
from gllmm import datasets, models


def cases() -> dict:
    mba = datasets.load("mba")
    trial = datasets.load("clinical_trial")
    df = trial.copy()
    df["x"] = (df["treatment"] == "drug").astype(float)
    return {
        "mba_2.5": (models.cellwise_smoothing(mba, "statistics", "economics"), 15),
        "mba_2.6": (models.cellwise_smoothing(mba, "statistics", "economics",
                                              base="linear_by_linear"), 15),
        "clinical_local": (models.stratified_local_association(
            trial, "center", "treatment", "response"), 15),
        "clinical_global": (models.stratified_global_association(
            trial, "center", "treatment", "response"), 15),
        "cumulative_2d": (models.ordinal_mixed(df, "response ~ x + (1 + x | center)"), 10),
    }


def timed(design, n_nodes, reps: int) -> tuple[float, object]:
    gllmm.fit(design, n_nodes=n_nodes)  # warm-up (compiled kernels, caches)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        res = gllmm.fit(design, n_nodes=n_nodes)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repetitions")
    args = ap.parse_args()
    reps = 3 if args.quick else args.reps
    print(f"{'model':<16}{'Q':>4}{'fixed s':>10}{'auto s':>10}{'ratio':>7}{'chosen':>8}"
          f"{'max |diff|':>12}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (design, q) in cases().items():
            t_fix, fixed = timed(design, q, reps)
            t_auto, auto = timed(design, "auto", reps)
            diff = float(np.nanmax(np.abs(auto.params - fixed.params)))
            print(f"{name:<16}{q:>4}{t_fix:>10.4f}{t_auto:>10.4f}{t_auto / t_fix:>7.2f}"
                  f"{auto.n_nodes:>8}{diff:>12.1e}")


if __name__ == "__main__":
    main()
