"""Issue 20 through the command line: rows 4, 5, 6, 13 and 14 of the audit's table.

Each input gets exit code 2 (bad input) or 1 (a fit that cannot be done) and one line on stderr
naming the problem and the fix; none reaches the catch-all ("please report it").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gllmm.cli import main

F = "count ~ C(row) + C(col) + (1 | cell)"
TABLE3 = pd.DataFrame({"row": np.repeat([1, 2, 3], 3), "col": np.tile([1, 2, 3], 3),
                       "count": [2, 3, 4, 3, 5, 2, 4, 2, 5]})


def write(tmp_path: Path, name: str, df: pd.DataFrame) -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def check(capsys, argv, code, *needles):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "please report it" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_row4_smooth_missing_cell(tmp_path, capsys):
    path = write(tmp_path, "missing.csv", TABLE3.iloc[1:])
    check(capsys, ["smooth", path, "--row", "row", "--col", "col"], 2,
          "1 cell(s) of the 3 x 3 table have no row (e.g. row=1, col=1)", "count 0")


def test_row13_smooth_one_cell(tmp_path, capsys):
    path = write(tmp_path, "one.csv", TABLE3.iloc[:1])
    check(capsys, ["smooth", path, "--row", "row", "--col", "col"], 2,
          "1 x 1 cells", "at least two rows and two columns")


@pytest.mark.parametrize("command", [["smooth", "--row", "row", "--col", "col"],
                                     ["fit", "--formula", F, "--add-cell"]])
def test_row6_duplicated_cells(tmp_path, capsys, command):
    dup = pd.concat([TABLE3, pd.DataFrame([{"row": 1, "col": 1, "count": 4}])])
    path = write(tmp_path, "dup.csv", dup)
    check(capsys, [command[0], path, *command[1:]], 2, "duplicated cells: rows [0, 9]",
          "row=1, col=1", "list each cell once")


@pytest.mark.parametrize("command", [
    ["fit", "--formula", F, "--add-cell"],
    ["smooth", "--row", "row", "--col", "col"],
    ["report", "--formula", F, "--add-cell"],
])
def test_row5_output_never_overwrites_the_input(tmp_path, capsys, command, monkeypatch):
    path = write(tmp_path, "t3.csv", TABLE3)
    before = Path(path).read_bytes()
    monkeypatch.chdir(tmp_path)
    for out in (path, "t3.csv", "./t3.csv"):
        check(capsys, [command[0], path, *command[1:], "-o", out], 2,
              "is the input file", "choose another output path")
    assert Path(path).read_bytes() == before


@pytest.mark.parametrize("argv,code,needle", [
    (["--levels", "row=1,1,2,3"], 2, "listed more than once"),
    (["--formula", "count ~ row + 1 | cell"], 2, "'|' outside parentheses"),
    (["--formula", "count ~ 1|"], 2, "'|' outside parentheses"),
    (["--nagq", "1000"], 2, "at most 300"),
])
def test_row13_fit_crashes_become_errors(tmp_path, capsys, argv, code, needle):
    path = write(tmp_path, "t3.csv", TABLE3)
    base = ["fit", path, "--add-cell"]
    if "--formula" not in argv:
        base += ["--formula", F]
    check(capsys, base + argv, code, needle)


def test_row13_pql_on_an_all_zero_row(tmp_path, capsys):
    zero = TABLE3.copy()
    zero.loc[:2, "count"] = 0
    path = write(tmp_path, "zero.csv", zero)
    check(capsys, ["fit", path, "--formula", F, "--add-cell", "--method", "pql"], 1,
          "PQL failed", "sampling zeros or separation", "laplace")


def test_row13_report_unknown_cluster_parameter(tmp_path, capsys):
    path = write(tmp_path, "t3.csv", TABLE3)
    check(capsys, ["report", path, "--formula", F, "--add-cell", "--cluster-parameter", "nope",
                   "-o", str(tmp_path / "r.html")], 2,
          "--cluster-parameter 'nope' is not a fixed effect", "C(row)[T.2]")


def test_row14_smooth_same_row_and_col(tmp_path, capsys):
    path = write(tmp_path, "t3.csv", TABLE3)
    check(capsys, ["smooth", path, "--row", "row", "--col", "row"], 2, "name the same column")


def test_row14_empty_factor_value(tmp_path, capsys):
    df = TABLE3.astype({"row": str})
    df.loc[0, "row"] = ""
    path = tmp_path / "e.csv"
    df.to_csv(path, index=False)
    check(capsys, ["smooth", str(path), "--row", "row", "--col", "col"], 2,
          "factor 'row' has missing or empty values at rows [0]")


def test_row14_formulaic_messages_are_plain_text(tmp_path, capsys):
    path = write(tmp_path, "t3.csv", TABLE3)
    err = check(capsys, ["fit", path, "--formula", "count ~ C(row) + col**"], 2,
                "formula term")
    assert "\x1b[" not in err


def test_row1_json_flags_infinite_estimates(tmp_path, capsys):
    import json

    zero = TABLE3.copy()
    zero.loc[:2, "count"] = 0
    path = write(tmp_path, "zero.csv", zero)
    assert main(["fit", path, "--formula", F, "--add-cell", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert set(out["infinite_estimates"]) == {"Intercept", "C(row)[T.2]", "C(row)[T.3]"}
    assert out["converged"] is False
    assert "the ML estimate does not exist" in captured.err


def test_row1_smooth_flags_the_empty_row(tmp_path, capsys):
    import json

    zero = TABLE3.copy()
    zero.loc[:2, "count"] = 0
    path = write(tmp_path, "zero.csv", zero)
    assert main(["smooth", path, "--row", "row", "--col", "col", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["infinite_estimates"] == ["row[1]"]
    # the empty row's cells are fitted as 0 and its probabilities are 0, the rest sum to 1
    probs = {(r["row"], r["col"]): r["probability"] for r in out["fitted"]}
    assert all(probs[1, j] == 0 for j in (1, 2, 3))
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
