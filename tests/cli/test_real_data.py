"""Data sets that ship with R packages, fitted through the command line in R's idioms with the
rows shuffled, against R's fits recorded by validation/real_data.R (glmmTMB Laplace for mixed
models, glm for GLMs): log-likelihood (full scale) and estimates to 1e-3, SEs to 1e-3
relative, random-effect SDs to 1e-3. Predictions of new rows (one a new group) equal R's
``predict(fit, newdata, re.form = NA | NULL)`` to 1e-6, through ``gllmm predict`` on a model
saved by ``gllmm fit --save``, and to 1e-8 at R's own parameter values.

The fits run the command in this process (``gllmm.cli.main``, the code path of the console
script; a process costs ~2 s of start-up); cbpp is also fitted and predicted by the installed
command in a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gllmm
from gllmm.cli import main

R_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "r"
SAL_LEVELS = ["--levels", "spp=GP,PR,DM,EC-A,EC-L,DES-L,DF", "--levels", "mined=yes,no"]
INS_LEVELS = ["--levels", "Group=<1l,1-1.5l,1.5-2l,>2l", "--levels", "Age=<25,25-29,30-35,>35"]
MALE_FIRST = ["--levels", "Gender=Male,Female"]

#: fixture name -> (data file, gllmm fit options in R's idiom)
MODELS = {
    "cbpp": ("cbpp", ["--family", "binomial", "--formula",
                      "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"]),
    "grouseticks": ("grouseticks", ["--formula",
                                    "TICKS ~ factor(YEAR) + cHEIGHT + (1 | LOCATION/BROOD)"]),
    "insurance_glm": ("insurance", ["--formula", "Claims ~ factor(District) + Group + Age "
                                    "+ offset(log(Holders))", *INS_LEVELS]),
    "insurance_mm": ("insurance", ["--formula", "Claims ~ Group + Age + (1 | District)",
                                   "--offset", "log(Holders)", *INS_LEVELS]),
    "ucb_loglin": ("ucb_admissions", ["--formula", "Freq ~ (Admit + Gender + Dept)^2",
                                      *MALE_FIRST]),
    "ucb_mm": ("ucb_wide", ["--family", "binomial", "--formula",
                            "cbind(Admitted, Rejected) ~ Gender + (1 | Dept)", *MALE_FIRST]),
    "ucb_weights": ("ucb_admissions", ["--family", "binomial", "--weights", "Freq",
                                       "--formula", "admitted ~ Gender + Dept", *MALE_FIRST]),
    "epil": ("epil", ["--formula", "y ~ lbase*trt + lage + V4 + (1 | subject)"]),
    "salamanders": ("salamanders", ["--formula", "count ~ spp + mined + (1 | site)",
                                    *SAL_LEVELS]),
}
PREDICTED = ("cbpp", "salamanders")


def _env() -> dict:
    src = str(Path(gllmm.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _gllmm(*args: str) -> dict:
    """``gllmm ARGS`` (with --json) run in this process: its JSON output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(list(args))
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def _subprocess(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "gllmm", *args], capture_output=True,
                          text=True, env=_env(), timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _fixture(name: str) -> dict:
    return json.loads((R_DIR / f"real_{name}.json").read_text())


def _reference(fx: dict) -> dict:
    return fx.get("glmmtmb") or fx["glm"]


@pytest.fixture(scope="module")
def cli_fits(tmp_path_factory):
    """Every model fitted by ``gllmm fit ... --json`` on its data with the rows shuffled."""
    tmp = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(16)
    fits = {}
    for name, (data, options) in MODELS.items():
        df = pd.read_csv(R_DIR / f"{data}.csv")
        path = tmp / f"{name}.csv"
        df.iloc[rng.permutation(len(df))].to_csv(path, index=False)
        extra = ["--save", str(tmp / f"{name}.json")] if name in PREDICTED else []
        fits[name] = _gllmm("fit", str(path), "--method", "laplace", *options, "--json",
                            *extra)
    return fits, tmp


@pytest.mark.parametrize("name", list(MODELS))
def test_cli_fit_matches_r(cli_fits, name):
    fits, _ = cli_fits
    got, ref = fits[name], _reference(_fixture(name))
    assert abs(got["loglik"] - ref["loglik"]) < 1e-3
    est = np.array(list(got["params"].values()))
    r_est = np.array(list(ref["fixef"].values()))
    assert est.shape == r_est.shape
    np.testing.assert_allclose(est, r_est, atol=1e-3)
    np.testing.assert_allclose(list(got["se"].values()), list(ref["se"].values()), rtol=1e-3)
    # random SDs by grouping; R spells nested groups inner:outer
    r_sd = {":".join(sorted(k.split(":"))): v for k, v in dict(ref["sd"] or {}).items()}
    g_sd = {":".join(sorted(k.split(":"))): v for k, v in got["random_sd"].items()}
    assert g_sd.keys() == r_sd.keys()
    for key, value in r_sd.items():
        assert abs(g_sd[key] - value) < 1e-3


