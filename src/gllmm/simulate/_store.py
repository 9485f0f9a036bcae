"""Checkpoint store: every finished replicate goes to an embedded SQLite file at once.

Tables
------
``meta(key, value)``
    ``fingerprint`` (the study's :attr:`StudySpec.fingerprint`), ``spec`` (its JSON, updated
    when the replicate count or estimator list grows), ``created``, ``gllmm_version``,
    ``estimator_versions`` (JSON: the definition version of every estimator with stored rows).
``results(scenario, replicate, estimator, mse, seconds, status, run)``
    One row per (scenario, replicate, estimator), primary key on those three: the n-normalised
    MSE, the estimator's CPU-side wall time, ``ok`` or the error text, and the run that wrote it.
``runs(run, started, finished, workers, backend, computed)``
    One row per invocation of the runner.

The file is in WAL mode; all rows of one replicate are written in one transaction, so a
replicate is either stored whole or not at all. With WAL and ``synchronous=NORMAL`` a committed
transaction survives the death of the writing process (SIGKILL included); only an operating
system crash or power loss can lose the last commits, which the resume then recomputes.
Only the runner's main process writes, so the store needs no locking between workers.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import GllmmError
from ._spec import StudySpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    scenario INTEGER NOT NULL,
    replicate INTEGER NOT NULL,
    estimator TEXT NOT NULL,
    mse REAL,
    seconds REAL NOT NULL,
    status TEXT NOT NULL,
    run INTEGER NOT NULL,
    PRIMARY KEY (scenario, replicate, estimator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    workers INTEGER,
    backend TEXT,
    computed INTEGER NOT NULL DEFAULT 0
);
"""


class StoreError(GllmmError, ValueError):
    """The checkpoint file cannot be used: a directory, damaged, or not a gllmm store."""


class StoreMismatchError(GllmmError):
    """The store holds a different study (its fingerprint differs)."""


