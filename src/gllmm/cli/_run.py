"""Building designs and running fits for the command, with optional tqdm progress bars.

The fit follows the library's visible pipeline (``fit(..., objective_only=True)`` ->
``optimize`` -> ``make_result``) so that a progress bar can count likelihood evaluations
without the library knowing about it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..tables._validate import check_unique_cells
from ._io import CliError, apply_levels, apply_scores, check_formula, require_columns

FAMILIES = ("poisson", "binomial", "multinomial", "ordinal")
#: families fitted by models.ordinal_mixed (ordinal = multinomial, the link says which logits)
CATEGORICAL = ("multinomial", "ordinal")
LINKS = ("cumulative", "adjacent", "continuation", "baseline")
METHODS = ("agq", "laplace", "laplace2", "mcem", "pql", "npml")
#: whole fitting algorithms (not a likelihood handed to the optimiser): no progress bar
ALTERNATIVE_FITS = ("mcem", "pql", "npml")


class _CountingObjective:
    """Delegates to an objective and ticks a progress bar at each likelihood evaluation."""

    def __init__(self, objective: Any, bar: Any) -> None:
        self._objective = objective
        self._bar = bar

    def value_and_gradient(self, *args: Any, **kwargs: Any) -> Any:
        out = self._objective.value_and_gradient(*args, **kwargs)
        self._bar.update(1)
        value = out[0] if isinstance(out, tuple) else out
        try:
            self._bar.set_postfix_str(f"loglik {float(value):.4f}", refresh=False)
        except (TypeError, ValueError):
            pass
        return out

    def values_and_gradients(self, points: Any) -> Any:
        out = self._objective.values_and_gradients(points)
        self._bar.update(len(out[0]))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objective, name)


def build_model(data: pd.DataFrame, args: argparse.Namespace) -> Any:
    """The Design of ``gllmm fit`` / ``gllmm report`` from the parsed arguments."""
    from .. import models
    from ..spec import build_design

    check_formula(args.formula)
    if getattr(args, "count", None) is not None and args.family.lower() not in CATEGORICAL:
        raise CliError(f"--count applies to ordinal and multinomial responses; a {args.family} "
                       f"formula names its counts on the left of '~' (e.g. "
                       f"'{args.count} ~ ...'), so drop --count")
    apply_levels(data, args.levels)
    scores = apply_scores(data, args.scores)
    family = args.family.lower()
    if args.add_cell and "cell" not in data.columns:
        if family == "poisson":
            # before numbering the cells: a repeated cell would become a second cell
            response = args.formula.partition("~")[0].strip()
            check_unique_cells(data, [c for c in data.columns if c != response
                                      and not str(c).endswith("_score")], error=CliError)
        data["cell"] = np.arange(len(data))
    offset, weights = getattr(args, "offset", None), getattr(args, "weights", None)
    if family in CATEGORICAL:
        if offset is not None:
            raise CliError("--offset applies to poisson and binomial formulas; ordinal and "
                           "multinomial logits take none (their frequencies: --count or "
                           "--weights)")
        with printed_warnings():  # the level order guessed
            return models.ordinal_mixed(data, args.formula,
                                        count=_frequency_column(data, args), link=args.link,
                                        covariance=args.covariance,
                                        convention=getattr(args, "convention", "paper"))
    return build_design(data, args.formula, family=family, covariance=args.covariance,
                        scores=scores or None, title=" ".join(args.formula.split()),
                        offset=offset, weights=weights)


def _frequency_column(data: pd.DataFrame, args: argparse.Namespace) -> str | None:
    """The frequencies of an ordinal / multinomial response: ``--count`` or (polr's name)
    ``--weights``."""
    names = [c for c in (args.count, getattr(args, "weights", None)) if c]
    if len(set(names)) > 1:
        raise CliError(f"--count {names[0]} and --weights {names[1]} name two frequency "
                       "columns; give one")
    if names:
        require_columns(data, names[:1], "count column")
    return names[0] if names else None


def run_fit(design: Any, method: str, n_nodes: int, *, progress: bool = False,
            seed: int | None = None) -> Any:
    """Fit ``design``; warnings are printed to stderr as ``warning: ...`` lines."""
    with printed_warnings():
        return _fit(design, method, n_nodes, progress, seed)


@contextlib.contextmanager
def printed_warnings() -> Iterator[None]:
    """Warnings raised inside the block, printed once each to stderr as ``warning: ...``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = str(w.message)
                if text not in seen:
                    seen.add(text)
                    print(f"warning: {text}", file=sys.stderr)


def _fit(design: Any, method: str, n_nodes: int, progress: bool, seed: int | None) -> Any:
    from ..fitting import fit, make_result, optimize

    if method in ALTERNATIVE_FITS:
        if design.n_random == 0:
            return fit(design)  # no random effects: the GLM, whatever the method
        if method == "npml":  # its "nodes" are the mass points (--mass-points)
            return fit(design, method=method, k=n_nodes)
        return fit(design, method=method, seed=seed) if method == "mcem" else \
            fit(design, method=method)
    if not progress or design.n_random == 0 or n_nodes == "auto":
        return fit(design, method=method, n_nodes=n_nodes)
    from tqdm.auto import tqdm

    objective = fit(design, method=method, n_nodes=n_nodes, objective_only=True)
    with tqdm(desc=f"{method} fit", unit=" evaluations", leave=False) as bar:
        counted = _CountingObjective(objective, bar)
        opt = optimize(counted, design)
        res = make_result(design, counted, opt)
    return res  # make_result warned about convergence and the boundary


def resolve_method(args: argparse.Namespace) -> tuple[str, int]:
    """(method, nodes): ``--nagq 1`` means Laplace, ``--method laplace`` means one node."""
    method = args.method
    if method == "npml":
        return method, getattr(args, "mass_points", 2)
    if method == "agq" and args.nagq == "auto":
        return method, "auto"
    if method == "laplace" or (method == "agq" and args.nagq == 1):
        return "laplace", 1
    if method == "laplace2":
        return method, 1
    return method, args.nagq


def whole_number(what: str, minimum: int, hint: str = "") -> Any:
    """argparse type of an integer option >= ``minimum``: ``what`` it is, e.g. "nodes"."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an integer; give the number of {what}{hint}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{value} {what}: must be at least {minimum}{hint}")
        return value
    return parse


#: ``--nagq``: quadrature nodes per dimension
positive_int = whole_number("nodes", 1, " (1 = Laplace, 15 is the paper's choice)")
#: ``--seed``
seed_int = whole_number("seed", 0, " (any integer >= 0)")


def parse_scores(text: str | None, option: str) -> list[float] | None:
    """``1,2,3`` -> [1.0, 2.0, 3.0]."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"{option} expects comma-separated numbers such as 1,2,3; got "
                       f"{text!r}") from None


def mass_points(text: str) -> int | list[int]:
    """argparse type of ``--mass-points``: K, or a range ``K1:K2`` chosen by BIC."""
    try:
        lo, _, hi = text.partition(":")
        ks = list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of mass points; give K >= 1 or a range such as 1:5")
    return ks if len(ks) > 1 else ks[0]


def nodes_or_auto(text: str) -> int | str:
    """argparse type of ``gllmm fit --nagq``: an integer >= 1 or ``auto``."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)
