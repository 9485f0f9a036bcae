"""The fitting pipeline: ``make_objective`` -> ``optimize`` -> ``make_result`` (lme4 modular.R).

``fit(design, method)`` is these visible calls. Methods are looked up in a registry so that an
unknown name lists the valid ones.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import BoundaryWarning, ConvergenceWarning, FitError, SpecError
from ..integrate import HigherOrderLaplace, MarginalLikelihood
from ..results import FitResult
from ..spec._design import Design
from ..tables._validate import check_numeric
from ._auto_nodes import choose_nodes
from ._cellwise import chosen_layout, fit_cellwise_design
from ._degenerate import degenerate_parameters, flag_degenerate
from ._glm import check_full_rank, fit_glm
from ._mcem import fit_mcem
from ._npml import fit_npml
from ._optimize import (
    BOUNDARY_RESTARTS,
    FTOL_ZERO,
    XTOL_ZERO,
    OptSummary,
    best_of_starts,
    inverse_information,
    maximize,
    observed_information,
)
from ._pql import fit_pql
from ._start import _glm_start


def _laplace(design: Design, n_nodes: int | None) -> MarginalLikelihood:
    return MarginalLikelihood(design, 1)


def _agq(design: Design, n_nodes: int | None) -> MarginalLikelihood:
    return MarginalLikelihood(design, 15 if n_nodes is None else n_nodes)


def _laplace2(design: Design, n_nodes: int | None) -> MarginalLikelihood:
    return HigherOrderLaplace(design)


OBJECTIVES: dict[str, Callable[[Design, int | None], Any]] = {
    "laplace": _laplace, "agq": _agq, "laplace2": _laplace2}
#: the objectives that the cell-wise strategy and the automatic node choice evaluate
QUADRATURE = ("agq", "laplace")


# whole fitting algorithms (not a likelihood handed to an optimiser)
FITTERS: dict[str, Callable[..., FitResult]] = {"mcem": fit_mcem, "pql": fit_pql,
                                                 "npml": fit_npml}

# how AGQ / Laplace evaluate the likelihood, chosen from the design's structure unless given:
# one effect per cluster; product rule over vector effects; sparse Laplace over large (crossed,
# nested) clusters; per-cell integrals with a block Newton over factor fixed effects
STRATEGIES = ("scalar", "product", "sparse", "cellwise")


def check_options(options: dict[str, Any], target: Callable[..., Any], method: str,
                  taken: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> None:
    """Refuse ``fit``'s ``options`` that ``target`` (the function they go to) does not take:
    a SpecError naming them and the valid ones, not Python's TypeError. ``taken``: target's
    options that ``fit`` sets itself; ``extra``: options used on the way."""
    if not options:
        return
    allowed = set(extra)
    for name, par in inspect.signature(target).parameters.items():
        if par.kind is par.VAR_KEYWORD:
            return
        if par.default is not par.empty and name not in taken:
            allowed.add(name)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SpecError(f"unknown option(s) {', '.join(map(repr, unknown))} for method "
                        f"{method!r}; its options are: {', '.join(sorted(allowed))}")


def _set_strategy(objective: MarginalLikelihood, strategy: str | None) -> None:
    """Make ``objective`` evaluate by ``strategy`` (None: keep the structural choice)."""
    d = objective.design
    if strategy is None:
        return
    if strategy == "sparse" and objective.n_nodes != 1:
        raise FitError("the sparse strategy is a Laplace approximation: use method='laplace'")
    if strategy == "scalar" and (d.n_random != 1 or d.n_theta != 1):
        raise FitError("the scalar strategy needs one random effect per cluster; use "
                       "strategy='product' or 'sparse'")
    objective.sparse = strategy == "sparse"
    objective.use_kernel = strategy == "scalar"


def make_objective(design: Design, method: str = "agq", n_nodes: int | None = None) -> Any:
    """The marginal log-likelihood of ``design`` as a callable of one flat parameter vector.

    Parameters
    ----------
    method : {"agq", "laplace", "laplace2"}
        Adaptive Gauss-Hermite quadrature (``n_nodes`` per dimension, default 15), Laplace or
        second-order Laplace.
    """
    if not isinstance(design, Design):
        raise SpecError(f"make_objective needs a Design (from gllmm.build_design or "
                        f"gllmm.models), got {type(design).__name__}")
    key = method.lower() if isinstance(method, str) else method
    if key not in OBJECTIVES:
        valid = sorted(OBJECTIVES) + sorted(FITTERS)
        raise FitError(f"unknown method {method!r}; valid methods: {', '.join(valid)}")
    objective = OBJECTIVES[key](design, n_nodes)
    objective.method_name = key  # the label optimize and make_result report
    return objective


#: Most parameters for which the sparse strategy starts from a measured curvature (one gradient
#: per parameter).
MAX_NEWTON_START = 8


def _newton_metric(objective: Any, n: int) -> bool:
    """Whether a search over ``n`` parameters pays for measured curvatures (the sparse strategy:
    its evaluations are expensive and its gradients exact)."""
    return getattr(objective, "strategy", "") == "sparse" and n <= MAX_NEWTON_START


def _newton_start(objective: Any, start: np.ndarray,
                  hinv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the sparse strategy's search begins and its inverse curvature there: secant
    differences of the exact gradient over one probe per parameter.

    A sparse-Laplace evaluation is expensive, and the generic guess ``hinv`` (GLM information
    for the fixed effects, 0.05 I for the SDs) misses both the SDs' curvature, which grows with
    the rows per level, and the intercept's shift of about -sum(sigma^2)/2 that the random
    effects cause, so the first steps overshoot onto sigma = 0 and back-track. Probe i moves
    parameter i uphill (the sign of its gradient; the other way where that would cross its
    bound) by ``h_i``; row i of the Hessian is ``(g(x + h_i e_i) - g(x)) / h_i``, symmetrised.
    For a covariance parameter ``h_i`` is its guessed SE ``sqrt(hinv_ii)`` (at most
    max(1, |x_i|)): over a step of about one SE the secant predicts the path to the maximum
    better than the tangent curvature at ``start``, in which the likelihood is far from
    quadratic; a fixed effect, in which it is nearly quadratic, takes a forward difference
    (``h_i = 1e-6 max(1, |x_i|)``), whose evaluation is cheaper (its modes barely move). On eight
    crossed and nested fits BFGS needed 171 evaluations in all against 189 with forward
    differences throughout (the crossed benchmark fit 18 against 20), at the same maxima. The
    search starts from the highest of ``start`` and the probes, with ``hinv`` as its metric
    where the secant curvature is not positive definite (far from the maximum); ``(start,
    hinv)`` where an evaluation fails.
    """
    n = len(start)
    if not _newton_metric(objective, n):
        return start, hinv
    lower = objective.design.param_lower
    n_fixed = objective.design.n_fixed
    try:
        f0, g0 = objective.value_and_gradient(start)
        scale = np.maximum(1.0, np.abs(start))
        h = np.where(np.arange(n) < n_fixed, 1e-6 * scale,
                     np.minimum(np.sqrt(np.abs(np.diagonal(hinv))), scale))
        h = np.where(g0 < 0, -h, h)
        h = np.where(start + h <= lower, -h, h)
        probes = start + np.diag(h)
        # all probes in one call: the sparse strategy evaluates them together, each from the
        # start's modes and their first-order prediction
        fs, gs = objective.values_and_gradients(probes)
        hess = (gs - g0) / h[:, None]
    except (FitError, np.linalg.LinAlgError, FloatingPointError):
        return start, hinv
    best, best_f = start, f0
    up = np.flatnonzero(fs > f0)  # the first of the highest probes above the start
    if len(up):
        i = up[np.argmax(fs[up])]
        best, best_f = probes[i], fs[i]
    if not np.isfinite(best_f):
        return start, hinv
    info = -(hess + hess.T) / 2
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return best, hinv
    if not np.all(np.isfinite(chol)):
        return best, hinv
    inv = np.linalg.inv(info)
    return best, (inv + inv.T) / 2


