"""Report pages of the paper's examples (Coull & Agresti 2003, Section 5).

The example runs are computed by the command layer (``gllmm example``); this module only
reads them: an object with ``name``, ``title``, ``fits`` (name -> FitResult), ``tables``
(name -> DataFrame), ``tests`` and ``text``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._html import Report

_INTRO = {
    "table2": (
        "Section 5.1 of the paper smooths the sparse 6 x 7 table of 55 MBA students' ratings of "
        "their statistics and economics courses by a Poisson log-linear model with one N(0, "
        "sigma^2) random effect per cell: model (2.5) shrinks toward independence, model (2.6) "
        "toward linear-by-linear association. Fitted by maximum likelihood with adaptive "
        "Gauss-Hermite quadrature (15 nodes); smoothed counts use the posterior modes of the "
        "cell effects, as the paper's Table 2. Column (c) is the local linear likelihood "
        "smoother with its span chosen by AICc."
    ),
    "clinical": (
        "Section 5.2 of the paper: a multi-center clinical trial (8 centers, drug vs placebo, "
        "3 ordered responses). Model (5.1) lets each center's log odds ratio be "
        "b_k ~ N(beta, sigma_b^2), for local odds ratios (a Poisson log-linear model with a "
        "random slope on centred scores) and for global odds ratios (Dale's model with each "
        "center's marginals plugged in). Both by adaptive Gauss-Hermite quadrature, 15 nodes."
    ),
    "hartzel": (
        "The models of Hartzel, Agresti & Caffo (2001) that the paper compares with: cumulative "
        "and adjacent-categories logits with a correlated random intercept and drug effect per "
        "center, fitted by 2-D adaptive Gauss-Hermite quadrature (10 nodes per dimension)."
    ),
}


def example_report(run: Any, command: str | None = None) -> Report:
    """The report page of an example run (``gllmm report --example NAME``)."""
    rep = Report(run.title, subtitle="Coull, B. A. & Agresti, A. (2003). Generalized log-linear "
                 "models with random effects, with application to smoothing contingency "
                 "tables. Statistical Modelling 3, 251-271.", command=command)
    if run.name == "table2":
        _table2(rep, run)
    elif run.name in ("table4", "table5"):
        _clinical(rep, run)
    else:
        rep.add_text(_INTRO.get(run.name, ""))
        for name, res in run.fits.items():
            rep.add_fit(res, f"{name.capitalize()} model", fitted=False)
    return rep


def _table2(rep: Report, run: Any) -> None:
    from ..plot import table_heatmaps

    rep.add_text(_INTRO["table2"])
    t = run.tables["Table 2"]
    rep.add_heading("Table 2: observed and smoothed counts")
    wide = {lab: t.pivot(index="statistics", columns="economics", values=col) for lab, col in (
        ("observed", "observed"), ("(a) independence base", "cellwise_independence"),
        ("(b) linear-by-linear base", "cellwise_linear_by_linear"),
        ("(c) local likelihood", "local_likelihood"))}
    obs = wide.pop("observed")
    rep.add_figure(table_heatmaps(obs, wide, row_label="statistics rating",
                                  col_label="economics rating"),
                   "Observed counts and the three smoothings, on one colour scale")
    lr = run.tests.get("lr_beta")
    if lr:
        rep.add_text(f"Likelihood-ratio test of beta = 0, both models with cell-wise random "
                     f"effects: {lr['statistic']:.3f} on {lr['df']} df (p = "
                     f"{lr['p_value']:.2g}); the paper reports 13.2.")
    rep.add_table(t, "Table 2 (columns paper_*: the values printed in the paper)", digits=2)
    for name, label in (("independence", "Model (2.5): independence base"),
                        ("linear_by_linear", "Model (2.6): linear-by-linear base")):
        res = run.fits[name]
        rep.add_fit(res, label, fitted=False, caterpillar=not _all_boundary(res))


def _clinical(rep: Report, run: Any) -> None:
    from ..plot import caterpillar_plot, shrinkage_plot

    rep.add_text(_INTRO["clinical"])
    loc, glo = run.fits["local"], run.fits["global"]
    t4 = run.tables["Table 4"]
    rep.add_heading("Table 4: center-specific log odds ratios")
    fixed = t4[["fixed_local", "fixed_global"]].set_axis(
        ["local odds ratios", "global odds ratios"], axis=1)
    random = t4[["random_local", "random_global"]].set_axis(
        ["local odds ratios", "global odds ratios"], axis=1)
    rep.add_figure(shrinkage_plot(fixed, random, labels=list(t4["center"]),
                                  pooled=[loc.beta["beta"], glo.beta["beta"]]),
                   "Shrinkage: each center's ML log odds ratio (left) and its random-effects "
                   "prediction beta + u_k (right); dashed: the pooled beta")
    rep.add_table(t4, "Table 4 (columns paper_*: the values printed in the paper)", digits=2)
    for res, what in ((loc, "local"), (glo, "global")):
        rep.add_figure(caterpillar_plot(res, fixed="beta", title=f"center {what} log odds "
                                        "ratios"),
                       f"Center-specific {what} log odds ratios beta + u_k: posterior modes "
                       "+- 1.96 posterior SD")
    for key, label in (("lr_local", "local"), ("lr_global", "global")):
        lr = run.tests.get(key)
        if lr:
            rep.add_text(f"LR test of sigma = 0, {label} model: {lr['statistic']:.3f}, "
                         f"p = {lr['p_value']:.3f} (half the chi-square(1) tail).")
    if "Table 5" in run.tables:
        rep.add_heading("Table 5: fitted counts given the predicted center effects")
        rep.add_table(run.tables["Table 5"], "Table 5 (columns paper_*: printed values)",
                      digits=2)
    rep.add_fit(loc, "Local odds-ratio model (5.1)", fitted=False, caterpillar=False)
    rep.add_fit(glo, "Global odds-ratio model (Dale, plug-in marginals)", fitted=False,
                caterpillar=False)


def _all_boundary(res: Any) -> bool:
    vc = res.variance_components()
    sd = vc[vc.component.str.startswith("sd")]["estimate"].to_numpy(float)
    return bool(sd.size and np.all(sd == 0))
