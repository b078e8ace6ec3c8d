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
PAGE_TIMEOUT = 60  # seconds for all the examples of one page
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
    try:
        completed = subprocess.run(
            [sys.executable, str(RUNNER), page],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        started = [l for l in stderr.splitlines() if l.startswith("DOCS-TEST-BLOCK ")]
        pytest.fail(
            f"{page}: still running after {PAGE_TIMEOUT} s, in "
            f"{started[-1][len('DOCS-TEST-BLOCK '):] if started else 'start-up'}\n{stderr[-3000:]}"
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


def test_the_conventions_are_parsed():
    from tests.docs.examples import parse

    page = "\n".join([
        "# Title",
        "```python",
        "a = 1",
        "```",
        "<!-- docs-test: hidden",
        "b = a + 1",
        "-->",
        "- an item:",
        "",
        "  ```python",
        "  if b:",
        "      c = b",
        "  ```",
        "<!-- docs-test: skip needs a real cluster of 5 brokers -->",
        "```python",
        "unreachable()",
        "```",
        "```sh",
        "pip install .",
        "```",
        "````text",
        "```python",
        "shown_as_text()",
        "```",
        "````",
    ])
    examples = parse(page, "page.md")
    assert [(e.kind, e.line) for e in examples] == [
        ("code", 3), ("hidden", 6), ("code", 11), ("skip", 16)
    ]
    assert examples[2].source == "if b:\n    c = b\n"
    assert examples[3].reason == "needs a real cluster of 5 brokers"


def test_a_skip_needs_a_reason():
    from tests.docs.examples import parse

    with pytest.raises(ValueError, match="needs a reason"):
        parse("<!-- docs-test: skip -->\n```python\nx = 1\n```\n", "page.md")
