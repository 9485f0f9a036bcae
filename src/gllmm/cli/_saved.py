"""``gllmm fit --save MODEL.json`` and ``gllmm predict MODEL.json NEW.csv``.

A saved model holds the command's model options, the data as read (CSV text) and the fitted
parameters with the posterior modes of the random effects. ``predict`` rebuilds the design
from them (no refit: the design is a deterministic function of data and options) and predicts
the new rows with ``FitResult.predict``.
"""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import numpy as np
import pandas as pd

from ._io import CliError, apply_levels, apply_scores

FORMAT = "gllmm-model"
#: the options of ``gllmm fit`` that define the design
OPTIONS = ("formula", "family", "link", "count", "method", "nagq", "covariance", "levels",
           "scores", "add_cell", "offset", "weights")


def save_model(path: str, res: Any, raw: pd.DataFrame, args: argparse.Namespace) -> None:
    """Write the fit ``res`` of ``raw`` (the data as read, before any option changed it)."""
    from ..results._result import _jsonable

    posterior = res.posterior or {}
    payload = {
        "format": FORMAT, "version": 1,
        "options": {k: getattr(args, k, None) for k in OPTIONS},
        "data_csv": raw.to_csv(index=False),
        "names": list(res.names),
        "params": res.params, "cov": res.cov, "loglik": res.loglik,
        "posterior_mode": posterior.get("mode"),
    }
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(payload), fh)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


def load_model(path: str) -> tuple[Any, argparse.Namespace]:
    """(FitResult, options) of a saved model; the result carries what ``predict`` reads."""
    from ..results import FitResult
    from ._run import build_model

    try:
        with open(path, encoding="utf-8") as fh:
            saved = json.load(fh)
    except FileNotFoundError:
        raise CliError(f"no such file: {path} (write one with 'gllmm fit ... --save "
                       f"{path}')") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} as a saved gllmm model: {exc}") from exc
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CliError(f"{path} is not a saved gllmm model (write one with 'gllmm fit ... "
                       "--save MODEL.json')")
    args = argparse.Namespace(**saved["options"])
    data = pd.read_csv(io.StringIO(saved["data_csv"]))
    design = build_model(data, args)
    if list(design.param_names) != saved["names"]:
        raise CliError(f"{path}: the rebuilt model's parameters {list(design.param_names)} "
                       f"differ from the saved ones {saved['names']}; refit and save again")
    mode = saved.get("posterior_mode")
    res = FitResult(design=design, params=_floats(saved["params"]), cov=_floats(saved["cov"]),
                    loglik=float(saved["loglik"]), opt=None,
                    posterior=None if mode is None else {"mode": _floats(mode)})
    return res, args


def _floats(values: Any) -> np.ndarray:
    return np.array(values, dtype=float)  # JSON null (a NaN SE) -> nan


def predict_file(res: Any, args: argparse.Namespace, newdata: pd.DataFrame, type: str,
                 fixed_only: bool, allow_new_levels: bool = False) -> pd.DataFrame:
    """The new rows with a column ``predicted``; groups the fit has not seen are refused
    unless ``allow_new_levels`` (then u = 0)."""
    apply_levels(newdata, args.levels)
    apply_scores(newdata, args.scores)
    if args.add_cell and "cell" not in newdata.columns:
        # --add-cell numbered the fitted rows; new rows are new cells, predicted at u = 0
        newdata["cell"] = [f"new {i}" for i in range(len(newdata))]
        allow_new_levels = True  # the cells numbered here are new by construction
    out = newdata.copy()
    out["predicted"] = res.predict(newdata, type=type, re_form="NA" if fixed_only else None,
                                   allow_new_levels=allow_new_levels)
    return out
