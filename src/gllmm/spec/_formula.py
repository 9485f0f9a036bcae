"""Formulas: formulaic for the fixed part, a small parser for lme4-style random terms.

``count ~ factor(a) + factor(b) + I(a * b) + (1 | cell)``: terms in parentheses with a bar are
random: ``(expr | group)`` has a full (unstructured) covariance over the components of ``expr``,
``(expr || group)`` a diagonal one; ``group`` may be an interaction ``a:b`` (nested effects).
Terms with different groupings that share rows are crossed and form one cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecError


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term."""

    expr: str
    group: str
    diagonal: bool = False

    @property
    def label(self) -> str:
        return self.group


@dataclass(frozen=True)
class ParsedFormula:
    response: str | None
    fixed: str
    random: tuple[RandomTerm, ...]


def _split_top_level(text: str, sep: str = "+") -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced parentheses in formula: {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SpecError(f"unbalanced parentheses in formula: {text!r}")
    parts.append("".join(cur).strip())
    return parts


def parse_formula(formula: str) -> ParsedFormula:
    """Split ``lhs ~ rhs`` into response, fixed part and random terms.

    Examples
    --------
    >>> parse_formula("y ~ x + (1 + x | g)").random
    (RandomTerm(expr='1 + x', group='g', diagonal=False),)
    """
    if "~" in formula:
        lhs, rhs = formula.split("~", 1)
        lhs = lhs.strip() or None
    else:
        lhs, rhs = None, formula
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for part in _split_top_level(rhs):
        if not part:
            continue
        m = re.fullmatch(r"\((.*?)(\|\|?)(.*)\)", part, flags=re.S)
        if m and "|" in part:
            expr, bar, group = m.group(1).strip(), m.group(2), m.group(3).strip()
            if not expr or not group:
                raise SpecError(f"random term {part!r} needs an expression and a grouping factor")
            random.append(RandomTerm(expr, group, diagonal=(bar == "||")))
        else:
            fixed_parts.append(part)
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    return ParsedFormula(lhs, fixed, tuple(random))


def formula_columns(expr: str) -> set[str]:
    """Bare variable names used in a formula expression (for error messages)."""
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9.]*", expr))
    return names - {"C", "I", "factor", "np", "log", "exp", "center", "scale", "poly", "cbind"}


def model_matrix(
    expr: str, data: pd.DataFrame, sparse_ok: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Model matrix of a formulaic right-hand side, with a clear error for unknown names.

    Dense, except that with ``sparse_ok`` a large matrix of the common shapes is CSR.

    The common shapes (numeric columns, treatment-coded ``C(a)`` and their products) are built
    directly, with formulaic's columns and names (``_fast_matrix``): formulaic's generality
    costs milliseconds per call, more than a small model's fit.
    """
    import formulaic

    from ._fast_matrix import fast_model_matrix

    fast = fast_model_matrix(expr, data, sparse_ok)
    if fast is not None:
        return fast

    unknown = sorted(n for n in formula_columns(expr) if n not in data.columns
                     and n not in ("1", "0"))
    try:
        mm = formulaic.model_matrix(expr, data, na_action="raise")
    except Exception as exc:  # formulaic raises several types for unknown names
        if unknown:
            raise SpecError(
                f"unknown column(s) {', '.join(unknown)} in formula term {expr!r}; "
                f"available columns: {', '.join(map(str, data.columns))}"
            ) from exc
        raise SpecError(f"cannot build the design for {expr!r}: {exc}") from exc
    mat = np.asarray(mm, dtype=float)
    return mat, tuple(str(c) for c in mm.columns)


def group_codes(data: pd.DataFrame, group: str) -> tuple[np.ndarray, list]:
    """Integer codes (in order of first appearance) and labels of a grouping ``a`` or ``a:b``."""
    cols = [g.strip() for g in group.split(":")]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise SpecError(f"unknown grouping column(s) {', '.join(missing)} in random term "
                        f"'| {group}'; available columns: {', '.join(map(str, data.columns))}")
    if len(cols) == 1:
        key = data[cols[0]]
        codes, labels = pd.factorize(key, sort=False)
        return codes, list(labels)
    tuples = list(zip(*(data[c].to_numpy() for c in cols), strict=True))
    codes, labels = pd.factorize(pd.Series(tuples, dtype=object), sort=False)
    return codes, [":".join(map(str, t)) for t in labels]
