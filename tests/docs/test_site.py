"""The built site works opened from its files (file://), with no network: every link names a
page's .html file (a link to a directory opens a listing there), the search index is inlined
into a script a file:// page can load (mkdocs-material's offline plugin), and nothing is
fetched from the internet (the search worker's shim is the copy in docs/assets, no web font).

Builds the site as ci/docs does (mkdocs build --strict), into a temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs")
pytest.importorskip("material")
if not (ROOT / "mkdocs.yml").is_file():
    pytest.skip("no mkdocs.yml here (an unpacked sdist carries no docs)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return out


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 30
    return pages


def test_every_internal_link_names_a_file(site):
    for page in _pages(site):
        if page.name == "404.html":
            continue  # only a server shows it, for a path of its own: its links are absolute
        for href in re.findall(r'href="([^"]*)"', page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", href) or href.startswith("#"):
                continue
            target = href.split("#")[0].split("?")[0]
            assert not target.endswith("/"), f"{page.relative_to(site)} links to {href}"
            if target:
                assert (page.parent / target).resolve().is_file(), (page, href)


def test_search_index_is_loadable_without_a_server(site):
    script = site / "search" / "search_index.js"
    assert script.read_text(encoding="utf-8").startswith("var __index = ")


def test_nothing_is_loaded_from_the_internet(site):
    for page in _pages(site):
        html = page.read_text(encoding="utf-8")
        scripts = re.findall(r'<script[^>]*\bsrc="([^"]*)"', html)
        styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]*)"', html)
        remote = [url for url in scripts + styles if re.match(r"(https?:)?//", url)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        assert any(s.endswith("assets/javascripts/iframe-worker.js") for s in scripts), page


def test_the_site_holds_no_build_code(site):
    # docs/hooks.py and the griffe extension build the site; they are not pages of it
    assert sorted(p.name for p in site.rglob("*.py")) == []
