"""gllmm.report and ``gllmm report``: one self-contained HTML page, rendered in Chromium.

The browser test runs Debian's ``chromium`` headless and reads the DOM after load: the page's
estimates are there and every figure decoded (``<body data-images-loaded>`` counts the images
with a natural width). It is skipped where ``chromium`` is not on PATH.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from gllmm import datasets
from gllmm.cli import main
from gllmm.plot import new_figure
from gllmm.report import Report, fit_report

IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in IMG.findall(page)]


def render(path, tmp_path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--dump-dom", path.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_blocks_self_contained(mba_independence, tmp_path):
    rep = fit_report(mba_independence, "MBA fit", notes=["a note"],
                     figures=[(new_figure(2, 2), "an empty figure")])
    page = rep.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page  # nothing loaded from outside
    assert "Log-likelihood: -45.8562" in page  # the summary
    assert "0.2515" in page  # variance components table
    assert "Observed and fitted counts" in page
    assert [png[:4] for png in images(page)] == [b"\x89PNG"] * 2  # caterpillar + extra
    assert rep.n_figures == 2
    path = rep.write(tmp_path / "fit.html")
    assert "Log-likelihood: -45.8562" in path.read_text(encoding="utf-8")


def test_report_escapes_text():
    rep = Report("<script>alert(1)</script>")
    rep.add_text("a < b & c")
    rep.add_table(pd.DataFrame({"x<y": [-0.0001, 1.23456]}), "t & u")
    page = rep.to_html()
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert "a &lt; b &amp; c" in page and "x&lt;y" in page and "t &amp; u" in page
    assert "-0.0000" not in page and "1.2346" in page


def test_report_command_formula(tmp_path, capsys):
    data = tmp_path / "mba.csv"
    datasets.load("mba").to_csv(data, index=False)
    out = tmp_path / "mba.html"
    code = main(["report", str(data), "--formula",
                 "count ~ C(statistics) + C(economics) + (1 | cell)", "--add-cell",
                 "--heatmap", "statistics", "economics", "-o", str(out), "--json"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"path": str(out), "figures": 2, "bytes": out.stat().st_size}
    page = out.read_text(encoding="utf-8")
    assert "Formula: count ~ C(statistics)" in page and "-45.8562" in page
    assert len(images(page)) == 2


def test_report_example_table4_in_chromium(tmp_path, capsys):
    out = tmp_path / "table4.html"
    assert main(["report", "--example", "table4", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    n_images = len(images(page))
    assert n_images == 3  # shrinkage plot and two caterpillar plots
    dom = render(out, tmp_path)
    assert f'data-images-loaded="{n_images}"' in dom  # every PNG decoded by the browser
    assert "Table 4: center-specific log odds ratios" in dom
    assert "0.5924" in dom and "0.8274" in dom  # beta of the local and global models
    assert "0.3439" in dom and "1.0303" in dom  # their SDs
    assert "Table 5: fitted counts" in dom
    text = re.sub(r"<[^>]+>", " ", dom)
    assert "much_better" in text and "paper_random_local" in text


def test_report_example_table2_in_chromium(tmp_path, capsys):
    out = tmp_path / "table2.html"
    assert main(["report", "--example", "table2", "-o", str(out), "--title", "MBA"]) == 0
    capsys.readouterr()
    dom = render(out, tmp_path)
    assert "<title>MBA</title>" in dom
    assert 'data-images-loaded="2"' in dom  # heatmaps and the caterpillar plot of (2.5)
    assert "0.2515" in dom and "0.4398" in dom and "13.239" in dom
