"""Benchmark: the cell-wise smoothing model (2.6) on generated sparse two-way tables.

    python benchmarks/smoothing.py [--sizes 10 30 100 300 1000] [--peers] [--timeout 600]

Tables n x n with about 3 counts per cell (row, column, linear-by-linear and N(0, 0.5^2) cell
effects; numpy default_rng(seed = n)); scores s = t = linspace(-1, 1, n). Model (2.6):
``log mu_ij = alpha + r_i + c_j + beta s_i t_j + sigma v_ij`` by Laplace and by AGQ with 15
nodes. Every fit runs in its own process with one thread (OPENBLAS/OMP/MKL/RAYON threads = 1).
"fit s" is wall time inside the process around the fit call only (imports and reading
excluded), "cpu s" the CPU time of the same span (with one thread: time on one core, robust to
other load on the machine), "peak MB" the process's peak resident set (os.wait4).

With ``--peers`` the same CSV is fitted by glmmTMB and glmer (Laplace; ``smoothing_peers.R``)
and by the Python packages glmm (Laplace, AGQ 15) and mixedlm (``glmer``, Laplace, AGQ 15),
each with a timeout. A peer is skipped at a size when its time at the previous size, scaled by
the cell ratio, already exceeds the timeout, after it timed out, or (glmer, mixedlm) when its
dense fixed-effects matrix would exceed 4 GB. "ratio" is peer fit time over gllmm fit time
(same method; "ratio cpu" on CPU times); "rel dLL" is |loglik - glmmTMB's| / |glmmTMB's| for
the Laplace fits (goal 1e-6).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ONE_THREAD = {k: "1" for k in (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
)}
METHODS = {"laplace": 1, "agq15": 15}
PEERS = {  # program -> methods it can fit for this model
    "glmmTMB": ("laplace",),
    "glmer": ("laplace",),
    "glmm": ("laplace", "agq15"),
    "mixedlm": ("laplace", "agq15"),
}
DENSE_X = {"glmer", "mixedlm"}  # build a dense cells x (I + J) fixed-effects matrix
DENSE_LIMIT = 4e9


def generated_table(n_rows: int, n_cols: int, seed: int) -> np.ndarray:
    """About 3 counts per cell (the generator of tests/smooth/test_cellwise.py)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.3, n_rows)
    c = rng.normal(0, 0.3, n_cols)
    s, t = np.linspace(-1, 1, n_rows), np.linspace(-1, 1, n_cols)
    eta = r[:, None] + c[None, :] + 0.5 * np.outer(s, t) + rng.normal(0, 0.5, (n_rows, n_cols))
    return rng.poisson(3.0 * np.exp(eta) / np.exp(eta).mean()).astype(float)


def write_csv(n: int, path: Path) -> None:
    table = generated_table(n, n, seed=n)
    s = np.linspace(-1, 1, n)
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    with open(path, "w") as fh:
        fh.write("row,col,count,x\n")
        for a, b, y, x in zip(ii, jj, table.ravel(), s[ii] * s[jj], strict=True):
            fh.write(f"r{a:04d},c{b:04d},{int(y)},{float(x)!r}\n")


# ---------------------------------------------------------------------- child processes
def _read(csv: Path) -> dict:
    import pandas as pd

    return pd.read_csv(csv)


