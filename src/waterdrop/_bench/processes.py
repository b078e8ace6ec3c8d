"""The processes the harness starts and talks to: the MockCluster host, the C program, and
the fresh interpreters that run one child role each.

A child loads this package *by path* under another name (:func:`child_command`), never as
``waterdrop._bench``, so a confluent-kafka child never imports the waterdrop package and its
librdkafka, and its RSS stays comparable. That is why no module of this package imports
waterdrop at its top, and why they import one another relatively.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from .settings import PAYLOAD_SIZE

#: This package's folder, which a child loads by path.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: The name a child gives this package: anything but ``waterdrop._bench``.
CHILD_PACKAGE = "_waterdrop_bench_child"


def child_command(role: str, args: list[str]) -> list[str]:
    """A fresh interpreter running ``children.child_main(role, *args)`` *without importing the
    waterdrop package* (this package is loaded by path under :data:`CHILD_PACKAGE`)."""
    init = os.path.join(PACKAGE_DIR, "__init__.py")
    loader = ("import importlib, importlib.util as u, sys; "
              f"s = u.spec_from_file_location({CHILD_PACKAGE!r}, {init!r}, "
              f"submodule_search_locations=[{PACKAGE_DIR!r}]); "
              "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
              f"sys.exit(importlib.import_module({CHILD_PACKAGE + '.children'!r})"
              ".child_main(sys.argv[1:]))")
    return [sys.executable, "-c", loader, role, *args]


def end_stdin_child(process: subprocess.Popen[str], timeout: float, *, kill: bool) -> None:
    """End a child that lives until its stdin closes: close it, wait, then escalate (SIGTERM
    for the cluster host, which cleans up on it; SIGKILL for the C program)."""
    if process.poll() is not None:
        return
    try:
        process.stdin.close()  # type: ignore[union-attr]
    except OSError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        if kill:
            process.kill()
            process.wait()
        else:
            process.terminate()
            process.wait(timeout)


class HostedMockCluster:
    """A 3-broker MockCluster in a child process (``bench/mockcluster_host.py`` or the
    ``host`` role). Closing stdin ends it."""

    def __init__(self, topics: list[str], brokers: int = 3, script: str | None = None,
                 partitions: int = 3, replication_factor: int = 3) -> None:
        args = ["--brokers", str(brokers), "--partitions", str(partitions),
                "--replication-factor", str(replication_factor)]
        for topic in topics:
            args += ["--topic", topic]
        command = [sys.executable, script, *args] if script else child_command("host", args)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        line = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if not line:
            self.close()
            raise RuntimeError(f"the mock cluster host exited ({self.process.returncode}) "
                               "without printing its bootstrap servers")
        self.bootstrap_servers = line
        self.pid = self.process.pid

    def command(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError(f"mock cluster host: {line!r} -> {answer!r}")
        return answer

    def create_topic(self, topic: str, partitions: int = 3, replication_factor: int = 3) -> None:
        self.command(f"topic {topic} {partitions} {replication_factor}")

    def close(self) -> None:
        end_stdin_child(self.process, 15, kill=False)

    def __enter__(self) -> HostedMockCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def host_main(argv: list[str]) -> int:
    """The mock cluster host process: see bench/mockcluster_host.py."""
    parser = argparse.ArgumentParser(prog="mockcluster_host", description=host_main.__doc__)
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--topic", action="append", default=[])
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replication-factor", type=int, default=3)
    args = parser.parse_args(argv)

    from waterdrop.testing import MockCluster

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = MockCluster(brokers=args.brokers)
    lock = threading.Lock()
    try:
        for topic in args.topic:
            cluster.create_topic(topic, partitions=args.partitions,
                                 replication_factor=args.replication_factor)
        print(cluster.bootstrap_servers, flush=True)

        def serve_stdin() -> None:
            for raw in sys.stdin:
                words = raw.split()
                if not words:
                    continue
                try:
                    if words[0] == "topic" and len(words) >= 2:
                        partitions = int(words[2]) if len(words) > 2 else args.partitions
                        rf = int(words[3]) if len(words) > 3 else args.replication_factor
                        with lock:
                            cluster.create_topic(words[1], partitions=partitions,
                                                 replication_factor=rf)
                        answer = f"ok topic {words[1]}"
                    elif words[0] == "ping":
                        answer = "ok ping"
                    elif words[0] == "quit":
                        print("ok quit", flush=True)
                        break
                    else:
                        answer = f"error unknown command {raw.strip()!r}"
                except Exception as error:
                    answer = f"error {type(error).__name__}: {error}"
                print(answer, flush=True)
            stop.set()  # stdin closed (the parent is gone) or quit

        threading.Thread(target=serve_stdin, name="stdin", daemon=True).start()
        while not stop.wait(1.0):
            pass
    finally:
        cluster.close()
    return 0



class CProgram:
    """bench/c/produce_bench kept running (warm, connected) between rounds: one round per
    line on its stdin, so its rounds alternate with the other client's like theirs do."""

    def __init__(self, program: str, bootstrap: str, topic: str, n: int) -> None:
        self.process = subprocess.Popen(
            [program, bootstrap, topic, str(n), str(PAYLOAD_SIZE), "stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if ready != "ready":
            self.close()
            raise RuntimeError(f"C program did not start (said {ready!r})")
        self.version = "?"

    def round(self) -> tuple[float, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"C program exited ({self.process.wait()})")
            if line.startswith("{"):
                record = json.loads(line)
                if record["failed"]:
                    raise RuntimeError(f"C program: {record['failed']} messages failed")
                self.version = record.get("librdkafka", "?")
                return float(record["seconds"]), float(record.get("cpu_seconds", "nan"))

    def close(self) -> None:
        end_stdin_child(self.process, 60, kill=True)


def find_c_program(explicit: str | None = None) -> str | None:
    candidates = [explicit, os.environ.get("WATERDROP_BENCH_C_PROGRAM"),
                  os.path.join(os.getcwd(), "bench", "c", "produce_bench")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None



def run_child(role: str, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Run one child role (see :mod:`.children`) to its end; its last JSON line, parsed."""
    proc = subprocess.run(child_command(role, args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {role} {args} failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    return json.loads(lines[-1])
