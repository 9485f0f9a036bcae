"""Engine benchmark: gllmm against glmer, glmmTMB, clmm/clmm2 (R) and glmm, mixedlm (Python).

Fits every reference model of the engine issue (paper_numbers.md) with each tool that can fit
it and prints, per model and method, the median seconds per fit, gllmm's ratio to each peer
(peer time / gllmm time: > 1 means gllmm is faster), the key estimate, the random-effect SD
and the log-likelihood, so that speed and agreement can be read off one table.

Timing protocol
---------------
* Every tool runs in its own process, one after the other (never two at once): this script
  re-invokes itself as ``--worker gllmm|glmm|mixedlm`` and runs ``engine_peers.R`` with
  Rscript on CSV files this script writes, so all tools see identical data.
* Inside a process, for each (model, method): one warm-up fit, then repeated fits until at
  least ``min_reps`` fits and ``target`` seconds are done (at most ``max_reps``); the time per
  fit is the median. Each timed fit is the tool's full user-level call: formula/design
  building, optimisation, standard errors and random-effect predictions as the tool does by
  default. Data preparation (reading CSVs, making factors, expanding counts) is not timed.
* A fit whose warm-up takes longer than ``--slow-limit`` seconds (default 30; 10 with
  ``--quick``) is timed by that single run (marked ``1*`` in the n column): one-off costs are
  negligible at that length, and it keeps a 1000x slower peer from taking the run's hour.
* ``--quick``: fewer repetitions.

Usage::

    .venv/bin/python benchmarks/engine.py [--quick] [--no-r] [--no-python-peers]
                                          [--models mba_2.5,clinical_local] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- models
# id -> (label, AGQ nodes, key estimate label)
MODELS: dict[str, tuple[str, int, str]] = {
    "mba_2.5": ("MBA (2.5) cell-wise, independence base", 15, "sd(cell)"),
    "mba_2.6": ("MBA (2.6) cell-wise, L x L base", 15, "beta LxL"),
    "clinical_local": ("clinical, random local OR (0 + xs | center)", 15, "beta xs"),
    "clinical_global": ("clinical, random global OR (Dale)", 15, "beta"),
    "cumlogit_2re": ("cumulative logit (1 + x | center)", 10, "beta x"),
    "cumlogit_1re": ("cumulative logit (1 | center)", 15, "beta x"),
    "crossed": ("Poisson, crossed (1 | a) + (1 | b), 600 rows, 30 x 20 levels", 0, "beta x"),
}
# Laplace only: no tool integrates a 50-dimensional crossed random effect by quadrature
LAPLACE_ONLY = {"crossed": "crossed random effects: Laplace only (a 50-dimensional integral)"}
METHODS = ("agq", "laplace")

# Tools shown for every model, plus the ordinal-only ones; R tools come from engine_peers.R.
PY_PEERS = ("glmm", "mixedlm")
GLLMM_FIT_ONLY = "gllmm fit-only"  # informational row: design built outside the timing
R_POISSON = ("glmer", "glmmTMB")
R_ORDINAL = ("clmm", "clmm-w", "clmm2", "clmm2-w")
TOOL_NOTES = {
    "glmer": "lme4::glmer (nAGQ = 1 Laplace, nAGQ = Q AGQ)",
    "glmmTMB": "glmmTMB::glmmTMB (Laplace only)",
    "clmm": "ordinal::clmm on the expanded individual data (one row per subject)",
    "clmm-w": "ordinal::clmm on the grouped table with weights = count",
    "clmm2": "ordinal::clmm2 on the expanded individual data",
    "clmm2-w": "ordinal::clmm2 on the grouped table with weights = count",
    "glmm": "glmm (PyPI, Rust core), glmm.fit(..., nagq=Q, anova_test='Wald')",
    "mixedlm": "mixedlm (PyPI), mixedlm.glmer(..., family=Poisson(), nAGQ=Q)",
}


@dataclass
class Record:
    model: str
    method: str
    tool: str
    status: str = "ok"  # "ok" or "n/a (reason)" or "error (...)"
    seconds: float | None = None  # median wall-clock seconds per fit
    cpu_seconds: float | None = None  # median CPU seconds per fit (all threads of the process)
    n_reps: int = 0
    warmup_only: bool = False
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    estimate: float | None = None
    sd: str | None = None
    loglik: float | None = None
    loglik_note: str | None = None
    converged: bool | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RepPolicy:
    min_reps: int
    target: float
    max_reps: int
    slow_limit: float  # a fit whose warm-up takes longer is timed by that single run

    @classmethod
    def make(cls, quick: bool, slow_limit: float | None = None) -> RepPolicy:
        p = cls(3, 0.3, 15, 10.0) if quick else cls(5, 2.0, 200, 30.0)
        if slow_limit is not None:
            p.slow_limit = slow_limit
        return p


def _short(msg: str, n: int = 110) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def time_fits(fit_once, policy: RepPolicy, rec: Record):
    """Warm up once (keeping its warnings), then time repeated fits into ``rec``; return the
    last result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        result = fit_once()
        warm, warm_cpu = time.perf_counter() - t0, time.process_time() - c0
    rec.warnings = list(dict.fromkeys(
        _short(f"{w.category.__name__}: {w.message}") for w in caught))
    times: list[float] = []
    cpu: list[float] = []
    if warm > policy.slow_limit:
        times, cpu, rec.warmup_only = [warm], [warm_cpu], True
    else:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while len(times) < policy.max_reps and (
                len(times) < policy.min_reps or time.perf_counter() - start < policy.target
            ):
                t0, c0 = time.perf_counter(), time.process_time()
                result = fit_once()
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    rec.times, rec.cpu_times, rec.n_reps = times, cpu, len(times)
    rec.seconds, rec.cpu_seconds = statistics.median(times), statistics.median(cpu)
    return result


