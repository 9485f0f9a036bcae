"""Crossed random effects at scale: gllmm against glmm (PyPI, Rust), glmmTMB and glmer.

Poisson ``count ~ x + (1 | a) + (1 | b)``, Laplace, on data generated with a seeded
``numpy.random.Generator`` (each row draws its level of a and of b at random, so the two factors
form one cluster of ``levels(a) + levels(b)`` random effects; sd(a) = 0.5, sd(b) = 0.4,
beta = (0.3, 0.5)). Every tool fits the same CSV, one process per tool, one after the other
(the machine has 2 cores); each process is timed from start to exit, and its peak resident
memory is the ``ru_maxrss`` that ``os.wait4`` reports for it. A tool is stopped after
``--timeout`` seconds (default 900).

Printed per size and tool: whole-process wall seconds, the fit's own seconds (from the data
frame read to the fitted object, as the tool's process measures it), peak memory, the
log-likelihood (all tools report the full Poisson log-likelihood, with ``-log y!``), its
relative difference from gllmm's, the SDs, and gllmm's speed ratio (peer / gllmm wall seconds).

Usage::

    .venv/bin/python benchmarks/crossed_scale.py            # 2000 x 1000 / 1e5, 10000 x 1000 / 1e6
    .venv/bin/python benchmarks/crossed_scale.py --quick    # 200 x 100 levels, 5000 rows
    .venv/bin/python benchmarks/crossed_scale.py --sizes 2000x1000x100000 --tools gllmm glmm
    .venv/bin/python benchmarks/crossed_scale.py --no-r --no-python-peers   # gllmm only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMULA = "count ~ x + (1 | a) + (1 | b)"
SIZES = ("2000x1000x100000", "10000x1000x1000000")
QUICK = ("200x100x5000",)
TOOLS = ("gllmm", "glmm", "glmmTMB", "glmer")
R_TOOLS = ("glmmTMB", "glmer")

R_CODE = r"""
args <- commandArgs(trailingOnly = TRUE)
t0 <- proc.time()[["elapsed"]]
suppressMessages({library(lme4); library(glmmTMB)})
d <- read.csv(args[2])
d$a <- factor(d$a); d$b <- factor(d$b)
f <- count ~ x + (1 | a) + (1 | b)
t1 <- proc.time()[["elapsed"]]
if (args[1] == "glmer") {
  m <- glmer(f, data = d, family = poisson, nAGQ = 1)
  sds <- sapply(VarCorr(m), function(v) attr(v, "stddev"))
  beta <- fixef(m)
  conv <- is.null(m@optinfo$conv$lme4$messages)
} else {
  m <- glmmTMB(f, data = d, family = poisson)
  sds <- sapply(VarCorr(m)$cond, function(v) attr(v, "stddev"))
  beta <- fixef(m)$cond
  conv <- m$fit$convergence == 0
}
t2 <- proc.time()[["elapsed"]]
cat(sprintf(paste0('{"loglik": %.12f, "sd": [%.8f, %.8f], "beta": [%.8f, %.8f], ',
                   '"fit_seconds": %.3f, "converged": %s}\n'),
            as.numeric(logLik(m)), sds[grep("^a", names(sds))], sds[grep("^b", names(sds))],
            beta[1], beta[2], t2 - t1,
            if (conv) "true" else "false"))
"""


def parse_size(text: str) -> tuple[int, int, int]:
    n_a, n_b, n = (int(float(v)) for v in text.lower().split("x"))
    return n_a, n_b, n


def generate(n_a: int, n_b: int, n: int, seed: int, path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, n_a)[a] + rng.normal(0, 0.4, n_b)[b]
    df = pd.DataFrame({"a": a, "b": b, "x": np.round(x, 6), "count": rng.poisson(np.exp(eta))})
    df.to_csv(path, index=False)


# ------------------------------------------------------------------------ workers
def worker(tool: str, csv: str) -> None:
    """Fit in this process and print one JSON line (the parent times the whole process)."""
    import pandas as pd

    df = pd.read_csv(csv, dtype={"a": str, "b": str})
    df["count"] = df["count"].astype(float)
    t0 = time.perf_counter()
    if tool == "gllmm":
        import warnings

        import gllmm

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            design = gllmm.build_design(df, FORMULA)
            t_design = time.perf_counter() - t0
            res = gllmm.fit(design, method="laplace")
        sd = res.random_sd
        out = {"loglik": float(res.loglik), "sd": [float(sd["a"]), float(sd["b"])],
               "beta": [float(v) for v in res.beta], "converged": bool(res.converged),
               "design_seconds": t_design, "warnings": [str(w.message)[:80] for w in caught]}
    elif tool == "glmm":
        import math

        import glmm

        res = glmm.fit(df, FORMULA, family="poisson", nagq=1, anova_test="Wald")
        sd = [math.sqrt(max(v, 0.0)) for blk in res.varcorr for v in blk[:1]]
        out = {"loglik": float(res.loglik), "sd": sd, "beta": [float(v) for v in res.beta],
               "converged": bool(res.converged)}
    else:
        raise SystemExit(f"unknown worker tool {tool!r}")
    out["fit_seconds"] = time.perf_counter() - t0
    print(json.dumps(out), flush=True)


def run_measured(cmd: list[str], timeout: float) -> dict:
    """Run cmd; wall seconds and peak RSS (MB) of that process; its last stdout line as JSON."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"status": f"timed out after {timeout:.0f} s",
                        "wall": time.perf_counter() - t0, "rss_mb": usage.ru_maxrss / 1024,
                        "cpu": usage.ru_utime + usage.ru_stime}
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
        rec: dict = {"wall": wall, "rss_mb": usage.ru_maxrss / 1024,
                     "cpu": usage.ru_utime + usage.ru_stime}
        if proc.returncode != 0 or not lines:
            rec["status"] = f"failed (exit {proc.returncode}): {err.read()[-300:]!r}"
        else:
            rec.update(json.loads(lines[-1]))
            rec["status"] = "ok"
        return rec


