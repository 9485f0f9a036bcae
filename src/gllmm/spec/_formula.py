"""Formulas: formulaic for the fixed part, a small parser for lme4-style random terms.

``count ~ factor(a) + factor(b) + I(a * b) + (1 | cell)``: terms in parentheses with a bar are
random: ``(expr | group)`` has a full (unstructured) covariance over the components of ``expr``,
``(expr || group)`` a diagonal one; ``group`` may be an interaction ``a:b`` (nested effects) or
lme4's ``a/b``, read as ``(expr | a) + (expr | a:b)``. Terms with different groupings that
share rows are crossed and form one cluster.

R idioms are translated before formulaic sees the fixed part: ``factor(x)`` and
``as.factor(x)`` are ``C(x)``, column names with dots (``exposure.time``) are back-quoted,
``^`` inside ``I(...)`` is a power, and ``offset(expr)`` terms are taken out of the fixed part
(their sum is the offset). ``(a + b)^2``, ``a*b``, ``log(x)`` and back-quoted names are
formulaic's own.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..tables._columns import column_values, factorize
from ..tables._validate import check_codes

#: functions a formula or a response / offset / weights expression may call besides
#: formulaic's own (log, exp, C, I, center, scale, poly, ...)
FUNCTIONS = {"sqrt": np.sqrt, "abs": np.abs, "log2": np.log2, "log10": np.log10,
             "log1p": np.log1p, "expm1": np.expm1}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IDENT = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


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
    offsets: tuple[str, ...] = ()


def clean_message(exc: BaseException) -> str:
    """An exception's text without terminal colour codes (formulaic marks errors in colour)."""
    return _ANSI.sub("", str(exc))


def split_top_level(text: str, sep: str = "+") -> list[str]:
    """``text`` split at each ``sep`` outside parentheses and quotes (back-quoted names may
    hold ``sep``, ``(`` and ``)``); raises SpecError on unbalanced parentheses."""
    parts, depth, cur = [], 0, []
    quote = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "`'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced parentheses in formula: {text!r}")
        if ch == sep and depth == 0 and quote is None:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SpecError(f"unbalanced parentheses in formula: {text!r}")
    parts.append("".join(cur).strip())
    return parts


def _nested_groups(group: str) -> list[str]:
    """lme4's ``a/b/c`` -> ``a``, ``a:b``, ``a:b:c``; anything else unchanged."""
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise SpecError(f"grouping {group!r}: '/' needs a factor on each side, as in '(1 | a/b)'")
    return [":".join(parts[: k + 1]) for k in range(len(parts))]


@lru_cache(maxsize=256)  # the result depends on the text alone and is immutable
def parse_formula(formula: str) -> ParsedFormula:
    """Split ``lhs ~ rhs`` into response, fixed part, random terms and offset terms.

    Examples
    --------
    >>> parse_formula("y ~ x + (1 + x | g)").random
    (RandomTerm(expr='1 + x', group='g', diagonal=False),)
    >>> [t.group for t in parse_formula("y ~ x + (1 | a/b)").random]
    ['a', 'a:b']
    >>> parse_formula("y ~ x + offset(log(n))").offsets
    ('log(n)',)
    """
    if not isinstance(formula, str):
        raise SpecError(f"the formula must be a string such as 'count ~ a + (1 | g)', got "
                        f"{type(formula).__name__}")
    if formula.count("~") > 1:
        raise SpecError(f"formula {formula!r} has more than one '~'; write 'response ~ terms'")
    if "~" in formula:
        lhs, rhs = formula.split("~", 1)
        lhs = lhs.strip() or None
    else:
        lhs, rhs = None, formula
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    offsets: list[str] = []
    for part in split_top_level(rhs):
        if not part:
            continue
        m = re.fullmatch(r"\((.*?)(\|\|?)(.*)\)", part, flags=re.S)
        off = re.fullmatch(r"offset\((.*)\)", part, flags=re.S)
        if m and "|" in part:
            expr, bar, group = m.group(1).strip(), m.group(2), m.group(3).strip()
            if not expr or not group:
                raise SpecError(f"random term {part!r} needs an expression and a grouping factor")
            random.extend(RandomTerm(expr, g, diagonal=(bar == "||"))
                          for g in _nested_groups(group))
        elif "|" in part:
            raise SpecError(f"'|' outside parentheses in {part!r}: write a random term as "
                            "'(expr | group)', e.g. '(1 | cell)'")
        elif off:
            if not off.group(1).strip():
                raise SpecError("offset() needs an expression, as in 'offset(log(exposure))'")
            offsets.append(off.group(1).strip())
        else:
            fixed_parts.append(part)
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    return ParsedFormula(lhs, fixed, tuple(random), tuple(offsets))


