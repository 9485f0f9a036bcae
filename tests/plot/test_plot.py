"""gllmm.plot: each function returns a Figure drawn headless, with the data it was given."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gllmm import plot
from gllmm.errors import SpecError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_renders(fig):
    assert isinstance(fig, Figure)
    png = plot.figure_to_png(fig, dpi=40)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    assert base64.b64decode(plot.figure_to_base64(fig, dpi=40)).startswith(PNG_MAGIC)


def test_table_heatmaps_side_by_side(mba, mba_independence, mba_lxl):
    obs = mba.pivot(index="statistics", columns="economics", values="count")
    fa = mba_independence.fitted().pivot(index="statistics", columns="economics",
                                         values="fitted")
    fb = mba_lxl.fitted().pivot(index="statistics", columns="economics", values="fitted")
    fig = plot.table_heatmaps(obs, {"(a)": fa, "(b)": fb})
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["observed", "(a)", "(b)"]
    image = axes[0].images[0]
    assert np.allclose(image.get_array(), obs.to_numpy())
    assert image.get_clim() == (0.0, 10.0)  # one colour scale: the largest count, 10
    texts = {t.get_text() for t in axes[1].texts}
    assert "7.05" in texts  # the (6, 6) cell of Table 2 column (a)
    assert_renders(fig)


def test_table_heatmaps_arrays_and_errors():
    obs = np.arange(6.0).reshape(2, 3)
    fig = plot.table_heatmaps(obs, [obs + 1, obs + 2], titles=["o", "s1", "s2"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["o", "s1", "s2"]
    with pytest.raises(ValueError, match="shape"):
        plot.table_heatmaps(obs, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        plot.table_heatmaps(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="titles"):
        plot.table_heatmaps(obs, obs, titles=["only one"])


def test_table_heatmaps_large_table_not_annotated():
    rng = np.random.default_rng(1)
    obs = rng.poisson(2.0, size=(40, 30)).astype(float)
    fig = plot.table_heatmaps(obs, obs * 0.9)
    assert all(not ax.texts for ax in fig.axes)


def test_fitted_heatmaps(mba_independence):
    fig = plot.fitted_heatmaps(mba_independence, "statistics", "economics")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["observed", "fitted (posterior modes)"]
    with pytest.raises(ValueError, match="nosuch"):
        plot.fitted_heatmaps(mba_independence, "statistics", "nosuch")


def test_shrinkage_plot_table4():
    fixed = pd.DataFrame({"local": [1.72, -1.15, 0.24], "global": [2.74, -1.67, 0.30]},
                         index=[1, 2, 3])
    random = pd.DataFrame({"local": [0.94, 0.23, 0.49], "global": [2.00, -0.49, 0.45]},
                          index=[1, 2, 3])
    fig = plot.shrinkage_plot(fixed, random, pooled={"local": 0.59, "global": 0.83})
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["local", "global"]
    first = axes[0].lines[0]
    assert np.allclose(first.get_xdata(), [0, 1]) and np.allclose(first.get_ydata(),
                                                                  [1.72, 0.94])
    assert any(np.allclose(line.get_ydata(), [0.59, 0.59]) for line in axes[0].lines)
    assert {t.get_text() for t in axes[0].texts} == {"1", "2", "3"}
    assert_renders(fig)


def test_shrinkage_plot_series_and_errors():
    fig = plot.shrinkage_plot([1.0, 2.0], [1.2, 1.8], pooled=1.5, labels=["a", "b"])
    assert {t.get_text() for t in fig.axes[0].texts} == {"a", "b"}
    with pytest.raises(ValueError, match="shape"):
        plot.shrinkage_plot([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="labels"):
        plot.shrinkage_plot([1.0, 2.0], [1.0, 2.0], labels=["a"])


def test_caterpillar_plot_cluster_parameter(clinical_local):
    fig = plot.caterpillar_plot(clinical_local, fixed="beta")
    ax = fig.axes[0]
    beta = clinical_local.beta["beta"]
    modes = clinical_local.random_effects("mode").iloc[:, 0].to_numpy() + beta
    sds = clinical_local.random_effects("sd").iloc[:, 0].to_numpy()
    points = ax.lines[0]
    order = np.argsort(modes, kind="stable")
    assert np.allclose(points.get_xdata(), modes[order])  # sorted centre points
    segments = ax.collections[0].get_segments()  # the interval bars: mode +- 1.96 sd
    lo = np.array([s[:, 0].min() for s in segments])
    hi = np.array([s[:, 0].max() for s in segments])
    assert np.allclose(lo, modes[order] - 1.959964 * sds[order], atol=1e-5)
    assert np.allclose(hi, modes[order] + 1.959964 * sds[order], atol=1e-5)
    assert [t.get_text() for t in ax.get_yticklabels()][0] == str(
        clinical_local.random_effects("mode").index[order[0]])
    assert_renders(fig)


def test_caterpillar_plot_vector_effects(clinical_cumulative):
    fig = plot.caterpillar_plot(clinical_cumulative, level=0.9)
    assert len(fig.axes) == 2  # one panel per component (intercept, slope)
    assert "1.64" in fig.axes[0].get_xlabel()


def test_caterpillar_plot_arrays_and_errors(clinical_local):
    fig = plot.caterpillar_plot(modes=np.zeros(100), sds=np.ones(100))
    assert fig.axes[0].get_yticks().size == 0  # too many clusters to label
    with pytest.raises(ValueError, match="modes and sds"):
        plot.caterpillar_plot()
    with pytest.raises(ValueError, match="shape"):
        plot.caterpillar_plot(modes=np.zeros(3), sds=np.zeros(4))
    with pytest.raises(ValueError, match="fit result"):
        plot.caterpillar_plot(modes=np.zeros(3), sds=np.zeros(3), fixed="beta")


def test_mse_curves():
    rows = []
    for scenario in ("uniform, beta 0.1", "uniform, beta 1.0"):
        for n in (50, 200, 1000):
            for est, base in (("sample_proportions", 0.099), ("cellwise", 0.06)):
                rows.append({"scenario": scenario, "n": n, "estimator": est,
                             "mse": base + n / 1e5, "se": 0.002})
    df = pd.DataFrame(rows)
    fig = plot.mse_curves(df)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["uniform, beta 0.1", "uniform, beta 1.0"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["sample_proportions", "cellwise"]
    line = panels[0].lines[0]
    assert np.allclose(line.get_xdata(), [50, 200, 1000])
    assert np.allclose(line.get_ydata(), [0.0995, 0.101, 0.109])
    assert_renders(fig)


def test_mse_curves_from_table1_columns():
    pub = pd.DataFrame({"scores": ["uniform"] * 3, "beta": [0.4] * 3, "n": [50, 200, 1000],
                        "glm_independence": [0.092, 0.22, 0.91]})
    long = pub.melt(id_vars=["scores", "beta", "n"], var_name="estimator", value_name="mse")
    fig = plot.mse_curves(long, scenario=["scores", "beta"], labels={"glm_independence": "GLM"})
    assert fig.axes[0].get_title() == "scores uniform, beta 0.4"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["GLM"]
    with pytest.raises(SpecError, match="unknown column.*'scenario'"):
        plot.mse_curves(long)  # no 'scenario' column