def tool_command(tool: str, csv: Path, rscript: Path) -> list[str]:
    if tool in R_TOOLS:
        return ["Rscript", str(rscript), tool, str(csv)]
    return [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--csv", str(csv)]


def fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"one small size ({QUICK[0]})")
    ap.add_argument("--sizes", nargs="+", help="levels(a) x levels(b) x rows, e.g. 2000x1000x1e5")
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--no-r", action="store_true", help="skip glmmTMB and glmer")
    ap.add_argument("--no-python-peers", action="store_true", help="skip glmm")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per tool and size")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool (wall: min, max)")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.csv)
        return 0
    tools = [t for t in args.tools if not (args.no_r and t in R_TOOLS)
             and not (args.no_python_peers and t == "glmm")]
    if shutil.which("Rscript") is None:
        skipped = [t for t in tools if t in R_TOOLS]
        tools = [t for t in tools if t not in R_TOOLS]
        if skipped:
            print(f"# Rscript not found: {', '.join(skipped)} skipped")
    sizes = [parse_size(s) for s in (args.sizes or (QUICK if args.quick else SIZES))]
    print(f"# {FORMULA}, Poisson, Laplace; {os.cpu_count()} cores; seed {args.seed}; "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        rscript = Path(tmp) / "peers.R"
        rscript.write_text(R_CODE)
        for n_a, n_b, n in sizes:
            csv = Path(tmp) / f"crossed_{n_a}_{n_b}_{n}.csv"
            generate(n_a, n_b, n, args.seed, csv)
            print(f"\n## {n_a} x {n_b} crossed levels, {n} rows")
            print("| tool | wall s | cpu s | fit s | peak MB | loglik | rel. diff | sd(a) | sd(b) "
                  "| gllmm faster (wall) | (cpu) | note |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            ref = None
            gllmm_wall = gllmm_cpu = None
            for tool in tools:
                runs = [run_measured(tool_command(tool, csv, rscript), args.timeout)
                        for _ in range(args.repeat)]
                rec = min(runs, key=lambda r: r["wall"])
                walls = [r["wall"] for r in runs]
                note = rec["status"] if rec["status"] != "ok" else ""
                if len(runs) > 1:
                    note += f" wall {min(walls):.1f}-{max(walls):.1f} s over {len(runs)} runs"
                if rec.get("converged") is False:
                    note += " not converged"
                if tool == "gllmm" and "design_seconds" in rec:
                    note += f" design {rec['design_seconds']:.1f} s"
                ll = rec.get("loglik")
                if tool == "gllmm" and ll is not None:
                    ref, gllmm_wall, gllmm_cpu = ll, rec["wall"], rec["cpu"]
                rel = None if ll is None or ref is None else abs(ll - ref) / abs(ref)
                ratio = (None if gllmm_wall is None or tool == "gllmm" or rec["status"] != "ok"
                         else rec["wall"] / gllmm_wall)
                cpu_ratio = None if ratio is None else rec["cpu"] / gllmm_cpu
                sd = rec.get("sd") or [None, None]
                print(f"| {tool} | {rec['wall']:.1f} | {rec['cpu']:.1f} | "
                      f"{fmt(rec.get('fit_seconds'), '.1f')} | "
                      f"{rec['rss_mb']:.0f} | {fmt(ll, '.6f')} | {fmt(rel, '.1e')} | "
                      f"{fmt(sd[0], '.5f')} | {fmt(sd[1], '.5f')} | "
                      f"{fmt(ratio, '.2f')} | {fmt(cpu_ratio, '.2f')} | {note.strip()} |",
                      flush=True)
    print("\n# wall s: whole process (start-up, imports, reading the CSV, fit, SEs and "
          "random-effect predictions); cpu s: its user + system CPU seconds (all threads; "
          "steadier than wall when the machine is shared); fit s: the fit as the process "
          "times it; peak MB: maximum resident set of the process")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"# children's CPU seconds in all: {usage.ru_utime + usage.ru_stime:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
