"""Every Python example of README.md and docs/ runs against librdkafka's MockCluster.

One subprocess per page (a fresh interpreter, a fresh MockCluster, a timeout); the blocks of a
page run in order in one namespace. Conventions for hidden setup and skips: see examples.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.docs.examples import ROOT, page_examples, pages

RUNNER = ROOT / "tests" / "docs" / "run_page.py"
PAGES = [page for page in pages() if any(e.kind != "hidden" for e in page_examples(page))]

#: filled by the tests, printed by conftest.py's terminal summary
SUMMARY: dict[str, dict] = {}


def test_pages_are_found():
    assert "README.md" in PAGES
    assert "docs/usage.md" in PAGES
    assert "docs/cli.md" not in PAGES


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    completed = subprocess.run(
        [sys.executable, str(RUNNER), page],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = [l for l in completed.stdout.splitlines() if l.startswith("DOCS-TEST-RESULT ")]
    assert lines, f"{page}: the runner ended without a result\n{completed.stdout}\n{completed.stderr}"
    result = json.loads(lines[-1][len("DOCS-TEST-RESULT "):])
    SUMMARY[page] = result
    failure = result["failure"]
    assert failure is None, (
        f"{page}:{failure['line']} ({failure['kind']} block) failed:\n{failure['error']}\n"
        f"--- output ---\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    assert result["run"] > 0
    assert completed.returncode == 0, completed.stderr[-3000:]
