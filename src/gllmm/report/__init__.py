"""Self-contained HTML reports of fits (``gllmm report``).

``fit_report(result)`` returns a :class:`Report` with the fit's summary, coefficient and
variance tables, fitted table and caterpillar plot; ``Report`` assembles any page from
headings, text, tables and matplotlib figures (inlined as base64 PNG); ``example_report(name)``
builds the page of one of the paper's examples.
"""

from ._examples import example_report
from ._html import Report, fit_report

__all__ = ["Report", "example_report", "fit_report"]