# --------------------------------------------------------------------------- data
def write_data(outdir: Path) -> None:
    """The data sets with every derived column any tool needs (same data for all)."""
    import numpy as np
    import pandas as pd

    from gllmm import datasets

    mba = datasets.load("mba")
    mba = mba[["statistics", "economics", "count"]].copy()
    mba["cell"] = [f"{a}_{b}" for a, b in zip(mba.statistics, mba.economics, strict=True)]
    mba["ss"] = (mba.statistics * mba.economics).astype(float)  # L x L score product
    mba.to_csv(outdir / "mba.csv", index=False)

    ct = datasets.load("clinical_trial")
    out = ct[["center", "treatment", "response", "count"]].copy()
    out["treatment"] = out.treatment.astype(str)
    out["response"] = out.response.astype(str)
    # centred scores of the local-OR model: x = +1/2 drug, -1/2 placebo; s = 1, 0, -1
    out["xc"] = np.where(out.treatment == "drug", 0.5, -0.5)
    out["sc"] = out.response.map({"much_better": 1.0, "better": 0.0, "unchanged_or_worse": -1.0})
    out["xs"] = out.xc * out.sc
    out["x"] = (out.treatment == "drug").astype(float)  # ordinal models: 1 drug, 0 placebo
    out.to_csv(outdir / "clinical.csv", index=False)

    # crossed random intercepts: the data of the R fixtures (validation/crossed.R)
    crossed = pd.read_csv(HERE.parent / "tests" / "fixtures" / "r" / "crossed.csv")
    crossed[["a", "b", "x", "count"]].to_csv(outdir / "crossed.csv", index=False)


