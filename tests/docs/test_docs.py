"""The documentation names public paths that exist, and its tutorials run and print what they
show (docs/build.py's check, run here so that CI runs it)."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([*ROOT.glob("docs/*.md"), *ROOT.glob("docs/*/*.md"), ROOT / "README.md"])
PAGES = [p for p in PAGES if "_build" not in p.parts]  # generated, not written
DOTTED = re.compile(r"\bgllmm(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"^\s*from\s+(gllmm(?:\.\w+)*)\s+import\s+\(?([\w\s,]+)\)?", re.M)


def _code(text: str) -> str:
    """Fenced blocks and inline code spans: where the pages name Python objects."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(fenced + inline)


def _names() -> list[tuple[str, str]]:
    out = set()
    for page in PAGES:
        code = _code(page.read_text(encoding="utf-8"))
        for m in DOTTED.finditer(code):
            out.add((page.name, m.group(0)))
        for m in FROM_IMPORT.finditer(code):
            for name in m.group(2).replace("\n", " ").split(","):
                if name.strip():
                    out.add((page.name, f"{m.group(1)}.{name.strip().split()[0]}"))
    return sorted(out)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: k + 1]))
    return obj


NAMES = _names()


def test_pages_name_something():
    # the parser finds the names the pages use (guards against a regex that matches nothing)
    assert len(NAMES) > 20
    assert ("README.md", "gllmm.build_design") in NAMES


@pytest.mark.parametrize(("page", "name"), NAMES)
def test_documented_name_is_public_and_imports(page, name):
    assert not any(p.startswith("_") for p in name.split(".")), f"{page} names private {name}"
    _resolve(name)


def _build_module():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_and_cli_references_build():
    build = _build_module()
    api = build.api_reference()
    assert "*(not importable:" not in api
    assert "### `gllmm.fit(" in api and "gllmm.fitting" in api
    assert "## gllmm fit" in build.cli_reference()


@pytest.mark.parametrize("tutorial", sorted((ROOT / "docs" / "tutorials").glob("*.md")),
                         ids=lambda p: p.name)
def test_tutorial_prints_what_it_shows(tutorial, tmp_path):
    build = _build_module()
    ok, report = build.run_tutorial(tutorial, False, tmp_path)
    assert ok, report
