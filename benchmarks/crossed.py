"""Crossed random effects: Laplace by the dense path against the sparse path.

Poisson ``count ~ x + (1 | a) + (1 | b)`` on simulated data (levels of a and b drawn at random
for each row, so the two factors form one cluster with q = levels(a) + levels(b) effects).
For each size the script prints the median seconds of one value-and-gradient evaluation on each
path (the dense one only where its (B, q, q, P) arrays stay small), their difference, the
seconds of constructing ``MarginalLikelihood`` (its ``__init__`` forms the dense
``Z E_k`` array, B q^2 m work, whichever path evaluates later) and of a whole
``gllmm.fit(design, method="laplace")`` (construction, BFGS, observed information,
posterior) on the sparse path.

Usage::

    .venv/bin/python benchmarks/crossed.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

import gllmm
from gllmm.integrate import MarginalLikelihood
from gllmm.spec import build_design

DENSE_LIMIT = 3e7  # B q^2 P above this: skip the dense path (memory, minutes per evaluation)


def crossed(n_a: int, n_b: int, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, n_a)[a] + rng.normal(0, 0.4, n_b)[b]
    return pd.DataFrame({"a": a, "b": b, "x": x, "count": rng.poisson(np.exp(eta))})


def per_call(obj: MarginalLikelihood, x: np.ndarray, reps: int) -> float:
    obj.value_and_gradient(x)
    times = []
    for i in range(reps):
        xi = x + 1e-3 * (i + 1)  # new parameters: the modes move as in an optimisation
        t0 = time.perf_counter()
        obj.value_and_gradient(xi)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    args = ap.parse_args()
    sizes = [(15, 12, 150), (30, 25, 400), (40, 30, 600), (100, 80, 2000), (200, 150, 5000),
             (500, 400, 20000)]
    if args.quick:
        sizes = sizes[:5]
    reps = 3 if args.quick else 7
    x = np.array([0.2, 0.4, 0.5, 0.4])
    print(f"{'levels':>9} {'rows':>6} {'q':>4} {'dense s':>9} {'sparse s':>9} "
          f"{'|dvalue|':>9} {'|dgrad|':>9} {'init s':>7} {'fit s':>7} {'loglik':>12}")
    for n_a, n_b, n in sizes:
        d = build_design(crossed(n_a, n_b, n), "count ~ x + (1 | a) + (1 | b)")
        q = d.n_random
        t0 = time.perf_counter()
        sparse = MarginalLikelihood(d, 1)
        t_init = time.perf_counter() - t0
        sparse.sparse = True
        t_sparse = per_call(sparse, x, reps)
        t_dense = dv = dg = float("nan")
        if n * q * q * len(x) <= DENSE_LIMIT:
            dense = MarginalLikelihood(d, 1)
            dense.sparse = False
            t_dense = per_call(dense, x, max(1, reps // 2))
            v1, g1 = dense.value_and_gradient(x)
            v2, g2 = sparse.value_and_gradient(x)
            dv, dg = abs(v1 - v2), float(np.abs(g1 - g2).max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            res = gllmm.fit(d, method="laplace")
            t_fit = time.perf_counter() - t0
        print(f"{n_a:>4}x{n_b:<4} {n:>6} {q:>4} {t_dense:>9.4f} {t_sparse:>9.4f} "
              f"{dv:>9.1e} {dg:>9.1e} {t_init:>7.2f} {t_fit:>7.2f} {res.loglik:>12.3f}")


if __name__ == "__main__":
    main()
