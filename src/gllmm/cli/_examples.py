"""The paper's examples (Coull & Agresti 2003, Section 5) as named runs."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .. import datasets, models
from ..fit import fit


def _quiet_fit(design: Any, method: str = "agq", n_nodes: int | None = 15) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(design, method=method, n_nodes=n_nodes)


def table2(echo: bool = True) -> dict[str, Any]:
    """MBA table: cell-wise smoothing on independence (2.5) and L x L (2.6) bases; Table 2."""
    mba = datasets.load("mba")
    r5 = _quiet_fit(models.cellwise_smoothing(mba, "statistics", "economics"))
    r6 = _quiet_fit(models.cellwise_smoothing(mba, "statistics", "economics",
                                              base="linear_by_linear"))
    lr = r6.lr_test(r5)
    table = mba.copy()
    table["(a) independence"] = r5.fitted_counts()
    table["(b) linear-by-linear"] = r6.fitted_counts()
    if echo:
        print(r5.summary(), "\n")
        print(r6.summary(), "\n")
        print(f"LR test of beta = 0 (both with cell-wise random effects): "
              f"{lr['statistic']:.3f}, p = {lr['p_value']:.2g}\n")
        print("Table 2: observed and smoothed counts (posterior-mode predictions)")
        wide = table.pivot(index="statistics", columns="economics")
        print(wide.round(2).to_string(), "\n")
    return {"independence": r5.to_dict(), "linear_by_linear": r6.to_dict(),
            "lr_beta": lr, "table2": table.to_dict(orient="records")}


def table4(echo: bool = True) -> dict[str, Any]:
    """Clinical trial: center-specific local and global log odds ratios (Tables 4 and 5)."""
    ct = datasets.load("clinical_trial")
    loc = _quiet_fit(models.stratified_local_association(ct, "center", "treatment", "response"))
    loc0 = _quiet_fit(models.stratified_local_association(ct, "center", "treatment",
                                                          "response", random=False))
    glo = _quiet_fit(models.stratified_global_association(ct, "center", "treatment",
                                                          "response"))
    glo0 = _quiet_fit(models.stratified_global_association(ct, "center", "treatment",
                                                           "response", random=False))
    fixed_local, fixed_global = [], []
    for c in sorted(ct.center.unique()):
        sub = ct[ct.center == c]
        fl = _quiet_fit(models.stratified_local_association(
            sub, "center", "treatment", "response", random=False))
        fg = _quiet_fit(models.stratified_global_association(
            sub, "center", "treatment", "response", random=False))
        fixed_local.append(fl.beta["beta"])
        fixed_global.append(fg.beta["beta"])
    t4 = pd.DataFrame({
        "center": sorted(ct.center.unique()),
        "fixed_local": fixed_local, "fixed_global": fixed_global,
        "random_local": loc.cluster_coefficients("beta").to_numpy(),
        "random_global": glo.cluster_coefficients("beta").to_numpy(),
    })
    t5 = ct.copy()
    t5["local_model"] = loc.fitted_counts()
    t5["global_model"] = glo.fitted_counts()
    lr_l, lr_g = loc.lr_test(loc0), glo.lr_test(glo0)
    if echo:
        print(loc.summary(), "\n")
        print(glo.summary(), "\n")
        print(f"LR for sigma = 0: local {lr_l['statistic']:.3f} (p = {lr_l['p_value']:.3f}); "
              f"global {lr_g['statistic']:.3f} (p = {lr_g['p_value']:.3f})\n")
        print("Table 4: center-specific log odds ratios")
        print(t4.round(2).to_string(index=False), "\n")
        print("Table 5: fitted counts given the predicted center effects")
        print(t5.round(1).to_string(index=False), "\n")
    return {"local": loc.to_dict(), "global": glo.to_dict(), "lr_local": lr_l,
            "lr_global": lr_g, "table4": t4.to_dict(orient="records"),
            "table5": t5.astype({"response": str, "treatment": str}).to_dict(orient="records")}


def hartzel(echo: bool = True) -> dict[str, Any]:
    """Cumulative and adjacent-categories logit models, correlated random intercept and slope."""
    ct = datasets.load("clinical_trial")
    ct["x"] = (ct["treatment"] == "drug").astype(float)
    cum = _quiet_fit(models.ordinal_mixed(ct, "response ~ x + (1 + x | center)"), n_nodes=10)
    adj = _quiet_fit(models.ordinal_mixed(ct, "response ~ x + (1 + x | center)",
                                          link="adjacent"), n_nodes=10)
    if echo:
        print(cum.summary(), "\n")
        print(adj.summary(), "\n")
    return {"cumulative": cum.to_dict(), "adjacent": adj.to_dict()}


EXAMPLES: dict[str, Callable[..., dict[str, Any]]] = {
    "table2": table2,
    "table4": table4,
    "hartzel": hartzel,
}
# aliases a reader of the paper looks for
EXAMPLES["table5"] = table4
EXAMPLES["mba"] = table2
EXAMPLES["clinical"] = table4


def run_example(name: str, json_output: bool = False) -> dict[str, Any]:
    np.set_printoptions(suppress=True)
    return EXAMPLES[name](echo=not json_output)
