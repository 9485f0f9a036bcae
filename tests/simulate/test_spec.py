"""Study specification: serialisation, fingerprint, seeds, true model (paper Section 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gllmm.errors import SpecError
from gllmm.simulate import (
    TABLE1_ESTIMATORS,
    ScoreSet,
    StudySpec,
    paper_table1_study,
    replicate_seed,
    simulate_table,
    true_probabilities,
)


def test_paper_design_is_2_by_3_by_3_in_table1_order():
    spec = paper_table1_study(3)
    assert len(spec.scenarios) == 18
    assert spec.estimators == TABLE1_ESTIMATORS
    first, last = spec.scenarios[0], spec.scenarios[-1]
    assert (first.scores.name, first.beta, first.n) == ("uniform", 0.1, 50)
    assert (last.scores.name, last.beta, last.n) == ("nonuniform", 1.0, 1000)
    assert spec.scenarios[3].scores.values == (1.0, 2.0, 3.0)
    assert spec.scenarios[9].scores.values == (1.0, 2.5, 3.0)


def test_six_by_six_design_uses_the_papers_scores():
    spec = paper_table1_study(6, replicates=10)
    assert spec.size == 6
    assert spec.score_sets[1].values == (1.0, 2.8, 4.2, 5.2, 5.8, 6.0)
    np.testing.assert_array_equal(spec.scores_for_fit(spec.scenarios[-1]), np.arange(1.0, 7.0))
    with pytest.raises(SpecError):
        paper_table1_study(4)


def test_round_trip_through_json():
    spec = paper_table1_study(3, replicates=17, seed=5, estimators=["sample_proportions"])
    again = StudySpec.from_json(json.dumps(spec.to_dict()))
    assert again == spec
    assert again.fingerprint == spec.fingerprint
    assert [s.label for s in again.scenarios] == [s.label for s in spec.scenarios]


def test_unknown_fields_and_bad_values_are_refused():
    d = paper_table1_study(3).to_dict()
    with pytest.raises(SpecError, match="unknown study fields"):
        StudySpec.from_dict({**d, "replicate": 3})
    with pytest.raises(SpecError):
        StudySpec.from_dict({**d, "replicates": 0})
    with pytest.raises(SpecError):
        StudySpec.from_dict({**d, "model": "quadratic"})
    with pytest.raises(SpecError, match="same length"):
        StudySpec((ScoreSet("a", (1, 2, 3)), ScoreSet("b", (1, 2))), (0.1,), (50,), ("x",))


def test_fingerprint_ignores_replicates_and_estimators_but_not_the_data():
    spec = paper_table1_study(3, replicates=10)
    more = spec.with_options(replicates=1000, estimators=("sample_proportions",))
    assert more.fingerprint == spec.fingerprint
    assert spec.with_options(seed=spec.seed + 1).fingerprint != spec.fingerprint
    assert spec.with_options(betas=(0.1, 0.4)).fingerprint != spec.fingerprint
    assert spec.with_options(fit_scores="true").fingerprint != spec.fingerprint


def test_true_probabilities_have_uniform_local_log_odds_ratios_for_equal_spacing():
    p = true_probabilities([1, 2, 3], 0.4)
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p, p.T)
    log_or = np.log(p[:-1, :-1] * p[1:, 1:] / (p[:-1, 1:] * p[1:, :-1]))
    np.testing.assert_allclose(log_or, 0.4)
    q = true_probabilities([1.0, 2.5, 3.0], 1.0)
    log_or = np.log(q[:-1, :-1] * q[1:, 1:] / (q[:-1, 1:] * q[1:, :-1]))
    np.testing.assert_allclose(log_or, np.outer([1.5, 0.5], [1.5, 0.5]))


def test_replicate_seed_depends_only_on_seed_scenario_and_replicate():
    spec = paper_table1_study(3, replicates=5)
    sc = spec.scenarios[4]
    a = [simulate_table(sc, spec.seed, r) for r in range(5)]
    b = [simulate_table(sc, spec.seed, r) for r in reversed(range(5))][::-1]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
        assert x.sum() == sc.n
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(simulate_table(spec.scenarios[5], spec.seed, 0),
                              simulate_table(sc, spec.seed, 0))
    ss = replicate_seed(spec.seed, 4, 2)
    assert ss.spawn_key == (4, 2)
    assert ss.entropy == spec.seed
