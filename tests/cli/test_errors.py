"""Every error path of the gllmm command: message on stderr (what to change) and exit code.

Exit codes: 2 for bad input (files, columns, formulas, options; argparse usage errors too),
1 for a fit that cannot be carried out.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from gllmm.cli import main

MBA_25 = "count ~ C(statistics) + C(economics) + (1 | cell)"


def check(capsys, argv, code, *needles):
    assert main(argv) == code
    captured = capsys.readouterr()
    for needle in needles:
        assert needle in captured.err, captured.err
    assert captured.out == ""  # nothing half-printed on stdout
    return captured.err


# ---------------------------------------------------------------------- input files
@pytest.mark.parametrize("command", [["fit", "{p}", "--formula", MBA_25],
                                     ["smooth", "{p}", "--row", "a", "--col", "b"],
                                     ["report", "{p}", "--formula", MBA_25]])
def test_missing_file(command, tmp_path, capsys):
    argv = [a.format(p=tmp_path / "nosuch.csv") for a in command]
    err = check(capsys, argv, 2, "no such file", "nosuch.csv")
    assert "working directory" in err


def test_directory_instead_of_file(tmp_path, capsys):
    check(capsys, ["fit", str(tmp_path), "--formula", MBA_25], 2, "is a directory")


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("")
    check(capsys, ["fit", str(path), "--formula", MBA_25], 2, "the file is empty")


def test_header_only(tmp_path, capsys):
    path = tmp_path / "header.csv"
    path.write_text("statistics,economics,count\n")
    check(capsys, ["fit", str(path), "--formula", MBA_25], 2, "no data rows")


def test_binary_file(tmp_path, capsys):
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 4)
    check(capsys, ["fit", str(path), "--formula", MBA_25], 2, "cannot read", "binary.csv")


def test_malformed_csv(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,count\n1,2,3\n1,2,3,4,5\n")
    check(capsys, ["fit", str(path), "--formula", "count ~ a"], 2, "cannot read", "as CSV")


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "secret.csv"
    path.write_text("a,count\n1,2\n")
    monkeypatch.setattr("os.access", lambda *_: False)  # root reads anything: simulate it
    check(capsys, ["fit", str(path), "--formula", "count ~ 1"], 2, "permission denied")


def test_parquet_without_pyarrow(tmp_path, capsys, monkeypatch):
    path = tmp_path / "mba.parquet"
    path.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    check(capsys, ["fit", str(path), "--formula", MBA_25], 2, "needs the pyarrow package",
          "pip install pyarrow")


def test_corrupt_parquet(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    check(capsys, ["fit", str(path), "--formula", MBA_25], 2, "cannot read", "as Parquet")


def test_output_to_missing_directory(mba_csv, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "out.csv"
    assert main(["fit", mba_csv, "--formula", MBA_25, "--add-cell", "-o", str(target)]) == 2
    assert "cannot write" in capsys.readouterr().err


# ---------------------------------------------------------------------- formulas and columns
@pytest.mark.parametrize("formula,needles", [
    ("count ~ C(nosuch)", ["unknown column", "nosuch", "available columns"]),
    ("count ~ C(statistics) + (1 | nosuch)", ["unknown grouping column", "nosuch"]),
    ("nosuch ~ C(statistics)", ["unknown count column", "nosuch"]),
    ("count C(statistics)", ["bad formula", "exactly one '~'"]),
    ("count ~ a ~ b", ["bad formula", "exactly one '~'"]),
    ("count ~ C(statistics", ["bad formula", "unbalanced parentheses"]),
    ("~ C(statistics)", ["bad formula", "response"]),
    ("count ~ ", ["bad formula", "no terms"]),
    ("count ~ C(statistics) + (1 | )", ["needs an expression and a grouping factor"]),
])
def test_bad_formulas(formula, needles, mba_csv, capsys):
    check(capsys, ["fit", mba_csv, "--formula", formula], 2, *needles)


def test_rank_deficient_design(mba_csv, tmp_path, capsys):
    import pandas as pd

    df = pd.read_csv(mba_csv)
    df["copy"] = df["statistics"]
    path = tmp_path / "dup.csv"
    df.to_csv(path, index=False)
    check(capsys, ["fit", str(path), "--formula", "count ~ C(statistics) + C(copy)"], 2,
          "rank deficient", "aliased")


def test_binomial_needs_cbind(mba_csv, capsys):
    check(capsys, ["fit", mba_csv, "--family", "binomial", "--formula", "count ~ 1"], 2,
          "cbind(successes, failures)")


def test_multinomial_unknown_count_column(trial_csv, capsys):
    check(capsys, ["fit", trial_csv, "--family", "multinomial", "--count", "n",
                   "--formula", "response ~ 1 + (1 | center)"], 2, "unknown count column",
          "'n'")


def test_negative_counts(tmp_path, capsys):
    path = tmp_path / "neg.csv"
    path.write_text("a,b,count\n1,1,-1\n1,2,3\n2,1,2\n2,2,1\n")
    check(capsys, ["smooth", str(path), "--row", "a", "--col", "b"], 2, "negative counts")


def test_non_numeric_counts(tmp_path, capsys):
    path = tmp_path / "text.csv"
    path.write_text("a,b,count\n1,1,x\n1,2,3\n2,1,2\n2,2,1\n")
    check(capsys, ["smooth", str(path), "--row", "a", "--col", "b"], 2,
          "non-numeric", "data rows [1]")


def test_fractional_counts(tmp_path, capsys):
    path = tmp_path / "frac.csv"
    path.write_text("a,b,count\n1,1,1.5\n1,2,3\n2,1,2\n2,2,1\n")
    check(capsys, ["smooth", str(path), "--row", "a", "--col", "b"], 2, "whole numbers")


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize("value,needle", [("0", "must be at least 1"),
                                          ("-3", "must be at least 1"),
                                          ("abc", "is not an integer")])
@pytest.mark.parametrize("command", ["fit", "smooth"])
def test_invalid_nagq(value, needle, command, mba_csv, capsys):
    extra = ["--formula", MBA_25] if command == "fit" else ["--row", "statistics", "--col",
                                                           "economics"]
    check(capsys, [command, mba_csv, *extra, "--nagq", value], 2, "--nagq", needle)


def test_unknown_family(mba_csv, capsys):
    check(capsys, ["fit", mba_csv, "--formula", MBA_25, "--family", "gamma"], 2,
          "--family", "invalid choice", "poisson", "binomial", "multinomial")


def test_unknown_method(mba_csv, capsys):
    check(capsys, ["fit", mba_csv, "--formula", MBA_25, "--method", "newton"], 2,
          "--method", "invalid choice", "agq", "pql")


def test_unknown_base(mba_csv, capsys):
    check(capsys, ["smooth", mba_csv, "--row", "statistics", "--col", "economics", "--base",
                   "loess"], 2, "--base", "invalid choice", "linear_by_linear")


def test_missing_formula_is_usage_error(mba_csv, capsys):
    check(capsys, ["fit", mba_csv], 2, "--formula")


def test_no_command(capsys):
    check(capsys, [], 2, "usage: gllmm")


def test_unknown_command(capsys):
    check(capsys, ["frobnicate"], 2, "invalid choice", "fit")


@pytest.mark.parametrize("spec,needle", [("response", "expects COLUMN=v1,v2"),
                                         ("response=", "expects COLUMN=v1,v2"),
                                         ("response=better,much_better", "not among the listed"),
                                         ("nosuch=a,b", "unknown column")])
def test_bad_levels(spec, needle, trial_csv, capsys):
    check(capsys, ["fit", trial_csv, "--levels", spec, "--formula",
                   "count ~ C(response) + C(treatment)"], 2, needle)


@pytest.mark.parametrize("spec,needle", [("treatment=1", "1 scores for 2 levels"),
                                         ("treatment=a,b", "scores must be numbers")])
def test_bad_scores(spec, needle, trial_csv, capsys):
    check(capsys, ["fit", trial_csv, "--scores", spec, "--formula", "count ~ C(response)"], 2,
          needle)


# ---------------------------------------------------------------------- smooth
def test_smooth_unknown_column(mba_csv, capsys):
    check(capsys, ["smooth", mba_csv, "--row", "stats", "--col", "economics"], 2,
          "unknown column 'stats'", "available columns: statistics, economics, count")


def test_smooth_unknown_count_column(mba_csv, capsys):
    check(capsys, ["smooth", mba_csv, "--row", "statistics", "--col", "economics", "--count",
                   "n"], 2, "unknown count column 'n'")


@pytest.mark.parametrize("scores,needle", [("1,2,3", "3 scores for the 6 levels"),
                                           ("1,x", "comma-separated numbers")])
def test_smooth_bad_scores(scores, needle, mba_csv, capsys):
    check(capsys, ["smooth", mba_csv, "--row", "statistics", "--col", "economics",
                   "--base", "linear_by_linear", "--row-scores", scores], 2, needle)


def test_smooth_local_with_stratum(trial_csv, capsys):
    check(capsys, ["smooth", trial_csv, "--row", "treatment", "--col", "response", "--stratum",
                   "center", "--base", "local"], 2, "--base local smooths one two-way table")


# ---------------------------------------------------------------------- examples and reports
def test_unknown_example(capsys):
    check(capsys, ["example", "table3"], 2, "unknown example 'table3'", "table2", "table4",
          "table5")


def test_report_unknown_example(tmp_path, capsys):
    check(capsys, ["report", "--example", "nosuch", "-o", str(tmp_path / "r.html")], 2,
          "unknown example 'nosuch'")


def test_report_nothing_to_report(tmp_path, capsys):
    check(capsys, ["report", "-o", str(tmp_path / "r.html")], 2, "nothing to report",
          "--example")


def test_report_both_sources(mba_csv, tmp_path, capsys):
    check(capsys, ["report", mba_csv, "--example", "table2", "-o", str(tmp_path / "r.html")],
          2, "not both")


def test_report_data_without_formula(mba_csv, tmp_path, capsys):
    check(capsys, ["report", mba_csv, "-o", str(tmp_path / "r.html")], 2, "needs --formula")


def test_report_output_directory_missing(mba_csv, tmp_path, capsys):
    check(capsys, ["report", mba_csv, "--formula", "count ~ C(statistics) + C(economics)",
                   "-o", str(tmp_path / "missing" / "r.html")], 2, "does not exist")


def test_report_heatmap_unknown_column(mba_csv, tmp_path, capsys):
    check(capsys, ["report", mba_csv, "--formula", "count ~ C(statistics) + C(economics)",
                   "--heatmap", "statistics", "nosuch", "-o", str(tmp_path / "r.html")], 2,
          "--heatmap", "nosuch")


# ---------------------------------------------------------------------- fit failures (exit 1)
def test_too_many_nodes_is_refused(trial_csv, capsys):
    check(capsys, ["fit", trial_csv, "--family", "multinomial", "--formula",
                   "response ~ 1 + (1 + C(treatment) | center)", "--nagq", "500"], 2,
          "at most 300", "use fewer nodes or the Laplace approximation")


def test_simulate_module_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gllmm.simulate._cli", None)
    check(capsys, ["simulate", "--replicates", "1"], 2, "simulation module is not available")


def test_simulate_bad_arguments(capsys):
    assert main(["simulate", "--replicates", "0"]) == 2
    assert "--replicates" in capsys.readouterr().err


def test_internal_error_is_reported_not_raised(mba_csv, monkeypatch, capsys):
    run = importlib.import_module("gllmm.cli._run")

    def boom(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(run, "run_fit", boom)
    monkeypatch.delenv("GLLMM_DEBUG", raising=False)
    check(capsys, ["fit", mba_csv, "--formula", MBA_25, "--add-cell"], 1,
          "ZeroDivisionError", "GLLMM_DEBUG=1")
