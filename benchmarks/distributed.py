"""Benchmark: cell-wise smoothing of a large sparse table from Parquet, on a Dask LocalCluster
and in one process (issue 17).

    python benchmarks/distributed.py [--size 2500x4000] [--nagq 15] [--workers 2]
        [--memory-limit 2GB] [--partitions N] [--data DIR] [--skip-one-process]
    python benchmarks/distributed.py --size 10000x10000 --memory-limit 6GB --skip-one-process

The table (I x J cells, default 10^7) is generated once per size and seed and cached under
``--data`` (default: the system temp directory, ``gllmm-bench-distributed/IxJ-seedS``), as
Parquet files listing the non-zero cells only (row blocks of 250 rows in shuffled files);
generation is not timed. Counts: Poisson with ``log mu = log 0.5 + r_i + c_j + 0.5 s_i t_j +
N(0, 0.5^2)`` per cell (about 55 % zeros), scores ``linspace(-1, 1)``. Model (2.6),
linear-by-linear, AGQ with ``--nagq`` nodes.

Runs, each in its own process with one BLAS thread:

* ``cluster``: a LocalCluster of ``--workers`` worker processes (one thread each, each limited
  to ``--memory-limit``) and ``fit_cellwise(DIR, client=...)``. "seconds" is the whole run
  (reading the files, generating the zero cells, the fit, writing the smoothed Parquet files;
  the cluster start is excluded), "client MB" the client's peak resident set, "worker MB"
  each worker process's peak resident set (``getrusage`` on the worker at the end).
* ``one process``: ``fit_cellwise(DIR)`` in this process (same code, partitions held here).

It also prints the per-partition cost measured on the cluster (Dask's task stream: compute
seconds per task of each kind, per million cells) and the time projected for 8, 32 and 128
workers from those costs and the counts of each kind of task (round-trip latency excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# this file's name shadows the ``distributed`` package when run as a script: drop its folder
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
ROWS_PER_FILE = 250


def generate(n_rows: int, n_cols: int, seed: int, root: Path) -> Path:
    """The cached Parquet directory of the table (generated if absent)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = root / f"{n_rows}x{n_cols}-seed{seed}"
    done = out / "_complete"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r, c = rng.normal(0, 0.3, n_rows), rng.normal(0, 0.3, n_cols)
    s, t = np.linspace(-1, 1, n_rows), np.linspace(-1, 1, n_cols)
    starts = list(range(0, n_rows, ROWS_PER_FILE))
    nnz = 0
    for f, lo in enumerate(rng.permutation(len(starts))):
        a = starts[lo]
        b = min(a + ROWS_PER_FILE, n_rows)
        eta = (np.log(0.5) + r[a:b, None] + c[None, :] + 0.5 * np.outer(s[a:b], t)
               + rng.normal(0, 0.5, (b - a, n_cols)))
        y = rng.poisson(np.exp(eta))
        ii, jj = np.nonzero(y)
        nnz += ii.size
        pq.write_table(pa.table({"row": (ii + a).astype(np.int32), "col": jj.astype(np.int32),
                                 "count": y[ii, jj].astype(np.int32)}),
                       out / f"part-{f:05d}.parquet")
    done.write_text(json.dumps({"non_zero": nnz, "cells": n_rows * n_cols}))
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _scores(n: int) -> np.ndarray:
    return np.linspace(-1, 1, n)


def run_one_process(data: Path, n_rows: int, n_cols: int, nagq: int) -> dict:
    from gllmm.smooth import fit_cellwise

    t0, cpu0 = time.perf_counter(), _cpu_s()
    fit = fit_cellwise(data, _scores(n_rows), _scores(n_cols), base="linear_by_linear",
                       n_nodes=nagq, output=data.parent / (data.name + "_smoothed_one"))
    return {"seconds": time.perf_counter() - t0, "cpu_s": _cpu_s() - cpu0,
            "peak_mb": _peak_mb(), "loglik": fit.loglik,
            "sigma": fit.sigma, "beta": fit.beta, "iterations": fit.n_iter}


def _worker_usage() -> tuple[float, float]:
    """Peak resident MB and CPU seconds of this (worker) process."""
    return _peak_mb(), _cpu_s()


