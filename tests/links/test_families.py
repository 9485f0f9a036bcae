"""Analytic derivatives of every family against central differences (rtol ~5e-5, glum)."""

import numpy as np
import pytest
from helpers import assert_derivatives_match_differences
from hypothesis import given, settings
from hypothesis import strategies as st

from gllmm.links import (
    Binomial,
    ContinuationRatio,
    Multinomial,
    Poisson,
    cumulative_logit_family,
    dale_plugin_family,
    plackett,
)

rng = np.random.default_rng(20031)


def _families():
    yield Poisson(rng.poisson(3, size=6)), rng.normal(size=(6, 2, 1))
    yield Binomial(rng.poisson(3, size=(6, 2))), rng.normal(size=(6, 2, 1))
    yield Multinomial(rng.poisson(3, size=(6, 4))), rng.normal(size=(6, 2, 4))
    yield ContinuationRatio(rng.poisson(3, size=(6, 4))), rng.normal(size=(6, 2, 3))
    yield (cumulative_logit_family(rng.poisson(3, size=(6, 4))),
           np.sort(rng.normal(size=(6, 2, 3)), axis=-1) * 1.5)
    yield dale_plugin_family(rng.poisson(4, size=(5, 2, 3)) + 1), 0.5 * rng.normal(size=(5, 2, 2))
    yield dale_plugin_family(rng.poisson(4, size=(5, 3, 3)) + 3), 0.2 * rng.normal(size=(5, 2, 4))


@pytest.mark.parametrize("family,eta", list(_families()), ids=lambda x: getattr(x, "name", ""))
def test_derivatives_match_differences(family, eta):
    assert_derivatives_match_differences(family, eta, atol=(1e-6, 1e-6, 1e-5))


def test_poisson_loglik_value():
    fam = Poisson(np.array([0.0, 2.0, 5.0]))
    eta = np.log(np.array([1.0, 2.5, 4.0]))[:, None, None]
    l = fam.derivatives(eta, 0)[0][:, 0] + fam.constant()
    from scipy.stats import poisson

    np.testing.assert_allclose(l, poisson.logpmf([0, 2, 5], [1.0, 2.5, 4.0]), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(0.05, 0.95), b=st.floats(0.05, 0.95), log_psi=st.floats(-6, 6),
)
def test_plackett_reproduces_odds_ratio_and_margins(a, b, log_psi):
    f = float(plackett(np.array(log_psi), np.array(a), np.array(b)))
    cells = np.array([f, a - f, b - f, 1 - a - b + f])
    assert np.all(cells >= -1e-12) and abs(cells.sum() - 1) < 1e-12
    assert abs(cells[0] + cells[1] - a) < 1e-12 and abs(cells[0] + cells[2] - b) < 1e-12
    if np.all(cells > 1e-9):
        lor = np.log(cells[0] * cells[3] / (cells[1] * cells[2]))
        assert abs(lor - log_psi) < 1e-6


@settings(max_examples=40, deadline=None)
@given(st.floats(-4, 4), st.integers(0, 10_000))
def test_dale_probabilities_valid(eta, seed):
    # uniform global odds ratio (the model's case): Plackett's cdf is monotone in the margins
    etas = [eta, eta]
    r = np.random.default_rng(seed)
    tables = r.integers(1, 9, size=(1, 2, 3)).astype(float)
    fam = dale_plugin_family(tables)
    mu = fam.mean(np.array([etas]))
    p = mu / tables.sum()
    assert np.all(p >= -1e-12) and abs(p.sum() - 1) < 1e-12
    # margins equal the sample margins (plug-in)
    np.testing.assert_allclose(mu.reshape(2, 3).sum(1), tables[0].sum(1), rtol=1e-10)
    np.testing.assert_allclose(mu.reshape(2, 3).sum(0), tables[0].sum(0), rtol=1e-10)