def child(program: str, csv: Path, method: str, out: Path) -> None:
    """Fit one model in this process and write a JSON record."""
    df = _read(csv)
    n_nodes = METHODS[method]
    rec: dict = {}
    if program == "gllmm":
        from gllmm.smooth._cellwise import fit_cellwise

        rows = df["row"].to_numpy()
        cols = df["col"].to_numpy()
        n_r, n_c = len(np.unique(rows)), len(np.unique(cols))
        args = (rows, cols, df["count"].to_numpy())
        t0, c0 = time.perf_counter(), time.process_time()
        fit = fit_cellwise(args, np.linspace(-1, 1, n_r), np.linspace(-1, 1, n_c),
                           base="linear_by_linear", n_nodes=n_nodes)
        rec["seconds"], rec["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        rec.update(loglik=fit.loglik, sigma=fit.sigma, beta=fit.beta, converged=fit.converged,
                   iterations=fit.n_iter)
    elif program == "glmm":
        import glmm

        df["cell"] = [f"z{k:07d}" for k in range(len(df))]
        t0, c0 = time.perf_counter(), time.process_time()
        m = glmm.fit(df, "count ~ row + col + x + (1 | cell)", family="poisson", nagq=n_nodes,
                     anova_test="Wald", satterthwaite=False)
        rec["seconds"], rec["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        rec.update(loglik=float(m.loglik), sigma=float(m.stddev_corr(0)[0][0]),
                   beta=float(m.beta[list(m.names).index("x")]), converged=bool(m.converged))
    elif program == "mixedlm":
        import mixedlm
        from mixedlm.families import Poisson

        df["cell"] = [f"z{k:07d}" for k in range(len(df))]
        t0, c0 = time.perf_counter(), time.process_time()
        m = mixedlm.glmer("count ~ row + col + x + (1 | cell)", df, family=Poisson(),
                          nAGQ=n_nodes)
        rec["seconds"], rec["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        rec.update(loglik=float(m.logLik()), sigma=float(np.ravel(m.theta)[0]),
                   converged=bool(m.converged))
    else:
        raise SystemExit(f"unknown program {program}")
    out.write_text(json.dumps(rec))


def run_measured(cmd: list[str], timeout: float) -> tuple[str, float, float, str]:
    """Run cmd with one thread; return (status, wall seconds, peak RSS MB, stderr tail)."""
    env = dict(os.environ, **ONE_THREAD)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=True)
        status = "ok"
        while True:
            pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, 9)
                pid, code, usage = os.wait4(proc.pid, 0)
                status = "timeout"
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = code
        if status == "ok" and code != 0:
            status = "failed"
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    return status, wall, usage.ru_maxrss / 1024.0, " | ".join(tail)


def fit_in_subprocess(program: str, csv: Path, method: str, timeout: float) -> dict:
    out = csv.with_suffix(f".{program}.{method}.json")
    out.unlink(missing_ok=True)
    if program in ("glmmTMB", "glmer"):
        cmd = ["Rscript", str(HERE / "smoothing_peers.R"), str(csv), program, str(out)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", program,
               "--csv", str(csv), "--method", method, "--out", str(out)]
    status, wall, rss, tail = run_measured(cmd, timeout)
    rec = {"program": program, "method": method, "status": status, "wall": wall, "peak_mb": rss}
    if status == "ok" and out.exists():
        rec.update(json.loads(out.read_text()))
    elif status == "ok":
        rec["status"] = "failed"
    if rec["status"] != "ok":
        rec["error"] = tail
    return rec


def available(program: str) -> bool:
    if program in ("glmmTMB", "glmer"):
        if not shutil.which("Rscript"):
            return False
        pkg = "glmmTMB" if program == "glmmTMB" else "lme4"
        r = subprocess.run(["Rscript", "-e", f"quit(status = !requireNamespace('{pkg}'))"],
                           capture_output=True)
        return r.returncode == 0
    import importlib.util

    return importlib.util.find_spec(program) is not None