# --------------------------------------------------------------------------- gllmm worker
def run_gllmm(models: list[str], policy: RepPolicy) -> list[Record]:
    import pandas as pd

    import gllmm
    from gllmm import datasets
    from gllmm import models as gm

    mba = datasets.load("mba")
    trial = datasets.load("clinical_trial")
    t = trial.copy()
    t["x"] = (t.treatment == "drug").astype(float)
    crossed = pd.read_csv(HERE.parent / "tests" / "fixtures" / "r" / "crossed.csv")
    crossed = crossed.assign(a=crossed["a"].astype(str), b=crossed["b"].astype(str))
    builders = {
        "mba_2.5": lambda: gm.cellwise_smoothing(mba, "statistics", "economics"),
        "mba_2.6": lambda: gm.cellwise_smoothing(mba, "statistics", "economics",
                                                 base="linear_by_linear"),
        "clinical_local": lambda: gm.stratified_local_association(
            trial, "center", "treatment", "response"),
        "clinical_global": lambda: gm.stratified_global_association(
            trial, "center", "treatment", "response"),
        "cumlogit_2re": lambda: gm.ordinal_mixed(t, "response ~ x + (1 + x | center)"),
        "cumlogit_1re": lambda: gm.ordinal_mixed(t, "response ~ x + (1 | center)"),
        "crossed": lambda: gllmm.build_design(crossed, "count ~ x + (1 | a) + (1 | b)"),
    }

    def key(model: str, r) -> float:
        if model == "mba_2.5":
            return float(next(iter(r.random_sd.values())))
        if model == "mba_2.6":
            name = "statistics_score:economics_score"
        elif model.startswith("clinical"):
            name = "beta"
        else:
            name = "x"
        return float(r.beta[name])

    # One-off start-up, excluded from the timings and reported on its own: the first fit of
    # each kind loads gllmm's compiled kernels from numba's on-disk cache (or compiles them,
    # once per installation, when the cache is empty).
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in models:
            for method in METHODS:
                if method == "agq" and model in LAPLACE_ONLY:
                    continue
                gllmm.fit(builders[model](), method=method, n_nodes=MODELS[model][1])
    out = [Record("_startup", "all", "gllmm", seconds=time.perf_counter() - t0)]
    for model in models:
        nodes = MODELS[model][1]
        for method in METHODS:
            if method == "agq" and model in LAPLACE_ONLY:
                out.append(Record(model, method, "gllmm", status=f"n/a ({LAPLACE_ONLY[model]})"))
                continue
            kw = {"method": "agq", "n_nodes": nodes} if method == "agq" else {"method": "laplace"}
            # "gllmm": the whole call, as for the peers; "gllmm fit-only": the design built
            # once beforehand (information: how much of the time is design building).
            design = builders[model]()
            calls = {
                "gllmm": lambda b=builders[model], kw=kw: gllmm.fit(b(), **kw),
                GLLMM_FIT_ONLY: lambda d=design, kw=kw: gllmm.fit(d, **kw),
            }
            for tool, call in calls.items():
                rec = Record(model, method, tool)
                try:
                    res = time_fits(call, policy, rec)
                    rec.estimate = key(model, res)
                    rec.sd = _fmt_sd(list(_flat_sd(res.random_sd)))
                    rec.loglik = float(res.loglik)
                    rec.converged = bool(res.converged)
                except Exception as e:  # noqa: BLE001 - the benchmark reports any failure
                    rec.status = f"error ({_short(repr(e), 80)})"
                out.append(rec)
    return out


def _flat_sd(sd) -> list[float]:
    for v in sd.values():
        if isinstance(v, dict):
            yield from (float(x) for k, x in v.items() if str(k).startswith("sd"))
        else:
            yield float(v)


def _fmt_sd(values: list[float]) -> str:
    return "/".join(f"{v:.4f}" for v in values)


# --------------------------------------------------------------------------- Python peers
PY_NA = {
    ("glmm", "clinical_local"): "random slope without intercept '(0 + xs | center)' unsupported",
    ("glmm", "clinical_global"): "no Dale global odds-ratio likelihood",
    ("glmm", "cumlogit_2re"): "no cumulative-logit (ordinal) family",
    ("glmm", "cumlogit_1re"): "no cumulative-logit (ordinal) family",
    ("mixedlm", "clinical_global"): "no Dale global odds-ratio likelihood",
    ("mixedlm", "cumlogit_2re"): "no cumulative-logit (ordinal) family",
    ("mixedlm", "cumlogit_1re"): "no cumulative-logit (ordinal) family",
}

PY_FORMULAS = {
    "mba_2.5": ("mba", "count ~ statistics + economics + (1 | cell)", None),
    "mba_2.6": ("mba", "count ~ statistics + economics + ss + (1 | cell)", "ss"),
    "clinical_local": ("clinical",
                       "count ~ center*treatment + center*response + xs + (0 + xs | center)",
                       "xs"),
    "crossed": ("crossed", "count ~ x + (1 | a) + (1 | b)", "x"),
}


def _py_data(datadir: Path):
    import pandas as pd

    mba = pd.read_csv(datadir / "mba.csv")
    for c in ("statistics", "economics", "cell"):
        mba[c] = mba[c].astype(str)
    mba["count"] = mba["count"].astype(float)
    ct = pd.read_csv(datadir / "clinical.csv")
    ct["center"] = ct.center.astype(str)
    ct["treatment"] = pd.Categorical(ct.treatment, ["drug", "placebo"])
    ct["response"] = pd.Categorical(ct.response, ["much_better", "better", "unchanged_or_worse"])
    ct["count"] = ct["count"].astype(float)
    cr = pd.read_csv(datadir / "crossed.csv")
    cr = cr.assign(a=cr["a"].astype(str), b=cr["b"].astype(str), count=cr["count"].astype(float))
    return {"mba": mba, "clinical": ct, "crossed": cr}


