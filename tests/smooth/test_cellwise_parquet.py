"""Cell-wise smoothing from partitioned input (Parquet files, a Dask DataFrame) equals the fit of
the same table in memory (issue 17).

The reference is ``fit_cellwise`` on the dense table (block Newton with the direct block
solve); the partitioned fit lists only the non-zero cells, generates the zeros per partition and
solves its Newton steps by conjugate gradients, so the two agree at the optimum up to rounding
and the convergence tolerance: 1e-8 in the log-likelihood and every estimate and SE, 1e-8
relative in the smoothed counts read back from the written files.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import stratified_association_table

from gllmm.errors import InfiniteEstimateWarning, SpecError, TableError
from gllmm.smooth import fit_cellwise

pytest.importorskip("pyarrow")

N = 100  # a 100 x 100 table: 10^4 cells, about 3 counts per cell, 5 % zeros


def _table(n_rows: int = N, n_cols: int = N, seed: int = 17) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s, t = np.linspace(-1, 1, n_rows), np.linspace(-1, 1, n_cols)
    eta = (1.0 + rng.normal(0, 0.3, (n_rows, 1)) + rng.normal(0, 0.3, (1, n_cols))
           + 0.5 * np.outer(s, t) + rng.normal(0, 0.4, (n_rows, n_cols)))
    return rng.poisson(np.exp(eta)).astype(float)


def _nonzero_frame(table: np.ndarray, seed: int = 3) -> pd.DataFrame:
    """The non-zero cells in shuffled order (labels 1..I, 1..J: the default scores of the
    array path)."""
    ii, jj = np.nonzero(table)
    df = pd.DataFrame({"row": ii + 1, "col": jj + 1, "count": table[ii, jj]})
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _write(df: pd.DataFrame, directory, n_files: int) -> None:
    directory.mkdir()
    for k, idx in enumerate(np.array_split(np.arange(len(df)), n_files)):
        df.iloc[idx].to_parquet(directory / f"piece-{k}.parquet", index=False)


def _assert_same(res, ref) -> None:
    assert res.converged and ref.converged
    assert abs(res.loglik - ref.loglik) <= 1e-8
    assert abs(res.loglik_sigma0 - ref.loglik_sigma0) <= 1e-8
    assert abs(res.sigma - ref.sigma) <= 1e-8 and abs(res.sigma_se - ref.sigma_se) <= 1e-8
    if ref.beta is None:
        assert res.beta is None and res.beta_se is None
    else:
        np.testing.assert_allclose(res.beta, ref.beta, rtol=0, atol=1e-8)
        np.testing.assert_allclose(res.beta_se, ref.beta_se, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.alpha, ref.alpha, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.row_effects, ref.row_effects, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.col_effects, ref.col_effects, rtol=0, atol=1e-8)


def _read(files: list[str], keys: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in files]).sort_values(keys).reset_index(
        drop=True)


@pytest.fixture(scope="module")
def table():
    return _table()


@pytest.fixture(scope="module")
def reference(table):
    return fit_cellwise(table, base="linear_by_linear")


@pytest.mark.parametrize(("n_files", "partitions"), [(1, None), (4, 5), (7, [1, 30, 69])],
                         ids=["1 file, two per worker", "4 files, 5 blocks",
                              "7 files, uneven 1-30-69"])
def test_parquet_on_a_cluster_equals_the_in_memory_fit(table, reference, client, tmp_path,
                                                         n_files, partitions) -> None:
    src = tmp_path / "cells"
    _write(_nonzero_frame(table, seed=n_files), src, n_files)
    res = fit_cellwise(str(src), base="linear_by_linear", client=client,
                       partitions=partitions)
    _assert_same(res, reference)
    n_parts = 4 if partitions is None else (5 if partitions == 5 else 3)
    assert len(res.output_files) == n_parts
    assert all(f.startswith(str(tmp_path / "cells_smoothed")) for f in res.output_files)
    out = _read(res.output_files, ["row", "col"])
    assert len(out) == N * N  # every cell once, the zeros included
    np.testing.assert_array_equal(out["count"].to_numpy(), table.ravel())
    np.testing.assert_allclose(out["fitted"].to_numpy(), reference.fitted_counts.ravel(),
                               rtol=1e-8)
    np.testing.assert_allclose(out["probability"].to_numpy(),
                               reference.probabilities().ravel(), rtol=1e-8)
    np.testing.assert_allclose(out["posterior_mode"].to_numpy(),
                               reference.posterior_mode.ravel(), rtol=0, atol=1e-8)


def test_dask_dataframe_input_independence(client, tmp_path) -> None:
    dd = pytest.importorskip("dask.dataframe")
    table = _table(40, 60, seed=5)
    ref = fit_cellwise(table)
    ddf = dd.from_pandas(_nonzero_frame(table), npartitions=3)
    res = fit_cellwise(ddf, client=client, output=tmp_path / "out", partitions=2)
    _assert_same(res, ref)
    out = _read(res.output_files, ["row", "col"])
    np.testing.assert_allclose(out["fitted"].to_numpy(), ref.fitted_counts.ravel(), rtol=1e-8)


def test_stratified_parquet_in_this_process_equals_the_array_fit(tmp_path) -> None:
    """Strata, string labels, a per-stratum beta_k and an empty row (dropped, warned)."""
    table, s, t = stratified_association_table(23)
    table[4, :, 1] = 0.0  # row 4 of stratum 1 has no counts
    with pytest.warns(InfiniteEstimateWarning):
        ref = fit_cellwise(table, s, t, base="linear_by_linear")
    ii, jj, kk = np.nonzero(table)
    df = pd.DataFrame({"r": [f"r{i:02d}" for i in ii], "c": [f"c{j:02d}" for j in jj],
                       "n": table[ii, jj, kk], "k": np.array(["a", "b", "c"])[kk]})
    _write(df.sample(frac=1.0, random_state=1), tmp_path / "cells", 3)
    with pytest.warns(InfiniteEstimateWarning, match="r04"):
        res = fit_cellwise(tmp_path / "cells", s, t, base="linear_by_linear",
                           columns=("r", "c", "n", "k"), partitions=4)
    _assert_same(res, ref)
    assert res.association == ref.association == "heterogeneous"
    out = _read(res.output_files, ["k", "r", "c"])
    assert len(out) == 20 * 30 * 3 - 30  # the empty row's cells are left out
    fitted = ref.fitted_counts.transpose(2, 0, 1).ravel()
    np.testing.assert_allclose(out["fitted"].to_numpy(), fitted[fitted > 0], rtol=1e-8)
    np.testing.assert_allclose(out.groupby("k")["probability"].sum(), 1.0, rtol=1e-12)


def test_laplace_from_one_parquet_file(tmp_path) -> None:
    table = _table(30, 20, seed=2)
    ref = fit_cellwise(table, n_nodes=1)
    path = tmp_path / "cells.parquet"
    _nonzero_frame(table).to_parquet(path)
    res = fit_cellwise(path, n_nodes=1, output=tmp_path / "smoothed")
    _assert_same(res, ref)
    assert res.method == "laplace"
    with pytest.raises(SpecError, match="output files"):
        res.fitted()


def test_bad_partitioned_input_is_a_gllmm_error(tmp_path) -> None:
    with pytest.raises(TableError, match="no \\*.parquet"):
        fit_cellwise(tmp_path)
    with pytest.raises(TableError, match="does not exist"):
        fit_cellwise(tmp_path / "nothing.parquet")
    df = _nonzero_frame(_table(10, 10))
    df.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(TableError, match="cannot read columns"):
        fit_cellwise(tmp_path / "a.parquet", columns=("row", "column", "count"))
    pd.concat([df, df.iloc[:1]]).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(TableError, match="more than once"):
        fit_cellwise(tmp_path / "a.parquet")
    df.assign(count=-df["count"]).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(TableError, match="non-negative"):
        fit_cellwise(tmp_path / "a.parquet")
    with pytest.raises(SpecError, match="in-memory table only"):
        fit_cellwise(tmp_path / "a.parquet", base="linear_by_linear", association="random")


def _pieces(directory, *frames) -> None:
    directory.mkdir()
    for k, f in enumerate(frames):
        f.to_parquet(directory / f"p{k}.parquet", index=False)


@pytest.mark.parametrize(("change", "needle"), [
    (lambda b: b.assign(count=-b["count"]), "non-negative whole numbers.*first: -"),
    (lambda b: b.assign(count=np.r_[np.nan, b["count"].to_numpy()[1:]]), "first: nan"),
    (lambda b: b.assign(count=b["count"] + 0.5), "whole numbers.*first: 1?[0-9].5"),
    (lambda b: b.assign(count=["x"] * len(b)), "'count' is not numeric"),
    (lambda b: b.drop(columns="col"), r"cannot read columns \['col'\].*pass columns="),
    (lambda b: b.assign(row=np.r_[np.nan, b["row"].to_numpy()[1:]]), "'row' has missing"),
    (lambda b: pd.concat([b, b.iloc[:1]]), r"1 cell\(s\) more than once \(first: row"),
], ids=["negative", "NaN", "non-integer", "text counts", "missing column", "missing label",
        "duplicate in one file"])
def test_a_bad_file_of_a_directory_is_a_table_error(tmp_path, change, needle) -> None:
    """The bad second file of a directory is refused, naming the file (or cell) and the fix."""
    df = _nonzero_frame(_table(8, 6))
    _pieces(tmp_path / "cells", df.iloc[:20], change(df.iloc[20:].reset_index(drop=True)))
    with pytest.raises(TableError, match=needle):
        fit_cellwise(tmp_path / "cells")


def test_a_cell_listed_in_two_files_is_a_table_error(tmp_path) -> None:
    df = _nonzero_frame(_table(8, 6))
    _pieces(tmp_path / "cells", df, df.iloc[3:4])
    r, c = df.iloc[3][["row", "col"]].astype(int)
    with pytest.raises(TableError, match=f"first: row {r}, column {c}.*list each cell once"):
        fit_cellwise(tmp_path / "cells")


def test_an_empty_directory_is_a_table_error(tmp_path) -> None:
    (tmp_path / "cells").mkdir()
    with pytest.raises(TableError, match="holds no \\*.parquet files"):
        fit_cellwise(tmp_path / "cells")


def test_an_all_zero_row_is_flagged_as_in_memory(tmp_path) -> None:
    """A row of zeros listed (as zero cells) is warned and its effect -inf, as the array fit;
    a row no file lists is not a level of the table (documented): the fit is the array fit of
    the table without it (tolerance 1e-8)."""
    table = _table(8, 6)
    table[2] = 0.0
    with pytest.warns(InfiniteEstimateWarning, match="rows 2"):
        ref = fit_cellwise(table)
    ii, jj = np.nonzero(table)
    df = pd.DataFrame({"row": ii + 1, "col": jj + 1, "count": table[ii, jj]})
    zeros = pd.DataFrame({"row": 3, "col": [1], "count": [0.0]})
    _pieces(tmp_path / "listed", df, zeros)
    with pytest.warns(InfiniteEstimateWarning, match="row 3 have no counts"):
        res = fit_cellwise(tmp_path / "listed")
    assert res.row_effects[2] == -np.inf
    np.testing.assert_allclose(res.row_effects, ref.row_effects, rtol=0, atol=1e-8)
    assert abs(res.loglik - ref.loglik) <= 1e-8
    _pieces(tmp_path / "absent", df)
    res = fit_cellwise(tmp_path / "absent")
    drop = fit_cellwise(np.delete(table, 2, axis=0))
    np.testing.assert_allclose(res.row_effects, drop.row_effects, rtol=0, atol=1e-8)
    assert abs(res.loglik - drop.loglik) <= 1e-8


def test_cli_smooth_a_parquet_directory_on_a_scheduler(client, tmp_path, capsys) -> None:
    import json

    from gllmm.cli import main

    table = _table(40, 30, seed=9)
    ref = fit_cellwise(table, base="linear_by_linear")
    _write(_nonzero_frame(table), tmp_path / "cells", 2)
    argv = ["smooth", str(tmp_path / "cells"), "--row", "row", "--col", "col", "--json",
            "--base", "linear_by_linear", "--scheduler", client.scheduler.address,
            "--partitions", "3", "--progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert abs(out["loglik"] - ref.loglik) <= 1e-8 and abs(out["beta"] - ref.beta) <= 1e-8
    assert "mixed iteration" in captured.err  # one progress line per Newton iteration
    files = sorted((tmp_path / "cells_smoothed").glob("part-*.parquet"))
    assert len(files) == 3 == len(out["output_files"])
    got = _read([str(f) for f in files], ["row", "col"])
    np.testing.assert_allclose(got["fitted"].to_numpy(), ref.fitted_counts.ravel(), rtol=1e-8)
    assert main(argv[:7] + ["--compare"]) != 0
    assert "not available for a directory input" in capsys.readouterr().err


def test_a_worker_killed_mid_fit_costs_a_recomputation(table, reference, tmp_path,
                                                       own_client) -> None:
    """SIGKILL to one worker's PID in the mixed stage: Dask recomputes its partitions from the
    files on the other worker; the fit ends equal to the in-memory fit (tolerance 1e-8)."""
    import os
    import signal

    _write(_nonzero_frame(table), tmp_path / "cells", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = own_client
        victim, pid = sorted(own.run(os.getpid).items())[0]
        killed: list[int] = []

        def kill(info: dict) -> None:
            if info["stage"] == "mixed" and info["iteration"] == 2 and not killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        res = fit_cellwise(tmp_path / "cells", base="linear_by_linear", client=own,
                           partitions=4, progress=kill)
        assert killed and victim not in own.scheduler_info()["workers"]
    _assert_same(res, reference)
    assert len(_read(res.output_files, ["row", "col"])) == N * N


def test_a_partition_copy_without_its_weights_recomputes_them() -> None:
    """Dask may move a partition (a copy holding older state) or rebuild it: A v from a fresh
    copy equals A v from the partition that stored the weights (exactly), for the unit
    weights of the least squares and for an evaluation's second derivatives."""
    from gllmm.fitting._cellwise_iterative import (
        part_hessian_vector,
        part_reduced,
        part_unit_weights,
    )
    from gllmm.smooth._cellwise_parquet import (
        Piece,
        build_part,
        level_model,
        merge_margins,
        piece_margins,
        split_piece,
        start_values,
    )

    rng = np.random.default_rng(0)
    y = rng.poisson(2.0, (20, 30)).astype(float)
    ii, jj = np.nonzero(y)
    piece = Piece(ii, jj, y[ii, jj], None)
    model = level_model(merge_margins([piece_margins(piece)], False), "linear_by_linear",
                        "heterogeneous", np.arange(20.0), np.arange(30.0))
    bounds = np.array([0, model.mixed.n_rows])

    def part():  # noqa: ANN202
        return build_part(0, 0, model.mixed.n_rows, model,
                          split_piece(piece, model, bounds)[:1], 5, 8192)

    held = part()
    v = rng.normal(size=model.glm.n_params)
    part_unit_weights(held, "glm", 7)
    np.testing.assert_array_equal(part_hessian_vector(part(), "glm", None, 7, v),
                                  part_hessian_vector(held, "glm", None, 7, v))
    p = np.r_[start_values(model), 0.5]
    w = rng.normal(size=p.size)
    part_reduced(held, "mixed", p, 2, 8)
    np.testing.assert_array_equal(part_hessian_vector(part(), "mixed", p, 8, w),
                                  part_hessian_vector(held, "mixed", p, 8, w))
