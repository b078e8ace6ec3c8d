"""A real Kafka cluster owned by one test module, through ci/kafka.

``KafkaCluster`` starts its own cluster on free ports (``--port auto``) in a state directory
of its own (``WATERDROP_KAFKA_STATE``), so it never touches the broker CI starts for the
other suites, and stops it at the end. It can SIGKILL one node (a crash: no controlled
shutdown, no flush) and restart it, and it reads whatever the cluster wrote back with
confluent-kafka's own client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CI_KAFKA = os.path.join(ROOT, "ci", "kafka")

#: ci/kafka start waits up to KAFKA_START_TIMEOUT itself; this bounds the subprocess.
START_TIMEOUT_S = 240.0


class KafkaCluster:
    """``ci/kafka start --brokers N --port auto`` in a private state dir; stop() undoes it."""

    def __init__(
        self,
        state_dir: str,
        brokers: int = 3,
        config: dict[str, str] | None = None,
        listeners: list[str] | None = None,
        scram: list[str] | None = None,
    ) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.brokers = brokers
        self.config = dict(config or {})
        self.listeners = list(listeners or [])
        self.scram = list(scram or [])
        self.bootstrap = ""
        self.port: int | None = None
        self.log: list[str] = []

    # --- ci/kafka ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, WATERDROP_KAFKA_STATE=self.state_dir)
        env.pop("KAFKA_CONTROLLER_PORT", None)
        if self.port is not None:
            env["KAFKA_PORT"] = str(self.port)
        else:
            env.pop("KAFKA_PORT", None)
        return env

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> str:
        cmd = [sys.executable, CI_KAFKA, *args]
        started = time.monotonic()
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=self._env(),
            stdin=subprocess.DEVNULL,
        )
        self.log.append(f"$ ci/kafka {' '.join(args)}  ({time.monotonic() - started:.1f}s, "
                        f"exit {result.returncode})\n{result.stderr}")
        if result.returncode != 0:
            raise RuntimeError(
                f"ci/kafka {' '.join(args)} failed (exit {result.returncode}):\n"
                f"{result.stderr[-6000:]}"
            )
        return result.stdout

    def start(self) -> KafkaCluster:
        args = ["start", "--brokers", str(self.brokers), "--port", "auto"]
        for key, value in self.config.items():
            args += ["--config", f"{key}={value}"]
        for listener in self.listeners:
            args += ["--listener", listener]
        for credential in self.scram:
            args += ["--add-scram", credential]
        out = self._run(*args)
        self.bootstrap = out.strip().splitlines()[-1].strip()
        self.port = int(self.bootstrap.split(",")[0].rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        if self.port is None:
            return
        try:
            self._run("stop", "--grace", "10", timeout=120)
        finally:
            self.port = None

    def info(self) -> dict[str, Any]:
        """ci/kafka's cluster.json (ports, extra listeners' bootstrap strings)."""
        with open(os.path.join(self.state_dir, "cluster.json")) as f:
            return json.load(f)

    def listener_bootstrap(self, name: str) -> str:
        return self.info()["listeners"][name.upper()]

    # --- one node ---------------------------------------------------------------------------

    def pid(self, node: int) -> int:
        with open(os.path.join(self.state_dir, f"node-{node}", "pid")) as f:
            return int(f.read().strip())

    def kill(self, node: int, deadline_s: float = 60.0) -> int:
        """SIGKILL node ``node`` (a crash) and wait until its process is gone."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + deadline_s
        while _alive(pid):
            if time.monotonic() > end:
                raise AssertionError(f"node {node} (pid {pid}) survived SIGKILL for {deadline_s}s")
            time.sleep(0.05)
        return pid

    def pause(self, node: int) -> int:
        """SIGSTOP node ``node``: it keeps its sockets, so requests sent to it queue in the
        kernel and are processed, late, after ``resume``."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGSTOP)
        return pid

    def resume(self, node: int) -> None:
        os.kill(self.pid(node), signal.SIGCONT)

    def restart(self, node: int) -> None:
        """Start node ``node`` again; returns once every broker answers a metadata request."""
        self._run("start", "--node", str(node))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# --- admin and read-back (confluent-kafka, an independent client) -----------------------------


def create_topic(
    bootstrap: str,
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None = None,
    timeout: float = 60.0,
    client_config: dict[str, Any] | None = None,
) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"wd-rel-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                  config=config or {})],
        operation_timeout=timeout, request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)
    wait_for(lambda: _fully_replicated(admin, name, partitions, replication_factor),
             timeout, f"topic {name}: every partition led, ISR complete")
    return name


def _fully_replicated(admin: Any, topic: str, partitions: int, replicas: int) -> bool:
    meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
    return (
        meta is not None
        and meta.error is None
        and len(meta.partitions) == partitions
        and all(p.leader >= 0 and len(p.isrs) == replicas for p in meta.partitions.values())
    )


def partition_leaders(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """{partition: (leader broker id, ISR)} from a fresh metadata request."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    meta = admin.list_topics(topic=topic, timeout=15).topics[topic]
    return {p: (m.leader, list(m.isrs)) for p, m in meta.partitions.items()}


def wait_for(condition: Any, timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll ``condition`` until it returns a truthy value; AssertionError after ``timeout``."""
    end = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - a broker still recovering; try again
            last = error
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(step)


def read_all(
    bootstrap: str,
    topic: str,
    deadline_s: float = 120.0,
    client_config: dict[str, Any] | None = None,
    start: dict[int, int] | None = None,
) -> list[Any]:
    """Every message of ``topic`` (from offset ``start[partition]``, default the beginning)
    up to the high watermark of each partition, as confluent_kafka Messages in offset order
    per partition."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    start = start or {}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"wd-rel-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        **(client_config or {}),
    })
    try:
        meta = consumer.list_topics(topic=topic, timeout=30).topics[topic]
        parts = sorted(meta.partitions)
        highs = {}
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30,
                                                       cached=False)
            highs[p] = high
        consumer.assign([TopicPartition(topic, p, start.get(p, OFFSET_BEGINNING)) for p in parts])
        messages: list[Any] = []
        done = {p for p in parts if highs[p] <= max(0, start.get(p, 0))}
        end = time.monotonic() + deadline_s
        while len(done) < len(parts):
            if time.monotonic() > end:
                raise AssertionError(
                    f"read back {len(messages)} messages of {topic} in {deadline_s}s; "
                    f"partitions not at their high watermark: {sorted(set(parts) - done)}"
                )
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                err = message.error()
                if err is not None:
                    if err.code() == -191:  # _PARTITION_EOF
                        if message.offset() >= highs[message.partition()]:
                            done.add(message.partition())
                        continue
                    raise AssertionError(f"consumer error: {err}")
                messages.append(message)
                if message.offset() >= highs[message.partition()] - 1:
                    done.add(message.partition())
        return messages
    finally:
        consumer.close()
