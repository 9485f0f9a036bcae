"""Compile the numba kernels ahead of a first fit: ``python -m gllmm.warmup``.

numba compiles each kernel at its first call and caches the machine code on disk (in a
directory named by a hash of the kernel sources, ``gllmm._jit.CACHE_DIR``); a cold first fit
spends about a minute there. ``make demo`` runs this module
in its install step so that the first ``gllmm example`` starts from a warm cache. It fits the
paper's examples (scalar and vector random effects, cumulative logits, local odds ratios)
and a small crossed model (the sparse Laplace path), printing only how long it took.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings

import numpy as np
import pandas as pd


def warm_up() -> float:
    """Run one small fit through every compiled path; return the seconds it took."""
    from . import fit
    from .cli._examples import EXAMPLES, run_example

    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for name in EXAMPLES:
            run_example(name)
        rng = np.random.default_rng(0)  # crossed intercepts: the sparse Laplace kernels
        a, b = rng.integers(0, 12, 300), rng.integers(0, 10, 300)
        x = rng.normal(size=300)
        y = rng.poisson(np.exp(0.2 + 0.3 * x + 0.3 * rng.normal(size=12)[a]))
        crossed = pd.DataFrame({"y": y, "x": x, "a": a, "b": b, "n": y + 2})
        fit("y ~ x + (1 | a) + (1 | b)", data=crossed, method="laplace")
        fit("cbind(y, n) ~ x + (1 | a)", data=crossed, family="binomial")
    return time.perf_counter() - t0


def main() -> int:
    seconds = warm_up()
    print(f"gllmm: kernels compiled and cached ({seconds:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