def optimize(
    objective: Any, design: Design, start: np.ndarray | None = None,
    sd_starts: tuple[float, ...] | None = None, **options: Any,
) -> OptSummary:
    """Maximise the objective over (beta, theta) from ``start`` (default: GLLM start).

    With ``sd_starts``, global ML over the boundary (the paper's Section 4 fits, whose
    likelihood in sigma can be bimodal): the boundary fit (every SD 0 at the GLLM's fixed
    effects, whose log-likelihood the quadrature reproduces exactly) against one interior search
    from the GLLM start with the SDs at each of ``sd_starts``; an interior fit wins only if it is
    higher by more than ``FTOL_ZERO``. Without ``sd_starts``, one search from ``start``;
    if it ends with an SD on the boundary, searches from its end with those SDs at each of
    ``BOUNDARY_RESTARTS`` follow, under the same rule; and if the best of these is below the
    boundary fit (the GLLM's log-likelihood: no evaluation) by more than ``FTOL_ZERO``, a
    search from the boundary fit (``best_of_starts``). ``hinv0`` in ``options``: an initial
    inverse Hessian for a given ``start``.
    """
    hinv = options.pop("hinv0", None)
    x0 = start
    glm_loglik = None
    if start is None or sd_starts is not None:
        start, hinv, glm_loglik = _glm_start(design)
        x0, hinv = _newton_start(objective, start, hinv)
    lower = design.param_lower
    sd_index = design.n_fixed + np.flatnonzero(np.isfinite(lower[design.n_fixed:]))
    newton = _newton_metric(objective, len(lower))

    def search(x0: np.ndarray, low: np.ndarray = lower, boundary: np.ndarray = sd_index
               ) -> OptSummary:
        opt = maximize(
            objective, x0, low, design.param_names, getattr(objective, "method_name", "agq"),
            getattr(objective, "n_nodes", 0), boundary, hinv0=hinv,
            newton_finish=newton, **options,
        )
        opt.strategy = getattr(objective, "strategy", "")
        return opt

    boundary = None
    if sd_starts is None:
        best = search(x0)
        # a search that ends with an SD on the boundary may have stopped at a local maximum
        # there (the likelihood in sigma can be bimodal, paper Section 4): search the interior
        # from BOUNDARY_RESTARTS too; one that ends higher may still be below the boundary
        # fit, whose log-likelihood the GLLM start has (no evaluation): search from it then
        base, sd_starts = best.final, BOUNDARY_RESTARTS
        moved = sd_index[best.final[sd_index] <= XTOL_ZERO]
        sd_starts = _new_starts(x0, base, moved, sd_starts)
        zero, glm_loglik = _boundary_point(design, start, glm_loglik)
        boundary = (glm_loglik, lambda: search(zero))
    else:
        best = _boundary_fit(objective, design, start, sd_index, glm_loglik)
        base, moved = start, sd_index
    even = _even_in_sds(design)

    def search_from(sd: float) -> OptSummary:
        x0 = base.copy()
        x0[moved] = sd
        if not even:
            return search(x0)
        # the likelihood is even in every SD, so sigma = 0 is a stationary point that a
        # bounded search can land on and stay; search over the whole line and fold
        opt = search(x0, np.full(len(lower), -np.inf), np.zeros(0, dtype=int))
        opt.final[sd_index] = np.abs(opt.final[sd_index])
        return opt

    return best_of_starts(best, search_from, lambda opt: opt.final_loglik, sd_starts, boundary)


