"""mkdocs hooks: pages generated at build time from the code, so they cannot drift.

- docs/configuration.md: ``<!-- generated: settings -->`` and ``<!-- generated: kafka-defaults -->``
  become tables built from ``waterdrop.config.SETTINGS`` and ``KAFKA_SETTINGS``.
- docs/benchmarks.md: ``<!-- generated: bench-results -->`` becomes bench/RESULTS.md, its
  headings moved one level down.
- ``<!-- docs-test: ... -->`` comments (hidden example setup, see tests/docs/examples.py) are
  removed from every page.

config.py is loaded by path (it imports only the standard library), so building the site does
not need the compiled extension.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _config_module() -> Any:
    name = "_waterdrop_config_for_docs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "src" / "waterdrop" / "config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{value}`"
    if isinstance(value, int):
        return f"`{value:_}`" if abs(value) >= 1_000 else f"`{value}`"
    if isinstance(value, tuple):
        return f"`{list(value)!r}`"
    if isinstance(value, str):
        return f"`\"{value}\"`"
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    config = _config_module()
    rows = ["| setting | default | unit | meaning |", "|---|---|---|---|"]
    # kafka first: it is the one setting every producer needs
    ordered = sorted(config.SETTINGS, key=lambda s: s.name != "kafka")
    for setting in ordered:
        default = setting.shown_default or _literal(setting.default)
        rows.append(
            f"| `{setting.name}` | {_cell(default)} | {setting.unit or ''} | {_cell(setting.meaning)} |"
        )
    return "\n".join(rows)


def kafka_defaults_table() -> str:
    config = _config_module()
    rows = ["| property | default | unit | why |", "|---|---|---|---|"]
    for setting in config.KAFKA_SETTINGS:
        rows.append(
            f"| `{setting.name}` | {_literal(setting.default)} | {setting.unit or ''} "
            f"| {_cell(setting.meaning)} |"
        )
    return "\n".join(rows)


def bench_results() -> str:
    path = ROOT / "bench" / "RESULTS.md"
    if not path.is_file():
        return "*bench/RESULTS.md is not in this checkout.*"
    text = path.read_text(encoding="utf-8")
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    # links relative to bench/ do not resolve on the site: keep the text, name the file
    return _RELATIVE_LINK.sub(lambda m: f"{m[1]} (`bench/{m[2]}`)", "\n".join(out))


_RELATIVE_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?!https?:|mailto:|#)([^)\s]+)\)")

GENERATORS = {
    "settings": settings_table,
    "kafka-defaults": kafka_defaults_table,
    "bench-results": bench_results,
}
_MARK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
# the test conventions of tests/docs (hidden setup blocks, skips): not for readers
_DOCS_TEST = re.compile(r"^[ \t]*<!--[ \t]*docs-test:.*?-->[ \t]*\n?", re.M | re.S)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        return GENERATORS[match.group(1)]()

    return _MARK.sub(replace, _DOCS_TEST.sub("", markdown))