def expand_dot(fixed: str, columns, response: str | None) -> str:
    """R's ``y ~ .``: the term ``.`` stands for every column the response does not use."""
    dot = re.compile(r"(?<![\w.`])\.(?![\w.])")
    if not dot.search(fixed):
        return fixed
    used = formula_columns(response or "")
    rest = [str(c) if str(c).isidentifier() else f"`{c}`" for c in columns
            if str(c) not in used]
    return dot.sub(lambda _: "(" + " + ".join(rest) + ")", fixed)


def translate(expr: str, columns) -> str:
    """R spellings to formulaic's: ``factor(x)``/``as.factor(x)`` -> ``C(x)``, a column name
    with dots (or other characters Python names lack) back-quoted, ``^`` in ``I()`` -> ``**``."""
    if "." not in expr and "^" not in expr and "factor" not in expr:
        return expr  # nothing to translate: every name without a dot is a Python name
    cols = {str(c) for c in columns}
    out: list[str] = []
    i, n = 0, len(expr)
    in_i: list[int] = []  # paren depths at which an I( opened
    depth = 0
    while i < n:
        ch = expr[i]
        if ch in "`'\"":
            j = expr.find(ch, i + 1)
            j = n - 1 if j < 0 else j
            out.append(expr[i: j + 1])
            i = j + 1
            continue
        m = _IDENT.match(expr, i)
        if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_.")):
            word = m.group(0)
            after = expr[m.end():].lstrip()
            if word in ("factor", "as.factor") and after.startswith("("):
                out.append("C")
            elif word == "I" and after.startswith("("):
                out.append(word)
                in_i.append(depth + 1)
            elif word in cols and not word.isidentifier():
                out.append(f"`{word}`")
            else:
                out.append(word)
            i = m.end()
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if in_i and in_i[-1] == depth:
                in_i.pop()
            depth -= 1
        out.append("**" if ch == "^" and in_i else ch)
        i += 1
    return "".join(out)


