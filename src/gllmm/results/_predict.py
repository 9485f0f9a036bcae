"""Predictions of a formula fit on new rows, with or without the random effects (lme4's
``predict(fit, newdata, re.form = NULL | NA, type = "link" | "response")``).

``eta = x' beta + offset + sum_t z_t' u_t(group_t)``: ``x`` and ``z_t`` are the new rows coded
as the fitted data (same factor levels, same ``center``/``scale`` state), ``u_t(g)`` the
posterior mode of group g's effects of term t (the empirical Bayes prediction lme4 calls the
conditional mode). A group the fit has not seen is refused by default, as lme4's
``allow.new.levels = FALSE`` (a misspelt level would otherwise be predicted silently at the
population value); with ``allow_new_levels=True`` it gets ``u = 0``, its population value, as
lme4's ``allow.new.levels = TRUE``. ``re_form="NA"`` sets every u to 0. ``type="response"`` is the
mean: ``exp(eta)`` (Poisson, the offset included) or ``expit(eta)``, the probability of a
success (binomial).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ..errors import SpecError

#: spellings of lme4's ``re.form = NA`` (no random effects)
FIXED_ONLY = ("NA", "~0", "0", "fixed")


def predict(result: Any, newdata: pd.DataFrame | None = None, type: str = "link",
            re_form: Any = None, offset: Any = None,
            allow_new_levels: bool = False) -> np.ndarray:
    """Predicted linear predictor or mean of each row of ``newdata`` (default: the fitted rows,
    in their own order).

    Parameters
    ----------
    newdata : DataFrame, optional
        Columns the formula's fixed part, offset terms and groupings use; the response is not
        needed.
    type : {"link", "response"}
        ``eta`` or the mean (``exp(eta)`` for Poisson, the success probability for binomial).
    re_form : None or "NA"
        None (default): with the random effects (lme4's ``re.form = NULL``); "NA" (or
        ``"~0"``): the fixed part alone (``re.form = NA``).
    offset : str or array-like, optional
        The new rows' offset when the fit's ``offset=`` was an array (a column name or
        expression given at the fit is evaluated on ``newdata`` by itself).
    allow_new_levels : bool
        False (default, lme4's ``allow.new.levels = FALSE``): a group absent from the fit
        raises SpecError naming it; True: such groups are predicted at u = 0.
    """
    from ..spec._build import row_values
    from ..spec._formula import group_columns, group_labels, new_model_matrix, parse_formula
    from ..tables._validate import check_no_missing

    design = result.design
    notes = design.notes
    frame = notes.get("frame")
    if frame is None or "formula" not in notes or notes.get("family") not in (
            "poisson", "binomial"):
        raise SpecError("predict needs a Poisson or binomial fit of a formula (build_design "
                        "or gllmm fit); other models have their own fitted() tables")
    if type not in ("link", "response"):
        raise SpecError(f"type must be 'link' or 'response', not {type!r}")
    fixed_only = re_form is not None and (re_form is False or str(re_form).replace(
        " ", "") in FIXED_ONLY)
    if re_form is not None and not fixed_only:
        raise SpecError(f"re_form={re_form!r}: use None (with the random effects) or 'NA' "
                        "(without them)")
    new = frame if newdata is None else _as_frame(newdata)
    parsed = parse_formula(notes["formula"])
    X, names = new_model_matrix(notes.get("fixed", parsed.fixed), frame, new)
    if names != tuple(design.fixed_names):
        raise SpecError(f"the new data give the columns {names}, the fit "
                        f"{tuple(design.fixed_names)}; give the factors the fitted levels")
    eta = X @ np.asarray(result.params[: design.n_fixed], dtype=float)
    eta = eta + _offset(notes, parsed.offsets, new, newdata is None, offset, row_values)
    if not fixed_only and design.n_random:
        mode = result.posterior["mode"]
        for (group, expr, places), term in zip(notes["random_levels"], parsed.random,
                                               strict=True):
            Zt, _ = new_model_matrix(expr, frame, new)
            check_no_missing(new, group_columns(new, group))  # NaN would be no group
            labels = group_labels(new, group)
            # look up every row's group at once and gather the modes: no per-row Python loop
            found = pd.Index(list(places)).get_indexer(labels)
            if not allow_new_levels and (found < 0).any():
                unseen = sorted({str(labels[i]) for i in np.flatnonzero(found < 0)})
                more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
                raise SpecError(
                    f"level(s) {', '.join(map(repr, unseen[:5]))}{more} of '{term.group}' are "
                    "not in the fitted data (a misspelt level?); to predict new groups at "
                    "u = 0, their population value, pass allow_new_levels=True "
                    "(gllmm predict: --allow-new-levels)")
            rows = np.flatnonzero(found >= 0)
            if rows.size:
                where = np.array(list(places.values()), dtype=np.intp)[found[rows]]
                cols = where[:, 1:2] + np.arange(Zt.shape[1])
                u = mode[where[:, :1], cols]
                eta[rows] += np.einsum("ij,ij->i", np.asarray(Zt)[rows], u)
    if type == "link":
        return eta
    return np.exp(eta) if notes["family"] == "poisson" else expit(eta)


def _as_frame(newdata: Any) -> pd.DataFrame:
    if hasattr(newdata, "data") and isinstance(newdata.data, pd.DataFrame):
        newdata = newdata.data
    if not isinstance(newdata, pd.DataFrame):
        raise SpecError("newdata must be a pandas DataFrame or a gllmm Table")
    return newdata.reset_index(drop=True)


def _offset(notes: dict, terms: tuple, new: pd.DataFrame, fitted_rows: bool, given: Any,
            row_values: Any) -> np.ndarray:
    """The new rows' offset: the formula's offset() terms and the fit's ``offset=``."""
    out = np.zeros(len(new))
    for expr in terms:
        out += row_values(new, expr, f"offset({expr})")
    if given is not None:
        return out + row_values(new, given, "offset")
    if notes.get("offset_argument") is not None:
        return out + row_values(new, notes["offset_argument"], "offset")
    design_offset = notes.get("offset_values")
    if design_offset is not None:
        if not fitted_rows:
            raise SpecError("the fit's offset was given as values per row: pass the new rows' "
                            "offset to predict(..., offset=...)")
        return out + design_offset
    return out