def run_python_peer(tool: str, models: list[str], policy: RepPolicy, datadir: Path):
    data = _py_data(datadir)
    if tool == "glmm":
        import glmm

        def fit(df, formula, q):
            return glmm.fit(df, formula, family="poisson", nagq=q, anova_test="Wald")

        def extract(r, coef):
            sd = [math.sqrt(max(v, 0.0)) for blk in r.varcorr for v in blk[:1]]
            est = sd[0] if coef is None else float(r.beta[list(r.names).index(coef)])
            return est, _fmt_sd(sd), float(r.loglik), bool(r.converged)
    else:
        import mixedlm
        from mixedlm.families import Poisson

        def fit(df, formula, q):
            return mixedlm.glmer(formula, df, family=Poisson(), nAGQ=q)

        def extract(r, coef):
            sd = [float(v) for g in r.VarCorr().groups.values() for v in g.stddev.values()]
            est = sd[0] if coef is None else float(r.fixef()[coef])
            return est, _fmt_sd(sd), float(r.logLik()), bool(r.converged)

    out = []
    for model in models:
        for method in METHODS:
            rec = Record(model, method, tool)
            out.append(rec)
            if (tool, model) in PY_NA:
                rec.status = f"n/a ({PY_NA[tool, model]})"
                continue
            if method == "agq" and model in LAPLACE_ONLY:
                rec.status = f"n/a ({LAPLACE_ONLY[model]})"
                continue
            dname, formula, coef = PY_FORMULAS[model]
            q = MODELS[model][1] if method == "agq" else 1
            try:
                res = time_fits(lambda d=data[dname], f=formula, q=q: fit(d, f, q), policy, rec)
                rec.estimate, rec.sd, rec.loglik, rec.converged = extract(res, coef)
                if tool == "glmm" and method == "agq" and getattr(res, "nagq", q) != q:
                    rec.status = f"n/a (fell back to nagq={res.nagq})"
            except Exception as e:  # noqa: BLE001
                rec.status = f"error ({_short(repr(e), 80)})"
    return out


