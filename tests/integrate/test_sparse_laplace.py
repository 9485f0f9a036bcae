"""Sparse Laplace path for crossed random effects (``integrate/_sparse_laplace.py``) against the
dense path of ``MarginalLikelihood``, with K factorised wholly sparse (``DENSE_MIN`` huge) and
with a dense trailing block (``DENSE_MIN = 4``: 14 of the 27 effects of the crossed designs).

Tolerances: 1e-8 absolute on log-likelihoods, gradients and posterior summaries (the two paths
evaluate the same formulas, summed in a different order, with modes to ~1e-20); 1e-6 relative
on central differences of the value (step 1e-5: truncation ~1e-10, rounding ~1e-9 on values
of ~200); 1e-6 on maximised log-likelihoods (both fits stop on the same gradient tolerance).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import assert_same_marginal

import gllmm
from gllmm.integrate import MarginalLikelihood
from gllmm.integrate import _sparse_laplace as sparse_laplace
from gllmm.spec import build_design

FORMULAS = {
    "poisson": "count ~ x + (1 | a) + (1 | b)",
    "binomial": "cbind(s, f) ~ x + (1 | a) + (1 | b)",
}


def crossed_data(n_a: int, n_b: int, n: int, family: str = "poisson", seed: int = 0,
                 sd_a: float = 0.5, sd_b: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, sd_a, n_a)[a] + rng.normal(0, sd_b, n_b)[b]
    df = pd.DataFrame({"a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b], "x": x})
    if family == "poisson":
        df["count"] = rng.poisson(np.exp(eta))
    else:
        size = rng.integers(1, 6, n)
        df["s"] = rng.binomial(size, 1 / (1 + np.exp(-eta)))
        df["f"] = size - df["s"]
    return df


def pair(design):
    dense = MarginalLikelihood(design, 1)
    dense.sparse = False
    sparse = MarginalLikelihood(design, 1)
    sparse.sparse = True
    return dense, sparse


def params_for(design, sds=(0.6, 0.35)):
    theta = np.resize(np.asarray(sds, dtype=float), design.n_theta)
    return np.r_[0.2, 0.4, theta]


FACTORISATIONS = pytest.mark.parametrize("dense_min", [10**9, 4], ids=["sparse", "mixed"])


@pytest.fixture
def dense_block(monkeypatch, dense_min):
    monkeypatch.setattr(sparse_laplace, "DENSE_MIN", dense_min)
    return dense_min


def check_block(obj, dense_min):
    s = obj._sparse_structure
    assert (s.dense_start == s.n) if dense_min > s.n else (0 < s.dense_start < s.n)


@FACTORISATIONS
@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_value_gradient_posterior_equal_dense(family, dense_block):
    d = build_design(crossed_data(15, 12, 150, family, seed=3), FORMULAS[family], family=family)
    assert d.n_clusters == 1 and d.n_random == 27
    dense, sparse = pair(d)
    for x in (params_for(d), params_for(d, (0.9, 0.0))):  # including a zero SD
        assert_same_marginal(sparse, dense, x, atol=1e-8, posterior_atol=1e-8)
    assert not hasattr(dense, "_sparse_structure")
    check_block(sparse, dense_block)


@FACTORISATIONS
@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_gradient_equals_central_differences(family, dense_block):
    d = build_design(crossed_data(15, 12, 150, family, seed=7), FORMULAS[family], family=family)
    _, sparse = pair(d)
    x = params_for(d)
    _, g = sparse.value_and_gradient(x)
    check_block(sparse, dense_block)
    h = 1e-5
    fd = np.array([(sparse(x + h * e) - sparse(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)


@FACTORISATIONS
def test_slopes_and_several_clusters_equal_dense(dense_block):
    df = crossed_data(16, 12, 200, seed=4)
    # unstructured (x | a): Lambda is block lower-triangular, not diagonal
    d = build_design(df, "count ~ x + (x | a) + (1 | b)", family="poisson")
    # two crossed components: a0-a7 with b0-b5 and a8-a15 with b6-b11 (two clusters)
    a = df.a.str[1:].astype(int)
    b = df.b.str[1:].astype(int)
    split = df[(a < 8) == (b < 6)].reset_index(drop=True)
    d2 = build_design(split, FORMULAS["poisson"], family="poisson")
    assert d2.n_clusters == 2
    # nested terms: many clusters, each with a few effects
    d3 = build_design(df, "count ~ x + (1 | a) + (1 | a:b)", family="poisson")
    assert d3.n_clusters == 16
    for design, x in ((d, np.r_[0.2, 0.4, 0.5, 0.2, 0.3, 0.4]), (d2, params_for(d2)),
                      (d3, params_for(d3))):
        dense, sparse = pair(design)
        v1, g1 = dense.value_and_gradient(x)
        v2, g2 = sparse.value_and_gradient(x)
        assert abs(v1 - v2) < 1e-8
        np.testing.assert_allclose(g2, g1, rtol=0, atol=1e-8)
        np.testing.assert_allclose(sparse.posterior(x)["mode_sd"], dense.posterior(x)["mode_sd"],
                                   rtol=0, atol=1e-8)


def test_dispatch_by_size_and_nodes():
    # one effect per cluster: the scalar kernel; two or more (crossed, or a vector effect):
    # the sparse factorisation, which is faster from q = 2 on
    small = build_design(crossed_data(15, 12, 150, seed=1), "count ~ x + (1 | a)")
    large = build_design(crossed_data(40, 30, 500, seed=1), FORMULAS["poisson"])
    pair = build_design(crossed_data(15, 12, 150, seed=1), "count ~ x + (1 + x | a)")
    assert small.n_random <= sparse_laplace.SPARSE_MIN_Q < pair.n_random < large.n_random
    assert not sparse_laplace.use_sparse(MarginalLikelihood(small, 1))
    assert sparse_laplace.use_sparse(MarginalLikelihood(large, 1))
    assert sparse_laplace.use_sparse(MarginalLikelihood(pair, 1))
    tiny = build_design(crossed_data(5, 4, 40, seed=1), FORMULAS["poisson"])
    agq = MarginalLikelihood(tiny, 3)
    agq.sparse = True
    assert not sparse_laplace.use_sparse(agq)  # AGQ keeps the dense path
    obj = MarginalLikelihood(large, 1)
    obj.value_and_gradient(params_for(large))
    assert obj._sparse_structure.n == large.n_random


def _fit(design):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gllmm.fit(design, method="laplace")


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_fit_equals_dense_fit(family, monkeypatch):
    d = build_design(crossed_data(15, 12, 200, family, seed=11), FORMULAS[family], family=family)
    assert d.n_random == 27
    monkeypatch.setattr(sparse_laplace, "SPARSE_MIN_Q", 10**9)
    dense = _fit(d)
    monkeypatch.setattr(sparse_laplace, "SPARSE_MIN_Q", 0)
    sparse = _fit(d)
    assert dense.converged and sparse.converged
    assert abs(dense.loglik - sparse.loglik) < 1e-6
    np.testing.assert_allclose(sparse.params, dense.params, rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(sparse.cov)), np.sqrt(np.diag(dense.cov)),
                               rtol=1e-3)


def test_large_crossed_fit_is_fast_and_exact():
    """200 x 150 levels, 5000 rows (q = 350 in one cluster: the dense path would need
    ~5 GB per evaluation). The maximised log-likelihood is checked against the Laplace formula
    evaluated with a dense K at the fitted modes."""
    d = build_design(crossed_data(200, 150, 5000, seed=2), FORMULAS["poisson"])
    assert d.n_random == 350 and d.n_clusters == 1
    t0 = time.perf_counter()
    res = _fit(d)
    elapsed = time.perf_counter() - t0
    assert res.converged
    assert elapsed < 8.0, f"fit took {elapsed:.1f} s"
    np.testing.assert_allclose(res.params, [0.3, 0.5, 0.5, 0.4], atol=0.15)  # truth
    # the Laplace formula with a dense K at the fitted modes
    x = res.params
    beta, theta = x[:2], x[2:]
    lam = d.covariance.factor(theta)
    M = d.Z[:, 0, :] @ lam
    u_mode = res.posterior["mode"][0]
    v = np.linalg.solve(lam, u_mode)
    eta = d.X[:, 0, :] @ beta + M @ v
    l, _, H, _ = d.family.derivatives(eta[:, None, None], 2)
    K = np.eye(d.n_random) + M.T @ (-H[:, 0, 0, 0, None] * M)
    value = (l.sum() - 0.5 * v @ v - 0.5 * np.linalg.slogdet(K)[1]
             + d.family.constant().sum())
    assert abs(value - res.loglik) < 1e-6
    np.testing.assert_allclose(eta, res.posterior["eta_mode"][:, 0], atol=1e-8)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_compiled_evaluation_equals_python_path(family):
    """The one-call compiled evaluation (Poisson / binomial, no dense block) against the
    Python sparse path (``use_kernel = False``) at a sequence of points, so that the modes'
    first-order prediction from the previous point is exercised: 1e-9 on values and
    gradients."""
    d = build_design(crossed_data(15, 12, 200, family, seed=5), FORMULAS[family],
                     family=family)
    compiled, python = MarginalLikelihood(d, 1), MarginalLikelihood(d, 1)
    python.use_kernel = False
    x = params_for(d)
    rng = np.random.default_rng(3)
    for _ in range(4):
        v1, g1 = compiled.value_and_gradient(x)
        v2, g2 = python.value_and_gradient(x)
        assert abs(v1 - v2) < 1e-9
        np.testing.assert_allclose(g1, g2, rtol=0, atol=1e-9)
        x = x + rng.normal(0, 0.05, len(x))
    assert compiled._sparse_tangent is not None and not hasattr(python, "_sparse_tangent")


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_compiled_search_equals_python_search(family):
    """The sparse strategy's compiled BFGS (``negative_sparse_laplace`` in
    ``fitting._loops.bfgs_sparse_laplace``) against the same loop run as Python over
    ``value_and_gradient`` from the same objective state: the same maximum (1e-9 on the
    value, 1e-6 on the parameters: both stop on the same gradient tolerance); the last
    evaluation handed back to the objective (its value known without an evaluation, the
    posterior from its modes equal to the Python search's to 1e-8); a point where the modes
    cannot be found rejected (+1e300) without touching the kept state."""
    from gllmm.fitting._bfgs import minimize_bfgs

    d = build_design(crossed_data(15, 12, 200, family, seed=6), FORMULAS[family],
                     family=family)
    compiled, python = MarginalLikelihood(d, 1), MarginalLikelihood(d, 1)
    x0 = params_for(d, (0.3, 0.2))
    lower = d.param_lower

    def neg(x):  # fitting._optimize.maximize's: a point not computable is rejected
        try:
            v, g = python.value_and_gradient(x)
        except gllmm.FitError:
            return 1e300, np.zeros_like(x)
        return -v, -g

    for obj in (compiled, python):  # the same state: one evaluation elsewhere
        obj.value_and_gradient(x0 + 0.01)
    py = minimize_bfgs(neg, x0, lower, gtol=1e-8)
    spec = compiled.compiled_negative(x0)
    assert spec[0] == "sparse_laplace"
    jit = minimize_bfgs(None, x0, lower, gtol=1e-8, compiled=spec)
    assert py.success and jit.success
    assert abs(jit.fun - py.fun) < 1e-9
    np.testing.assert_allclose(jit.x, py.x, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(compiled._sparse_tangent[0], jit.x)
    assert jit.x.tobytes() in compiled._sparse_seen  # kept: asking again costs no search
    value, grad = compiled.value_and_gradient(jit.x)
    assert value == -jit.fun
    np.testing.assert_array_equal(grad, -jit.grad)
    for key in ("mode", "mode_sd", "eta_mode"):
        np.testing.assert_allclose(compiled.posterior(jit.x)[key], python.posterior(py.x)[key],
                                   rtol=0, atol=1e-8)
    from gllmm.fitting._loops import negative_sparse_laplace

    data = spec[1]
    state = [a.copy() for a in data[13]]
    g = np.empty(len(x0))
    nowhere = np.full(len(x0), np.nan)  # no finite h at any modes
    assert negative_sparse_laplace(data, nowhere, g) == 1e300 and not np.any(g)
    for kept, now in zip(state, data[13], strict=True):
        np.testing.assert_array_equal(kept, now)


def test_newton_start_same_optimum_fewer_evaluations():
    # the sparse strategy starts BFGS from the curvature measured by one uphill probe per
    # parameter (n + 1 gradients: forward differences for the fixed effects, secants over about
    # an SE for the SDs), at the best of the start and the probes, instead of the GLM
    # information with 0.05 I for the SDs; same maximum (1e-9 relative)
    from gllmm.fitting import _fit as engine

    d = build_design(crossed_data(40, 30, 1500, seed=5, sd_a=0.5, sd_b=0.4), FORMULAS["poisson"])
    obj = MarginalLikelihood(d, 1)
    assert obj.strategy == "sparse"
    start, generic = engine._glm_start(d)[:2]
    x0, metric = engine._newton_start(obj, start, generic)
    # the metric inverts the symmetrised secant matrix, measured here again
    f0, g0 = obj.value_and_gradient(start)
    secant, values = np.empty((len(start), len(start))), []
    for i in range(len(start)):
        size = 1e-6 * max(1.0, abs(start[i])) if i < d.n_fixed else np.sqrt(generic[i, i])
        h = size * (1.0 if g0[i] >= 0 else -1.0)
        assert start[i] + h > d.param_lower[i]  # no probe here needs the bound's flip
        probe = start.copy()
        probe[i] += h
        f, g = obj.value_and_gradient(probe)
        secant[i] = (g - g0) / h
        values.append(f)
    np.testing.assert_allclose(metric @ (-(secant + secant.T) / 2), np.eye(len(start)),
                               rtol=0, atol=1e-8)
    # the probes go uphill and the search starts from the highest
    assert max(values) > f0
    assert obj.value_and_gradient(x0)[0] == max(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = engine.optimize(obj, d)
        slow = engine.optimize(obj, d, start=start, hinv0=generic)
    assert fast.converged and slow.converged
    assert abs(fast.final_loglik - slow.final_loglik) < 1e-9 * abs(slow.final_loglik)
    np.testing.assert_allclose(fast.final, slow.final, rtol=0, atol=1e-5)
    assert fast.n_evaluations + len(start) + 1 < slow.n_evaluations


def test_newton_finish_reuses_its_information():
    # the sparse strategy ends BFGS with one exact Newton step; its observed information (P
    # gradients) is the standard errors' when the step is below REUSE_STEP. Against a search
    # without the finish: same maximum (1e-9 relative, both stop below the gradient
    # tolerance), the reused information equal to the one at the optimum to 1e-4 relative
    # (forward differences 2e-6 apart), SEs to 1e-5, and fewer evaluations for search and
    # information together.
    from gllmm.fitting import _fit as engine
    from gllmm.fitting import _optimize

    d = build_design(crossed_data(40, 30, 1500, seed=5, sd_a=0.5, sd_b=0.4), FORMULAS["poisson"])
    start, generic = engine._glm_start(d)[:2]
    start, hinv = engine._newton_start(MarginalLikelihood(d, 1), start, generic)
    runs = {}
    for finish in (True, False):
        obj = MarginalLikelihood(d, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = _optimize.maximize(obj, start, d.param_lower, d.param_names, "laplace", 1,
                                     np.arange(d.n_fixed, len(start)), hinv0=hinv,
                                     newton_finish=finish)
            res = engine.make_result(d, obj, opt)
        runs[finish] = (opt, res, obj.n_evaluations)
    (opt, res, n_finish), (plain, plain_res, n_plain) = runs[True], runs[False]
    assert opt.converged and plain.converged
    assert opt.information is not None and plain.information is None
    assert opt.tolerances["max_abs_gradient"] < 1e-7
    assert abs(opt.final_loglik - plain.final_loglik) < 1e-9 * abs(plain.final_loglik)
    np.testing.assert_allclose(opt.final, plain.final, rtol=0, atol=1e-6)
    obj = MarginalLikelihood(d, 1)
    exact = engine.observed_information(obj, opt.final, np.arange(len(start)))
    np.testing.assert_allclose(opt.information, exact, rtol=1e-4, atol=1e-4)
    se = np.sqrt(np.diag(res.cov))
    np.testing.assert_allclose(se, np.sqrt(np.diag(np.linalg.inv(exact))), rtol=1e-5)
    np.testing.assert_allclose(se, np.sqrt(np.diag(plain_res.cov)), rtol=1e-5)
    assert n_finish < n_plain


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_warm_evaluations_equal_cold_ones(family):
    """Evaluations warm-started from the last one (first-order prediction of the modes, a
    chord step with the last factor, a search that stops once a Newton step is below
    ``SETTLED * inner_tol``) against a fresh objective at each point (modes from 0): 1e-10
    on values and gradients, along forward-difference steps (1e-6) and larger moves."""
    d = build_design(crossed_data(15, 12, 200, family, seed=9), FORMULAS[family],
                     family=family)
    warm = MarginalLikelihood(d, 1)
    x = params_for(d)
    points = [x] + [x + 1e-6 * e for e in np.eye(len(x))] + [x + 0.05, x - 0.2, x + 1e-7]
    for point in points:
        v1, g1 = warm.value_and_gradient(point)
        v2, g2 = MarginalLikelihood(d, 1).value_and_gradient(point)
        assert abs(v1 - v2) < 1e-10
        np.testing.assert_allclose(g1, g2, rtol=0, atol=1e-10)


def test_factor_and_selected_inverse_equal_dense():
    """The compiled LDL' on its stored pattern (wholly sparse and with a dense trailing
    block) against numpy: log det K and K^{-1} on the pattern of L to 1e-12."""
    d = build_design(crossed_data(15, 12, 150, seed=2), FORMULAS["poisson"])
    obj = MarginalLikelihood(d, 1)
    x = params_for(d)
    obj.value_and_gradient(x)
    s = obj._sparse_structure
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 3.0, d.n_blocks)
    md = s.m_values @ x[2:]
    M = np.zeros((d.n_blocks, s.n))
    np.add.at(M, (s.m_row, s.m_pcol), md)  # permuted columns
    K = np.eye(s.n) + M.T @ (w[:, None] * M)
    inv = np.linalg.inv(K)
    rows = np.repeat(np.arange(s.n), np.diff(s.l_indptr))
    for t in (s.n, s.n - 10):
        s.dense_start = t
        f = sparse_laplace._factorize(s, md, w)
        assert abs(f.log_det() - np.linalg.slogdet(K)[1]) < 1e-12
        sigma = f.selected_inverse(s)
        np.testing.assert_allclose(sigma[:s.n], np.diag(inv), rtol=0, atol=1e-12)
        np.testing.assert_allclose(sigma[s.n:], inv[s.l_indices, rows], rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_gradient_jacobian_in_one_call_equals_loop(family):
    """The sparse strategy's forward differences of the gradient (one compiled call for the
    shifted points) against the loop over ``value_and_gradient`` on a fresh objective: 1e-6
    (gradients agree to ~1e-12, divided by steps of 1e-6), the same evaluation count, and the
    shifted evaluations kept for later calls."""
    d = build_design(crossed_data(15, 12, 200, family, seed=4), FORMULAS[family],
                     family=family)
    x = params_for(d)
    free = np.array([0, 2, 3])
    obj = MarginalLikelihood(d, 1)
    obj.value_and_gradient(x + 0.01)  # a tangent and a factor from another point
    jac = obj.gradient_jacobian(x, free, 1e-6)
    assert obj.n_evaluations == 2 + len(free)
    loop = MarginalLikelihood(d, 1)
    g0 = loop.value_and_gradient(x)[1]
    expected = np.empty((len(free), len(free)))
    for a, i in enumerate(free):
        xp = x.copy()
        xp[i] += 1e-6 * max(1.0, abs(x[i]))
        value, grad = loop.value_and_gradient(xp)
        expected[a] = (grad[free] - g0[free]) / (xp[i] - x[i])
        kept = obj._sparse_seen[xp.tobytes()]
        assert abs(kept[0] - value) < 1e-10
        np.testing.assert_allclose(kept[1], grad, rtol=0, atol=1e-10)
    np.testing.assert_allclose(jac, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_values_and_gradients_in_one_call_equal_fresh_evaluations(family):
    """Several points in one compiled call (``values_and_gradients``: the Newton start's
    probes), each started from the last evaluation's tangent, near (a forward difference) and
    far (an SD moved by about an SE or more, where the prediction is compared with the last
    modes and 0): 1e-10 on values and gradients against a fresh objective per point, one
    evaluation counted per point, each kept for later calls."""
    d = build_design(crossed_data(15, 12, 200, family, seed=4), FORMULAS[family],
                     family=family)
    x = params_for(d)
    obj = MarginalLikelihood(d, 1)
    obj.value_and_gradient(x)
    points = np.array([x + 1e-6 * np.eye(len(x))[0], x + [0, 0, 0.3, 0],
                       x + [0, 0, 0, -0.2], x + [0.1, -0.1, 1.5, 0.5]])
    values, grads = obj.values_and_gradients(points)
    assert obj.n_evaluations == 1 + len(points)
    for point, value, grad in zip(points, values, grads, strict=True):
        v2, g2 = MarginalLikelihood(d, 1).value_and_gradient(point)
        assert abs(value - v2) < 1e-10
        np.testing.assert_allclose(grad, g2, rtol=0, atol=1e-10)
        kept = obj._sparse_seen[point.tobytes()]
        assert kept[0] == value
        np.testing.assert_array_equal(kept[1], grad)
