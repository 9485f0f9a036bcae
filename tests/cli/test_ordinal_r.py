"""Ordinal data as R users have it, fitted by the ``gllmm`` command and compared with R.

Fixtures: ``validation/ordinal_data.R`` (ordinal::clmm/clm, MASS::polr, VGAM::vglm), data copied
from the R packages into ``tests/fixtures/r/*.csv``. Each fit runs ``gllmm fit ... --json`` in a
subprocess (or through ``gllmm.cli.main``, the same code without the start-up time) on the rows
in shuffled order, with the formula as R users write it. Tolerances:
1e-3 on the log-likelihood (the individual-response scale R prints) and on the estimates.
clm/clmm/polr write ``theta_j - x'beta``: ``--convention clmm`` gives their signs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm.cli import main

FIX = Path(__file__).parents[1] / "fixtures" / "r"
SRC = Path(__file__).parents[2] / "src"
TOL = 1e-3


def load(name: str) -> dict:
    return json.loads((FIX / f"{name}.json").read_text())


def shuffled(name: str, tmp_path: Path, seed: int = 16) -> str:
    df = pd.read_csv(FIX / f"{name}.csv")
    df = df.sample(frac=1.0, random_state=np.random.default_rng(seed).integers(2**31))
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return str(path)


def gllmm_fit(path: str, *args: str, separate_process: bool = False) -> dict:
    """``gllmm fit PATH ARGS --json``: in a subprocess, or (same parser and code, without
    the interpreter start-up of ~5 s) through ``gllmm.cli.main``."""
    argv = ["fit", path, *args, "--json"]
    if separate_process:
        env = {**os.environ,
               "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run([sys.executable, "-m", "gllmm", *argv], capture_output=True,
                              text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def check(out: dict, fx: dict, names: dict[str, str]) -> None:
    """Log-likelihood and every estimate R reports (``names``: R name -> gllmm name)."""
    assert abs(out["loglik"] - fx["loglik"]["value"]) < TOL
    assert set(names) == set(fx["estimates"])
    for r_name, name in names.items():
        assert abs(out["params"][name] - fx["estimates"][r_name]) < TOL, r_name


def thresholds(levels: list[str], r_style: str = "{}|{}") -> dict[str, str]:
    pairs = zip(levels[:-1], levels[1:], strict=True)
    return {r_style.format(a, b): f"alpha[{a}|{b}]" for a, b in pairs}


WINE = {**thresholds(list("12345")), "tempwarm": "temp[T.warm]",
        "contactyes": "contact[T.yes]"}


@pytest.mark.parametrize(("fixture", "nagq"), [("wine_clmm_laplace", "1"),
                                               ("wine_clmm_agq10", "10")])
def test_wine_clmm(tmp_path, fixture, nagq):
    """One row per rating, string factors, no count column: clmm's judge model."""
    fx = load(fixture)
    out = gllmm_fit(shuffled("wine", tmp_path), "--family", "ordinal", "--formula",
                    "rating ~ temp + contact + (1 | judge)", "--convention", "clmm",
                    "--nagq", nagq, separate_process=nagq == "1")
    check(out, fx, WINE)
    assert abs(out["random_sd"]["judge"] - fx["random_sd"]["judge"]) < TOL


def test_wine_clm_no_random_effect(tmp_path):
    out = gllmm_fit(shuffled("wine", tmp_path), "--family", "ordinal", "--formula",
                    "rating ~ temp + contact", "--convention", "clmm")
    check(out, load("wine_clm"), WINE)
    assert out["random_sd"] == {}


def test_soup_clmm(tmp_path):
    """1847 ratings by 185 respondents, six sureness categories."""
    fx = load("soup_clmm_laplace")
    out = gllmm_fit(shuffled("soup", tmp_path), "--family", "ordinal", "--formula",
                    "SURENESS ~ PROD + (1 | RESP)", "--convention", "clmm", "--nagq", "1")
    check(out, fx, {**thresholds(list("123456")), "PRODTest": "PROD[T.Test]"})
    assert abs(out["random_sd"]["RESP"] - fx["random_sd"]["RESP"]) < TOL


