"""Bad input to gllmm.simulate raises gllmm's own errors naming the problem (was ValueError,
TypeError, KeyError, IndexError, AttributeError, JSONDecodeError or sqlite3's errors, or a
silently truncated replicate count or character-wise scores)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gllmm import simulate
from gllmm.errors import SpecError
from gllmm.simulate._store import StoreError

STUDY = simulate.paper_table1_study(replicates=2, estimators=("sample_proportions",))
BAD_TABLE = pd.DataFrame({"a": [1]})

CASES = [
    ("score set as text", lambda: simulate.ScoreSet("s", "12"), "not the text"),
    ("score set of words", lambda: simulate.ScoreSet("s", ("x", "y")), "not numeric"),
    ("replicates as text", lambda: simulate.paper_table1_study(replicates="10"),
     "replicates must be an integer"),
    ("replicates 2.5", lambda: simulate.paper_table1_study(replicates=2.5),
     "replicates must be an integer"),
    ("negative seed", lambda: simulate.paper_table1_study(seed=-1), "seed must be at least 0"),
    ("seed as text", lambda: simulate.paper_table1_study(seed="a"), "seed must be an integer"),
    ("sample size 50.5", lambda: STUDY.with_options(sample_sizes=(50.5,)),
     "sample size must be an integer"),
    ("beta as text", lambda: STUDY.with_options(betas=("high",)), "betas is not numeric"),
    ("from_dict of a list", lambda: simulate.StudySpec.from_dict([1]), "dict of its fields"),
    ("from_dict incomplete", lambda: simulate.StudySpec.from_dict({"betas": [1.0]}),
     "incomplete study fields"),
    ("from_json not JSON", lambda: simulate.StudySpec.from_json("{"), "not valid JSON"),
    ("from_json a list", lambda: simulate.StudySpec.from_json("[1]"), "dict of its fields"),
    ("register a number", lambda: simulate.register_estimator(3), "register an Estimator"),
    ("true_probabilities text", lambda: simulate.true_probabilities("ab", 1.0), "not numeric"),
    ("true_probabilities NaN beta", lambda: simulate.true_probabilities([1, 2, 3], np.nan),
     "beta has NaN"),
    ("true_probabilities no scores", lambda: simulate.true_probabilities([], 1.0),
     "two or more scores"),
    ("normalised_mse shapes", lambda: simulate.normalised_mse(np.ones(3), np.ones(4), 10),
     "differ in shape"),
    ("render_table fmt", lambda: simulate.render_table(simulate.published_table1(), "html"),
     "unknown fmt 'html'"),
    ("render_table columns", lambda: simulate.render_table(BAD_TABLE), "'scores'"),
    ("render_table not a frame", lambda: simulate.render_table(3), "DataFrame"),
    ("summarise columns", lambda: simulate.summarise(BAD_TABLE, STUDY), "'replicate'"),
    ("table1 columns", lambda: simulate.table1(BAD_TABLE, STUDY), "'estimator'"),
    ("compare columns", lambda: simulate.compare_with_published(BAD_TABLE), "'beta'"),
    ("plot_mse_by_n columns", lambda: simulate.plot_mse_by_n(BAD_TABLE), "'n'"),
    ("run_replicate scenario", lambda: simulate.run_replicate(STUDY, 18, 0),
     "scenario 18 does not exist.*0 to 17"),
    ("run_replicate negative", lambda: simulate.run_replicate(STUDY, -1, 0),
     "scenario -1 does not exist"),
    ("run_study not a spec", lambda: simulate.run_study(3), "needs a StudySpec"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_spec_error(call, match):
    with pytest.raises(SpecError, match=match):
        call()


def test_write_outputs_checks_before_writing(tmp_path):
    with pytest.raises(SpecError, match="'scores'"):
        simulate.write_outputs(BAD_TABLE, tmp_path / "out", STUDY)
    assert not (tmp_path / "out").exists()


def test_read_store_bad_paths(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        simulate.read_store(tmp_path / "nosuch.sqlite")
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, " * 10)
    with pytest.raises(StoreError, match="not a gllmm checkpoint store"):
        simulate.read_store(text)


def test_round_trip_and_string_estimator():
    spec = simulate.StudySpec.from_json(STUDY.to_json())
    assert spec == STUDY and spec.fingerprint == STUDY.fingerprint
    one = STUDY.with_options(estimators="sample_proportions")  # one name, not its letters
    assert one.estimators == ("sample_proportions",)
