"""Runner: identical results whatever the workers or backend, checkpoint/resume (SIGKILL
included), refusal of a store holding another study."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm.simulate import (
    CheckpointStore,
    ScoreSet,
    StoreMismatchError,
    StudySpec,
    read_store,
    run_replicate,
    run_study,
)

FAST = ("sample_proportions", "glm_independence", "glm_uniform_association",
        "cellwise_gllmm_independence")
COLUMNS = ["scenario", "replicate", "estimator", "mse", "status"]


def small_study(replicates: int = 6, estimators=FAST, seed: int = 11) -> StudySpec:
    return StudySpec(
        score_sets=(ScoreSet("uniform", (1, 2, 3)), ScoreSet("nonuniform", (1.0, 2.5, 3.0))),
        betas=(0.4,), sample_sizes=(50, 200), estimators=estimators,
        replicates=replicates, seed=seed, name="small test study",
    )


def _values(df: pd.DataFrame) -> pd.DataFrame:
    return df[COLUMNS].sort_values(COLUMNS[:3]).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial_run():
    return run_study(small_study(), progress=False)


def test_serial_run_stores_one_row_per_replicate_and_estimator(serial_run):
    spec = serial_run.spec
    assert len(serial_run.results) == len(spec.scenarios) * spec.replicates * len(FAST)
    assert (serial_run.results["status"] == "ok").all()
    assert serial_run.computed == len(spec.scenarios) * spec.replicates
    # a replicate's rows are what run_replicate computes on its own
    rows = run_replicate(spec, 2, 3)
    sub = serial_run.results.query("scenario == 2 and replicate == 3").set_index("estimator")
    for name, mse, _sec, status in rows:
        assert sub.loc[name, "mse"] == mse
        assert status == "ok"


def test_one_and_two_worker_processes_give_identical_results(serial_run, tmp_path):
    two = run_study(serial_run.spec, tmp_path / "two.sqlite", n_workers=2, progress=False)
    assert two.backend == "processes"
    pd.testing.assert_frame_equal(_values(two.results), _values(serial_run.results))


def test_dask_local_cluster_equals_the_local_run(serial_run):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        run = run_study(serial_run.spec, client=client, progress=False)
        by_address = run_study(serial_run.spec.with_options(replicates=2),
                               scheduler=cluster.scheduler_address, progress=False)
    assert run.backend == "dask" and by_address.backend == "dask"
    pd.testing.assert_frame_equal(_values(run.results), _values(serial_run.results))
    first_two = serial_run.results[serial_run.results["replicate"] < 2]
    pd.testing.assert_frame_equal(_values(by_address.results), _values(first_two))


def test_resume_computes_only_what_is_missing(serial_run, tmp_path):
    db = tmp_path / "grow.sqlite"
    spec = serial_run.spec
    part = run_study(spec.with_options(replicates=2, estimators=FAST[:2]), db, progress=False)
    assert part.computed == 4 * 2
    full = run_study(spec, db, progress=False)
    assert full.computed == 4 * 6  # every replicate lacked some estimator
    again = run_study(spec, db, progress=False)
    assert again.computed == 0 and again.skipped == 4 * 6
    pd.testing.assert_frame_equal(_values(full.results), _values(serial_run.results))
    stored = full.results.set_index(["scenario", "replicate", "estimator"])["run"]
    assert stored.loc[(0, 0, FAST[0])] == 1  # written by the first run, never rewritten
    assert stored.loc[(0, 0, FAST[3])] == 2
    with CheckpointStore(db, spec) as store:
        assert list(store.runs()["computed"]) == [8, 24, 0]


def test_a_store_of_another_study_is_refused(tmp_path):
    db = tmp_path / "a.sqlite"
    run_study(small_study(1, FAST[:1]), db, progress=False)
    with pytest.raises(StoreMismatchError, match="different study"):
        run_study(small_study(1, FAST[:1], seed=12), db, progress=False)
    spec, rows = read_store(db)
    assert spec.seed == 11 and len(rows) == 4
    fresh = run_study(small_study(1, FAST[:1], seed=12), db, progress=False, overwrite=True)
    assert fresh.computed == 4


def test_a_changed_estimator_definition_is_not_mixed_into_a_store(tmp_path):
    from gllmm.simulate import ESTIMATORS, Estimator, register_estimator

    db = tmp_path / "versions.sqlite"
    spec = small_study(2, ("sample_proportions", "versioned_for_test"))
    register_estimator(Estimator("versioned_for_test", "V", "test",
                                 lambda c, s: c / c.sum()), replace=True)
    try:
        run_study(spec, db, progress=False)
        register_estimator(Estimator("versioned_for_test", "V", "test",
                                     lambda c, s: np.full(c.shape, 1 / c.size), version=2),
                           replace=True)
        with pytest.raises(StoreMismatchError, match=r"versioned_for_test \(stored v1, now v2"):
            run_study(spec, db, progress=False)
        with CheckpointStore(db, spec) as store:
            assert store.drop_estimator("versioned_for_test") == 8
        again = run_study(spec, db, progress=False)
        assert again.computed == 8
        new = again.results[again.results["estimator"] == "versioned_for_test"]
        old = again.results[again.results["estimator"] == "sample_proportions"]
        assert (new["run"] == 2).all() and (old["run"] == 1).all()
    finally:
        del ESTIMATORS["versioned_for_test"]


def test_failed_fits_are_recorded_not_raised():
    from gllmm.simulate import ESTIMATORS, Estimator, register_estimator

    def broken(counts, scores):
        raise FloatingPointError("boom")

    register_estimator(Estimator("broken_for_test", "B", "test", broken), replace=True)
    try:
        run = run_study(small_study(2, ("sample_proportions", "broken_for_test")),
                        progress=False)
    finally:
        del ESTIMATORS["broken_for_test"]
    bad = run.results[run.results["estimator"] == "broken_for_test"]
    assert bad["mse"].isna().all()
    assert bad["status"].str.contains("FloatingPointError: boom").all()
    table = run.table1()
    assert table["broken_for_test"].isna().all()


# ---------------------------------------------------------------------------------------------
# kill -9 mid-run, resume, compare with an uninterrupted run
# ---------------------------------------------------------------------------------------------

SCRIPT = """
import sys, time
import numpy as np
from gllmm.simulate import Estimator, ScoreSet, StudySpec, register_estimator, run_study

