"""Issue 20, row 15: killing ``gllmm simulate --workers 2`` leaves no process behind.

The study's descendants (forkserver, resource tracker, workers) are recorded from /proc while
it runs; after SIGKILL (or SIGTERM / SIGINT) of the study none of them may be alive 5 s later.
Finished replicates stay in the checkpoint store.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="needs Linux /proc to list child processes")


def _ppid_state(pid: int) -> tuple[int, str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _ppid_state(int(entry))
            if info:
                parent[int(entry)] = info[0]
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (info := _ppid_state(p)) is not None and info[1] != "Z"}


# SIGKILL in every run (the acceptance test of issue 20); SIGTERM and SIGINT (~10 s each) slow
@pytest.mark.parametrize("sig", [signal.SIGKILL,
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=lambda s: s.name)
def test_killed_study_leaves_no_process(tmp_path, sig):
    db = tmp_path / "study.sqlite"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-c", "import sys; from gllmm.cli import main; sys.exit(main())",
           "simulate", "--workers", "2", "--replicates",
           "2000", "--size", "3", "--estimators", "sample_proportions", "glm_independence",
           "--db", str(db), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        kids: set[int] = set()
        while time.time() < deadline and proc.poll() is None:
            kids = _descendants(proc.pid)
            if len(kids) >= 4 and db.exists():  # forkserver, tracker, 2 workers
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(2.0)  # let some replicates finish
        kids |= _descendants(proc.pid)
        assert len(kids) >= 3, kids
        proc.send_signal(sig)
        proc.wait(timeout=30)
        time.sleep(5.0)
        assert _alive(kids) == set()
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(_descendants(proc.pid)):
            os.kill(pid, signal.SIGKILL)
    with sqlite3.connect(db) as conn:  # finished replicates stay stored
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] > 0
