"""The command line loads the benchmark harness (``waterdrop._bench``) only when ``bench``
runs: ``import waterdrop.cli`` and every other command leave it unimported, and plain ``bench``
(without ``--compare``) loads only its statistics module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

# Runs the command in a fresh interpreter, then prints its exit code and the harness modules
# that were imported, as one JSON line (the last on stdout).
_PROBE = """
import json, sys
from waterdrop.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules
                if m == "waterdrop._bench" or m.startswith("waterdrop._bench."))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _probe(args: list[str], input: bytes = b"") -> dict[str, object]:
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], input=input,
                          capture_output=True, timeout=100, env=env)
    lines = proc.stdout.decode().strip().splitlines()
    assert lines, proc.stderr.decode()
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def test_importing_the_cli_leaves_the_harness_alone():
    code = ("import sys, waterdrop.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('waterdrop._bench')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["produce", "--help"],
                                  ["bench", "--help"]])
def test_help_and_version_leave_the_harness_alone(args):
    assert _probe(args) == {"code": 0, "loaded": []}


def test_produce_leaves_the_harness_alone():
    result = _probe(["produce", "-t", "lazy-import", "--json"], input=b"one\ntwo\n")
    assert result == {"code": 0, "loaded": []}


def test_plain_bench_loads_only_the_statistics():
    result = _probe(["bench", "-n", "20", "--mode", "async", "--json"])
    assert result == {"code": 0, "loaded": ["waterdrop._bench", "waterdrop._bench.stats"]}