def _is_sqlite_or_empty(path: Path) -> bool:
    """A path the store may create, open or delete: absent, empty, or an SQLite file."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class CheckpointStore:
    """SQLite store of per-replicate results of one study.

    Parameters
    ----------
    path : str or Path
        File to create or resume (``":memory:"`` for a throw-away store).
    spec : StudySpec
        The study. A new file records its fingerprint; an existing file must hold the same
        fingerprint (same scenarios, seed, model and fitting scores), else
        :class:`StoreMismatchError`. Replicates and estimators may differ: a larger count or new
        estimators extend the stored study.
    overwrite : bool
        Delete an existing file first.
    """

    def __init__(self, path: str | Path, spec: StudySpec, overwrite: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:" and not _is_sqlite_or_empty(Path(self.path)):
            raise StoreError(f"{self.path} is not an SQLite file, so not a gllmm checkpoint "
                             "store; give another --db path (gllmm neither reads nor deletes "
                             "it)")
        if overwrite and self.path != ":memory:":
            for suffix in ("", "-wal", "-shm"):
                Path(self.path + suffix).unlink(missing_ok=True)
        if self.path != ":memory:" and Path(self.path).is_dir():
            raise StoreError(f"checkpoint store {self.path} is a directory; give a file path "
                             "for --db (e.g. results/table1.sqlite)")
        try:
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                self.conn.close()
                raise StoreError(
                    f"{self.path} is an SQLite database of something else (tables: "
                    f"{', '.join(sorted(tables))}), not a gllmm checkpoint store; give another "
                    "--db path (gllmm will not write into it)")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a gllmm checkpoint store or is damaged ({exc}); start "
                "over with --overwrite (deletes it and recomputes every replicate) or give "
                "another --db path") from None
        self.spec = spec
        self._check_or_record(spec)
        self.run_id: int | None = None

    # ------------------------------------------------------------------ metadata
    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def _check_or_record(self, spec: StudySpec) -> None:
        meta = self.meta()
        stored = meta.get("fingerprint")
        if stored is not None and stored != spec.fingerprint:
            old = meta.get("spec", "{}")
            raise StoreMismatchError(
                f"{self.path} holds a different study (fingerprint {stored}, this study "
                f"{spec.fingerprint}); its spec: {old}. Use another --db path or overwrite it."
            )
        from .. import __version__

        with self.conn:
            self.conn.execute("BEGIN")
            if stored is None:
                self.conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)",
                                  (spec.fingerprint,))
                self.conn.execute("INSERT INTO meta VALUES ('created', ?)", (_now(),))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)",
                              (spec.to_json(sort_keys=True),))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('gllmm_version', ?)",
                              (__version__,))

    def check_estimators(self, versions: dict[str, int]) -> None:
        """Refuse to mix rows of two definitions of one estimator; record new estimators.

        ``versions`` maps estimator names to :attr:`Estimator.version`. A stored estimator
        whose version differs raises :class:`StoreMismatchError` (drop its rows with
        :meth:`drop_estimator` to recompute it under the new definition).
        """
        stored = json.loads(self.meta().get("estimator_versions", "{}"))
        changed = {k: (stored[k], v) for k, v in versions.items()
                   if k in stored and stored[k] != v}
        if changed:
            what = ", ".join(f"{k} (stored v{a}, now v{b})" for k, (a, b) in changed.items())
            raise StoreMismatchError(
                f"{self.path} holds results of other definitions of: {what}. Use another "
                "--db, overwrite it, or drop those estimators' rows (CheckpointStore."
                "drop_estimator) to recompute them."
            )
        merged = {**stored, **versions}
        if merged != stored:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('estimator_versions', ?)",
                              (json.dumps(merged, sort_keys=True),))

    def drop_estimator(self, name: str) -> int:
        """Delete every stored row of estimator ``name`` (and its recorded version); returns
        the number of rows deleted. A later run recomputes them."""
        stored = json.loads(self.meta().get("estimator_versions", "{}"))
        stored.pop(name, None)
        with self.conn:
            self.conn.execute("BEGIN")
            cur = self.conn.execute("DELETE FROM results WHERE estimator = ?", (name,))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('estimator_versions', ?)",
                              (json.dumps(stored, sort_keys=True),))
        return int(cur.rowcount)

    def stored_spec(self) -> StudySpec:
        """The study as last recorded in the file."""
        return StudySpec.from_json(self.meta()["spec"])

    # ------------------------------------------------------------------ runs
    def begin_run(self, workers: int, backend: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (started, workers, backend) VALUES (?, ?, ?)",
            (_now(), int(workers), backend),
        )
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def end_run(self, computed: int) -> None:
        if self.run_id is not None:
            self.conn.execute("UPDATE runs SET finished = ?, computed = ? WHERE run = ?",
                              (_now(), int(computed), self.run_id))

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run", self.conn)

    # ------------------------------------------------------------------ results
    def completed(self) -> set[tuple[int, int, str]]:
        """Stored (scenario, replicate, estimator) keys."""
        rows = self.conn.execute("SELECT scenario, replicate, estimator FROM results")
        return {(int(s), int(r), str(e)) for s, r, e in rows}

    def write_replicate(self, scenario: int, replicate: int,
                        rows: Iterable[tuple[str, float, float, str]]) -> None:
        """Store one replicate's rows ``(estimator, mse, seconds, status)`` in one transaction."""
        run = self.run_id if self.run_id is not None else 0
        values = [
            (int(scenario), int(replicate), str(est),
             None if mse is None or not math.isfinite(mse) else float(mse),
             float(sec), str(status), run)
            for est, mse, sec, status in rows
        ]
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", values
            )

    def results(self, spec: StudySpec | None = None) -> pd.DataFrame:
        """Stored rows as a frame; with ``spec``, only its estimators and replicates."""
        df = pd.read_sql_query(
            "SELECT scenario, replicate, estimator, mse, seconds, status, run FROM results "
            "ORDER BY scenario, replicate, estimator", self.conn,
        )
        if spec is not None:
            df = df[df["estimator"].isin(spec.estimators) & (df["replicate"] < spec.replicates)]
        return df.reset_index(drop=True)

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_store(path: str | Path) -> tuple[StudySpec, pd.DataFrame]:
    """The study recorded in a store file and all its rows (read-only use)."""
    if not Path(path).is_file():
        raise StoreError(f"checkpoint store {path} does not exist (or is not a file); give "
                         "the --db file of a study run")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            df = pd.read_sql_query(
                "SELECT * FROM results ORDER BY scenario, replicate, estimator", conn)
        finally:
            conn.close()
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise StoreError(f"{path} is not a gllmm checkpoint store or is damaged ({exc}); "
                         "give the --db file of a study run") from None
    if "spec" not in meta:
        raise StoreError(f"{path} records no study; it is not a complete checkpoint store")
    return StudySpec.from_dict(json.loads(meta["spec"])), df
