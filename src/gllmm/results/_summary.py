"""Text summaries of fits (statsmodels / R style)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._result import FitResult


def _fmt(x: float, width: int = 10, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return " " * (width - 3) + "NaN" if x is not None else " " * width
    return f"{x:{width}.{digits}f}"


def reference_levels(res: FitResult) -> dict[str, str]:
    """The reference (omitted) level of each treatment-coded factor among the fixed effects.

    Columns named ``C(a)[T.level]`` (or ``a[T.level]``) are the factor's levels other than the
    reference; the reference is the data's level that has no column (formulaic's coding).
    """
    data = res.design.notes.get("data")
    shown: dict[str, set[str]] = {}
    for name in res.design.fixed_names:
        m = re.fullmatch(r"(.+)\[T\.(.+)\]", str(name))
        if m and ":" not in m.group(1):
            shown.setdefault(m.group(1), set()).add(m.group(2))
    out = {}
    for term, levels in shown.items():
        inner = re.fullmatch(r"(?:C|factor)\((\w+)(?:,.*)?\)", term)
        column = inner.group(1) if inner else term
        if data is None or column not in data.columns:
            continue
        missing = [str(v) for v in sorted(data[column].dropna().unique()) if str(v) not in levels]
        if len(missing) == 1:
            out[term] = missing[0]
    return out


def format_summary(res: FitResult) -> str:
    d = res.design
    title = d.notes.get("title", "Generalized log-linear model")
    lines = [title, "=" * max(60, len(title))]
    lines.append(f"Family: {d.family.name:<20} Method: {res.method_label}")
    lines.append(f"Log-likelihood: {res.loglik:.4f}   AIC: {res.aic:.2f}   BIC: {res.bic:.2f}")
    lines.append(f"Observations (n of BIC): {res.nobs:g}   Total count: {res.n_counts:g}   "
                 f"Clusters: {d.n_clusters if d.n_random else '-'}")
    for key, label in (("marginals", "Marginals"), ("coding", "Random-effect coding"),
                       ("sampling", "Sampling"), ("convention", "Sign convention")):
        if d.notes.get(key):
            lines.append(f"{label}: {d.notes[key]}")
    if res.extra.get("loglik_method"):
        lines.append(f"Log-likelihood evaluated by: {res.extra['loglik_method']}")
    scores = d.notes.get("scores")
    if scores:
        lines.append("Scores: " + "; ".join(f"{k} = {[round(float(x), 4) for x in v]}"
                                             for k, v in scores.items()))
    refs = reference_levels(res)
    if refs:
        lines.append("Reference levels: " + "; ".join(f"{k} = {v}" for k, v in refs.items()))
    lines.append("")
    coef = res.coefficients()
    width = min(48, max(28, max(len(str(n)) for n in coef.index) + 2))
    lines.append(f"{'Fixed effects':<{width}}{'estimate':>10}{'SE':>10}{'z':>9}{'P>|z|':>9}")
    infinite = set(res.extra.get("infinite_estimates", ()))
    for name, row in coef.iterrows():
        lines.append(f"{str(name)[:width - 1]:<{width}}{_fmt(row['estimate'])}{_fmt(row['se'])}"
                     f"{_fmt(row['z'], 9, 2)}{_fmt(row['p'], 9, 4)}"
                     + ("  (*)" if name in infinite else ""))
    if d.n_random:
        lines.append("")
        lines.append(f"{'Random effects':<{width}}{'estimate':>10}{'SE':>10}")
        for _, row in res.variance_components().iterrows():
            label = f"{row['term']} {row['component']}"
            comp = str(row["component"])
            names = {f"sd({row['term']})", f"sd({row['term']}:{comp[3:]})"}
            star = "  (*)" if comp.startswith("sd") and names & infinite else ""
            lines.append(f"{label[:width - 1]:<{width}}{_fmt(row['estimate'])}{_fmt(row['se'])}"
                         + star)
    notes = []
    if not res.converged:
        notes.append("WARNING: the optimiser did not converge; estimates may be inaccurate.")
    for b in res.boundary:
        notes.append(f"Boundary fit: {b} = 0 (no extra variation detected); its SE is not "
                     "reported.")
    if infinite:
        notes.append("(*) NOT ESTIMATES: the ML estimate does not exist (sampling zeros or "
                     "separation; a flat likelihood): " + ", ".join(sorted(infinite))
                     + ". Their values and SEs are where the optimiser stopped.")
    elif res.extra.get("infinite_cells"):
        notes.append("WARNING: sampling zeros make some estimates infinite.")
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)
