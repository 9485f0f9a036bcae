"""The gllmm command: JSON contract, examples and error paths (message + exit code)."""

from __future__ import annotations

import json

import pytest

from gllmm.cli import main
from gllmm import datasets


@pytest.fixture()
def mba_csv(tmp_path):
    path = tmp_path / "mba.csv"
    datasets.load("mba").to_csv(path, index=False)
    return str(path)


def test_fit_json_contract(mba_csv, capsys):
    code = main(["fit", mba_csv, "--formula",
                 "count ~ C(statistics) + C(economics) + (1 | cell)", "--add-cell",
                 "--nagq", "15", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("loglik", "converged", "boundary", "method", "nagq", "params", "se",
                "random_sd", "random_sd_se", "fitted"):
        assert key in out
    assert abs(out["loglik"] - (-45.8562)) < 1e-3
    assert abs(out["random_sd"]["cell"] - 0.2515) < 1e-3
    assert out["nagq"] == 15 and out["method"] == "agq"
    assert len(out["fitted"]) == 42 and {"observed", "fitted"} <= set(out["fitted"][0])


def test_fit_laplace_text(mba_csv, capsys):
    code = main(["fit", mba_csv, "--formula",
                 "count ~ C(statistics) + C(economics) + (1 | cell)", "--add-cell",
                 "--nagq", "1"])
    assert code == 0
    assert "Log-likelihood: -45.842" in capsys.readouterr().out  # glmer Laplace: -45.8424


def test_example_json(capsys):
    assert main(["example", "table4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["local"]["params"]["beta"] - 0.5923) < 1e-3
    assert abs(out["global"]["params"]["beta"] - 0.8274) < 1e-3


@pytest.mark.parametrize("argv,message", [
    (["fit", "/nonexistent.csv", "--formula", "count ~ 1"], "no such file"),
    (["example", "nosuch"], "unknown example"),
])
def test_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_column_error(mba_csv, capsys):
    assert main(["fit", mba_csv, "--formula", "count ~ C(nosuch)"]) == 2
    err = capsys.readouterr().err
    assert "unknown column" in err and "nosuch" in err


def test_missing_formula_is_usage_error(mba_csv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", mba_csv])
    assert exc.value.code == 2
    assert "--formula" in capsys.readouterr().err
