"""Table 1 from stored replicates: averages with Monte Carlo SEs, rendering, comparison, plot.

For scenario k and estimator e with per-replicate MSEs ``m_1..m_R`` (failed fits excluded and
counted), Table 1 holds ``mean(m)`` and its Monte Carlo SE ``sd(m) / sqrt(R)`` (paper Section
4: "Monte Carlo standard errors for all estimates are less than or equal to 0.0025").
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..tables._validate import check_choice, check_columns
from ._estimators import ESTIMATORS
from ._spec import StudySpec

#: Table 1 of Coull & Agresti (2003), decoded (reference note; tests check it equals the
#: fixture ``tests/fixtures/paper/table1_mse.csv``).
PUBLISHED_TABLE1_CSV = """\
scores,beta,n,sample_proportions,glm_independence,glm_uniform_association,\
cellwise_gllmm_independence,cellwise_gllmm_uniform_association,association_gllmm_beta0,\
association_gllmm_free_beta,local_likelihood
uniform,0.1,50,0.099,0.053,0.064,0.053,0.064,0.059,0.066,0.038
uniform,0.1,200,0.099,0.062,0.064,0.062,0.064,0.065,0.066,0.039
uniform,0.1,1000,0.099,0.106,0.065,0.104,0.065,0.085,0.067,0.040
uniform,0.4,50,0.098,0.092,0.064,0.089,0.065,0.076,0.067,0.042
uniform,0.4,200,0.098,0.222,0.064,0.146,0.064,0.084,0.066,0.052
uniform,0.4,1000,0.098,0.915,0.064,0.106,0.064,0.091,0.066,0.109
uniform,1.0,50,0.093,0.291,0.067,0.120,0.067,0.084,0.068,0.067
uniform,1.0,200,0.093,1.039,0.067,0.099,0.067,0.087,0.067,0.145
uniform,1.0,1000,0.093,5.034,0.064,0.095,0.064,0.091,0.065,0.585
nonuniform,0.1,50,0.099,0.054,0.063,0.055,0.063,0.060,0.066,0.039
nonuniform,0.1,200,0.099,0.062,0.063,0.062,0.063,0.064,0.065,0.039
nonuniform,0.1,1000,0.099,0.114,0.071,0.110,0.071,0.080,0.072,0.049
nonuniform,0.4,50,0.098,0.102,0.072,0.094,0.072,0.079,0.073,0.049
nonuniform,0.4,200,0.098,0.265,0.096,0.138,0.094,0.086,0.090,0.083
nonuniform,0.4,1000,0.098,1.138,0.233,0.104,0.147,0.092,0.103,0.268
nonuniform,1.0,50,0.091,0.354,0.102,0.107,0.099,0.081,0.092,0.107
nonuniform,1.0,200,0.091,1.306,0.230,0.092,0.130,0.084,0.096,0.322
nonuniform,1.0,1000,0.091,6.368,0.902,0.092,0.100,0.090,0.091,1.469
"""

_KEYS = ["scores", "beta", "n"]


def published_table1() -> pd.DataFrame:
    """The paper's Table 1 (3 x 3 tables) as printed: one row per scenario."""
    return pd.read_csv(io.StringIO(PUBLISHED_TABLE1_CSV))


def _scenario_frame(spec: StudySpec) -> pd.DataFrame:
    return pd.DataFrame(
        [(s.index, s.scores.name, s.beta, s.n) for s in spec.scenarios],
        columns=["scenario", *_KEYS],
    )


def summarise(results: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Long form: one row per (scenario, estimator) with ``mse``, ``se``, ``replicates``
    (successful), ``failures`` and ``seconds`` (mean time per fit)."""
    check_columns(results, ["scenario", "replicate", "estimator", "status", "mse", "seconds"],
                  "results column")
    if not isinstance(spec, StudySpec):
        raise SpecError(f"summarise needs the study's StudySpec, got {type(spec).__name__}")
    df = results[results["estimator"].isin(spec.estimators)
                 & (results["replicate"] < spec.replicates)]
    ok = df["status"].eq("ok") & df["mse"].notna()
    grouped = df[ok].groupby(["scenario", "estimator"])["mse"]
    out = pd.DataFrame({
        "mse": grouped.mean(),
        "se": grouped.std(ddof=1) / np.sqrt(grouped.count()),
        "replicates": grouped.count(),
    })
    out["failures"] = df[~ok].groupby(["scenario", "estimator"]).size()
    out["seconds"] = df.groupby(["scenario", "estimator"])["seconds"].mean()
    out["failures"] = out["failures"].fillna(0).astype(int)
    out = out.reset_index().merge(_scenario_frame(spec), on="scenario")
    order = {e: i for i, e in enumerate(spec.estimators)}
    out["_o"] = out["estimator"].map(order)
    out = out.sort_values(["scenario", "_o"]).drop(columns="_o")
    return out[["scenario", *_KEYS, "estimator", "mse", "se", "replicates", "failures",
                "seconds"]].reset_index(drop=True)


def table1(results: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Wide Table 1: one row per scenario (``scores``, ``beta``, ``n``), a column per estimator
    with its average n-normalised MSE, a ``<estimator>_se`` column with its MC SE and a
    ``<estimator>_failed`` column counting the replicates whose fit failed (excluded from the
    mean: a mean over the survivors of a scenario where most fits fail is not comparable)."""
    long = summarise(results, spec)
    base = _scenario_frame(spec).set_index("scenario")
    cols = list(spec.estimators)
    parts = [long.pivot(index="scenario", columns="estimator", values=v).reindex(
        index=base.index, columns=cols) for v in ("mse", "se", "failures")]
    failed = parts[2].fillna(0).astype(int)
    wide = base.join(parts[0]).join(parts[1].add_suffix("_se")).join(
        failed.add_suffix(FAILED))
    wide.columns.name = None
    return wide.reset_index(drop=True)


FAILED = "_failed"


def estimator_columns(table: pd.DataFrame) -> list[str]:
    """The estimator columns of a wide Table 1 (not the keys, SEs or failure counts)."""
    check_columns(table, _KEYS, "Table 1 column")
    return [c for c in table.columns
            if c not in _KEYS and not c.endswith("_se") and not c.endswith(FAILED)]


def render_table(table: pd.DataFrame, fmt: str = "markdown", digits: int = 3) -> str:
    """Table 1 as text: ``markdown`` (GitHub pipes) or ``text`` (aligned columns); each cell
    ``mse (se)``, followed by ``[k failed]`` when k fits of that scenario failed."""
    check_choice(fmt, "fmt", ("markdown", "text"))
    estimators = estimator_columns(table)
    labels = [ESTIMATORS[e].label if e in ESTIMATORS else e for e in estimators]
    body = []
    for _, row in table.iterrows():
        cells = [str(row["scores"]), f"{row['beta']:g}", str(int(row["n"]))]
        for e in estimators:
            m, s = row[e], row.get(f"{e}_se", np.nan)
            k = int(row.get(f"{e}{FAILED}", 0) or 0)
            cell = ("-" if pd.isna(m) else
                    f"{m:.{digits}f} ({s:.{digits}f})" if pd.notna(s) else f"{m:.{digits}f}")
            cells.append(cell + (f" [{k} failed]" if k else ""))
        body.append(cells)
    header = ["scores", "beta", "n", *labels]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines) + "\n"


