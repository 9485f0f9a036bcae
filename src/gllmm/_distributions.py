"""Normal and chi-square tails and quantiles, with scipy.stats imported at first use.

``scipy.stats`` takes about 0.35 s to import, a third of ``import gllmm``; fitting never needs
it, only p-values, intervals and tests do.
"""

from __future__ import annotations

from typing import Any


def _stats() -> Any:
    from scipy import stats

    return stats


def chi2_sf(x: Any, df: Any) -> Any:
    """Upper tail of the chi-square distribution with ``df`` degrees of freedom."""
    return _stats().chi2.sf(x, df)


def chi2_ppf(q: Any, df: Any) -> Any:
    """Quantile ``q`` of the chi-square distribution with ``df`` degrees of freedom."""
    return _stats().chi2.ppf(q, df)


def norm_sf(x: Any) -> Any:
    """Upper tail of the standard normal distribution."""
    return _stats().norm.sf(x)


def norm_ppf(q: Any) -> Any:
    """Quantile ``q`` of the standard normal distribution."""
    return _stats().norm.ppf(q)
