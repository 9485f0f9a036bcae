"""One model through every likelihood strategy that applies: the same log-likelihood.

The strategies (scalar AGQ, product-rule AGQ, sparse Laplace, cell-wise AGQ with block Newton)
evaluate the same approximation of the same integral, so at the optimum their log-likelihoods
agree to the optimisers' tolerance (tested at 1e-8); estimates to 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import gllmm
from gllmm.errors import FitError, SpecError
from gllmm.spec import _fast_matrix

ROOT = Path(__file__).resolve().parents[2]
MBA = ROOT / "src" / "gllmm" / "data" / "mba_statistics_economics.csv"


def _mba() -> pd.DataFrame:
    df = pd.read_csv(MBA).rename(columns={"statistics": "row", "economics": "col"})
    df["xy"] = df["row"] * df["col"]
    df["cell"] = np.arange(len(df))
    return df


def _generated(n_rows: int = 9, n_cols: int = 7, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(n_rows), np.arange(n_cols),
                                             indexing="ij"))
    s, t = np.linspace(-1, 1, n_rows)[ii], np.linspace(-1, 1, n_cols)[jj]
    eta = 1.0 + 0.3 * rng.normal(size=n_rows)[ii] + 0.5 * s * t + rng.normal(0, 0.5, ii.size)
    return pd.DataFrame({"row": ii, "col": jj, "count": rng.poisson(np.exp(eta)),
                         "xy": s * t, "cell": np.arange(ii.size)})


CASES = {
    "mba (2.5)": (_mba, "count ~ C(row) + C(col) + (1 | cell)"),
    "mba (2.6)": (_mba, "count ~ C(row) + C(col) + xy + (1 | cell)"),
    "generated": (_generated, "count ~ C(row) + C(col) + xy + (1 | cell)"),
}


@pytest.mark.filterwarnings("ignore::gllmm.errors.BoundaryWarning")  # MBA (2.6): sigma = 0
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("method", "strategies"), [
    ("agq", ("cellwise", "scalar", "product")),
    ("laplace", ("cellwise", "scalar", "sparse", "product")),
])
def test_every_strategy_gives_the_same_loglik(case: str, method: str, strategies: tuple) -> None:
    data, formula = CASES[case]
    design = gllmm.build_design(data(), formula)
    fits = {s: gllmm.fit(design, method=method, n_nodes=15, strategy=s) for s in strategies}
    ref = fits["scalar"]
    for s, res in fits.items():
        assert res.strategy == s
        assert res.loglik == pytest.approx(ref.loglik, abs=1e-8), s
        np.testing.assert_allclose(res.params, ref.params, atol=1e-5, err_msg=s)
        assert res.converged


def test_cellwise_matches_mba_reference() -> None:
    """Paper (2.5) by AGQ 15 on the MBA table: sigma 0.2515, log-likelihood -45.8562 (the
    values tests/smooth reproduces from the paper's Table 2 fit)."""
    design = gllmm.build_design(_mba(), "count ~ C(row) + C(col) + (1 | cell)")
    res = gllmm.fit(design, method="agq", n_nodes=15, strategy="cellwise")
    assert res.params[-1] == pytest.approx(0.2515, abs=1e-4)
    assert res.loglik == pytest.approx(-45.8562, abs=1e-4)
    se = res.se.to_numpy()
    ref = gllmm.fit(design, method="agq", n_nodes=15, strategy="scalar").se.to_numpy()
    np.testing.assert_allclose(se, ref, rtol=1e-4)  # both from the observed information
    u = res.random_effects().iloc[:, 0].to_numpy()
    u_ref = gllmm.fit(design, method="agq", n_nodes=15).random_effects().iloc[:, 0].to_numpy()
    np.testing.assert_allclose(u, u_ref, atol=1e-5)


def test_formula_path_chooses_cellwise_and_sparse_x(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 indicator columns or more -> the cell-wise strategy; a large X is built sparse with
    the same entries and names as the dense one."""
    df = _generated(20, 16, seed=3)
    formula = "count ~ C(row) + C(col) + xy + (1 | cell)"
    dense = gllmm.build_design(df, formula)
    monkeypatch.setattr(_fast_matrix, "SPARSE_ABOVE", 10)
    sparse = gllmm.build_design(df, formula)
    assert sp.issparse(sparse.x_matrix) and not sp.issparse(dense.x_matrix)
    assert sparse.fixed_names == dense.fixed_names
    np.testing.assert_array_equal(sparse.x_matrix.toarray(), dense.X[:, 0, :])
    a = gllmm.fit(sparse, method="agq", n_nodes=15)
    b = gllmm.fit(dense, method="agq", n_nodes=15, strategy="scalar")
    assert a.strategy == "cellwise" and b.strategy == "scalar"
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.fitted()["fitted"], b.fitted()["fitted"], rtol=1e-5)


def test_strategy_refusals() -> None:
    df = _mba()
    df["g"] = df["row"]
    nested = gllmm.build_design(df, "count ~ C(col) + (1 | g)")
    with pytest.raises(FitError, match="one cell per cluster"):
        gllmm.fit(nested, strategy="cellwise")
    with pytest.raises(FitError, match="unknown strategy"):
        gllmm.fit(nested, strategy="fast")
    with pytest.raises(FitError, match="Laplace"):
        gllmm.fit(nested, method="agq", strategy="sparse")
    assert gllmm.fit(nested, method="laplace").strategy == "scalar"


def test_cellwise_refuses_rank_deficient_x() -> None:
    df = _generated(9, 7)
    df["xy2"] = 2.0 * df["xy"]
    design = gllmm.build_design(df, "count ~ C(row) + C(col) + xy + xy2 + (1 | cell)")
    with pytest.raises(SpecError, match="rank deficient"):
        gllmm.fit(design, strategy="cellwise")
