"""Record the general implicit path's fit of model (6.1)-(6.3) as a fixture (numpy inversion).

The compiled inversion (``links._implicit_kernel``) replaced a vectorised numpy Newton with
the cumulant tensors of ``links._implicit`` written out; this script, run with that older code
on the path, recorded what it gave on a small simulated data set, and
``tests/models/test_implicit_fixture.py`` checks that the compiled path gives the same fits.
The data are stored in the fixture, so the test does not depend on the simulation code.

Usage (from a checkout of the commit to record, e.g. a ``git worktree`` of 8363a2b)::

    PYTHONPATH=OLD/src .venv/bin/python validation/implicit_old_path.py --commit 8363a2b
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import gllmm
from gllmm import models
from gllmm.links import dale_full_family

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "implicit" / "old_path_6_1.json"


def simulate(seed: int = 18, n_clusters: int = 15, n_pairs: int = 120) -> pd.DataFrame:
    """3 x 3 pairs, binary x in both marginals, random effects in all three parts."""
    rng = np.random.default_rng(seed)
    size = 1 + rng.multinomial(n_pairs - n_clusters, np.full(n_clusters, 1 / n_clusters))
    cl = np.repeat(np.arange(n_clusters), size)
    u = rng.normal(size=(n_clusters, 3)) * np.array([0.8, 0.6, 0.7])
    x = (rng.random(n_pairs) < 0.5).astype(float)
    eta = np.empty((n_pairs, 8))
    eta[:, :2] = np.array([-0.5, 0.8]) + (0.5 * x + u[cl, 0])[:, None]
    eta[:, 2:4] = np.array([-0.3, 1.0]) + (-0.4 * x + u[cl, 1])[:, None]
    eta[:, 4:] = (1.0 + u[cl, 2])[:, None]
    pi = dale_full_family(np.ones((n_pairs, 3, 3))).probabilities(eta[:, None, :])[:, 0]
    cell = (rng.random(n_pairs)[:, None] > np.cumsum(pi, axis=1)).sum(axis=1)
    return pd.DataFrame({"id": cl, "x": x, "y1": cell // 3, "y2": cell % 3})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", required=True, help="the commit whose code is on the path")
    args = ap.parse_args()
    df = simulate()
    d = models.bivariate_ordinal(df, "y1", "y2", "id", marginal1="x", marginal2="x")
    fits = {}
    for name, method, nodes in (("laplace", "laplace", 1), ("agq3", "agq", 3)):
        t0 = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = gllmm.fit(d, method=method, n_nodes=nodes)
        fits[name] = {"method": method, "n_nodes": nodes, "names": list(r.names),
                      "params": r.params.tolist(),
                      "se": np.sqrt(np.diag(r.cov)).tolist(),
                      "loglik": float(r.loglik), "converged": bool(r.converged),
                      "cpu_seconds": time.process_time() - t0}
    out = {"source": {"script": "validation/implicit_old_path.py", "commit": args.commit,
                      "numpy": np.__version__, "date": time.strftime("%Y-%m-%d")},
           "data": {c: df[c].tolist() for c in df.columns},
           "design": {"y1": "y1", "y2": "y2", "cluster": "id", "marginal1": "x",
                      "marginal2": "x", "association": "1"},
           "fits": fits}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(fits, indent=1))


if __name__ == "__main__":
    main()
