"""Bad input to gllmm.plot raises SpecError naming the problem (never a bare ValueError,
KeyError or AttributeError from numpy, pandas or matplotlib), and draws nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gllmm import plot
from gllmm.errors import SpecError

MSE = pd.DataFrame({"scenario": ["a", "a"], "n": [50, 200], "estimator": ["e", "e"],
                    "mse": [0.1, 0.2]})
OBS = np.arange(1.0, 7.0).reshape(2, 3)
TEXT = np.array([["a", "b", "c"], ["d", "e", "f"]])

ARRAY_CASES = [
    ("mse_curves, no data frame", lambda: plot.mse_curves([1, 2]), "expected a pandas DataFrame"),
    ("mse_curves, missing columns", lambda: plot.mse_curves(MSE[["n"]]), "unknown column"),
    ("mse_curves, se column missing", lambda: plot.mse_curves(MSE, se="sd"), "'sd'"),
    ("mse_curves, text MSEs", lambda: plot.mse_curves(MSE.assign(mse=["x", "y"])),
     "'mse' must hold numbers"),
    ("mse_curves, no rows", lambda: plot.mse_curves(MSE.iloc[:0]), "no rows"),
    ("mse_curves, ncols text", lambda: plot.mse_curves(MSE, ncols="2"), "ncols"),
    ("mse_curves, ncols 0", lambda: plot.mse_curves(MSE, ncols=0), "ncols"),
    ("table_heatmaps, 1-D", lambda: plot.table_heatmaps(np.ones(3), np.ones(3)), "2-D"),
    ("table_heatmaps, shapes differ", lambda: plot.table_heatmaps(OBS, np.ones((3, 3))),
     "shape"),
    ("table_heatmaps, titles", lambda: plot.table_heatmaps(OBS, OBS, titles=["o"]),
     "1 titles for 2 panels"),
    ("table_heatmaps, text array", lambda: plot.table_heatmaps(TEXT, OBS), "numbers"),
    ("table_heatmaps, text frame", lambda: plot.table_heatmaps(pd.DataFrame(TEXT), OBS),
     "numbers"),
    ("table_heatmaps, text smoothed", lambda: plot.table_heatmaps(OBS, TEXT), "numbers"),
    ("table_heatmaps, empty", lambda: plot.table_heatmaps(np.ones((0, 2)), np.ones((0, 2))),
     "empty"),
    ("table_heatmaps, no smoothed", lambda: plot.table_heatmaps(OBS, []), "no smoothed"),
    ("table_heatmaps, smoothed None", lambda: plot.table_heatmaps(OBS, None), "None"),
    ("shrinkage_plot, lengths", lambda: plot.shrinkage_plot(np.ones(3), np.ones(4)), "shape"),
    ("shrinkage_plot, labels", lambda: plot.shrinkage_plot(np.ones(3), np.ones(3), labels=[1]),
     "1 labels for 3 clusters"),
    ("shrinkage_plot, titles", lambda: plot.shrinkage_plot(np.ones(3), np.ones(3),
                                                           titles=["a", "b"]),
     "2 titles for 1 panels"),
    ("shrinkage_plot, 3-D", lambda: plot.shrinkage_plot(np.ones((2, 2, 2)), np.ones((2, 2, 2))),
     "1-D or 2-D"),
    ("shrinkage_plot, text", lambda: plot.shrinkage_plot(["a"], ["b"]), "numbers"),
    ("shrinkage_plot, empty", lambda: plot.shrinkage_plot(np.ones(0), np.ones(0)), "empty"),
    ("shrinkage_plot, pooled count", lambda: plot.shrinkage_plot(np.ones(3), np.ones(3),
                                                                 pooled=[1, 2]),
     "2 pooled values for 1 panels"),
    ("shrinkage_plot, pooled text", lambda: plot.shrinkage_plot(np.ones(3), np.ones(3),
                                                                pooled="a"), "numbers"),
    ("caterpillar_plot, nothing", lambda: plot.caterpillar_plot(), "modes and sds"),
    ("caterpillar_plot, lengths", lambda: plot.caterpillar_plot(modes=np.ones(3),
                                                                sds=np.ones(4)), "shape"),
    ("caterpillar_plot, negative sd", lambda: plot.caterpillar_plot(modes=[1.0], sds=[-1.0]),
     "non-negative"),
    ("caterpillar_plot, text", lambda: plot.caterpillar_plot(modes=["a"], sds=["b"]),
     "numbers"),
    ("caterpillar_plot, labels", lambda: plot.caterpillar_plot(modes=np.ones(3), sds=np.ones(3),
                                                               labels=[1, 2]),
     "2 labels for 3 clusters"),
    ("caterpillar_plot, fixed without fit", lambda: plot.caterpillar_plot(
        modes=np.ones(3), sds=np.ones(3), fixed="beta"), "fit result"),
    ("caterpillar_plot, not a fit", lambda: plot.caterpillar_plot(3), "needs a FitResult"),
    ("fitted_heatmaps, not a fit", lambda: plot.fitted_heatmaps(3, "a", "b"),
     "needs a FitResult"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in ARRAY_CASES],
                         ids=[c[0] for c in ARRAY_CASES])
def test_bad_input_raises_spec_error(call, match):
    with pytest.raises(SpecError, match=match):
        call()


FIT_CASES = [
    ("level above 1", {"level": 1.5}, "between 0 and 1"),
    ("level in percent", {"level": 95}, "between 0 and 1"),
    ("level as text", {"level": "0.95"}, "between 0 and 1"),
    ("unknown sd_kind", {"sd_kind": "variance"}, "unknown sd_kind 'variance'"),
    ("unknown fixed effect", {"fixed": "nosuch"}, "unknown fixed effect 'nosuch'.*beta"),
    ("labels", {"labels": [1, 2]}, "2 labels for 8 clusters"),
]


@pytest.mark.parametrize("kwargs, match", [c[1:] for c in FIT_CASES],
                         ids=[c[0] for c in FIT_CASES])
def test_caterpillar_bad_options(clinical_local, kwargs, match):
    with pytest.raises(SpecError, match=match):
        plot.caterpillar_plot(clinical_local, **kwargs)


def test_fitted_heatmaps_unknown_column_and_kind(mba_independence):
    with pytest.raises(SpecError, match="unknown column.*'nosuch'.*statistics"):
        plot.fitted_heatmaps(mba_independence, "nosuch", "economics")
    with pytest.raises(SpecError, match="unknown kind"):
        plot.fitted_heatmaps(mba_independence, "statistics", "economics", kind="bogus")