def run_cluster(data: Path, n_rows: int, n_cols: int, nagq: int, workers: int,
                memory_limit: str, partitions: int | None, verbose: bool) -> dict:
    import warnings

    import dask
    from distributed import Client, LocalCluster, get_task_stream

    from gllmm.smooth import fit_cellwise

    def line(info: dict) -> None:
        if verbose:
            print(f"  {info['stage']:>5} iteration {info['iteration']:3d}  loglik "
                  f"{info['loglik']:.4f}  {info['elapsed']:.1f} s  load "
                  f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)

    # the partitions are the fit's working state, held for the whole fit: spilling them to disk
    # (Dask's default above 60-70 % of memory_limit) or pausing the worker at 80 % would stall
    # it; the limit itself is kept (a worker above 95 % of it is restarted)
    # work stealing would copy partitions (hundreds of MB) to an idle worker
    dask.config.set({"distributed.worker.memory.target": False,
                     "distributed.worker.memory.spill": False,
                     "distributed.worker.memory.pause": 0.95,
                     "distributed.scheduler.work-stealing": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=memory_limit, dashboard_address=None)
    with cluster, Client(cluster) as client:
        cpu0 = sum(c for _, c in client.run(_worker_usage).values())
        t0, ccpu0 = time.perf_counter(), _cpu_s()
        with get_task_stream(client) as ts:
            fit = fit_cellwise(data, _scores(n_rows), _scores(n_cols), base="linear_by_linear",
                               n_nodes=nagq, client=client, partitions=partitions,
                               progress=line)
        seconds, client_cpu = time.perf_counter() - t0, _cpu_s() - ccpu0
        usage = list(client.run(_worker_usage).values())
        worker_mb = sorted(m for m, _ in usage)
        worker_cpu = sum(c for _, c in usage) - cpu0
    kinds: dict[str, list[float]] = {}
    for task in ts.data:
        name = task["key"].split("-")[0] if isinstance(task["key"], str) else str(task["key"])
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                kinds.setdefault(name, []).append(ss["stop"] - ss["start"])
    n_parts = len(fit.output_files)
    return {"seconds": seconds, "client_mb": _peak_mb(), "worker_mb": worker_mb,
            "worker_cpu_s": worker_cpu, "client_cpu_s": client_cpu,
            "loglik": fit.loglik, "sigma": fit.sigma, "beta": fit.beta,
            "iterations": fit.n_iter, "partitions": n_parts,
            "tasks": {k: {"n": len(v), "total_s": float(np.sum(v)), "mean_s": float(np.mean(v))}
                      for k, v in kinds.items()}}


def partition_cost(nagq: int, n_rows: int = 250, n_cols: int = 4000, seed: int = 17) -> dict:
    """CPU seconds of each kind of task on one partition of ``n_rows x n_cols`` cells (10^6 by
    default) of the benchmark's table, in this process (``time.process_time``: robust to
    other load on the machine, unlike the tasks' wall times on a busy cluster)."""
    from gllmm.fitting._cellwise_iterative import part_hessian_vector, part_reduced
    from gllmm.smooth._cellwise_parquet import (
        Piece,
        build_part,
        level_model,
        merge_margins,
        part_fitted_sums,
        piece_margins,
        split_piece,
        start_values,
    )

    rng = np.random.default_rng(seed)
    eta = (np.log(0.5) + rng.normal(0, 0.3, (n_rows, 1)) + rng.normal(0, 0.3, (1, n_cols))
           + rng.normal(0, 0.5, (n_rows, n_cols)))
    y = rng.poisson(np.exp(eta))
    ii, jj = np.nonzero(y)
    piece = Piece(ii, jj, y[ii, jj].astype(float), None)
    model = level_model(merge_margins([piece_margins(piece)], False), "linear_by_linear",
                        "heterogeneous", _scores(n_rows), _scores(n_cols))
    bounds = np.array([0, model.mixed.n_rows])
    out: dict[str, float] = {}

    def timed(name: str, fn, *args):  # noqa: ANN001, ANN202
        t = time.process_time()
        r = fn(*args)
        out[name] = (time.process_time() - t) * 1e6 / (n_rows * n_cols)
        return r

    part = timed("build (split + generate cells)", lambda: build_part(
        0, 0, model.mixed.n_rows, model, split_piece(piece, model, bounds)[:1], nagq, 8192))
    p = np.r_[start_values(model), 0.5]  # sigma 0.5
    timed("evaluation, value only", part_reduced, part, "mixed", p, 0, 1)
    timed("evaluation, cold modes", part_reduced, part, "mixed", p, 2, 1)
    timed("evaluation, warm modes", part_reduced, part, "mixed", p, 2, 2)
    timed("Hessian-vector product", part_hessian_vector, part, "mixed", p, 2,
          rng.normal(size=p.size))
    timed("posterior (fitted sums)", part_fitted_sums, part, "mixed", p, 0.5)
    out["partition bytes per cell"] = part.__sizeof__() / (n_rows * n_cols)
    return out


def projection(res: dict, cells: float, target_cells: float) -> dict:
    """Seconds on W workers: the workers' CPU seconds (robust to other load on the machine)
    scaled from ``cells`` to ``target_cells`` and divided by W (perfect balance), plus the
    client's CPU seconds (level-sized work, not scaled) and the round trips at 10 ms each."""
    work = res["worker_cpu_s"] * target_cells / cells
    trips = res["tasks"].get("part_hessian_vector", {"n": 0})["n"] / res["partitions"]
    trips += res["tasks"].get("part_reduced", {"n": 0})["n"] / res["partitions"]
    return {w: work / w + res["client_cpu_s"] + 0.01 * trips for w in (8, 32, 128)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2500x4000", help="rows x columns (default 10^7 cells)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--nagq", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(),
                                                   "gllmm-bench-distributed"))
    ap.add_argument("--skip-one-process", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no line per Newton iteration")
    ap.add_argument("--partition-cost", action="store_true",
                    help="only measure the CPU seconds per 10^6 cells of each task on one "
                         "partition in this process")
    ap.add_argument("--run", choices=("cluster", "one"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.partition_cost:
        for k, v in partition_cost(args.nagq).items():
            unit = "" if "bytes" in k else " CPU s per 10^6 cells"
            print(f"{k:<32} {v:8.3f}{unit}")
        return 0
    n_rows, n_cols = (int(x) for x in args.size.lower().split("x"))
    data = generate(n_rows, n_cols, args.seed, Path(args.data))
    if args.run:  # a child process: one run, JSON on stdout
        if args.run == "one":
            out = run_one_process(data, n_rows, n_cols, args.nagq)
        else:
            out = run_cluster(data, n_rows, n_cols, args.nagq, args.workers, args.memory_limit,
                              args.partitions, not args.quiet)
        print(json.dumps(out, default=float))
        return 0
    info = json.loads((data / "_complete").read_text())
    cells = n_rows * n_cols
    print(f"table {n_rows} x {n_cols} = {cells:.3g} cells, {info['non_zero']:.3g} non-zero, "
          f"in {len(list(data.glob('*.parquet')))} Parquet files ({data}); AGQ {args.nagq}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    runs = ["cluster"] + ([] if args.skip_one_process else ["one"])
    results = {}
    for run in runs:
        cmd = [sys.executable, __file__, "--size", args.size, "--seed", str(args.seed),
               "--nagq", str(args.nagq), "--workers", str(args.workers), "--memory-limit",
               args.memory_limit, "--data", args.data, "--run", run]
        if args.partitions:
            cmd += ["--partitions", str(args.partitions)]
        if args.quiet:
            cmd.append("--quiet")
        load0 = os.getloadavg()[0]
        # the child's stderr (a line per Newton iteration) passes through
        proc = subprocess.run(cmd, env={**os.environ, **ONE_THREAD}, stdout=subprocess.PIPE,
                              text=True)
        if proc.returncode:
            print(f"{run}: failed (exit {proc.returncode})")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["load"] = (load0, os.getloadavg()[0])
        results[run] = res
    if "cluster" in results:
        r = results["cluster"]
        peaks = ", ".join(f"{m:.0f}" for m in r["worker_mb"])
        print(f"cluster ({args.workers} workers x 1 thread, memory_limit {args.memory_limit}, "
              f"{r['partitions']} partitions): {r['seconds']:.1f} s, client peak "
              f"{r['client_mb']:.0f} MB, worker peaks {peaks}"
              f" MB; CPU s: workers {r['worker_cpu_s']:.0f}, client {r['client_cpu_s']:.0f}; "
              f"loglik {r['loglik']:.6f}, sigma {r['sigma']:.6f}, beta {r['beta']:.6f}, "
              f"{r['iterations']} Newton iterations; load {r['load'][0]:.1f} -> "
              f"{r['load'][1]:.1f}")
        per = cells / r["partitions"] / 1e6
        wall = sum(v["total_s"] for v in r["tasks"].values())
        for k, v in sorted(r["tasks"].items()):
            cpu = v["total_s"] / wall * r["worker_cpu_s"] / v["n"]  # wall shares of CPU
            print(f"  {k:<22} {v['n']:5d} tasks  {v['mean_s']:.3f} s per task (wall; "
                  f"~{cpu / per:.3f} CPU s per 10^6 cells)  total {v['total_s']:.1f} s")
        for target in (cells, 1e8):
            proj = projection(r, cells, target)
            print(f"  compute projected for {target:.0e} cells: "
                  + ", ".join(f"{w} workers {s:.0f} s" for w, s in proj.items()))
    if "one" in results:
        o = results["one"]
        print(f"one process: {o['seconds']:.1f} s ({o['cpu_s']:.0f} CPU s), peak "
              f"{o['peak_mb']:.0f} MB; loglik "
              f"{o['loglik']:.6f}, sigma {o['sigma']:.6f}; load {o['load'][0]:.1f} -> "
              f"{o['load'][1]:.1f}")
        if "cluster" in results:
            print(f"  |loglik difference| {abs(o['loglik'] - results['cluster']['loglik']):.2e}")
    return 0 if len(results) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