#: a restart whose start is within this (relative to max(1, |x|)) of the first search's start
#: repeats that search (the boundary fit's fixed effects equal the GLLM start's to about 1e-9)
SAME_START = 1e-6


def _new_starts(x0: np.ndarray, base: np.ndarray, moved: np.ndarray,
                sd_starts: tuple[float, ...]) -> tuple[float, ...]:
    """The SDs of ``sd_starts`` whose restart (``base`` with the ``moved`` SDs at that value)
    does not start where the first search did (``x0``): none when no SD moved to the boundary.

    A search that ends on the boundary from the GLLM start (fixed effects at the GLLM's ML, the
    SDs at 0.5) has its fixed effects back at the GLLM's ML there, so the restart with the SDs
    at 0.5 starts at ``x0`` again. Where the likelihood is even in the SDs that restart
    searches the whole line while the first search was bounded, but the bounded search's end
    at sigma = 0 was already probed at 0.1 and 0.5 (``maximize``), which finds the saddle the
    unbounded search would pass; it would otherwise repeat the first search's path.
    """
    if moved.size == 0:
        return ()
    scale = SAME_START * np.maximum(1.0, np.abs(x0))
    keep = []
    for sd in sd_starts:
        x = base.copy()
        x[moved] = sd
        if not np.all(np.abs(x - x0) <= scale):
            keep.append(sd)
    return tuple(keep)