def compare_with_published(table: pd.DataFrame,
                           published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each entry against the printed value in Monte Carlo SE units.

    Returns a long frame: ``scores, beta, n, estimator, mse, se, published, difference,
    z = difference / se, within_3se``. Only estimators and scenarios present in both.
    """
    check_columns(table, _KEYS, "Table 1 column")
    published = published_table1() if published is None else published
    check_columns(published, _KEYS, "published column")
    rows = []
    pub = published.set_index(_KEYS)
    for _, row in table.iterrows():
        key = (row["scores"], float(row["beta"]), int(row["n"]))
        if key not in pub.index:
            continue
        for est in pub.columns:
            if est not in table.columns:
                continue
            m, s, p = float(row[est]), float(row.get(f"{est}_se", np.nan)), float(pub.loc[key, est])
            diff = m - p
            z = diff / s if s > 0 else np.nan
            rows.append((*key, est, m, s, p, diff, z, bool(abs(z) <= 3.0)))
    return pd.DataFrame(rows, columns=[*_KEYS, "estimator", "mse", "se", "published",
                                       "difference", "z", "within_3se"])


def plot_mse_by_n(table: pd.DataFrame, path: str | Path | None = None,
                  title: str | None = None) -> Any:
    """MSE against n (log-log), one panel per (scores, beta), one line per estimator, with
    +-2 SE bars. Uses the Agg backend; saved to ``path`` (PNG) when given.

    Returns the matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    estimators = estimator_columns(table)
    score_sets = list(dict.fromkeys(table["scores"]))
    betas = sorted(set(table["beta"]))
    fig, axes = plt.subplots(len(score_sets), len(betas), figsize=(4 * len(betas),
                             3.3 * len(score_sets)), squeeze=False, sharex=True)
    for i, sname in enumerate(score_sets):
        for j, b in enumerate(betas):
            ax = axes[i][j]
            sub = table[(table["scores"] == sname) & (table["beta"] == b)].sort_values("n")
            for e in estimators:
                label = ESTIMATORS[e].label if e in ESTIMATORS else e
                err = 2 * sub[f"{e}_se"] if f"{e}_se" in sub else None
                lines = ax.errorbar(sub["n"], sub[e], yerr=err, marker="o", ms=3, capsize=2,
                                    label=label)
                for n, m, k in zip(sub["n"], sub[e], sub.get(f"{e}{FAILED}", 0 * sub["n"]),
                                   strict=True):
                    if k:  # failed fits are excluded from the mean: say so at the point
                        ax.annotate(f"{int(k)} failed", (n, m if pd.notna(m) else 1.0),
                                    fontsize=6, color=lines[0].get_color(),
                                    xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(sorted(set(table["n"])))
            ax.set_xticklabels([str(int(n)) for n in sorted(set(table["n"]))])
            ax.set_title(f"{sname} scores, beta = {b:g}", fontsize=10)
            if i == len(score_sets) - 1:
                ax.set_xlabel("n")
            if j == 0:
                ax.set_ylabel("n-normalised MSE")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96 if title else 1))
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def write_outputs(table: pd.DataFrame, out_dir: str | Path, spec: StudySpec,
                  stem: str = "table1") -> dict[str, Path]:
    """Write ``<stem>.csv``, ``<stem>.md``, ``<stem>.txt``, ``<stem>_mse_by_n.png`` and, for
    3 x 3 studies of the paper's design, ``<stem>_vs_published.csv``. Returns the paths."""
    check_columns(table, _KEYS, "Table 1 column")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md",
             "text": out / f"{stem}.txt", "plot": out / f"{stem}_mse_by_n.png"}
    table.to_csv(paths["csv"], index=False)
    paths["markdown"].write_text(render_table(table, "markdown"))
    paths["text"].write_text(render_table(table, "text"))
    plot_mse_by_n(table, paths["plot"], title=spec.name)
    if spec.size == 3:
        cmp = compare_with_published(table)
        if len(cmp):
            paths["comparison"] = out / f"{stem}_vs_published.csv"
            cmp.to_csv(paths["comparison"], index=False)
    return paths