def test_housing_polr_with_weights(tmp_path):
    """polr(Sat ~ Infl + Type + Cont, weights = Freq): counts per row, R's level orders."""
    fx = load("housing_polr")
    out = gllmm_fit(shuffled("housing", tmp_path), "--family", "ordinal", "--formula",
                    "Sat ~ Infl + Type + Cont", "--count", "Freq", "--convention", "clmm",
                    "--levels", "Sat=Low,Medium,High", "--levels", "Infl=Low,Medium,High",
                    "--levels", "Type=Tower,Apartment,Atrium,Terrace",
                    "--levels", "Cont=Low,High")
    names = {**thresholds(["Low", "Medium", "High"]),
             **{f"{v}{lev}": f"{v}[T.{lev}]" for v, lev in
                [("Infl", "Medium"), ("Infl", "High"), ("Type", "Apartment"),
                 ("Type", "Atrium"), ("Type", "Terrace"), ("Cont", "High")]}}
    check(out, fx, names)


def test_pneumo_vglm_wide_counts(tmp_path):
    """vglm(cbind(normal, mild, severe) ~ log(exposure.time), cumulative(parallel = TRUE)):
    VGAM's sign convention is gllmm's. The dotted name as R users write it."""
    fx = load("pneumo_vglm_cumulative")
    out = gllmm_fit(shuffled("pneumo", tmp_path), "--family", "ordinal", "--formula",
                    "cbind(normal, mild, severe) ~ log(exposure.time)")
    names = {"(Intercept):1": "alpha[normal|mild]", "(Intercept):2": "alpha[mild|severe]",
             "log(exposure.time)": "log(`exposure.time`)"}
    check(out, fx, names)


SLOPE = "log(`exposure.time`)"


@pytest.mark.parametrize(("link", "fixture", "sign", "names"), [
    ("baseline", "pneumo_vglm_multinomial", 1.0,
     {"(Intercept):1": "alpha[normal|mild]", "(Intercept):2": "alpha[mild|severe]",
      "log(exposure.time):1": f"{SLOPE}[normal]", "log(exposure.time):2": f"{SLOPE}[mild]"}),
    ("continuation", "pneumo_vglm_sratio", 1.0,
     {"(Intercept):1": "alpha[normal|mild]", "(Intercept):2": "alpha[mild|severe]",
      "log(exposure.time)": SLOPE}),
    ("adjacent", "pneumo_vglm_acat", -1.0,
     {"(Intercept):1": "alpha[normal|mild]", "(Intercept):2": "alpha[mild|severe]",
      "log(exposure.time)": SLOPE}),
])
def test_pneumo_other_links_without_random_effects(tmp_path, link, fixture, sign, names):
    """vglm's multinomial (baseline = last category), sratio and acat (parallel) on pneumo.
    acat writes log(pi_j+1 / pi_j), the reverse of gllmm's adjacent logits: every
    coefficient changes sign."""
    fx = load(fixture)
    out = gllmm_fit(shuffled("pneumo", tmp_path), "--family", "multinomial", "--link", link,
                    "--formula", "cbind(normal, mild, severe) ~ log(exposure.time)")
    assert abs(out["loglik"] - fx["loglik"]["value"]) < TOL
    assert set(names) == set(fx["estimates"])
    for r_name, name in names.items():
        assert abs(out["params"][name] - sign * fx["estimates"][r_name]) < TOL, r_name


def test_wine_clm_profile_intervals(tmp_path):
    """``--profile``: clm's profile-likelihood intervals of beta (confint(clm)), 1e-3."""
    fx = load("wine_clm")["profile_interval"]
    out = gllmm_fit(shuffled("wine", tmp_path), "--family", "ordinal", "--formula",
                    "rating ~ temp + contact", "--convention", "clmm", "--profile")
    got = out["profile_interval"]
    assert got["level"] == fx["level"]
    for r_name in fx["lower"]:
        lower, upper = got[WINE[r_name]]
        assert abs(lower - fx["lower"][r_name]) < TOL, r_name
        assert abs(upper - fx["upper"][r_name]) < TOL, r_name
