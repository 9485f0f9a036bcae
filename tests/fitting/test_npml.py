"""NPML (method="npml") against npmlreg's printed results, the GLM, and a brute-force maximum.

Reference: tests/fixtures/published/npmlreg.json (npmlreg 0.46-5 vignette and help pages,
reprinting Aitkin's (1996) analyses; source stated in the file). Printed numbers are matched to
their printed digits (half a unit in the last printed digit) by following npmlreg's EM
(``em_tol=0.0005``, ``polish=False``: its start and stopping rule), which stops short of the
maximum; the exact maximum (default) is checked against scipy from several starts (1e-6).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

import gllmm
from gllmm import datasets, models
from gllmm.errors import BoundaryWarning, FitError, SpecError
from gllmm.fitting import fit_glm, fit_npml
from gllmm.spec import build_design

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "published"
                  / "npmlreg.json").read_text())
NPMLREG = {"em_tol": 0.0005, "polish": False}


def printed(value: float, ref: float) -> bool:
    """``value`` rounds to the printed ``ref`` (half a unit in its last digit, + 1e-12)."""
    text = repr(ref)
    digits = len(text.split(".")[1]) if "." in text else 0
    return abs(value - ref) <= 0.5 * 10.0**-digits + 1e-12


@pytest.fixture(scope="module")
def fabric():
    f = REF["datasets"]["fabric"]
    df = pd.DataFrame({"y": f["y"], "x": np.log(f["leng"]), "roll": range(len(f["y"]))})
    return build_design(df, "y ~ x + (1 | roll)")


@pytest.fixture(scope="module")
def rainfall():
    t = REF["datasets"]["rainfall"]
    return pd.DataFrame({"s": t["Cases"], "f": np.subtract(t["Total"], t["Cases"]),
                         "x": np.asarray(t["Rain"]) / 1000, "city": range(len(t["Cases"]))})


def irish(formula: str, offset: str):
    df = pd.DataFrame(REF["datasets"]["irlsuicide"])
    d = build_design(df, formula)
    off = np.log(df[offset].to_numpy(dtype=float))[d.family.cells[:, 0]][:, None]
    d = copy.copy(d)
    d.offset = off
    return d


# ---------------------------------------------------------------- npmlreg, printed digits
@pytest.mark.parametrize("k", [2, 3])
def test_fabric_npmlreg(fabric, k):
    ref = REF["results"][f"fabric_np{k}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        r = gllmm.fit(fabric, method="npml", k=k, **NPMLREG)
    if "em_iterations" in ref:
        assert r.opt.n_iterations == ref["em_iterations"]
    assert printed(r.beta["x"], ref["x"])
    pts = r.mass_points()["roll:Intercept + Intercept"].to_numpy()
    assert all(printed(a, b) for a, b in zip(pts, ref["mass_points"], strict=True))
    assert all(printed(a, b) for a, b in zip(r.masses, ref["masses"], strict=True))
    assert printed(r.random_sd["roll"], ref["sd"])
    assert printed(-2 * r.opt.log[-1]["loglik"], ref["m2loglik"])


@pytest.mark.parametrize("name,formula", [("toxo_np3", "cbind(s, f) ~ 1 + (1 | city)"),
                                          ("toxo_npx3", "cbind(s, f) ~ x + (1 | city)")])
def test_toxoplasmosis_npmlreg(rainfall, name, formula):
    ref = REF["results"][name]
    r = gllmm.fit(build_design(rainfall, formula, family="binomial"), method="npml", k=3,
                  **NPMLREG)
    assert r.opt.n_iterations == ref["em_iterations"]
    pts = r.mass_points()["city:Intercept + Intercept"].to_numpy()
    assert all(printed(a, b) for a, b in zip(pts, ref["mass_points"], strict=True))
    assert all(printed(a, b) for a, b in zip(r.masses, ref["masses"], strict=True))
    assert printed(r.random_sd["city"], ref["sd"])
    # npmlreg's disparity is that of its last E-step (before the final mass update)
    assert printed(-2 * r.opt.log[-1]["loglik"], ref["m2loglik"])
    if "x" in ref:
        assert printed(r.beta["x"], ref["x"])


@pytest.mark.parametrize("name,formula,offset", [
    ("irl_crude3", "death ~ C(sex) * C(age) + (1 | ID)", "pop"),
    ("irl_relrisk3", "death ~ 1 + (1 | ID)", "expected")])
def test_irish_suicide_npmlreg(name, formula, offset):
    # Poisson overdispersion between 13 regions, 8 cells each (npmlreg's allvc)
    r = gllmm.fit(irish(formula, offset), method="npml", k=3, **NPMLREG)
    assert printed(-2 * r.opt.log[-1]["loglik"], REF["results"][name]["disparity"])


def test_fabric_gq_neighbours(fabric):
    # npmlreg: NPML with 2 points (-2 log L 172.7) beats the normal model and the GLM
    # (187.8); on the same scale the AGQ fit of the normal model lies between them
    r2 = gllmm.fit(fabric, method="npml", k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agq = gllmm.fit(fabric, method="agq", n_nodes=20)
    assert printed(-2 * r2.loglik, 172.7)
    assert r2.loglik > agq.loglik > -187.8 / 2
    # same fixed-effect meaning (centred points): slopes within an SE of each other
    assert abs(r2.beta["x"] - agq.beta["x"]) < agq.se["x"]


# ---------------------------------------------------------------- K = 1 is the GLM
def test_k1_equals_glm(fabric, rainfall):
    for d in (fabric, build_design(rainfall, "cbind(s, f) ~ x + (1 | city)", family="binomial")):
        r = fit_npml(d, k=1)
        g = fit_glm(d)
        assert abs(r.loglik - g.loglik) < 1e-10
        assert np.max(np.abs(r.beta.to_numpy() - g.beta)) < 1e-7
        assert r.masses.tolist() == [1.0]
        assert list(r.random_sd.values()) == [0.0]


@pytest.mark.parametrize("link", ["cumulative", "adjacent", "continuation", "baseline"])
def test_k1_equals_glm_multinomial_links(link):
    df = datasets.load("clinical_trial")
    df["x"] = (df["treatment"] == "drug").astype(float)
    d = models.ordinal_mixed(df, "response ~ x + (1 | center)", link=link)
    r1 = fit_npml(d, k=1)
    assert abs(r1.loglik - fit_glm(d, beta0=d.notes["start"]).loglik) < 1e-10
    r2 = fit_npml(d, k=2)
    assert r2.loglik > r1.loglik + 1.0  # centres differ: the points separate
    assert abs(r2.masses.sum() - 1) < 1e-12 and abs(r2.masses @ r2.points[:, 0]) < 1e-10


# ---------------------------------------------------------------- brute force
def _brute_poisson_mixture(y, x, k, starts):
    """Direct maximisation of ``sum_i log sum_k pi_k Poisson(y_i; exp(m_k + b x_i))`` by BFGS
    (scipy.stats densities, softmax masses), best of several starts."""

    def negll(th):
        b, m, z = th[0], th[1:1 + k], np.r_[th[1 + k:], 0.0]
        logpi = z - logsumexp(z)
        lp = stats.poisson.logpmf(y[:, None], np.exp(m[None] + b * x[:, None])) + logpi
        return -logsumexp(lp, axis=1).sum()

    best = None
    for s in starts:
        res = optimize.minimize(negll, s, method="BFGS", options={"gtol": 1e-10})
        res = optimize.minimize(negll, res.x, method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000})
        if best is None or res.fun < best.fun:
            best = res
    best.negll = negll
    return best


def test_brute_force_fabric_k2(fabric):
    f = REF["datasets"]["fabric"]
    y, x = np.asarray(f["y"], float), np.log(f["leng"])
    starts = [np.r_[0.8, -3.2, -2.4, 1.0], np.r_[1.0, -4.0, -3.5, 0.0],
              np.r_[0.5, -2.0, -1.0, 2.0]]
    best = _brute_poisson_mixture(y, x, 2, starts)
    r = fit_npml(fabric, k=2)
    assert abs(r.loglik - (-best.fun)) < 1e-6
    mine = np.argsort(r.points[:, 0])
    pts = r.mass_points()["roll:Intercept + Intercept"].to_numpy()[mine]
    order = np.argsort(best.x[1:3])
    z = np.r_[best.x[3], 0.0]
    pi = np.exp(z - logsumexp(z))[order]
    assert abs(r.beta["x"] - best.x[0]) < 1e-6
    assert np.max(np.abs(pts - best.x[1:3][order])) < 1e-6
    assert np.max(np.abs(r.masses[mine] - pi)) < 1e-6
    # SE of the slope (invariant to how points and masses are parametrised) against the
    # inverse of a central-difference Hessian of the brute-force log-likelihood (step 1e-4:
    # truncation ~1e-8, rounding ~1e-13 / 1e-8 ~ 1e-5 relative)
    h, n = 1e-4, len(best.x)
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            hess[i, j] = (best.negll(best.x + e_i + e_j) - best.negll(best.x + e_i - e_j)
                          - best.negll(best.x - e_i + e_j) + best.negll(best.x - e_i - e_j)
                          ) / (4 * h * h)
    se_brute = np.sqrt(np.linalg.inv(hess)[0, 0])
    assert abs(r.se["x"] - se_brute) < 1e-4 * se_brute


def test_polished_is_a_maximum(fabric):
    # the gradient of the mixture log-likelihood vanishes at the default fit: a 1e-5 move of
    # any parameter changes l by less than 1e-8 to first order
    r = fit_npml(fabric, k=2)
    em = fit_npml(fabric, k=2, **NPMLREG)
    assert r.loglik >= em.loglik - 1e-12
    assert r.converged and r.opt.optimizer == "em+newton"


# ---------------------------------------------------------------- selection, warnings, errors
def test_k_range_selects_by_bic(fabric):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        r = fit_npml(fabric, k=range(1, 5))
    t = r.selection
    assert list(t.k) == [1, 2, 3, 4]
    assert r.k == int(t.k[np.argmin(t.bic)])
    # the NPML estimate is reached at K = 2 (npmlreg: 172.7 for K = 2 and 3)
    assert abs(t.loglik[1] - t.loglik[2]) < 1e-6 and abs(t.loglik[2] - t.loglik[3]) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        assert fit_npml(fabric, k=[1, 2, 3], select="loglik").k == 2


def test_merged_points_warn(fabric):
    with pytest.warns(BoundaryWarning, match="merged"):
        r = fit_npml(fabric, k=3)
    assert r.boundary and "point[" in r.boundary[0]


def test_posterior_probabilities(fabric):
    r = fit_npml(fabric, k=2)
    pp = r.posterior_probabilities()
    assert pp.shape == (32, 2) and np.allclose(pp.sum(axis=1), 1.0, atol=1e-12)
    # masses are the mean posterior probabilities at the maximum (the EM fixed point)
    assert np.max(np.abs(pp.mean(axis=0).to_numpy() - r.masses)) < 1e-7
    eb = r.random_effects("mean").iloc[:, 0].to_numpy()
    assert np.allclose(eb, pp.to_numpy() @ r.points[:, 0], atol=1e-12)


def test_bad_input(fabric):
    with pytest.raises(SpecError, match="k must be"):
        fit_npml(fabric, k=0)
    with pytest.raises(SpecError, match="select"):
        fit_npml(fabric, k=[1, 2], select="deviance")
    d0 = build_design(pd.DataFrame({"y": [1, 2, 3], "x": [0.0, 1.0, 2.0]}), "y ~ x")
    with pytest.raises(SpecError, match="random effects"):
        fit_npml(d0, k=2)


def test_cli_npml(tmp_path, capsys):
    from gllmm.cli import main

    f = REF["datasets"]["fabric"]
    path = tmp_path / "fabric.csv"
    pd.DataFrame({"y": f["y"], "x": np.log(f["leng"]), "roll": range(32)}).to_csv(path,
                                                                                  index=False)
    code = main(["fit", str(path), "--formula", "y ~ x + (1 | roll)", "--method", "npml",
                 "--mass-points", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "npml" and out["k"] == 2
    assert printed(-2 * out["loglik"], 172.7) and abs(sum(out["masses"]) - 1) < 1e-12
    code = main(["fit", str(path), "--formula", "y ~ x + (1 | roll)", "--method", "npml",
                 "--mass-points", "1:3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [row["k"] for row in out["selection"]] == [1, 2, 3]
    assert main(["fit", str(path), "--formula", "y ~ x + (1 | roll)", "--method", "npml",
                 "--mass-points", "0"]) != 0


def test_crossed_refused():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.poisson(3, 24), "a": np.repeat(np.arange(6), 4),
                       "b": np.tile(np.arange(4), 6)})
    with pytest.raises(SpecError, match="one random-effect vector per cluster"):
        fit_npml(build_design(df, "y ~ 1 + (1 | a) + (1 | b)"), k=2)


def test_toxoplasmosis_random_slope_npmlreg(rainfall):
    # random coefficients: K points in (intercept, slope); npmlreg prints the slope of point k
    # as x + MASSk:x (MASS3:x aliased), so derived slopes carry two rounding errors
    ref = REF["results"]["toxo_npxx3"]
    c = ref["coefficients"]
    d = build_design(rainfall, "cbind(s, f) ~ x + (1 + x | city)", family="binomial")
    r = gllmm.fit(d, method="npml", k=3, **NPMLREG)
    assert r.opt.n_iterations == ref["em_iterations"]
    mp = r.mass_points()
    intercepts = mp["city:Intercept + Intercept"].to_numpy()
    slopes = mp["city:x + x"].to_numpy()
    assert all(printed(a, c[f"MASS{k + 1}"]) for k, a in enumerate(intercepts))
    ref_slopes = [c["x"] + c["MASS1:x"], c["x"] + c["MASS2:x"], c["x"]]
    assert np.max(np.abs(slopes - ref_slopes)) <= 1e-4 + 1e-12
    assert all(printed(a, b) for a, b in zip(r.masses, ref["masses"], strict=True))
    assert printed(r.random_sd["city"]["sd:city:Intercept"], ref["sd"])
    assert printed(-2 * r.opt.log[-1]["loglik"], ref["m2loglik"])


def test_several_spreads_keep_the_best(rainfall):
    # EM's local maxima: on the random-slope toxoplasmosis model with K = 3 npmlreg's start
    # (spread 0.5) stops at l = -73.02905; a wider start (spread 4) finds -72.75535
    d = build_design(rainfall, "cbind(s, f) ~ x + (1 + x | city)", family="binomial")
    one = fit_npml(d, k=3)
    both = fit_npml(d, k=3, spread=[0.5, 4.0])
    starts = both.extra["starts"]
    assert list(starts.spread) == [0.5, 4.0]
    assert abs(starts.loglik[0] - one.loglik) < 1e-9
    assert both.loglik == starts.loglik.max() and both.loglik > one.loglik + 0.2
    with pytest.raises(SpecError, match="spread"):
        fit_npml(d, k=2, spread=[])


def test_vanished_point_flagged(fabric):
    # point 2 carries 0.2026 x 32 = 6.5 clusters: "vanished" once mass_tol exceeds that
    with pytest.warns(BoundaryWarning, match="vanished or merged"):
        r = fit_npml(fabric, k=2, mass_tol=7.0)
    small = int(np.argmin(r.masses))
    assert r.boundary == (f"mass[{small + 1}]",)
    assert fit_npml(fabric, k=2, mass_tol=6.0).boundary == ()


# ---------------------------------------------------------------- anova: nesting
def test_anova_normal_against_npml_has_no_lr_test(fabric):
    # a normal and a two-point mixing distribution are not special cases of each other: the
    # table gives AIC/BIC/logLik for both and a note instead of a P-value; the GLM (K = 1) is
    # nested in the normal model (sigma = 0) and is tested against it
    r1, r2 = fit_npml(fabric, k=1), fit_npml(fabric, k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agq = gllmm.fit(fabric, method="agq", n_nodes=20)
    table = gllmm.anova(r2, agq, r1)
    assert list(table["npar"]) == [r1.n_params, agq.n_params, r2.n_params]
    for row, r in zip(range(3), (r1, agq, r2), strict=True):
        # AIC and BIC closed forms (-2 l + 2 p, -2 l + p log n), to 1e-9
        assert abs(table["logLik"].iloc[row] - r.loglik) < 1e-12
        assert abs(table["AIC"].iloc[row] - (-2 * r.loglik + 2 * r.n_params)) < 1e-9
        assert abs(table["BIC"].iloc[row] - (-2 * r.loglik + np.log(32) * r.n_params)) < 1e-9
    assert abs(table["Pr(>Chisq)"].iloc[1] - agq.lr_test(r1).p_value) < 1e-15
    assert np.isnan(table["Pr(>Chisq)"].iloc[2]) and np.isnan(table["Chisq"].iloc[2])
    assert table["note"].iloc[2].startswith("not nested") and table["note"].iloc[1] == ""
    # the public predicate anova and lr_test use: normal vs discrete mixing is the one pair
    # that is not nested, in either order; K = 1 (no random effects) is inside both
    assert not gllmm.results.nested(r2, agq) and not gllmm.results.nested(agq, r2)
    assert gllmm.results.nested(agq, r1) and gllmm.results.nested(r1, r2)
    assert gllmm.results.nested(r2, r2) and gllmm.results.nested(agq, agq)
    with pytest.raises(FitError, match="not nested"):
        r2.lr_test(agq)
    # NPML K = 1 inside K = 2 (all points equal) is tested
    assert np.isfinite(gllmm.anova(r1, r2)["Pr(>Chisq)"].iloc[1])