def _even_in_sds(design: Design) -> bool:
    """Whether the likelihood is even in each covariance parameter: every template of Lambda
    is diagonal and no two share a component (flipping theta_k flips the sign of its
    components of v, whose N(0, I) prior is symmetric)."""
    if design.covariance is None:
        return False
    pat = design.covariance.pattern
    return bool(np.all(pat.rows == pat.cols) and np.all((pat.values != 0).sum(axis=1) <= 1))


def _boundary_point(design: Design, start: np.ndarray, glm_loglik: float | None
                    ) -> tuple[np.ndarray, float]:
    """The boundary fit (every covariance parameter 0, the fixed effects at the GLLM's ML)
    and its log-likelihood, the GLLM's: from the GLLM start ``start`` when ``glm_loglik`` is
    its log-likelihood, else from a GLLM fit (a given start)."""
    if glm_loglik is None:
        start, _, glm_loglik = _glm_start(design, 0.0)
    zero = start.copy()
    zero[design.n_fixed:] = 0.0
    return zero, glm_loglik if np.isfinite(glm_loglik) else -np.inf


def _boundary_fit(objective: Any, design: Design, start: np.ndarray,
                  sd_index: np.ndarray, glm_loglik: float | None = None) -> OptSummary:
    """The fit with every SD at 0 and the fixed effects at ``start`` (the GLLM's ML), whose
    log-likelihood is the GLLM's ``glm_loglik`` (the objective reproduces it there to about
    1e-12; evaluated where it is not known)."""
    x = start.copy()
    x[sd_index] = 0.0
    known = glm_loglik is not None and bool(np.isfinite(glm_loglik))
    ll = glm_loglik if known else objective.value_and_gradient(x, gradient=False)[0]
    names = tuple(design.param_names[k] for k in sd_index)
    opt = OptSummary(method=getattr(objective, "method_name", "agq"), optimizer="newton",
                      n_nodes=getattr(objective, "n_nodes", 0), initial=x, final=x,
                      initial_loglik=ll, final_loglik=ll, n_evaluations=0 if known else 1,
                      return_code="boundary fit", converged=bool(np.isfinite(ll)),
                      tolerances={"ftol_zero": FTOL_ZERO, "max_abs_gradient": 0.0},
                      boundary=names)
    opt.strategy = getattr(objective, "strategy", "")
    return opt


def make_result(design: Design, objective: Any, opt: OptSummary) -> FitResult:
    """Estimates, covariance from the observed information, and predictions.

    Warns (``ConvergenceWarning``, ``BoundaryWarning``) when the optimisation did not converge
    or a variance was estimated as 0, and (``InfiniteEstimateWarning``, with
    ``result.infinite_estimates``) when some parameters are not estimates, so
    ``make_objective -> optimize -> make_result`` reports what ``fit`` reports.
    """
    _warn(opt)
    t0 = time.perf_counter()
    x = opt.final
    names = design.param_names
    free = np.array([i for i, n in enumerate(names) if n not in opt.boundary], dtype=int)
    # the Newton finish's information stands for the optimum (see _optimize.REUSE_STEP)
    info = (opt.information if opt.information is not None and len(free) == len(x)
            else observed_information(objective, x, free))
    cov = inverse_information(info, free, len(x))
    opt.timings["information"] = time.perf_counter() - t0
    posterior = objective.posterior(x) if design.n_random else None
    res = FitResult(design=design, params=x, cov=cov, loglik=opt.final_loglik, opt=opt,
                    posterior=posterior)
    return flag_degenerate(res, opt.initial)


