"""``gllmm fit --method laplace2`` on MBA (2.5): the second-order Laplace fit reaches AGQ's
log-likelihood (reference note: -45.8562, sigma 0.2515; tolerance 1e-3)."""

from __future__ import annotations

import json

from gllmm.cli import main

MBA_25 = "count ~ C(statistics) + C(economics) + (1 | cell)"


def test_fit_method_laplace2(mba_csv, capsys):
    code = main(["fit", mba_csv, "--formula", MBA_25, "--add-cell", "--method", "laplace2",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["method"] == "laplace2" and out["converged"] is True
    assert abs(out["loglik"] - (-45.8562)) < 1e-3
    assert abs(out["random_sd"]["cell"] - 0.2515) < 1e-3
