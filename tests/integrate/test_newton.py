"""The one Newton iteration and its step halving (``gllmm.integrate._newton``) on closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from gllmm.integrate._newton import (
    State,
    backtrack,
    damped_newton_direction,
    halving_step,
    newton,
)

Y = np.array([0.5, 3.0, 20.0])


def poisson(x: np.ndarray, order: int) -> State:
    """``sum(y x - exp(x))``: concave, maximum at ``x = log y``; Newton from far left overshoots
    (the full step from x = -5 is ``y e^5 - 1``, up to 2967), so the halving has work to do."""
    with np.errstate(over="ignore"):
        mu = np.exp(x)
    value = float(Y @ x - mu.sum())
    if order < 2:
        return State(x, value, order)
    return State(x, value, order, Y - mu, -np.diag(mu))


def newton_direction(state: State) -> np.ndarray:
    return np.linalg.solve(-state.extra, state.grad)


def test_newton_reaches_the_closed_form_maximum_with_halving():
    res = newton(poisson, newton_direction, np.full(3, -5.0), tol=1e-20, max_iter=100)
    assert res.converged and res.message == "converged"
    np.testing.assert_allclose(res.state.params, np.log(Y), rtol=0, atol=1e-10)
    # halving happened: more evaluations than one per iteration plus the start
    assert res.n_evaluations > res.n_iter + 1


def test_newton_projection_and_final_step():
    # maximise -(x + 1)^2 over x >= 0: the projected iteration stops at the bound 0 (1e-15)
    def evaluate(x: np.ndarray, order: int) -> State:
        return State(x, float(-((x + 1.0) ** 2).sum()), order, -2.0 * (x + 1.0),
                     -2.0 * np.eye(len(x)))

    def direction(state: State) -> np.ndarray:
        free = ~((state.params <= 0.0) & (state.grad < 0))
        d = np.zeros_like(state.params)
        d[free] = newton_direction(State(None, 0.0, 2, state.grad[free],
                                         state.extra[np.ix_(free, free)]))
        return d

    res = newton(evaluate, direction, np.array([3.0, 0.5]), tol=1e-14,
                 project=lambda z: np.maximum(z, 0.0), armijo=False)
    assert res.converged
    np.testing.assert_allclose(res.state.params, [0.0, 0.0], atol=1e-15)
    # with final_step the step after the decrement test is still taken: on a quadratic the
    # first Newton step is exact, so one iteration ends at the maximum 2 (1e-15)
    quad = newton(lambda x, o: State(x, float(-((x - 2.0) ** 2).sum()), o, -2.0 * (x - 2.0),
                                     -2.0 * np.eye(len(x))),
                  newton_direction, np.array([5.0]), tol=1e3, final_step=True)
    assert quad.converged and quad.n_iter == 1
    np.testing.assert_allclose(quad.state.params, [2.0], atol=1e-15)


def test_backtrack_refuses_a_descent_direction_and_takes_armijo_steps():
    f = lambda z: (float(-(z**2).sum()),)  # noqa: E731
    x = np.array([1.0])
    assert backtrack(f, x, np.array([1.0]), f(x)[0], max_trials=30) is None
    # step -4 overshoots to -3 (value -9 < -1); halved to -1 (value -1: no decrease, accepted
    # without Armijo, refused with it: predicted rise t * g'd = 0.5 * 8 = 4); then t = 1/4
    t, z, _ = backtrack(f, x, np.array([-4.0]), -1.0)
    assert t == 0.5 and z[0] == pytest.approx(-1.0, abs=1e-15)
    t, z, _ = backtrack(f, x, np.array([-4.0]), -1.0, slope=8.0)
    assert t == 0.25 and z[0] == pytest.approx(0.0, abs=1e-15)


def test_halving_step_halves_each_cluster_separately():
    # two clusters h_c(v) = -(v - m_c)^2 from v = 0 with step 4: cluster 0 (m = 2) accepts the
    # full step (4 is as good as 0), cluster 1 (m = 0.5) halves twice, to v = 1 (as good as 0)
    m = np.array([2.0, 0.5])
    v, (h,) = halving_step(lambda v: (-(v - m) ** 2,), np.zeros(2), np.full(2, 4.0),
                           -(m**2), lambda t: t)
    np.testing.assert_allclose(v, [4.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(h, -((v - m) ** 2), atol=1e-15)


def test_damped_direction_is_an_ascent_direction_where_not_concave():
    g = np.array([1.0, -2.0])
    hess = np.array([[1.0, 0.0], [0.0, -1.0]])  # indefinite: the plain Newton step descends
    d = damped_newton_direction(g, hess)
    assert float(g @ d) > 0
    # concave: the plain Newton step -H^-1 g (1e-14)
    hess = np.array([[-2.0, 0.5], [0.5, -1.0]])
    np.testing.assert_allclose(damped_newton_direction(g, hess), np.linalg.solve(-hess, g),
                               rtol=1e-14, atol=1e-14)