def fit(
    design: Design | str,
    method: str = "agq",
    n_nodes: int | str | None = None,
    start: np.ndarray | None = None,
    objective_only: bool = False,
    *,
    data: Any = None,
    family: str = "poisson",
    strategy: str | None = None,
    offset: Any = None,
    weights: Any = None,
    **options: Any,
) -> FitResult | Any:
    """Fit a GLLMM (or GLLM when the design has no random effects) by maximum likelihood.

    ``fit`` = ``make_objective`` -> ``optimize`` -> ``make_result``. With ``objective_only``
    the objective is returned instead (like lme4's ``devFunOnly``).

    Parameters
    ----------
    design : Design, str or ConstrainedModel
        A design from ``build_design`` / ``gllmm.models``, or an lme4-style formula, in which
        case ``data`` (and ``family``) are passed to ``build_design``; or a constrained model
        (``gllmm.fitting.marginal_homogeneity_model`` ...), fitted by constrained ML to the
        counts given as ``data`` (``options`` go to ``ConstrainedModel.fit``).
    method : {"agq", "laplace", "laplace2", "mcem", "pql", "npml"}
        Adaptive Gauss-Hermite quadrature, Laplace, second-order Laplace (Laplace plus the
        O(1/n) correction of Shun & McCullagh 1995), Monte Carlo EM (``fit_mcem``), penalised
        quasi-likelihood (``fit_pql``) or nonparametric ML with ``k`` mass points
        (``fit_npml``); ``options`` go to the method.
    n_nodes : int or "auto", optional
        Nodes per dimension for AGQ (default 15). ``"auto"``: Laplace, then AGQ with more
        nodes until the log-likelihood moves by less than 1e-3 and every estimate by less
        than 0.1 SE (``fit_auto_nodes``); the evidence is ``result.nodes_evidence``.
    strategy : {"scalar", "product", "sparse", "cellwise"}, optional
        How AGQ / Laplace evaluate the likelihood; by default chosen from the design's
        structure (``result.strategy`` says which): ``cellwise`` for one Poisson cell per
        random effect with factor fixed effects of 30 or more indicator columns, ``sparse``
        (Laplace) for clusters of many effects, ``scalar`` for one effect per cluster,
        ``product`` otherwise.
    client, partitions : options of the ``cellwise`` strategy
        ``client=`` a ``distributed.Client``: the cells, in ``partitions`` row blocks (a
        number or the block sizes; default two per worker), are evaluated on the Dask cluster
        and only level-sized sums come back; the estimates equal the one-process fit up to
        rounding (docs/distributed.md).
    data, family, offset, weights
        With a formula: passed to ``build_design`` (offset and frequency weights as a column,
        an expression or one value per row).

    Examples
    --------
    >>> res = fit("count ~ C(row) + C(col) + (1 | cell)", data=df, n_nodes=15)  # doctest: +SKIP
    """
    from ._constrained_builders import ConstrainedModel

    if isinstance(design, ConstrainedModel):  # constrained ML: counts come as ``data``
        if data is None:
            raise FitError("a constrained model is fitted to counts: gllmm.fit(model, "
                           "data=table_counts)")
        return design.fit(data, **options)
    if not isinstance(method, str):
        raise SpecError(f"method must be a string such as 'agq' or 'laplace', got {method!r}")
    if method.lower() == "constrained":
        raise FitError("method='constrained' fits a constrained model from "
                       "gllmm.fitting (e.g. marginal_homogeneity_model(3)): "
                       "gllmm.fit(model, data=counts), or use "
                       "gllmm.fit_constrained(counts, C, A, X)")
    if isinstance(design, str):
        from ..spec import build_design

        design = build_design(data, design, family=family, offset=offset, weights=weights)
    if not isinstance(design, Design):
        raise SpecError(f"fit needs a Design (from gllmm.build_design or gllmm.models) or a "
                        f"formula with data=...; got {type(design).__name__}")
    if start is not None:
        start = check_numeric(start, "start").ravel()
        if not np.all(np.isfinite(start)):  # else a FitError about the curvature, later
            raise SpecError("start has NaN or infinite values; give finite starting values "
                            "or leave start out")
        if start.size != len(design.param_names):
            raise SpecError(f"start has {start.size} values; the model has "
                            f"{len(design.param_names)} parameters "
                            f"({', '.join(design.param_names)})")
    key = method.lower()
    if strategy is not None and strategy not in STRATEGIES:
        raise FitError(f"unknown strategy {strategy!r}; valid strategies: "
                       + ", ".join(STRATEGIES))
    if strategy is not None and key not in OBJECTIVES:
        raise FitError(f"strategy applies to the methods agq and laplace, not {method!r}")
    if strategy in ("sparse", "cellwise") and key not in QUADRATURE:
        raise FitError(f"method {method!r} has no {strategy} strategy; use 'scalar' or "
                       "'product', or method='laplace'")
    if isinstance(n_nodes, str):
        if n_nodes.lower() != "auto" or key not in QUADRATURE or objective_only:
            raise FitError(f"n_nodes must be a positive integer or 'auto' (with method 'agq' "
                           f"or 'laplace'), got {n_nodes!r}")
        return choose_nodes(fit, design, start=start, strategy=strategy, **options)
    # the cell-wise layout is found once, for the choice and the fit
    layout = (chosen_layout(design) if design.n_random and key in QUADRATURE
              and strategy is None else None)
    if design.n_random and key in QUADRATURE and (strategy == "cellwise" or layout is not None):
        if objective_only:
            raise FitError("the cell-wise strategy fits by block Newton and has no objective "
                           "for objective_only; choose another strategy")
        check_options(options, fit_cellwise_design, method,
                      ("method", "n_nodes", "start", "layout"))
        res = fit_cellwise_design(design, key, n_nodes, start, layout=layout, **options)
        _warn(res.opt)
        return flag_degenerate(res, getattr(res.opt, "initial", None))
    if options.get("client") is not None or options.get("partitions") is not None:
        raise FitError("client= and partitions= run the cell-wise strategy only (Poisson "
                       "counts ~ C(row) + C(col) + ... + (1 | cell), method agq or laplace); "
                       "this design is fitted in one process: drop them")
    check_full_rank(design)
    if design.n_random == 0 and not objective_only:
        return _fit_gllm(design, start)
    if key in FITTERS and not objective_only:
        check_options(options, FITTERS[key], method)
        try:
            res = FITTERS[key](design, **options)
        except np.linalg.LinAlgError as exc:
            raise FitError(
                f"{method.upper()} failed: its working model is singular ({exc}); this happens "
                "when sampling zeros or separation make estimates infinite. Refit with "
                "method='laplace' or 'agq', which names the parameters concerned") from exc
        return flag_degenerate(res, getattr(res.opt, "initial", None))
    objective = make_objective(design, method, n_nodes)
    _set_strategy(objective, strategy)
    if objective_only:
        return objective
    check_options(options, maximize, method, ("newton_finish",), ("sd_starts",))
    opt = optimize(objective, design, start, **options)
    return make_result(design, objective, opt)


