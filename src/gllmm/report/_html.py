"""One self-contained HTML page for fits: text, tables and figures (PNG inlined as base64).

The page loads nothing from outside (no scripts, fonts or style sheets from the network), so it
can be mailed or archived as one file. A few lines of inline script count the figures the
browser decoded into ``<body data-images-loaded="N">``, which the tests read from a headless
browser.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #345; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; font-size: .85em;
      border-radius: 4px; }
table.data { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em 0; }
table.data th, table.data td { border: 1px solid #ccc; padding: .2em .6em; text-align: right; }
table.data th { background: #eef1f5; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
.note { color: #555; font-size: .9em; }
.toc { font-size: .95em; }
.meta { color: #777; font-size: .8em; margin-top: 3em; border-top: 1px solid #ddd; }
div.scroll { max-height: 32em; overflow-y: auto; display: inline-block; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var n = 0;
  for (var i = 0; i < document.images.length; i++) {
    if (document.images[i].complete && document.images[i].naturalWidth > 0) { n++; }
  }
  document.body.setAttribute("data-images-loaded", String(n));
});
"""


@dataclass
class Report:
    """An HTML report assembled from blocks; ``to_html()`` renders, ``write(path)`` saves.

    Blocks are added in reading order: ``add_heading``, ``add_text``, ``add_pre``,
    ``add_table``, ``add_figure``, and ``add_fit`` (a fit's summary, coefficient and
    variance-component tables, fitted table and caterpillar plot).
    """

    title: str
    subtitle: str | None = None
    command: str | None = None
    blocks: list[str] = field(default_factory=list)
    _toc: list[tuple[str, str]] = field(default_factory=list)
    n_figures: int = 0

    def add_heading(self, text: str, level: int = 2) -> Report:
        """A heading; level-2 headings make the page's table of contents."""
        anchor = _anchor(text, len(self._toc))
        if level == 2:
            self._toc.append((anchor, text))
        self.blocks.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')
        return self

    def add_text(self, text: str, css_class: str | None = None) -> Report:
        """Paragraphs of plain text (blank lines separate paragraphs; HTML is escaped)."""
        cls = f' class="{css_class}"' if css_class else ""
        for para in str(text).split("\n\n"):
            if para.strip():
                self.blocks.append(f"<p{cls}>{html.escape(para.strip())}</p>")
        return self

    def add_pre(self, text: str) -> Report:
        """Preformatted text, e.g. ``FitResult.summary()``."""
        self.blocks.append(f"<pre>{html.escape(str(text))}</pre>")
        return self

    def add_table(self, table: pd.DataFrame, caption: str | None = None, digits: int = 4,
                  index: bool = False, max_rows: int = 2000) -> Report:
        """A data frame as an HTML table (floats to ``digits`` decimals, NaN as blank)."""
        df = table
        note = ""
        if len(df) > max_rows:
            note = f'<p class="note">First {max_rows} of {len(df)} rows.</p>'
            df = df.head(max_rows)
        body = df.to_html(index=index, classes="data", border=0, na_rep="",
                          float_format=lambda v: _number(v, digits), escape=True)
        cap = f"<h4>{html.escape(caption)}</h4>" if caption else ""
        wrap = len(df) > 25
        self.blocks.append(cap + ('<div class="scroll">' if wrap else "") + body
                           + ("</div>" if wrap else "") + note)
        return self

    def add_figure(self, figure: Any, caption: str | None = None, dpi: int = 110,
                   alt: str | None = None) -> Report:
        """A matplotlib Figure, inlined as a base64 PNG."""
        from ..plot import figure_to_base64

        data = figure_to_base64(figure, dpi)
        self.n_figures += 1
        label = alt or caption or f"figure {self.n_figures}"
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img alt="{html.escape(label)}" '
                           f'src="data:image/png;base64,{data}">{cap}</figure>')
        return self

    def add_fit(self, result: Any, name: str | None = None, *, caterpillar: bool = True,
                fitted: bool = True, cluster_parameter: str | None = None) -> Report:
        """Summary, coefficient table, variance components, fitted table and EB plot of a fit.

        ``cluster_parameter`` names a fixed effect whose cluster-specific values
        ``beta + u_k`` the caterpillar plot shows (e.g. ``"beta"`` for center log odds ratios).
        """
        title = name or result.design.notes.get("title", "Model fit")
        self.add_heading(title)
        self.add_pre(result.summary())
        self.add_table(result.coefficients().reset_index(names="parameter"),
                       "Fixed effects (Wald 95% intervals)")
        if result.design.n_random:
            self.add_table(result.variance_components(),
                           "Random effects: standard deviations (and correlations), delta-method "
                           "SEs")
        if result.boundary:
            self.add_text("Boundary fit: " + ", ".join(result.boundary) + " estimated as 0; the "
                          "data show no extra variation for that term.", "note")
        if fitted:
            table = result.fitted()
            self.add_table(table.drop(columns=[c for c in table.columns
                                               if str(c).startswith("_")]),
                           "Observed and fitted counts (random effects at their posterior "
                           "modes)", digits=3)
        if caterpillar and result.design.n_random and result.posterior is not None:
            from ..plot import caterpillar_plot

            fig = caterpillar_plot(result, fixed=cluster_parameter,
                                   title=f"{cluster_parameter} by cluster"
                                   if cluster_parameter else None)
            self.add_figure(fig, "Empirical Bayes predictions (posterior modes) with "
                            "mode +- 1.96 posterior SD")
        return self

    def to_html(self) -> str:
        """The page: one HTML document with inline style, script and images."""
        from .. import __version__

        toc = ""
        if len(self._toc) > 1:
            items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>'
                            for a, t in self._toc)
            toc = f'<nav class="toc"><ul>{items}</ul></nav>'
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        cmd = f"<br>Command: <code>{html.escape(self.command)}</code>" if self.command else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"gllmm {__version__}\">\n"
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n"
            f"<script>{_SCRIPT}</script>\n</head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n{sub}\n{toc}\n"
            + "\n".join(self.blocks)
            + f'\n<p class="meta">Generated by gllmm {__version__} on {stamp}.{cmd}</p>\n'
            "</body>\n</html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the page (UTF-8) and return its path."""
        p = Path(path)
        p.write_text(self.to_html(), encoding="utf-8")
        return p


def fit_report(result: Any, title: str | None = None, *, figures: Iterable[Any] = (),
               notes: Iterable[str] = (), command: str | None = None,
               cluster_parameter: str | None = None) -> Report:
    """A report of one fit: its summary and tables, the caterpillar plot and extra figures.

    ``figures`` holds Figures or ``(Figure, caption)`` pairs added after the fit's own blocks.
    """
    rep = Report(title or result.design.notes.get("title", "gllmm fit"), command=command)
    for note in notes:
        rep.add_text(note)
    rep.add_fit(result, "Fit", cluster_parameter=cluster_parameter)
    extra = list(figures)
    if extra:
        rep.add_heading("Figures")
        for item in extra:
            fig, caption = item if isinstance(item, tuple) else (item, None)
            rep.add_figure(fig, caption)
    return rep


def _number(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _anchor(text: str, k: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    return f"s{k}-{slug}" if slug else f"s{k}"