# --------------------------------------------------------------------------- orchestration
def _run_worker(cmd: list[str], out_json: Path, label: str, timeout: float) -> list[Record]:
    print(f"# running {label} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"# {label}: timed out after {timeout:.0f} s", file=sys.stderr)
        return []
    print(f"#   {label} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0 or not out_json.exists():
        print(f"# {label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
              file=sys.stderr)
        return []
    with open(out_json) as fh:
        rows = json.load(fh)
    recs = []
    for row in rows:
        row = {k: v for k, v in row.items() if k in Record.__dataclass_fields__}
        for k in ("times", "cpu_times", "warnings"):
            v = row.get(k)
            row[k] = [] if v is None else ([v] if not isinstance(v, list) else v)
        for k in ("seconds", "cpu_seconds", "estimate", "loglik"):  # R's NA / NaN arrive as strings
            row[k] = _to_float(row.get(k))
        recs.append(Record(**row))
    return recs


def _to_float(v) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _fmt_num(v: float | None, nd: int = 4) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _fmt_sec(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s:.4f}" if s < 1 else f"{s:.3f}" if s < 10 else f"{s:.1f}"


def _tools_for(model: str) -> list[str]:
    tools = ["gllmm", GLLMM_FIT_ONLY, *R_POISSON, *PY_PEERS]
    if model.startswith("cumlogit"):
        tools += list(R_ORDINAL)
    return tools


def render(records: list[Record], models: list[str], skipped: dict[str, str]) -> tuple[str, str]:
    """Markdown table (fits first, then the tools that cannot fit the model) and verdicts."""
    by = {(r.model, r.method, r.tool): r for r in records}
    lines = [
        "| model | method | tool | n | s/fit | cpu s/fit | ratio | cpu ratio | key estimate | sd "
        "| loglik | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    verdicts = []
    for model in models:
        nodes = MODELS[model][1]
        mlabels = {"agq": f"AGQ {nodes}" if nodes else "AGQ", "laplace": "Laplace"}
        unavailable: dict[str, dict[str, str]] = {}  # tool -> method -> reason
        for method in METHODS:
            mlabel = mlabels[method]
            g = by.get((model, method, "gllmm"))
            gsec = g.seconds if g and g.status == "ok" else None
            gcpu = g.cpu_seconds if g and g.status == "ok" else None
            peers = []
            for tool in _tools_for(model):
                r = by.get((model, method, tool))
                if r is None:
                    if tool in skipped:
                        unavailable.setdefault(tool, {})[method] = f"skipped ({skipped[tool]})"
                    continue
                if r.status != "ok" or r.seconds is None:
                    unavailable.setdefault(tool, {})[method] = r.status
                    continue
                ratio = cratio = ""
                if tool not in ("gllmm", GLLMM_FIT_ONLY) and gsec:
                    ratio = f"{r.seconds / gsec:.2f}"
                    peers.append((r.seconds, tool, r.cpu_seconds))
                    if gcpu and r.cpu_seconds is not None:
                        cratio = f"{r.cpu_seconds / gcpu:.2f}"
                extra = []
                if tool == GLLMM_FIT_ONLY:
                    extra.append("design pre-built (not a peer)")
                if r.converged is False:
                    extra.append("not converged")
                if r.loglik_note:
                    extra.append(r.loglik_note)
                if r.warnings:
                    extra.append("warns: " + "; ".join(_short(w, 70) for w in r.warnings[:2]))
                note = "; ".join(extra).replace("|", "/")
                n = f"{r.n_reps}{'*' if r.warmup_only else ''}"
                lines.append(
                    f"| {model} | {mlabel} | {tool} | {n} | {_fmt_sec(r.seconds)} "
                    f"| {_fmt_sec(r.cpu_seconds)} | {ratio} | {cratio} | {_fmt_num(r.estimate)} "
                    f"| {r.sd or ''} | {_fmt_num(r.loglik)} | {note} |")
            if method == "agq" and model in LAPLACE_ONLY:
                pass  # no verdict: nobody fits it (the n/a rows say why)
            elif gsec is None:
                verdicts.append(f"{model} / {mlabel}: gllmm failed")
            elif not peers:
                why = "no peer fits this model"
                if any(v.get(method, "").startswith("skipped") for v in unavailable.values()):
                    why = "no peer fitted it in this run; some peers were skipped"
                verdicts.append(f"{model} / {mlabel}: gllmm {_fmt_sec(gsec)} s; "
                                f"gllmm faster than fastest peer: n/a ({why})")
            else:
                best, tool, best_cpu = min(peers)
                yes = "yes" if gsec <= best else "no"
                cpu_txt = by_cpu = ""
                if gcpu and best_cpu:
                    cpu_txt = f", cpu ratio {best_cpu / gcpu:.2f}"
                cpu_peers = [(c, t) for _, t, c in peers if c is not None]
                if gcpu and cpu_peers:
                    # on a shared machine wall seconds measure the queue for a core: the
                    # verdict by CPU seconds (fastest peer by CPU) is the one to read then
                    best_c, tool_c = min(cpu_peers)
                    by_cpu = (f"; by cpu seconds ({tool_c} fastest, ratio {best_c / gcpu:.2f}): "
                              f"{'yes' if gcpu <= best_c else 'no'}")
                verdicts.append(
                    f"{model} / {mlabel}: gllmm {_fmt_sec(gsec)} s, fastest peer {tool} "
                    f"{_fmt_sec(best)} s (ratio {best / gsec:.2f}{cpu_txt}); "
                    f"gllmm faster than fastest peer: {yes}{by_cpu}")
        for tool, per in unavailable.items():
            reasons = set(per.values())
            if len(per) == len(METHODS) and len(reasons) == 1:
                groups = [("both", reasons.pop())]
            else:
                groups = [(mlabels[m], why) for m, why in per.items()]
            for mlabel, why in groups:
                lines.append(f"| {model} | {mlabel} | {tool} | | | | | | | | "
                             f"| {why.replace('|', '/')} |")
    return "\n".join(lines), "\n".join(verdicts)


def _versions(meta: list[Record]) -> str:
    from importlib import metadata

    parts = []
    for pkg in ("gllmm", "glmm", "mixedlm", "numpy", "scipy"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        rev = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        if rev:
            parts[0] += f" (commit {rev})"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "versions: " + ", ".join(parts) + "".join(f"; {m.status}" for m in meta)


def _load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-r", action="store_true", help="skip the R peers")
    ap.add_argument("--no-python-peers", action="store_true", help="skip glmm and mixedlm")
    ap.add_argument("--slow-limit", type=float, default=None, metavar="SEC",
                    help="time a fit whose warm-up exceeds SEC seconds by that single run "
                         "(default 30, --quick 10; 'inf' = never)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated subset of: {', '.join(MODELS)}")
    ap.add_argument("--json", type=Path, help="also write all records (with raw times) here")
    ap.add_argument("--worker", choices=("gllmm", *PY_PEERS), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model(s): {', '.join(bad)}")
    policy = RepPolicy.make(args.quick, args.slow_limit)

    if args.worker:  # ------------------------------------------------ inside a worker process
        if args.worker == "gllmm":
            recs = run_gllmm(models, policy)
        else:
            recs = run_python_peer(args.worker, models, policy, args.data)
        with open(args.out, "w") as fh:
            json.dump([asdict(r) for r in recs], fh)
        return 0

    load_start = _load()
    tmp = Path(tempfile.mkdtemp(prefix="gllmm_bench_"))
    try:
        write_data(tmp)
        quick = ["--quick"] if args.quick else []
        base = [sys.executable, str(Path(__file__).resolve()), "--models", ",".join(models),
                "--data", str(tmp), "--slow-limit", str(policy.slow_limit), *quick]
        records: list[Record] = []
        skipped: dict[str, str] = {}
        timeout = 1800 if args.quick else 7200
        records += _run_worker([*base, "--worker", "gllmm", "--out", str(tmp / "gllmm.json")],
                               tmp / "gllmm.json", "gllmm", timeout)
        if args.no_python_peers:
            skipped.update({t: "--no-python-peers" for t in PY_PEERS})
        else:
            for tool in PY_PEERS:
                out = tmp / f"{tool}.json"
                got = _run_worker([*base, "--worker", tool, "--out", str(out)], out, tool,
                                  timeout)
                records += got
                if not got:
                    skipped[tool] = "worker failed; see stderr"
        r_tools = (*R_POISSON, *R_ORDINAL)
        rscript = shutil.which("Rscript")
        if args.no_r:
            skipped.update({t: "--no-r" for t in r_tools})
        elif rscript is None:
            skipped.update({t: "Rscript not found" for t in r_tools})
        else:
            out = tmp / "r.json"
            p = policy
            got = _run_worker([rscript, str(HERE / "engine_peers.R"), str(tmp), str(out),
                               ",".join(models), str(p.min_reps), str(p.target), str(p.max_reps),
                               str(p.slow_limit)], out, "R peers", timeout)
            records += got
            if not got:
                skipped.update({t: "R worker failed; see stderr" for t in r_tools})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = [r for r in records if r.model == "_meta"]
    startup = [r for r in records if r.model == "_startup"]
    records = [r for r in records if r.model not in ("_meta", "_startup")]
    table, verdicts = render(records, models, skipped)
    header = (f"gllmm engine benchmark - {date.today().isoformat()} - {platform.node()} - "
              f"{os.cpu_count()} cores - python {platform.python_version()} - "
              f"{'quick' if args.quick else 'full'} run (slow limit {policy.slow_limit:g} s) - "
              "load average (1/5/15 min) "
              f"{load_start} at start, {_load()} at end")
    print(header)
    print(_versions(meta))
    print()
    print(table)
    print()
    print("ratio = peer time / gllmm time, by wall-clock medians (> 1: gllmm faster); "
          "cpu ratio = the same by CPU-time medians (steadier on a busy machine); "
          "n = timed fits after one warm-up (1* = a slow fit timed by its single warm-up run); "
          "cpu s/fit = CPU time of the whole process (> s/fit: several threads); "
          "loglik is the full log-likelihood "
          "(glmer AGQ: recomputed on that scale at glmer's estimates); clmm/clmm2 estimates "
          "sign-flipped to gllmm's convention (positive = drug better).")
    print()
    print(verdicts)
    for r in startup:
        print(f"\ngllmm start-up, not in the timings above: the first fit of every model and "
              f"method in a fresh process took {r.seconds:.2f} s in all (loading the compiled "
              "kernels from numba's cache; about 20 s more once per installation to compile "
              "them)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"header": header, "records": [asdict(r) for r in records]}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
