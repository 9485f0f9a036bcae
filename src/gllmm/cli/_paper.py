"""The paper's printed Tables 2, 4 and 5 (Coull & Agresti 2003), for side-by-side output.

Decoded from the paper and re-computed as described in the project's reference note
(``paper_numbers.md``); the same values are the test fixtures in ``tests/fixtures/paper``.
"""

from __future__ import annotations

import io

import pandas as pd

_TABLE2 = """\
statistics,economics,observed,cellwise_independence,cellwise_linear_by_linear,local_likelihood
2,1,0,0.04,0.5,0.09
2,2,1,0.04,0.28,0.19
2,3,0,0.14,0.48,0.24
2,4,0,0.46,0.52,0.23
2,5,0,0.58,0.18,0.22
2,6,1,0.62,0.04,0.15
2,7,0,0.07,0.0,0.06
3,1,0,0.02,0.09,0.08
3,2,0,0.02,0.08,0.35
3,3,0,0.07,0.21,0.77
3,4,1,0.24,0.35,0.92
3,5,0,0.29,0.19,1.04
3,6,0,0.29,0.07,0.38
3,7,0,0.04,0.0,0.11
4,1,0,0.23,0.31,0.06
4,2,0,0.23,0.42,0.31
4,3,3,1.06,1.74,1.85
4,4,6,3.59,4.51,4.73
4,5,4,3.92,3.82,3.61
4,6,0,3.22,2.08,0.99
4,7,0,0.46,0.12,0.19
5,1,0,0.27,0.08,0.12
5,2,0,0.28,0.16,0.38
5,3,1,1.11,1.04,1.55
5,4,4,3.73,4.18,4.32
5,5,7,5.2,5.5,6.49
5,6,4,4.54,4.65,3.2
5,7,0,0.54,0.41,0.94
6,1,1,0.36,0.02,0.17
6,2,0,0.35,0.05,0.28
6,3,0,1.29,0.51,0.68
6,4,2,4.03,3.19,1.82
6,5,6,5.85,6.52,5.19
6,6,10,7.05,8.56,4.6
6,7,1,0.72,1.15,2.38
7,1,0,0.05,0.0,0.06
7,2,0,0.05,0.0,0.09
7,3,0,0.21,0.03,0.15
7,4,0,0.67,0.25,0.32
7,5,0,0.84,0.79,1.39
7,6,2,0.96,1.6,2.23
7,7,1,0.11,0.33,2.02
"""

_TABLE4 = """\
center,fixed_local,fixed_global,random_local,random_global
1,1.73,2.74,0.93,2.00
2,-1.15,-1.67,0.23,-0.49
3,0.24,0.30,0.49,0.45
4,0.72,0.81,0.62,0.82
5,1.33,2.26,0.81,1.63
6,-0.42,-0.94,0.35,0.00
7,0.95,1.55,0.70,1.25
8,0.69,0.88,0.62,0.86
"""

_TABLE5 = """\
center,treatment,response,observed,local_model,global_model
1,drug,much_better,13,12.1,12.6
1,drug,better,7,5.8,6.2
1,drug,unchanged_or_worse,6,8.0,7.2
1,placebo,much_better,1,1.8,1.4
1,placebo,better,1,2.2,1.8
1,placebo,unchanged_or_worse,10,7.9,8.8
2,drug,much_better,2,3.3,2.8
2,drug,better,5,5.5,5.2
2,drug,unchanged_or_worse,10,8.1,9.0
2,placebo,much_better,2,0.7,1.2
2,placebo,better,2,1.5,1.8
2,placebo,unchanged_or_worse,1,2.8,2.0
3,drug,much_better,11,10.9,10.8
3,drug,better,23,23.9,23.9
3,drug,unchanged_or_worse,7,6.0,6.3
3,placebo,much_better,2,2.0,2.2
3,placebo,better,8,7.1,7.1
3,placebo,unchanged_or_worse,2,3.0,2.7
4,drug,much_better,7,6.3,6.4
4,drug,better,11,12.0,12.0
4,drug,unchanged_or_worse,8,7.5,7.6
4,placebo,much_better,0,0.6,0.6
4,placebo,better,3,2.0,2.0
4,placebo,unchanged_or_worse,2,2.4,2.4
5,drug,much_better,15,14.0,14.3
5,drug,better,3,3.1,3.1
5,drug,unchanged_or_worse,5,5.8,5.6
5,placebo,much_better,1,1.9,1.7
5,placebo,better,1,0.9,0.9
5,placebo,unchanged_or_worse,5,4.1,4.4
6,drug,much_better,13,14.4,14.0
6,drug,better,5,4.0,4.1
6,drug,unchanged_or_worse,5,4.4,4.9
6,placebo,much_better,4,2.5,3.0
6,placebo,better,0,1.0,0.9
6,placebo,unchanged_or_worse,1,1.5,1.1
7,drug,much_better,7,6.7,6.7
7,drug,better,4,3.6,3.9
7,drug,unchanged_or_worse,13,13.5,13.4
7,placebo,much_better,1,1.3,1.3
7,placebo,better,1,1.4,1.1
7,placebo,unchanged_or_worse,11,10.3,11.0
8,drug,much_better,15,15.2,15.3
8,drug,better,9,8.3,8.1
8,drug,unchanged_or_worse,2,2.4,2.6
8,placebo,much_better,3,2.7,2.7
8,placebo,better,2,2.7,2.9
8,placebo,unchanged_or_worse,2,1.5,1.4
"""


def printed(name: str) -> pd.DataFrame:
    """The printed table ``"table2"``, ``"table4"`` or ``"table5"`` as a data frame."""
    text = {"table2": _TABLE2, "table4": _TABLE4, "table5": _TABLE5}[name]
    return pd.read_csv(io.StringIO(text))
