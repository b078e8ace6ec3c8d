"""Find the Python examples of the documentation pages (README.md and docs/**/*.md).

Conventions, which every page follows (they are also described in docs/contributing-docs.md):

- Every ```python fenced block is an example and is executed, in page order, against a
  librdkafka MockCluster. The examples connect to ``"localhost:9092"``; the runner replaces that
  string with the MockCluster's bootstrap servers before running a block.
- The blocks of one page share one namespace, in order: a later block may use what an earlier
  one defined (``producer``, ``handle``, ...), as a reader following the page would.
- ``<!-- docs-test: hidden`` ... ``-->`` is Python code run at that place of the page and not
  shown on the site (it is an HTML comment): the setup a fragment needs (an ``order_json``, a
  function the example calls), or a call that exercises a hook the example only defines.
- ``<!-- docs-test: skip REASON -->`` right before a block skips that block; REASON is
  mandatory and the test reports every skip.
- Hidden blocks may use ``docs_mock_cluster``, the page's ``waterdrop.testing.MockCluster``, to
  inject faults (a broker refusing a request) that an example then handles.
- ``tests/docs/preludes/<page>.py`` (the page's path with ``/`` as ``__``), if it exists, runs
  before the page's first block, as a hidden block would. It is for pages whose text belongs to
  someone else; a page of our own uses hidden blocks instead.
- ``myapp.kafka.MY_PRODUCER``, the application's producer of the shutdown and framework
  examples, is provided by the runner: a producer connected to the MockCluster. A hidden block
  that closed it (by running a shutdown hook) calls ``docs_new_app_producer()`` to get a new one.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Pages whose content belongs to another document (the CLI page is shell only).
EXCLUDED = {"docs/cli.md"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^[ \t]*<!--[ \t]*docs-test:[ \t]*(?P<kind>[a-z-]+)(?P<rest>.*)$")


@dataclass
class Example:
    page: str  # path relative to the repository root
    line: int  # 1-based line of the first line of code
    kind: str  # "code" (shown and run), "hidden" (run, not shown) or "skip" (shown, not run)
    source: str
    reason: str = ""


def pages() -> list[str]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    names = [str(p.relative_to(ROOT)) for p in found if p.is_file()]
    return [n for n in names if n not in EXCLUDED]


def parse(text: str, page: str) -> list[Example]:
    """Every Python example of one page, with hidden setup blocks and skips, in page order."""
    lines = text.splitlines()
    examples: list[Example] = []
    skip_reason: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        if marker:
            kind, rest = marker["kind"], marker["rest"]
            if kind == "skip":
                reason = rest.split("-->")[0].strip()
                if not reason:
                    raise ValueError(f"{page}:{i + 1}: a docs-test skip needs a reason")
                skip_reason = reason
                i += 1
                continue
            if kind == "hidden":
                body: list[str] = []
                start = i + 2
                i += 1
                while i < len(lines) and "-->" not in lines[i]:
                    body.append(lines[i])
                    i += 1
                examples.append(Example(page, start, "hidden", textwrap.dedent("\n".join(body)) + "\n"))
                i += 1
                continue
            raise ValueError(f"{page}:{i + 1}: unknown docs-test marker {kind!r}")
        fence = _FENCE.match(line)
        if fence:
            indent, mark = fence["indent"], fence["fence"]
            lang = fence["info"].strip().split(" ")[0].lower()
            start = i + 2
            body = []
            i += 1
            while i < len(lines):
                closing = lines[i].strip()
                if closing.startswith(mark) and not closing.strip("`~"):
                    break
                current = lines[i]
                body.append(current[len(indent):] if current.startswith(indent) else current.lstrip())
                i += 1
            i += 1
            if lang in ("python", "py"):
                source = "\n".join(body) + "\n"
                if skip_reason is not None:
                    examples.append(Example(page, start, "skip", source, skip_reason))
                else:
                    examples.append(Example(page, start, "code", source))
            skip_reason = None
            continue
        i += 1
    if skip_reason is not None:
        raise ValueError(f"{page}: a docs-test skip is not followed by a python block")
    return examples


def prelude_path(page: str) -> Path:
    return ROOT / "tests" / "docs" / "preludes" / (page.replace("/", "__").removesuffix(".md") + ".py")


def page_examples(page: str) -> list[Example]:
    return parse((ROOT / page).read_text(encoding="utf-8"), page)