def slow_proportions(counts, scores):
    time.sleep(0.01)
    return counts / counts.sum()

# top level, so spawned workers (which import this script as __mp_main__) register it too
register_estimator(Estimator("slow_proportions", "slow", "test", slow_proportions),
                   replace=True)

def spec():
    return StudySpec(
        score_sets=(ScoreSet("uniform", (1, 2, 3)), ScoreSet("nonuniform", (1.0, 2.5, 3.0))),
        betas=(0.4,), sample_sizes=(50, 200),
        estimators=("slow_proportions", "glm_uniform_association",
                    "cellwise_gllmm_independence"),
        replicates=12, seed=3, name="kill test")

if __name__ == "__main__":
    run_study(spec(), sys.argv[1], n_workers=int(sys.argv[2]), progress=False)
"""


def _stored_replicates(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(
                "SELECT COUNT(*) FROM (SELECT DISTINCT scenario, replicate FROM results)"
            ).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, workers):
    script = tmp_path / "study.py"
    script.write_text(textwrap.dedent(SCRIPT))
    db = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(workers)],
                            cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while _stored_replicates(db) < 8:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the study never stored 8 replicates"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker processes
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _stored_replicates(db)
    total = 4 * 12
    assert 8 <= before < total, before

    sys.path.insert(0, str(tmp_path))
    try:
        import study  # the same estimator registration and spec as the killed process
    finally:
        sys.path.remove(str(tmp_path))
    spec = study.spec()
    _, rows_before = read_store(db)
    resumed = run_study(spec, db, progress=False)
    assert resumed.computed == total - before
    uninterrupted = run_study(spec, tmp_path / "clean.sqlite", progress=False)
    pd.testing.assert_frame_equal(_values(resumed.results), _values(uninterrupted.results))
    # rows stored before the kill were kept, not recomputed
    kept = resumed.results.merge(rows_before[COLUMNS[:3] + ["run"]], on=COLUMNS[:3],
                                 suffixes=("", "_before"))
    assert len(kept) == len(rows_before)
    assert (kept["run"] == kept["run_before"]).all()
    assert np.all(resumed.results["run"].isin([1, 2]))
