"""Table 1 from stored replicates: averages and MC SEs, rendering, comparison, plot, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm.simulate import (
    ScoreSet,
    StudySpec,
    compare_with_published,
    plot_mse_by_n,
    published_table1,
    render_table,
    run_study,
    summarise,
    table1,
    write_outputs,
)
from gllmm.simulate._cli import main_simulate

FIXTURE = Path(__file__).parents[1] / "fixtures" / "paper" / "table1_mse.csv"


def test_published_table_equals_the_paper_fixture():
    pd.testing.assert_frame_equal(published_table1(), pd.read_csv(FIXTURE))


def _fake_results(spec: StudySpec) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(sc.index, r, e, float(rng.gamma(2.0, 0.05)), 0.001, "ok", 1)
            for sc in spec.scenarios for r in range(spec.replicates) for e in spec.estimators]
    return pd.DataFrame(rows, columns=["scenario", "replicate", "estimator", "mse", "seconds",
                                       "status", "run"])


def test_table1_is_the_mean_and_its_monte_carlo_se():
    spec = StudySpec((ScoreSet("uniform", (1, 2, 3)),), (0.1, 0.4), (50,),
                     ("sample_proportions", "glm_independence"), replicates=7)
    res = _fake_results(spec)
    res.loc[0, "status"] = "error: x"  # excluded and counted
    tab = table1(res, spec)
    assert list(tab.columns) == ["scores", "beta", "n", "sample_proportions", "glm_independence",
                                 "sample_proportions_se", "glm_independence_se",
                                 "sample_proportions_failed", "glm_independence_failed"]
    assert tab["sample_proportions_failed"].tolist() == [1, 0]
    assert tab["glm_independence_failed"].tolist() == [0, 0]
    sub = res[(res.scenario == 0) & (res.estimator == "sample_proportions")].iloc[1:]["mse"]
    assert tab.loc[0, "sample_proportions"] == pytest.approx(sub.mean())
    assert tab.loc[0, "sample_proportions_se"] == pytest.approx(sub.std() / np.sqrt(6))
    long = summarise(res, spec)
    assert long.loc[0, "failures"] == 1 and long.loc[0, "replicates"] == 6
    # rows beyond the study's replicate count are ignored
    extra = pd.concat([res, res.assign(replicate=res.replicate + 7, mse=99.0)])
    pd.testing.assert_frame_equal(table1(extra, spec), tab)


def test_rendering_and_comparison_with_the_published_values():
    pub = published_table1()
    tab = pub[["scores", "beta", "n", "sample_proportions"]].copy()
    tab["sample_proportions_se"] = 0.002
    tab.loc[0, "sample_proportions"] += 0.01
    cmp = compare_with_published(tab)
    assert len(cmp) == 18
    assert cmp.loc[0, "z"] == pytest.approx(5.0)
    assert not cmp.loc[0, "within_3se"] and cmp["within_3se"].iloc[1:].all()
    md = render_table(tab, "markdown")
    assert md.splitlines()[0] == "| scores | beta | n | SP |"
    assert "| uniform | 0.1 | 50 | 0.109 (0.002) |" in md
    txt = render_table(tab, "text")
    assert len(txt.splitlines()) == 19
    with pytest.raises(ValueError):
        render_table(tab, "html")


def test_plot_and_outputs_are_written(tmp_path):
    spec = StudySpec((ScoreSet("uniform", (1, 2, 3)), ScoreSet("nonuniform", (1, 2.5, 3))),
                     (0.1, 1.0), (50, 200), ("sample_proportions", "glm_independence"),
                     replicates=3)
    tab = table1(_fake_results(spec), spec)
    fig = plot_mse_by_n(tab)
    assert len(fig.axes) == 4
    paths = write_outputs(tab, tmp_path, spec)
    for key in ("csv", "markdown", "text", "plot"):
        assert paths[key].stat().st_size > 0
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    assert "comparison" in paths
    back = pd.read_csv(paths["csv"])
    np.testing.assert_allclose(back["glm_independence"], tab["glm_independence"])


def test_cli_runs_resumes_and_refuses_another_study(tmp_path, capsys):
    args = ["--replicates", "2", "--out", str(tmp_path), "--no-progress", "--estimators",
            "sample_proportions", "glm_independence"]
    assert main_simulate(args) == 0
    out = capsys.readouterr().out
    assert "36 replicates computed, 0 resumed" in out
    assert (tmp_path / "table1.csv").exists() and (tmp_path / "table1_mse_by_n.png").exists()
    assert main_simulate(args) == 0
    assert "0 replicates computed, 36 resumed" in capsys.readouterr().out
    assert main_simulate([*args, "--seed", "1"]) == 2
    assert "different study" in capsys.readouterr().err
    assert main_simulate([*args, "--estimators", "nope"]) == 2
    with pytest.raises(SystemExit):
        main_simulate(["--size", "4"])


def test_run_study_table1_method(tmp_path):
    spec = StudySpec((ScoreSet("uniform", (1, 2, 3)),), (0.4,), (200,),
                     ("sample_proportions",), replicates=3)
    run = run_study(spec, tmp_path / "x.sqlite", progress=False)
    assert run.table1().shape == (1, 6)  # keys, mse, se, failed


def test_failed_fits_are_counted_in_every_output(tmp_path):
    """Issue 20: a mean over the surviving replicates says how many fits failed, in the text
    and markdown tables, the CSV and the plot."""
    from gllmm.simulate._report import write_outputs

    spec = StudySpec((ScoreSet("uniform", (1, 2, 3)),), (0.1, 0.4), (50,),
                     ("sample_proportions", "glm_independence"), replicates=5)
    res = _fake_results(spec)
    bad = (res.scenario == 1) & (res.estimator == "glm_independence") & (res.replicate < 4)
    res.loc[bad, ["status", "mse"]] = ["error: FitError: no maximum", np.nan]
    tab = table1(res, spec)
    assert tab["glm_independence_failed"].tolist() == [0, 4]
    assert "[4 failed]" in render_table(tab, "text").splitlines()[2]
    assert "[4 failed]" in render_table(tab, "markdown")
    paths = write_outputs(tab, tmp_path, spec)
    assert pd.read_csv(paths["csv"])["glm_independence_failed"].tolist() == [0, 4]
    assert "[4 failed]" in paths["markdown"].read_text()
    from gllmm.simulate._report import plot_mse_by_n

    fig = plot_mse_by_n(tab)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["4 failed"]
    from gllmm.plot import mse_curves

    long = summarise(res, spec)
    fig = mse_curves(long, scenario=["scores", "beta"])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["4 failed"]
