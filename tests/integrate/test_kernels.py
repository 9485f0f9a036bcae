"""The compiled (numba) scalar-effect kernels against the numpy implementation of the same
formulas: value, gradient, posterior summaries, the forward-difference Hessian, the GLM
Newton start and the compiled BFGS. Tolerances: 1e-9 absolute on log-likelihoods and
gradients (both sum the same terms in a different order), 1e-6 on fitted estimates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import assert_same_marginal

import gllmm
from gllmm import _jit, models
from gllmm.fitting._bfgs import minimize_bfgs
from gllmm.fitting._glm import fit_glm
from gllmm.spec import build_design

pytestmark = pytest.mark.skipif(not _jit.HAVE_NUMBA, reason="numba not installed")


def _binary_design():
    rng = np.random.default_rng(11)
    n_groups, size = 12, 8
    g = np.repeat(np.arange(n_groups), 2)
    x = np.tile([0.0, 1.0], n_groups)
    u = rng.normal(0, 1.0, n_groups)[g]
    p = 1 / (1 + np.exp(-(-0.3 + 0.8 * x + u)))
    s = rng.binomial(size, p)
    df = pd.DataFrame({"g": g.astype(str), "x": x, "s": s, "f": size - s})
    return build_design(df, "cbind(s, f) ~ x + (1 | g)", family="binomial")


@pytest.fixture(scope="module")
def designs(mba, trial):
    t = trial.copy()
    t["x"] = (t.treatment == "drug").astype(float)
    return {
        "poisson": models.cellwise_smoothing(mba, "statistics", "economics",
                                             base="linear_by_linear"),
        "poisson-slope": models.stratified_local_association(trial, "center", "treatment",
                                                             "response"),
        "binomial": _binary_design(),
        "cumulative": models.ordinal_mixed(t, "response ~ x + (1 | center)"),
    }


def _pair(design, n_nodes):
    fast = gllmm.fit(design, method="agq", n_nodes=n_nodes, objective_only=True)
    slow = gllmm.fit(design, method="agq", n_nodes=n_nodes, objective_only=True)
    slow.use_kernel = False
    return fast, slow


def _point(design, seed):
    rng = np.random.default_rng(seed)
    x = np.r_[fit_glm(design, beta0=design.notes.get("start"), warn=False).beta, 0.7]
    return x + rng.normal(0, 0.05, len(x))


@pytest.mark.parametrize("name", ["poisson", "poisson-slope", "binomial", "cumulative"])
@pytest.mark.parametrize("n_nodes", [1, 7])
def test_value_gradient_posterior_match_numpy(designs, name, n_nodes):
    design = designs[name]
    fast, slow = _pair(design, n_nodes)
    assert fast.compiled_negative() is not None  # the kernel covers this family
    x = _point(design, 3)
    assert_same_marginal(fast, slow, x, atol=1e-9, posterior_atol=1e-8)
    free = np.arange(len(x))
    np.testing.assert_allclose(fast.gradient_jacobian(x, free), slow.gradient_jacobian(x, free),
                               rtol=1e-6, atol=1e-6)


def test_gradient_is_the_derivative_of_the_value(designs):
    # central differences of the compiled value: truncation error O(h^2) ~ 1e-8
    design = designs["cumulative"]
    fast, _ = _pair(design, 5)
    x = _point(design, 5)
    g = fast.value_and_gradient(x)[1]
    h = 1e-5
    for k in range(len(x)):
        e = np.zeros(len(x))
        e[k] = h
        num = (fast(x + e) - fast(x - e)) / (2 * h)
        assert abs(num - g[k]) < 1e-5 * max(1.0, abs(g[k]))


@pytest.mark.parametrize("name", ["poisson", "binomial", "cumulative"])
def test_glm_start_matches_numpy_newton(designs, name, monkeypatch):
    design = designs[name]
    start = design.notes.get("start")
    fast = fit_glm(design, beta0=start, warn=False)
    monkeypatch.setattr(_jit, "HAVE_NUMBA", False)
    slow = fit_glm(design, beta0=start, warn=False)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=0, atol=1e-7)
    assert abs(fast.loglik - slow.loglik) < 1e-9
    np.testing.assert_allclose(fast.information, slow.information, rtol=1e-9)


@pytest.mark.parametrize("name", ["poisson-slope", "cumulative"])
def test_fit_with_and_without_the_kernel(designs, name, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = gllmm.fit(designs[name], method="agq", n_nodes=7)
        monkeypatch.setattr(_jit, "HAVE_NUMBA", False)
        slow = gllmm.fit(designs[name], method="agq", n_nodes=7)
    assert abs(fast.loglik - slow.loglik) < 1e-7
    np.testing.assert_allclose(fast.params, slow.params, rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(fast.cov)), np.sqrt(np.diag(slow.cov)),
                               rtol=1e-3)


def test_compiled_bfgs_matches_python_bfgs(designs):
    design = designs["binomial"]
    fast, _ = _pair(design, 5)
    x0 = _point(design, 7)
    lower = np.r_[np.full(design.n_fixed, -np.inf), 0.0]

    def neg(x):
        v, g = fast.value_and_gradient(x)
        return -v, -g

    py = minimize_bfgs(neg, x0, lower, gtol=1e-8)
    jit = minimize_bfgs(None, x0, lower, gtol=1e-8, compiled=fast.compiled_negative())
    assert py.success and jit.success
    np.testing.assert_allclose(jit.x, py.x, rtol=0, atol=1e-6)
    assert abs(jit.fun - py.fun) < 1e-9


def test_fixed_variables_stay_put(designs):
    design = designs["poisson"]
    fast, _ = _pair(design, 1)
    x0 = _point(design, 9)
    lower = np.r_[np.full(design.n_fixed, -np.inf), 0.0]
    fixed = np.zeros(len(x0), bool)
    fixed[[0, -1]] = True
    res = minimize_bfgs(None, x0, lower, compiled=fast.compiled_negative(), fixed=fixed)
    assert res.x[0] == x0[0] and res.x[-1] == x0[-1]
    assert np.max(np.abs(res.grad[~fixed])) < 1e-4


@pytest.mark.parametrize("coding", ["centred", "cumulative"])
@pytest.mark.parametrize("beta", ["free", 0.0])
def test_dense_laplace_kernel_equals_the_numpy_path(beta, coding):
    # one cluster of q = 4 (3 x 3) or 9 (4 x 4) random effects, multinomial blocks: value and
    # exact gradient of the compiled kernel against the numpy path and central differences
    from gllmm.fitting import make_objective
    from gllmm.models._association_gllmm import random_association

    for y in (np.array([[30, 12, 4], [14, 26, 17], [6, 15, 76]]),
              np.arange(1, 17).reshape(4, 4)):
        design = random_association(y, beta=beta, coding=coding)
        compiled = make_objective(design, "laplace")
        numpy_path = make_objective(design, "laplace")
        numpy_path.use_kernel = False
        size = design.n_fixed + design.n_theta
        for x in (np.r_[np.linspace(-0.3, 0.4, size - 1), 0.7],
                  np.r_[np.linspace(0.2, -0.4, size - 1), 1.6], np.zeros(size)):
            value, grad = compiled.value_and_gradient(x)
            ref_value, ref_grad = numpy_path.value_and_gradient(x)
            assert value == pytest.approx(ref_value, abs=1e-10)
            np.testing.assert_allclose(grad, ref_grad, atol=1e-9)
        x = np.r_[np.linspace(-0.3, 0.4, size - 1), 0.7]
        num = np.array([(compiled.value_and_gradient(x + e, False)[0]
                         - compiled.value_and_gradient(x - e, False)[0]) / 2e-6
                        for e in 1e-6 * np.eye(size)])
        np.testing.assert_allclose(compiled.value_and_gradient(x)[1], num, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["poisson", "poisson-slope", "binomial"])
def test_hessian_over_some_parameters_is_that_block(designs, name):
    """The compiled Hessian re-evaluates only the clusters a parameter moves (a factor's
    indicator: its level's cells); over a subset of the parameters (the SD held on a boundary)
    it is the full one's block, to the forward differences' rounding (1e-6)."""
    fast, _ = _pair(designs[name], 5)
    x = _point(designs[name], 7)
    every = np.arange(len(x))
    some = every[::2]
    full = fast.gradient_jacobian(x, every)
    np.testing.assert_allclose(fast.gradient_jacobian(x, some), full[np.ix_(some, some)],
                               rtol=1e-6, atol=1e-6)
