"""Options the command used to ignore, mislabel or pass to numpy unchecked: each is now a
one-line error naming the option and the fix, exit code 2, nothing on stdout."""

from __future__ import annotations

import pytest

import gllmm
from gllmm.cli import main
from gllmm.errors import SpecError

MBA_25 = "count ~ C(statistics) + C(economics) + (1 | cell)"


def check(capsys, argv, *needles):
    assert main(argv) == 2
    captured = capsys.readouterr()
    for needle in needles:
        assert needle in captured.err, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err and "please report" not in captured.err
    assert "error:" in captured.err.strip().splitlines()[-1]  # (argparse prints usage first)
    return captured.err


def test_count_of_a_poisson_formula(mba_csv, capsys):
    # was exit 0: --count was silently ignored (a misspelt column went unnoticed)
    check(capsys, ["fit", mba_csv, "--formula", MBA_25, "--add-cell", "--count", "nosuch"],
          "--count applies to ordinal and multinomial", "drop --count")


@pytest.mark.parametrize("seed", ["-1", "x"])
def test_negative_seed(mba_csv, capsys, seed):
    # was exit 1 with numpy's "ValueError: expected non-negative integer ... please report it"
    check(capsys, ["fit", mba_csv, "--formula", MBA_25, "--add-cell", "--method", "mcem",
                   "--seed", seed], "argument --seed", "seed")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_partitions_named_as_partitions(mba_csv, capsys, value):
    # was "0 nodes: must be at least 1 (1 = Laplace, ...)": the message of --nagq
    err = check(capsys, ["smooth", mba_csv, "--row", "statistics", "--col", "economics",
                         "--partitions", value], f"{value} partitions: must be at least 1")
    assert "nodes" not in err and "Laplace" not in err


def test_fit_mcem_negative_seed_is_a_spec_error(mba):
    design = gllmm.build_design(mba.assign(cell=range(len(mba))), MBA_25)
    with pytest.raises(SpecError, match="seed must be at least 0"):
        gllmm.fit_mcem(design, seed=-1)
