"""Issue 20, row 13 (simulate): bad --db / --out / --seed and corrupt or foreign checkpoint
stores get a message saying how to start over; nothing the user owns is read or deleted."""

from __future__ import annotations

import sqlite3

import pytest

from gllmm.cli import main

BASE = ["simulate", "--replicates", "1", "--size", "3", "--estimators", "sample_proportions",
        "--no-progress"]


def run(capsys, tmp_path, *extra):
    code = main([*BASE, "--out", str(tmp_path / "out"), *extra])
    return code, capsys.readouterr().err


def test_db_on_a_csv_is_refused_and_kept(tmp_path, capsys):
    csv = tmp_path / "data.csv"
    csv.write_text("row,col,count\n1,1,2\n")
    for extra in ([], ["--overwrite"]):
        code, err = run(capsys, tmp_path, "--db", str(csv), *extra)
        assert code == 2 and "is not an SQLite file" in err and "another --db path" in err
    assert csv.read_text() == "row,col,count\n1,1,2\n"


def test_db_on_a_directory(tmp_path, capsys):
    code, err = run(capsys, tmp_path, "--db", str(tmp_path))
    assert code == 2 and "is a directory; give a file path for --db" in err


def test_damaged_store_says_how_to_start_over(tmp_path, capsys):
    db = tmp_path / "damaged.sqlite"
    db.write_bytes(b"SQLite format 3\x00" + b"garbage" * 20)
    code, err = run(capsys, tmp_path, "--db", str(db))
    assert code == 2 and "is damaged" in err and "start over with --overwrite" in err
    code, err = run(capsys, tmp_path, "--db", str(db), "--overwrite")  # and that works
    assert code == 0, err


def test_foreign_sqlite_database_is_not_written(tmp_path, capsys):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE x (a)")
    code, err = run(capsys, tmp_path, "--db", str(db))
    assert code == 2 and "SQLite database of something else (tables: x)" in err
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"x"}


@pytest.mark.parametrize("extra,needle", [(["--seed", "-1"], "--seed must be a non-negative"),
                                          (["--out", "FILE"], "is a file; give a directory")])
def test_bad_seed_and_out(tmp_path, capsys, extra, needle):
    if "FILE" in extra:
        f = tmp_path / "f.txt"
        f.write_text("x")
        extra = ["--out", str(f)]
    code = main([*BASE, *extra] if "--out" in extra else
                [*BASE, "--out", str(tmp_path / "o"), *extra])
    assert code == 2 and needle in capsys.readouterr().err


def test_unreachable_scheduler(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    from gllmm.simulate import _runner

    monkeypatch.setattr(_runner, "SCHEDULER_TIMEOUT", 2.0)
    code, err = run(capsys, tmp_path, "--scheduler", "tcp://127.0.0.1:1")
    assert code == 1 and "cannot reach the Dask scheduler tcp://127.0.0.1:1" in err
    assert "local --workers" in err and "please report it" not in err
