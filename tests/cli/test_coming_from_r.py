"""Every example of docs/coming_from_r.md runs: the console commands through ``gllmm.cli.main``
(exit code 0) and the Python blocks in one namespace, in a directory holding the R data sets
as the page has the reader write them (the CSVs of tests/fixtures/r). The Python blocks'
log-likelihoods equal the R values the page quotes (to 1e-3: the page rounds to 3 decimals).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import warnings
from pathlib import Path

import pandas as pd

from gllmm.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "coming_from_r.md"
R_DIR = ROOT / "tests" / "fixtures" / "r"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), flags=re.S)


def _commands() -> list[str]:
    commands = []
    for block in _blocks("console"):
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.startswith("$ gllmm "):
                commands.append(cmd[len("$ gllmm "):])
    return commands


def test_page_examples_run(tmp_path, monkeypatch):
    for csv in R_DIR.glob("*.csv"):
        shutil.copy(csv, tmp_path / csv.name)
    pd.DataFrame({"herd": [1, 5, 15, 99], "period": [1, 3, 4, 2], "size": [14, 10, 20, 12]}
                 ).to_csv(tmp_path / "cbpp_new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    commands = _commands()
    assert len(commands) >= 8
    for cmd in commands:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(shlex.split(cmd)) == 0, cmd
    assert (tmp_path / "cbpp_eta.csv").exists()
    namespace: dict = {}
    printed = io.StringIO()
    blocks = _blocks("python")
    assert len(blocks) >= 3
    for block in blocks:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - the page's code
    quoted = [float(v) for v in re.findall(r"# R: .*= (-?[0-9.]+)", "".join(blocks))]
    got = [float(v) for v in printed.getvalue().split()]
    assert len(got) == len(quoted) == 6
    for g, q in zip(got, quoted, strict=True):
        assert abs(g - q) < 1e-3