def _newdata(name: str, tmp: Path) -> Path:
    nd = pd.DataFrame(_fixture(name)["predict"]["newdata"]).drop(
        columns=["incidence", "count"], errors="ignore")
    path = tmp / f"{name}_new.csv"
    nd.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", PREDICTED)
def test_cli_predict_matches_r(cli_fits, name):
    _, tmp = cli_fits
    pr = _fixture(name)["predict"]
    new = str(_newdata(name, tmp))
    for t in ("link", "response"):
        for fixed in (False, True):
            got = _gllmm("predict", str(tmp / f"{name}.json"), new, "--type", t,
                         *(["--fixed-only"] if fixed else []), "--allow-new-levels",
                         "--json")["predicted"]
            ref = pr[f"{'fixed' if fixed else 'random'}_{t}"]
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    # without --allow-new-levels the new group is an error naming it and the flag (lme4's
    # allow.new.levels = FALSE); the population prediction needs no groups
    group = "herd" if name == "cbpp" else "site"
    new_label = next(str(row[group]) for row, is_new in zip(pr["newdata"], pr["new_level"],
                                                          strict=True) if is_new)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["predict", str(tmp / f"{name}.json"), new, "--json"]) == 2
    assert repr(new_label) in err.getvalue() and "--allow-new-levels" in err.getvalue()
    got = _gllmm("predict", str(tmp / f"{name}.json"), new, "--fixed-only", "--json")
    np.testing.assert_allclose(got["predicted"], pr["fixed_response"], rtol=0, atol=1e-6)
    # R's glmer, allow.new.levels = TRUE: a new group at u = 0 (its own fit, to 1e-3)
    np.testing.assert_allclose(pr["random_link"], pr["glmer_random_link"], atol=1e-3)
    assert any(pr["new_level"])


def _design(name: str):
    data, options = MODELS[name]
    df = pd.read_csv(R_DIR / f"{data}.csv")
    levels = [options[i + 1] for i, o in enumerate(options) if o == "--levels"]
    for spec in levels:
        col, values = spec.split("=")
        df[col] = pd.Categorical(df[col], values.split(","))
    formula = options[options.index("--formula") + 1]
    family = "binomial" if "binomial" in options else "poisson"
    return gllmm.build_design(df, formula, family=family)


@pytest.mark.parametrize("name", PREDICTED)
def test_predict_at_r_parameters_is_exact(name):
    """At glmmTMB's estimates, gllmm's conditional modes and predictions are R's (1e-8)."""
    fx = _fixture(name)
    ref, pr = fx["glmmtmb"], fx["predict"]
    design = _design(name)
    x = np.r_[list(ref["fixef"].values()), list(ref["sd"].values())]
    objective = gllmm.make_objective(design, "laplace")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        posterior = objective.posterior(x)
    res = gllmm.FitResult(design, x, np.full((len(x), len(x)), np.nan), float("nan"), None,
                          posterior=posterior)
    modes = next(iter(pr["modes"].values()))
    re = res.random_effects()
    got = re.iloc[:, 0].rename(index=str).reindex(list(modes)).to_numpy()
    np.testing.assert_allclose(got, list(modes.values()), atol=1e-6)
    nd = pd.DataFrame(pr["newdata"])
    for col in ("period", "herd"):
        if col in nd:
            nd[col] = nd[col].astype(int) if nd[col].str.isdigit().all() else nd[col]
    for t in ("link", "response"):
        np.testing.assert_allclose(res.predict(nd, type=t, allow_new_levels=True),
                                   pr[f"random_{t}"], atol=1e-8)
        np.testing.assert_allclose(res.predict(nd, type=t, re_form="NA"), pr[f"fixed_{t}"],
                                   atol=1e-8)


def test_installed_command_fits_and_predicts_cbpp(cli_fits, tmp_path):
    """The console command as a process: the in-process fit's numbers, R's predictions."""
    fits, tmp = cli_fits
    data, options = MODELS["cbpp"]
    model = tmp_path / "m.json"
    got = _subprocess("fit", str(R_DIR / f"{data}.csv"), "--method", "laplace", *options,
                      "--json", "--save", str(model))
    assert abs(got["loglik"] - fits["cbpp"]["loglik"]) < 1e-6
    pred = _subprocess("predict", str(model), str(_newdata("cbpp", tmp)), "--allow-new-levels",
                       "--json")
    np.testing.assert_allclose(pred["predicted"], _fixture("cbpp")["predict"][
        "random_response"], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("formula", "family", "message"), [
    ("cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)", "poisson",
     "--family binomial"),
    ("incidence ~ period +* herd", "poisson", "cannot evaluate"),
    ("incidence ~ nothere + (1 | herd)", "poisson", "unknown column(s) nothere"),
    ("incidence ~ period + (1 | herd/nothere)", "poisson", "unknown grouping column"),
])
def test_cli_refusals_name_the_fix(formula, family, message):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["fit", str(R_DIR / "cbpp.csv"), "--formula", formula, "--family", family])
    assert code == 2
    assert message in err.getvalue() and "\x1b" not in err.getvalue()
