"""Every Python example of README.md and docs/ passes ``mypy --strict`` against the installed
waterdrop, as a reader would paste it into a strictly typed project.

The examples are found as tests/docs finds them (tests/docs/examples.py: its conventions, hidden
blocks and preludes). The blocks of a page, hidden ones included, are one module, in page order
(a later block uses what an earlier one defined, as on the page); an error is reported at its
line of the page. What a page cannot say to mypy, and is allowed here:

- a block the docs runner runs as a coroutine (top-level ``await``, ``async with``, ``async
  for``, as in an asyncio REPL) may use them outside a function;
- a name may be defined again further down the page (the page shows another version of a
  function, or a new producer): ``--allow-redefinition`` for variables; a function or class
  defined again is checked as a new one (the earlier one and the uses of it before the new
  definition are renamed ``name__1``... in the module mypy reads);
- ``myapp.kafka`` (the application's module of the framework examples) is a stub whose
  ``MY_PRODUCER`` is a ``waterdrop.Producer``, as the docs runner provides it;
  ``docs_mock_cluster`` and ``docs_new_app_producer`` (for hidden blocks) are declared;
- a third-party module without types (Django, Celery, uWSGI) is ``Any``: missing imports are
  ignored for every module but waterdrop's, and so subclassing or decorating with such an
  ``Any`` is allowed (Celery's ``@app.task``). Every waterdrop import must resolve, and
  waterdrop's own decorator (``@monitor.subscribe(...)``) is typed: public_api.py checks it
  under plain ``--strict``.

A ``<!-- docs-test: skip REASON -->`` block is not run, but it is still type-checked.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.examples import Example, page_examples, pages, prelude_path

import mypy  # noqa: F401,E402  (requirements-test.txt; a missing mypy must fail, not skip)

HEADER = '''\
from collections.abc import Callable
from waterdrop.testing import MockCluster
docs_mock_cluster: MockCluster
docs_new_app_producer: Callable[[], None]
'''
MYAPP_KAFKA = '''\
from waterdrop import Producer
MY_PRODUCER: Producer
'''
CONFIG = '''\
[mypy]
strict = True
allow_redefinition = True
disable_error_code = top-level-await
ignore_missing_imports = True
allow_subclassing_any = True
allow_untyped_decorators = True


[mypy-waterdrop.*]
ignore_missing_imports = False
'''
#: what mypy says of a top-level ``async with`` / ``async for`` (the ``await`` is disabled)
TOP_LEVEL_ASYNC = re.compile(r'^"async (with|for)" outside async function$')
ERROR = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$")


@dataclass
class Module:
    name: str
    text: str
    origin: list[tuple[str, int, bool]]  # per generated line: (page, line, in a coroutine block)


def _is_coroutine(source: str) -> bool:
    try:
        code = compile(source, "<example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:
        return False
    return bool(code.co_flags & inspect.CO_COROUTINE)


def _versions(text: str) -> str:
    """Rename the earlier definitions of a top-level function or class that the page defines
    again, and the names that refer to them before the next definition."""
    tree = ast.parse(text)
    defined: dict[str, list[int]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.setdefault(node.name, []).append(node.lineno)
    lines = text.splitlines()
    edits: list[tuple[int, int, str, str]] = []  # (line, column, old, new)
    for name, starts in defined.items():
        if len(starts) < 2:
            continue
        bounds = [*starts, len(lines) + 1]
        for version, (start, end) in enumerate(zip(bounds, bounds[1:-1]), start=1):
            new = f"{name}__{version}"
            column = re.search(rf"\b(def|class)\s+({name})\b", lines[start - 1])
            assert column is not None
            edits.append((start, column.start(2), name, new))
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id == name and start <= node.lineno < end:
                    edits.append((node.lineno, node.col_offset, name, new))
    for line, column, old, new in sorted(set(edits), reverse=True):
        text_line = lines[line - 1]
        assert text_line[column:column + len(old)] == old
        lines[line - 1] = text_line[:column] + new + text_line[column + len(old):]
    return "\n".join(lines) + "\n"


def _module(page: str) -> Module | None:
    examples = page_examples(page)
    if not examples:
        return None
    prelude = prelude_path(page)
    blocks = [(page, example) for example in examples]
    if prelude.is_file():
        where = str(prelude.relative_to(prelude.parents[3]))
        blocks.insert(0, (where, Example(page, 1, "hidden", prelude.read_text(encoding="utf-8"))))
    lines: list[str] = HEADER.splitlines()
    origin: list[tuple[str, int, bool]] = [("(header)", i + 1, False) for i in range(len(lines))]
    for where, example in blocks:
        coroutine = _is_coroutine(example.source)
        for offset, text in enumerate(example.source.splitlines()):
            lines.append(text)
            origin.append((where, example.line + offset, coroutine))
    name = "docs_" + re.sub(r"\W", "_", page.removesuffix(".md"))
    return Module(name, _versions("\n".join(lines) + "\n"), origin)


def _modules() -> list[Module]:
    return [m for m in (_module(page) for page in pages()) if m is not None]


def test_every_page_with_examples_is_checked() -> None:
    names = {m.name for m in _modules()}
    assert "docs_README" in names and "docs_docs_variants" in names and "docs_docs_asyncio" in names


def test_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    modules = _modules()
    for module in modules:
        (tmp_path / f"{module.name}.py").write_text(module.text, encoding="utf-8")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "myapp" / "kafka.py").write_text(MYAPP_KAFKA, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text(CONFIG, encoding="utf-8")
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    env.pop("PYTHONPATH", None)
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-error-summary",
         "--show-error-codes", "--cache-dir", str(tmp_path / ".mypy_cache"),
         *(f"{m.name}.py" for m in modules)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    by_file = {f"{m.name}.py": m for m in modules}
    problems = []
    for line in (res.stdout + res.stderr).splitlines():
        m = ERROR.match(line)
        if m is None:
            if ": error:" in line:
                problems.append(line)
            continue
        module = by_file.get(m["file"])
        if module is None:
            problems.append(line)
            continue
        page, page_line, coroutine = module.origin[int(m["line"]) - 1]
        if coroutine and TOP_LEVEL_ASYNC.match(m["message"]):
            continue
        problems.append(f"{page}:{page_line}: {m['message']}  [{m['code']}]")
    assert not problems, "mypy --strict on the documentation's examples:\n" + "\n".join(problems)
    assert res.returncode in (0, 1), res.stderr
