"""The cell-wise strategy on a Dask cluster equals the one-process fit (issue 17).

The cells are split into row blocks evaluated where they were scattered; only sums of level
size come back. Summation order differs from one process, so the estimates agree to rounding:
the tolerance is 1e-8 in the log-likelihood and every estimate (and 1e-6 relative in the
covariance, an inverse of a 200 x 200 matrix).
"""

from __future__ import annotations

import json
import os
import signal
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import stratified_association_table

import gllmm
from gllmm.errors import FitError
from gllmm.fitting._cellwise_parts import row_partitions
from gllmm.smooth import fit_cellwise

distributed = pytest.importorskip("distributed")

N = 100  # a 100 x 100 table: 10^4 cells; 99 + 99 indicator columns (partitioned: 99 rows)


def _table(seed: int = 17) -> pd.DataFrame:
    """About 3 counts per cell: row, column, L x L and N(0, 0.4^2) cell effects."""
    rng = np.random.default_rng(seed)
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(N), np.arange(N), indexing="ij"))
    s, t = np.linspace(-1, 1, N)[ii], np.linspace(-1, 1, N)[jj]
    eta = (1.0 + rng.normal(0, 0.3, N)[ii] + rng.normal(0, 0.3, N)[jj] + 0.5 * s * t
           + rng.normal(0, 0.4, ii.size))
    return pd.DataFrame({"row": ii, "col": jj, "count": rng.poisson(np.exp(eta)),
                         "xy": s * t, "cell": np.arange(ii.size)})


@pytest.fixture(scope="module")
def design():
    return gllmm.build_design(_table(), "count ~ C(row) + C(col) + xy + (1 | cell)")


@pytest.fixture(scope="module")
def one_process(design):
    res = gllmm.fit(design)
    assert res.strategy == "cellwise" and res.converged and res.params[-1] > 0.2
    return res


def _assert_same(res, ref) -> None:
    assert res.strategy == "cellwise" and res.converged
    assert abs(res.loglik - ref.loglik) <= 1e-8
    np.testing.assert_allclose(res.params, ref.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.cov, ref.cov, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res.posterior["mean"], ref.posterior["mean"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("partitions", [None, 5, [1, 30, 68]],
                         ids=["two per worker", "5 equal blocks", "uneven 1-30-68"])
def test_distributed_fit_equals_one_process(design, one_process, client, partitions) -> None:
    res = gllmm.fit(design, client=client, partitions=partitions)
    _assert_same(res, one_process)
    for _ in range(50):  # the partitions are released after the fit (asynchronously)
        if not client.who_has():
            break
        time.sleep(0.1)
    assert not client.who_has()


def test_partitions_in_one_process_equal_one_block(design, one_process) -> None:
    _assert_same(gllmm.fit(design, partitions=3), one_process)


def test_smooth_with_client_equals_one_process(client) -> None:
    df = _table(5)
    table = df.pivot(index="row", columns="col", values="count").to_numpy()
    ref = fit_cellwise(table, base="linear_by_linear")
    res = fit_cellwise(table, base="linear_by_linear", client=client, partitions=4)
    assert abs(res.loglik - ref.loglik) <= 1e-8
    assert abs(res.sigma - ref.sigma) <= 1e-8 and abs(res.beta - ref.beta) <= 1e-8
    np.testing.assert_allclose(res.fitted_counts, ref.fitted_counts, rtol=1e-8)


def test_row_partitions_cover_every_cell_once() -> None:
    row = np.array([-1, 0, 0, 1, 2, 3, 3, -1])
    cells = row_partitions(row, 4, [1, 3])
    assert [c.tolist() for c in cells] == [[0, 1, 2, 7], [3, 4, 5, 6]]
    assert [len(c) for c in row_partitions(row, 4, 2)] == [5, 3]


@pytest.mark.parametrize("bad", [0, 100, [50, 48], [0, 99]])
def test_bad_partitions_are_refused(design, bad) -> None:
    with pytest.raises(FitError, match="partitions"):
        gllmm.fit(design, partitions=bad)


def test_client_refused_outside_the_cellwise_strategy(client) -> None:
    df = _table().iloc[:60]
    small = gllmm.build_design(df, "count ~ xy + (1 | row)")
    with pytest.raises(FitError, match="cell-wise strategy only"):
        gllmm.fit(small, client=client)


def test_cli_smooth_on_a_scheduler_equals_one_process(client, tmp_path, capsys) -> None:
    from gllmm.cli import main

    path = tmp_path / "table.csv"
    _table(9).iloc[: 40 * N].to_csv(path, index=False)  # 40 x 100 cells
    argv = ["smooth", str(path), "--row", "row", "--col", "col", "--json"]
    outs = []
    for extra in ([], ["--scheduler", client.scheduler.address, "--partitions", "3"]):
        assert main(argv + extra) == 0
        outs.append(json.loads(capsys.readouterr().out))
    ref, res = outs
    assert abs(res["loglik"] - ref["loglik"]) <= 1e-8
    assert abs(res["random_sd"]["cell"] - ref["random_sd"]["cell"]) <= 1e-8
    np.testing.assert_allclose(pd.DataFrame(res["fitted"])["fitted"],
                               pd.DataFrame(ref["fitted"])["fitted"], rtol=1e-8)


def test_cli_smooth_refuses_an_unreachable_scheduler(tmp_path, capsys, monkeypatch) -> None:
    from gllmm.cli import _smooth, main

    monkeypatch.setattr(_smooth, "CONNECT_TIMEOUT", 1.0)
    path = tmp_path / "table.csv"
    _table(9).iloc[: 4 * N].to_csv(path, index=False)
    code = main(["smooth", str(path), "--row", "row", "--col", "col",
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code != 0
    assert "could not connect to the Dask scheduler" in capsys.readouterr().err


def test_a_worker_killed_mid_fit_costs_a_rescatter_not_the_fit(design, one_process,
                                                              own_client) -> None:
    """SIGKILL to one worker's PID between two Newton iterations of the mixed stage: its
    partitions (scattered data, which Dask cannot recompute) are scattered again to the
    surviving worker and the fit ends equal to the one-process fit (tolerance 1e-8)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = own_client
        pids = own.run(os.getpid)
        victim, pid = sorted(pids.items())[0]
        killed: list[int] = []

        def kill(info: dict) -> None:
            if info["stage"] == "mixed" and info["iteration"] == 2 and not killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        res = gllmm.fit(design, client=own, partitions=4, progress=kill)
        assert killed and victim not in own.scheduler_info()["workers"]
    _assert_same(res, one_process)


def test_stratified_heterogeneous_association_distributed(client) -> None:
    """Strata and a per-stratum beta_k (the blocks' per-stratum slot) across partitions."""
    table, _, _ = stratified_association_table(23)
    ref = fit_cellwise(table, base="linear_by_linear")
    # the partitioned levels are the 87 free (column, stratum) levels
    res = fit_cellwise(table, base="linear_by_linear", client=client, partitions=[10, 40, 37])
    assert abs(res.loglik - ref.loglik) <= 1e-8
    assert np.shape(ref.beta) == (3,)
    np.testing.assert_allclose(res.beta, ref.beta, rtol=0, atol=1e-8)
    assert abs(res.sigma - ref.sigma) <= 1e-8
