"""Figures of fits and studies (matplotlib; each function returns a Figure).

``table_heatmaps`` / ``fitted_heatmaps``: observed vs smoothed tables side by side (Table 2);
``shrinkage_plot``: cluster-specific odds ratios, fixed vs random effects (Table 4);
``caterpillar_plot``: empirical Bayes effects with ``mode +- 1.96 SD`` intervals;
``mse_curves``: simulation MSE against n (Table 1). Figures are drawn on their own Agg canvas
without pyplot, so they work headless; save with ``fig.savefig(path)`` or embed with
``figure_to_base64``.
"""

from ._common import figure_to_base64, figure_to_png, new_figure
from ._effects import caterpillar_plot, shrinkage_plot
from ._mse import mse_curves
from ._tables import fitted_heatmaps, table_heatmaps

__all__ = [
    "caterpillar_plot",
    "figure_to_base64",
    "figure_to_png",
    "fitted_heatmaps",
    "mse_curves",
    "new_figure",
    "shrinkage_plot",
    "table_heatmaps",
]