def _warn(opt: OptSummary) -> None:
    """Warnings about convergence and the boundary, for the caller of ``fit`` or
    ``make_result``."""
    if not opt.converged:
        where = (f"; largest gradient {opt.tolerances['max_abs_gradient']:.2e}"
                 if "max_abs_gradient" in opt.tolerances else "")
        warnings.warn(
            f"optimisation did not converge ({opt.return_code}{where}); estimates may be "
            "inaccurate", ConvergenceWarning, stacklevel=3,
        )
    if opt.boundary:
        warnings.warn(
            "variance estimated as zero (boundary fit) for " + ", ".join(opt.boundary)
            + ": the data show no extra variation for that term; its SE is not reported and "
            "tests of it use the boundary-corrected chi-bar-square reference",
            BoundaryWarning, stacklevel=3,
        )


def _fit_gllm(design: Design, start: np.ndarray | None) -> FitResult:
    """GLLM without random effects: Newton-Raphson, covariance from the exact information."""
    t0 = time.perf_counter()
    beta0 = start if start is not None else design.notes.get("start")
    glm = fit_glm(design, beta0=beta0)
    opt = OptSummary(
        method="ml", optimizer="newton", n_nodes=0,
        initial=np.zeros(design.n_fixed) if beta0 is None else np.asarray(beta0, dtype=float),
        final=glm.beta, initial_loglik=float("nan"), final_loglik=glm.loglik,
        n_evaluations=glm.n_iterations, n_iterations=glm.n_iterations,
        return_code="converged" if glm.converged else "iteration limit",
        converged=glm.converged and glm.infinite_cells.size == 0,
        timings={"optimize": time.perf_counter() - t0}, strategy="glm",
    )
    try:
        cov = np.linalg.inv(glm.information)
    except np.linalg.LinAlgError:
        cov = np.full((design.n_fixed, design.n_fixed), np.nan)
    res = FitResult(design=design, params=glm.beta, cov=cov, loglik=glm.loglik, opt=opt)
    if glm.infinite_cells.size:
        res.extra["infinite_cells"] = design.family.cells.ravel()[glm.infinite_cells].tolist()
        # fit_glm has warned, naming the cells; record the parameters
        res.extra["infinite_estimates"] = degenerate_parameters(res)
        return res
    return flag_degenerate(res)
