"""The public API under ``mypy --strict``, and ``_core.pyi`` against the built extension.

Both run against the *installed* waterdrop (like the rest of the suite): mypy and stubtest
start in a temporary directory, so the checkout's ``src/`` is never what they see.

- public_api.py (beside this file) must pass ``mypy --strict``; each
  ``reveal_type(x)  # R: T`` there must reveal exactly ``T``; every name in the ``__all__`` of
  every public module must be imported there and used.
- wrong_calls.py (beside it) holds calls that are wrong: each line marked ``# E: <code>``
  must get mypy errors of exactly those codes (and ``# E: <code>: <text>`` one whose message
  contains <text>); every other line must get none.
- ``stubtest waterdrop._core`` must find ``_core.pyi`` honest. Allowed: what Cython generates
  by itself (stubtest-allowlist.txt), and PEP 800 disjoint bases (every cdef class is one;
  marking them needs a typing_extensions feature that older type checkers don't know).
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
API_FILE = HERE / "public_api.py"
WRONG_FILE = HERE / "wrong_calls.py"
ALLOWLIST = HERE / "stubtest-allowlist.txt"
REVEALED = re.compile(r'^(?P<path>.+?):(?P<line>\d+): note: Revealed type is "(?P<type>.*)"$')
EXPECTED = re.compile(r"#\s*R:\s*(?P<type>.+?)\s*$")
ERROR = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)
WRONG = re.compile(r"#\s*E:\s*(?P<codes>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)(?::\s*(?P<text>.+?))?\s*$")

import mypy  # noqa: F401,E402  (requirements-test.txt; a missing mypy must fail, not skip)


def _norm(t: str | None) -> str | None:
    return None if t is None else t.replace("builtins.", "")


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,  # no config file, no checkout on the search path
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _public_names() -> dict[str, list[str]]:
    import waterdrop

    modules = {"waterdrop": waterdrop}
    for info in pkgutil.walk_packages(waterdrop.__path__, "waterdrop."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules[info.name] = importlib.import_module(info.name)
    return {
        name: sorted(mod.__all__)
        for name, mod in sorted(modules.items())
        if isinstance(getattr(mod, "__all__", None), (list, tuple))
    }


def test_installed_package_is_tested() -> None:
    import waterdrop

    root = Path(__file__).resolve().parents[2]
    assert not Path(waterdrop.__file__).resolve().is_relative_to(root / "src"), (
        "the typing tests check the installed package; src/ is on sys.path"
    )
    assert (Path(waterdrop.__file__).parent / "py.typed").is_file(), "py.typed is not installed"


def test_public_api_file_uses_every_public_name() -> None:
    tree = ast.parse(API_FILE.read_text(encoding="utf-8"))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    covered: set[int] = set()  # id() of every object imported here and used
    imported_unused = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("waterdrop"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                local = alias.asname or alias.name
                if local in used:
                    covered.add(id(getattr(module, alias.name)))
                else:
                    imported_unused.append(f"{node.module}.{alias.name}")
    missing = []
    for module_name, names in _public_names().items():
        module = importlib.import_module(module_name)
        for name in names:
            if id(getattr(module, name)) not in covered:
                missing.append(f"from {module_name} import {name}")
    assert not imported_unused, "imported in public_api.py but never used: " + ", ".join(imported_unused)
    assert not missing, "public names that tests/typing/public_api.py does not use:\n" + "\n".join(missing)


def test_public_api_passes_mypy_strict(tmp_path: Path) -> None:
    res = _run(
        ["-m", "mypy", "--strict", "--no-error-summary", "--show-absolute-path",
         "--cache-dir", str(tmp_path / ".mypy_cache"), str(API_FILE)],
        tmp_path,
    )
    lines = (res.stdout + res.stderr).splitlines()
    errors = [line for line in lines if ": error:" in line]
    assert not errors and res.returncode == 0, "mypy --strict failed:\n" + "\n".join(lines)

    revealed = {}
    for line in lines:
        m = REVEALED.match(line)
        if m and Path(m["path"]).resolve() == API_FILE:
            revealed[int(m["line"])] = m["type"]
    mismatches = []
    expected_count = 0
    for lineno, text in enumerate(API_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        m = EXPECTED.search(text) if text.lstrip().startswith("reveal_type(") else None
        if m is None:
            continue
        expected_count += 1
        got = revealed.get(lineno)
        if _norm(got) != _norm(m["type"]):
            mismatches.append(f"public_api.py:{lineno}: expected {m['type']!r}, mypy revealed {got!r}")
    assert expected_count >= 20, "public_api.py lost its reveal_type checks"
    assert not mismatches, "\n".join(mismatches)


def test_wrong_calls_fail_with_the_expected_errors(tmp_path: Path) -> None:
    res = _run(
        ["-m", "mypy", "--strict", "--no-error-summary", "--show-absolute-path",
         "--show-error-codes", "--cache-dir", str(tmp_path / ".mypy_cache"), str(WRONG_FILE)],
        tmp_path,
    )
    lines = (res.stdout + res.stderr).splitlines()
    got: dict[int, list[tuple[str, str]]] = {}
    for line in lines:
        m = ERROR.match(line)
        if m is None:
            continue
        assert Path(m["path"]).resolve() == WRONG_FILE, "an error outside wrong_calls.py:\n" + line
        got.setdefault(int(m["line"]), []).append((m["code"] or "", m["message"]))
    problems = []
    expected_count = 0
    for lineno, text in enumerate(WRONG_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        m = WRONG.search(text)
        errors = got.pop(lineno, [])
        if m is None:
            continue
        expected_count += 1
        codes = {code.strip() for code in m["codes"].split(",")}
        if not errors:
            problems.append(f"wrong_calls.py:{lineno}: mypy accepted it (expected {sorted(codes)})")
            continue
        if {code for code, _ in errors} != codes:
            problems.append(f"wrong_calls.py:{lineno}: expected {sorted(codes)}, got {errors}")
        elif m["text"] and not any(m["text"] in message for _, message in errors):
            problems.append(f"wrong_calls.py:{lineno}: no message contains {m['text']!r}: {errors}")
    for lineno, errors in sorted(got.items()):
        problems.append(f"wrong_calls.py:{lineno}: unexpected {errors}")
    assert expected_count >= 30, "wrong_calls.py lost its wrong calls"
    assert not problems, "\n".join(problems) + "\n--- mypy ---\n" + "\n".join(lines)


def test_core_stub_matches_the_extension(tmp_path: Path) -> None:
    help_text = _run(["-m", "mypy.stubtest", "--help"], tmp_path).stdout
    args = ["-m", "mypy.stubtest", "waterdrop._core", "--concise", "--allowlist", str(ALLOWLIST)]
    if "--ignore-disjoint-bases" in help_text:
        args.append("--ignore-disjoint-bases")
    res = _run(args, tmp_path)
    assert res.returncode == 0, "stubtest: _core.pyi disagrees with the built _core:\n" + res.stdout + res.stderr


def test_message_type_has_the_fields_the_contract_accepts() -> None:
    from datetime import datetime

    from waterdrop import Message
    from waterdrop._core import check_message

    assert set(Message.__annotations__) == {
        "topic", "payload", "key", "partition", "partition_key", "timestamp", "headers", "label",
    }
    assert Message.__required_keys__ == {"topic", "payload"}
    minimal = {"topic": "orders", "payload": b"{}"}
    for name in Message.__required_keys__:  # each one is one the contract cannot do without
        assert name in check_message({k: v for k, v in minimal.items() if k != name})
    full: Message = {
        "topic": "orders", "payload": b"{}", "key": "k", "partition": 0, "partition_key": b"p",
        "timestamp": datetime(2026, 1, 1), "headers": {"h": ["a", b"b"]}, "label": object(),
    }
    assert check_message(full) == {}
    assert set(check_message({"topic": "orders", "payload": b"{}", "paylod": b""})) == {"paylod"}


def test_tombstone_type_has_the_keys_the_tombstone_methods_require() -> None:
    from waterdrop import Message, Producer, Tombstone
    from waterdrop.errors import MessageInvalidError

    assert set(Tombstone.__annotations__) < set(Message.__annotations__)
    assert Tombstone.__required_keys__ == {"topic", "key", "partition"}
    minimal: Tombstone = {"topic": "orders", "key": "k", "partition": 0}
    assert Producer._tombstone(minimal, {})["payload"] is None
    for name in Tombstone.__required_keys__ - {"topic"}:  # topic: the message contract's
        with pytest.raises(MessageInvalidError) as info:
            Producer._tombstone({k: v for k, v in minimal.items() if k != name}, {})  # type: ignore[arg-type]
        assert name in info.value.errors


def test_settings_type_has_one_key_per_setting() -> None:
    """``Settings`` (the type of ``Producer(**settings)``) is written out for type checkers:
    it must name exactly the settings ``setup()`` accepts."""
    from waterdrop.config import DEFAULTS, Settings

    assert set(Settings.__annotations__) == set(DEFAULTS) | {"oauth"}
    assert not Settings.__required_keys__
    # Config declares the same attributes for type checkers only (under TYPE_CHECKING)
    import waterdrop.config

    tree = ast.parse(Path(waterdrop.config.__file__).read_text(encoding="utf-8"))
    config = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    declared = {
        stmt.target.id
        for node in config.body if isinstance(node, ast.If)
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }
    assert declared == set(Settings.__annotations__)