# ---------------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    ap.add_argument("--peers", action="store_true", help="also fit with the peer programs")
    ap.add_argument("--peer-max-size", type=int, default=None,
                    help="largest table size for the peers (default: all sizes)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--json", type=Path, default=None, help="write all records here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--method", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.csv, a.method, a.out)
        return
    peers = [p for p in PEERS if a.peers and available(p)]
    if a.peers:
        missing = [p for p in PEERS if p not in peers]
        if missing:
            print(f"# peers not installed, skipped: {', '.join(missing)}")
    records: list[dict] = []
    last: dict[tuple[str, str], tuple[int, float]] = {}  # (program, method) -> (cells, seconds)
    gone: dict[tuple[str, str], str] = {}  # timed out or skipped: skip larger sizes too
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            csv = Path(tmp) / f"table{n}.csv"
            write_csv(n, csv)
            cells = n * n
            for method in METHODS:
                base = fit_in_subprocess("gllmm", csv, method, a.timeout)
                base.update(size=n, cells=cells)
                records.append(base)
                _print(base, base, None)
                for prog in peers:
                    if method not in PEERS[prog]:
                        continue
                    rec = {"program": prog, "method": method, "size": n, "cells": cells}
                    prev = last.get((prog, method))
                    dense = cells * (2 * n + 1) * 8.0
                    if a.peer_max_size is not None and n > a.peer_max_size:
                        rec.update(status="skipped", error="above --peer-max-size")
                    elif (prog, method) in gone:
                        rec.update(status="skipped", error=gone[(prog, method)])
                    elif prev and prev[1] * cells / prev[0] > a.timeout:
                        rec.update(status="skipped",
                                   error=f"{prev[1]:.0f} s at {prev[0]} cells predicts > timeout")
                    elif prog in DENSE_X and dense > DENSE_LIMIT:
                        rec.update(status="skipped",
                                   error=f"dense X would need {dense / 1e9:.0f} GB")
                    else:
                        rec.update(fit_in_subprocess(prog, csv, method, a.timeout))
                    if rec["status"] == "ok":
                        last[(prog, method)] = (cells, rec["seconds"])
                    elif rec["status"] in ("timeout", "skipped"):
                        gone[(prog, method)] = (
                            f"timed out at {cells} cells" if rec["status"] == "timeout"
                            else rec.get("error", "skipped at a smaller size"))
                    records.append(rec)
                    tmb = next((r for r in records if r["size"] == n and r["program"] ==
                                "glmmTMB" and r["status"] == "ok"), None)
                    _print(rec, base, tmb)
                if method == "laplace":
                    tmb = next((r for r in records if r["size"] == n and r["program"] ==
                                "glmmTMB" and r["status"] == "ok"), None)
                    if tmb and base["status"] == "ok":
                        rel = abs(base["loglik"] - tmb["loglik"]) / abs(tmb["loglik"])
                        print(f"#   gllmm vs glmmTMB Laplace log-likelihood: rel. diff {rel:.1e}")
    print()
    _table(records)
    if a.json:
        a.json.write_text(json.dumps(records, indent=1))


def _print(rec: dict, base: dict, tmb: dict | None) -> None:
    if rec["status"] != "ok":
        print(f"# {rec['size']:>5} {rec['method']:7} {rec['program']:8} {rec['status']}: "
              f"{rec.get('error', '')}", flush=True)
        return
    ratio = rec["seconds"] / base["seconds"] if base.get("status") == "ok" else float("nan")
    print(f"# {rec['size']:>5} {rec['method']:7} {rec['program']:8} {rec['seconds']:9.3f} s "
          f"(cpu {rec.get('cpu', float('nan')):9.3f} s) {rec['peak_mb']:6.0f} MB  "
          f"loglik {rec['loglik']:.6f}  ratio {ratio:7.1f}", flush=True)


def _table(records: list[dict]) -> None:
    head = (f"{'size':>5} {'cells':>8} {'method':7} {'program':8} {'fit s':>9} {'cpu s':>9} "
            f"{'peak MB':>8} {'loglik':>18} {'sigma':>8} {'ratio':>8} {'ratio cpu':>9} "
            f"{'rel dLL':>8}")
    print(head)
    print("-" * len(head))
    base = {(r["size"], r["method"]): r for r in records if r["program"] == "gllmm"}
    tmb = {r["size"]: r for r in records if r["program"] == "glmmTMB" and r["status"] == "ok"}
    for r in records:
        pre = f"{r['size']:>5} {r['cells']:>8} {r['method']:7} {r['program']:8}"
        if r["status"] != "ok":
            print(f"{pre} {r['status']:>9}  {r.get('error', '')[:70]}")
            continue
        b = base[(r["size"], r["method"])]
        peer = r["program"] != "gllmm" and b["status"] == "ok"
        ratio = r["seconds"] / b["seconds"] if peer else float("nan")
        ratio_cpu = r.get("cpu", float("nan")) / b["cpu"] if peer else float("nan")
        t = tmb.get(r["size"])
        rel = (abs(r["loglik"] - t["loglik"]) / abs(t["loglik"])
               if t is not None and r["method"] == "laplace" and r is not t else float("nan"))
        print(f"{pre} {r['seconds']:9.3f} {r.get('cpu', float('nan')):9.3f} "
              f"{r['peak_mb']:8.0f} {r['loglik']:18.6f} {r.get('sigma', float('nan')):8.5f} "
              f"{ratio:8.1f} {ratio_cpu:9.1f} {rel:8.1e}")


if __name__ == "__main__":
    main()