def formula_columns(expr: str) -> set[str]:
    """Bare variable names used in a formula expression (for error messages)."""
    expr = re.sub(r"'[^']*'|\"[^\"]*\"", "", expr)
    quoted = set(re.findall(r"`([^`]*)`", expr))
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9.]*", re.sub(r"`[^`]*`", "", expr)))
    return (names | quoted) - {"C", "I", "factor", "as.factor", "np", "log", "exp", "center",
                               "scale", "poly", "cbind", "offset", *FUNCTIONS}


def _unknown_error(expr: str, data: pd.DataFrame, what: str, exc: BaseException) -> SpecError:
    unknown = sorted(n for n in formula_columns(expr) if n not in data.columns)
    if unknown:
        return SpecError(f"unknown column(s) {', '.join(unknown)} in {what} {expr!r}; "
                         f"available columns: {', '.join(map(str, data.columns))}")
    return SpecError(f"cannot evaluate {what} {expr!r}: {clean_message(exc)}")


def evaluate(expr: str, data: pd.DataFrame, what: str = "expression") -> np.ndarray:
    """The values of a column or an expression of columns (``size - incidence``,
    ``log(Holders)``, ``Admit == 'Admitted'``), one per row."""
    expr = expr.strip()
    bare = expr[1:-1] if expr.startswith("`") and expr.endswith("`") else expr
    if bare in data.columns:
        values = column_values(data, bare)
        return values if isinstance(values, np.ndarray) else values.to_numpy()
    try:
        with np.errstate(all="ignore"):  # log(0) and the like: the caller checks the values
            out = data.eval(translate(expr, data.columns), engine="python",
                            local_dict=FUNCTIONS)
    except Exception as exc:  # pandas raises several types for unknown names and syntax
        raise _unknown_error(expr, data, what, exc) from exc
    out = np.asarray(out)
    if out.ndim == 0:
        out = np.full(len(data), out[()])
    return out


def model_matrix(
    expr: str, data: pd.DataFrame, sparse_ok: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Model matrix of a formulaic right-hand side, with a clear error for unknown names.

    Dense, except that with ``sparse_ok`` a large matrix of the common shapes is CSR.

    The common shapes (numeric columns, treatment-coded ``C(a)`` and their products) are built
    directly, with formulaic's columns and names (``_fast_matrix``): formulaic's generality
    costs milliseconds per call, more than a small model's fit.
    """
    from ._fast_matrix import fast_model_matrix

    expr = translate(expr, data.columns)
    fast = fast_model_matrix(expr, data, sparse_ok)
    if fast is not None:
        return fast
    mm = _formulaic_matrix(expr, data)
    return np.asarray(mm, dtype=float), tuple(str(c) for c in mm.columns)


def _formulaic_matrix(expr: str, data: pd.DataFrame):
    import formulaic

    try:
        return formulaic.model_matrix(expr, data, na_action="raise", context=FUNCTIONS)
    except Exception as exc:  # formulaic raises several types for unknown names and syntax
        raise _unknown_error(expr, data, "formula term", exc) from exc


def new_model_matrix(expr: str, data: pd.DataFrame, newdata: pd.DataFrame) -> tuple[
        np.ndarray, tuple[str, ...]]:
    """The model matrix of ``expr`` on ``newdata`` coded as on ``data`` (the same factor levels
    and the same state of ``center``/``scale``/``poly``): the rows of a prediction.

    A level of a fixed-effect factor that ``data`` lacks has no coefficient: SpecError.
    """
    expr = translate(expr, data.columns)
    spec = _formulaic_matrix(expr, data).model_spec
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            mm = spec.get_model_matrix(newdata, context=FUNCTIONS)
        except Exception as exc:
            if "categories outside" in str(exc):
                seen = re.search(r"\{.*?\}", str(exc))
                raise SpecError(f"the new data have factor levels the fitted data lack in "
                                f"{expr!r} ({seen.group(0) if seen else 'unseen levels'}): a "
                                "fixed effect has no estimate for them; predict only levels "
                                "seen in the fit") from exc
            raise _unknown_error(expr, newdata, "formula term", exc) from exc
    return np.asarray(mm, dtype=float), tuple(str(c) for c in mm.columns)


def group_codes(data: pd.DataFrame, group: str) -> tuple[np.ndarray, list]:
    """Integer codes (in order of first appearance) and labels of a grouping ``a`` or ``a:b``;
    SpecError naming a grouping column with missing or blank values (``check_codes``)."""
    cols = group_columns(data, group)
    values = [column_values(data, c) for c in cols]
    codes, labels = factorize(values[0])
    check_codes(codes, labels, cols[0])
    if len(cols) == 1:
        return codes, labels
    for col, v in zip(cols[1:], values[1:], strict=True):
        # pairs (group so far, level) numbered in order of first appearance: the groups of
        # the columns' combinations, in O(rows) integers (no tuples of values)
        more, levels = factorize(v)
        check_codes(more, levels, col)
        codes = factorize(codes * len(levels) + more)[0]
    first = first_rows(codes)
    arrays = [v if isinstance(v, np.ndarray) else v.to_numpy() for v in values]
    return codes, [":".join(map(str, t)) for t in zip(*(a[first] for a in arrays), strict=True)]


def first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each group, for codes numbered in order of first appearance: a row
    starts a new group exactly where the running maximum of the codes grows."""
    top = np.maximum.accumulate(codes)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    np.greater(top[1:], top[:-1], out=new[1:])
    return np.flatnonzero(new)


def group_columns(data: pd.DataFrame, group: str) -> list[str]:
    """The columns of a grouping ``a`` or ``a:b`` (back-quoted names allowed)."""
    cols = [g.strip().strip("`") for g in group.split(":")]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise SpecError(f"unknown grouping column(s) {', '.join(missing)} in random term "
                        f"'| {group}'; available columns: {', '.join(map(str, data.columns))}")
    return cols


def group_labels(data: pd.DataFrame, group: str) -> list[str]:
    """Each row's group as text (``"3"``, ``"3:7"``), to match groups across data sets."""
    cols = group_columns(data, group)
    values = [data[c].astype(str).to_numpy() for c in cols]
    return [":".join(t) for t in zip(*values, strict=True)]
