"""Bias of Laplace and second-order Laplace (``method="laplace2"``) against AGQ and MCEM.

Three models: MBA (2.5) (one cell per effect, 42 scalar integrals), the association model (2.1)
with beta = 0 (one multinomial 3 x 3 table, 4-dimensional effects), and a simulated binary
logit model with 5 independent random coefficients per cluster (50 clusters of 8), where
product AGQ at the usual 15 nodes per dimension would need 759,375 nodes per cluster (refused)
and even 5 per dimension is 3125. Per model and method: the log-likelihood the method reports,
the log-likelihood of its estimate by a high-order AGQ rule (the "exact" value), the SDs, and
seconds. MCEM's log-likelihood is its importance-sampling estimate (+- Monte Carlo SE).

Usage::

    .venv/bin/python benchmarks/laplace2_bias.py [--quick]   # --quick: no MCEM, no AGQ fit
                                                              # of the 5-D model
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import gllmm
from gllmm import datasets, models
from gllmm.integrate import MarginalLikelihood
from gllmm.models import random_association


def section4_table(seed: int = 9, beta: float = 0.4, n: int = 200) -> np.ndarray:
    """The 3 x 3 table of tests/fitting/test_mcem.py (Section 4 model)."""
    s = np.array([1.0, 2.0, 3.0])
    p = np.exp(beta * np.outer(s - 2, s - 2))
    p /= p.sum()
    return np.random.default_rng(seed).multinomial(n, p.ravel()).reshape(3, 3)


def binary_five_effects(seed: int = 2026, n_clusters: int = 50, size: int = 8):
    """Binary logit, intercept and 4 slopes random per cluster (diagonal covariance, SDs 1,
    0.7, 0.7, 0.5, 0.5)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), size)
    x = rng.normal(size=(n_clusters * size, 4))
    u = rng.normal(size=(n_clusters, 5)) * np.array([1.0, 0.7, 0.7, 0.5, 0.5])
    z = np.column_stack([np.ones(len(g)), x])
    eta = -0.5 + x @ np.array([0.5, -0.5, 0.3, 0.0]) + (z * u[g]).sum(axis=1)
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    df = pd.DataFrame(x, columns=["x1", "x2", "x3", "x4"])
    df["g"], df["s"], df["f"] = g.astype(str), y, 1 - y
    return gllmm.build_design(
        df, "cbind(s, f) ~ x1 + x2 + x3 + x4 + (1 + x1 + x2 + x3 + x4 || g)",
        family="binomial")


def exact_loglik(design, params, n_nodes):
    obj = MarginalLikelihood(design, n_nodes)
    return obj(params)


def row(name, method, res, design, exact_nodes, seconds):
    sd = [v for k, v in zip(res.names, res.params, strict=True)
          if k.startswith(("sd(", "lambda("))]
    ll = res.loglik
    note = ""
    if method == "mcem":
        ll = res.extra["loglik_importance"]
        note = f" +- {res.extra['loglik_mc_se']:.3f}"
    exact = exact_loglik(design, res.params, exact_nodes)
    return {"model": name, "method": method, "loglik": f"{ll:.4f}{note}",
            "exact loglik at estimate": f"{exact:.4f} (AGQ {exact_nodes})",
            "SDs": ", ".join(f"{v:.4f}" for v in sd), "seconds": f"{seconds:.2f}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cases = [
        ("MBA (2.5)", models.cellwise_smoothing(datasets.load("mba"), "statistics",
                                                "economics"), 15, 40),
        ("association (2.1)", random_association(section4_table(), beta=0,
                                                 coding="cumulative"), 7, 9),
        ("binary, 5 effects", binary_five_effects(), 5, 7),
    ]
    rows = []
    for name, design, agq_nodes, exact_nodes in cases:
        methods = [("laplace", {}), ("laplace2", {})]
        if not (args.quick and agq_nodes == 5):
            methods.append(("agq", {"n_nodes": agq_nodes}))
        if not args.quick:
            methods.append(("mcem", {"seed": 1, "se_tol": 0.05, "final_samples": 5000}))
        for method, kw in methods:
            t0 = time.perf_counter()
            res = gllmm.fit(design, method=method, **kw)
            seconds = time.perf_counter() - t0
            label = f"agq {agq_nodes}" if method == "agq" else method
            rows.append(row(name, label, res, design, exact_nodes, seconds))
            print(rows[-1], flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
