"""The general implicit path on model (6.1)-(6.3): whole-process seconds, before and after.

Simulated bivariate ordinal pairs (3 x 3 categories), 611 pairs in 40 clusters, a binary
pair-level covariate ``x`` (so 80 blocks: cluster x covariate pattern) in both marginal
cumulative logits and in the log global odds ratio (``--continuous``: a normal ``x``, one block
per pair, 611 blocks), random
intercepts in all three parts (diagonal covariance): ``models.bivariate_ordinal`` fitted by
Laplace and by AGQ with 5 nodes per dimension (5^3 = 125 per cluster). The data are generated
once with a seeded ``numpy.random.Generator``; each fit runs in its own process (start-up,
imports, design, fit, SEs), so the seconds are whole-process wall seconds, with the process's
CPU seconds beside them (steadier on a shared machine).

``--old SRC`` times a second source tree too (e.g. a git worktree of an earlier commit, as
``git worktree add /tmp/old <commit>`` then ``--old /tmp/old/src``) on the same data and prints
old / new seconds and the largest differences of estimates and log-likelihood. Each tree runs
a small fit untimed first so that compiled kernels are cached (their compilation is not the
fit's cost).

Usage::

    .venv/bin/python benchmarks/implicit.py [--old OLD_SRC] [--methods laplace agq5] [--seed 61]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent / "src"
METHODS = {"laplace": ("laplace", 1), "agq5": ("agq", 5)}
TRUE = {"alpha1": (-0.5, 0.8), "alpha2": (-0.3, 1.0), "beta1": 0.5, "beta2": -0.4,
        "beta0": 1.0, "beta3": 0.5, "sd": (0.8, 0.6, 0.7)}


def simulate(seed: int, continuous: bool = False, n_pairs: int = 611, n_clusters: int = 40):
    """Pairs (y1, y2) in 3 x 3 categories from model (6.1)-(6.3) with all three effects."""
    import pandas as pd

    from gllmm.links import dale_full_family

    rng = np.random.default_rng(seed)
    size = 1 + rng.multinomial(n_pairs - n_clusters, np.full(n_clusters, 1 / n_clusters))
    cl = np.repeat(np.arange(n_clusters), size)
    u = rng.normal(size=(n_clusters, 3)) * np.array(TRUE["sd"])
    x = rng.normal(size=n_pairs)
    if not continuous:
        x = (x > 0).astype(float)
    eta = np.empty((n_pairs, 8))
    eta[:, :2] = np.array(TRUE["alpha1"]) + (TRUE["beta1"] * x + u[cl, 0])[:, None]
    eta[:, 2:4] = np.array(TRUE["alpha2"]) + (TRUE["beta2"] * x + u[cl, 1])[:, None]
    eta[:, 4:] = (TRUE["beta0"] + TRUE["beta3"] * x + u[cl, 2])[:, None]
    fam = dale_full_family(np.ones((n_pairs, 3, 3)))
    pi = fam.probabilities(eta[:, None, :])[:, 0]
    cell = (rng.random(n_pairs)[:, None] > np.cumsum(pi, axis=1)).sum(axis=1)
    return pd.DataFrame({"id": cl, "x": x, "y1": cell // 3, "y2": cell % 3})


def worker(method: str, seed: int, continuous: bool) -> None:
    """Design and fit in this process; print the result as one JSON line. ``warm``: a small
    fit (60 pairs) that compiles and caches the kernels."""
    import warnings

    import gllmm
    from gllmm import models

    t0 = time.perf_counter()
    df = simulate(seed, continuous, *((60, 6) if method == "warm" else ()))
    d = models.bivariate_ordinal(df, "y1", "y2", "id", marginal1="x", marginal2="x",
                                 association="x")
    name, nodes = METHODS.get(method, METHODS["laplace"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = gllmm.fit(d, method=name, n_nodes=nodes)
    print(json.dumps({"params": np.r_[res.beta.to_numpy(), res.theta].tolist(),
                      "loglik": float(res.loglik), "converged": bool(res.converged),
                      "fit_s": time.perf_counter() - t0, "blocks": int(d.n_blocks)}))


def run(src: Path, method: str, seed: int, continuous: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", method, "--seed", str(seed)]
                            + (["--continuous"] if continuous else []),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        raise RuntimeError(f"{src} {method} failed:\n{err[-3000:]}")
    rec = json.loads(out.strip().splitlines()[-1])
    rec.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="src directory of the code to compare against")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seed", type=int, default=61)
    ap.add_argument("--continuous", action="store_true",
                    help="a normal covariate (611 blocks) instead of a binary one (80)")
    ap.add_argument("--worker", choices=[*METHODS, "warm"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.seed, args.continuous)
        return
    trees = {"new": NEW_SRC} | ({"old": args.old} if args.old else {})
    for src in trees.values():  # compile and cache kernels outside the timed runs
        run(src, "warm", args.seed, args.continuous)
    print(f"model (6.1)-(6.3), 3 x 3 categories, 611 pairs in 40 clusters, "
          f"{'normal' if args.continuous else 'binary'} x, seed {args.seed}; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'method':<9}{'tree':<5}{'wall s':>9}{'cpu s':>9}{'fit s':>9}{'loglik':>16}"
          f"{'conv':>6}")
    for method in args.methods:
        recs = {}
        for tag, src in trees.items():
            r = recs[tag] = run(src, method, args.seed, args.continuous)
            print(f"{method:<9}{tag:<5}{r['wall']:9.2f}{r['cpu']:9.2f}{r['fit_s']:9.2f}"
                  f"{r['loglik']:16.8f}{str(r['converged']):>6}")
        if "old" in recs:
            o, n = recs["old"], recs["new"]
            dp = np.max(np.abs(np.subtract(o["params"], n["params"])))
            print(f"{method:<9}old/new: wall {o['wall'] / n['wall']:.1f}x, cpu "
                  f"{o['cpu'] / n['cpu']:.1f}x; max |param diff| {dp:.2e}, loglik diff "
                  f"{abs(o['loglik'] - n['loglik']):.2e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
