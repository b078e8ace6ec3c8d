"""Fixtures for the ``waterdrop`` command line: in-process runs (click's CliRunner) and real
subprocesses (``python -m waterdrop`` and the installed ``waterdrop`` script).

KAFKA_BOOTSTRAP_SERVERS is removed from every run's environment: a test that wants a cluster
passes ``--bootstrap-servers`` itself (a MockCluster of its own, which it can read back), and
the others use the command's embedded MockCluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import unique_topic
from waterdrop.cli import cli
from waterdrop.testing import MockCluster


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    with MockCluster(brokers=1) as mc:
        yield mc


@pytest.fixture
def topic(cluster: MockCluster) -> str:
    """A fresh 3-partition topic on ``cluster``."""
    name = unique_topic("wd-cli")
    cluster.create_topic(name, partitions=3, replication_factor=1)
    return name


def invoke(args: list[str], input: str | bytes | None = None,
           bootstrap_env: str | None = None) -> Result:
    """``waterdrop ARGS`` in this process, stdout and stderr kept apart (KAFKA_BOOTSTRAP_SERVERS
    unset, or ``bootstrap_env``)."""
    runner = CliRunner(env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap_env})
    return runner.invoke(cli, args, input=input, catch_exceptions=False)


def script() -> str:
    """The ``waterdrop`` console script pip installed beside this interpreter."""
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = directory / ("waterdrop.exe" if os.name == "nt" else "waterdrop")
        if candidate.is_file():
            return str(candidate)
    raise AssertionError(f"no waterdrop script beside {sys.executable}: is waterdrop installed?")


COMMANDS = {
    "python -m waterdrop": lambda: [sys.executable, "-m", "waterdrop"],
    "waterdrop script": lambda: [script()],
}


def run(how: str, args: list[str], input: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``waterdrop ARGS`` in a subprocess, started as ``how`` (a key of COMMANDS)."""
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    completed = subprocess.run(
        [*COMMANDS[how](), *args], input=input if input is not None else b"",
        capture_output=True, timeout=timeout, env=env,
    )
    return subprocess.CompletedProcess(
        completed.args, completed.returncode,
        completed.stdout.decode("utf-8", "replace"), completed.stderr.decode("utf-8", "replace"),
    )


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object on the last line of stdout."""
    lines = stdout.strip().splitlines()
    assert lines, "nothing on stdout"
    document = json.loads(lines[-1])
    assert isinstance(document, dict)
    return document


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
