"""Exactly-once consume-transform-produce survives a crash.

A worker process (``scripts/eos_worker.py``) consumes an input topic with a confluent_kafka
Consumer and, one waterdrop transaction per message, produces a transformed message and marks
the input consumed (``transaction_mark_as_consumed``). It is killed with SIGKILL in the
middle, then started again and runs to the end. A read_committed reader of the output must
then see every input exactly once, and the group's committed offset must be the input's end.

Hard timeouts everywhere: a hang fails the test instead of blocking the run.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.helpers import create_topic
from waterdrop import Producer

WORKER = Path(__file__).parent / "scripts" / "eos_worker.py"
INPUTS = 200
KILL_AFTER = 50
TIMEOUT_S = 120.0
SENTINEL = b"end-of-test"

pytestmark = pytest.mark.integration


def start_worker(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The worker's stdout lines, read by a thread (None at EOF), so waits can time out."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def read_until_sentinel(bootstrap: str, topic: str, isolation: str) -> list[Any]:
    """Messages of single-partition ``topic`` before the sentinel, as ``isolation`` sees them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"wd-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        messages: list[Any] = []
        deadline = time.monotonic() + 30
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"no sentinel in {topic} after 30 s ({len(messages)} read)")
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise AssertionError(f"consumer error: {message.error()}")
            if message.value() == SENTINEL:
                return messages
            messages.append(message)
    finally:
        consumer.close()


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(TIMEOUT_S)


def test_crash_and_restart_processes_every_input_exactly_once(kafka_bootstrap):
    source = create_topic(kafka_bootstrap)
    target = create_topic(kafka_bootstrap)
    group = f"wd-eos-{uuid.uuid4().hex}"
    transactional_id = f"wd-eos-worker-{uuid.uuid4().hex}"
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as plain:
        plain.produce_many_sync(
            [{"topic": source, "key": f"k{i}", "payload": f"in-{i}"} for i in range(INPUTS)]
        )
    args = [kafka_bootstrap, source, target, group, transactional_id, str(INPUTS)]

    # 1. run until KILL_AFTER messages are committed, then SIGKILL (most likely in the middle
    #    of the next transaction: the worker goes straight on)
    first = start_worker(args)
    try:
        lines = lines_of(first)
        deadline = time.monotonic() + TIMEOUT_S
        processed = 0
        seen: list[str] = []
        while processed < KILL_AFTER:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"worker made no progress in {TIMEOUT_S} s: {seen[-5:]}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                first.wait(TIMEOUT_S)
                pytest.fail(f"worker ended early: {seen}\n{first.stderr.read()}")
            seen.append(line)
            if line.startswith("processed "):
                processed += 1
        os.kill(first.pid, signal.SIGKILL)
        first.wait(TIMEOUT_S)
        assert first.returncode == -signal.SIGKILL
    finally:
        kill(first)
    assert "done" not in seen

    # 2. restart: the same group and transactional.id, to the end
    second = start_worker(args)
    try:
        out, err = second.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill(second)
        pytest.fail(f"the restarted worker hung for {TIMEOUT_S} s")
    finally:
        kill(second)
    assert second.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    resumed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("processed ")]
    assert resumed, out
    # it resumed where the committed transactions left off (the first run may have committed
    # a few more than it had reported when the kill landed), and went on to the end
    assert KILL_AFTER <= resumed[0] < INPUTS, resumed[:5]
    assert resumed == list(range(resumed[0], INPUTS))
    assert out.splitlines()[-1] == "done"

    # 3. exactly once: every input once in the committed output, nothing more
    #    (read up to a sentinel written after the worker finished: the whole log is checked)
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as plain:
        plain.produce_sync(topic=target, payload=SENTINEL)
    expected = {f"out-in-{i}".encode() for i in range(INPUTS)}
    messages = read_until_sentinel(kafka_bootstrap, target, "read_committed")
    values = [m.value() for m in messages]
    assert len(values) == INPUTS, (len(values), sorted(set(values) ^ expected))
    assert set(values) == expected
    assert all(m.key() == b"k" + m.value()[len(b"out-in-"):] for m in messages)
    # a read_uncommitted reader may also see what the killed transaction had written (then
    # aborted by the restart): duplicates are possible there, never anything else
    uncommitted = read_until_sentinel(kafka_bootstrap, target, "read_uncommitted")
    assert len(uncommitted) >= INPUTS
    assert {m.value() for m in uncommitted} == expected

    # 4. the group's committed offset is the input's end
    checker = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        [committed] = checker.committed([TopicPartition(source, 0)], timeout=30)
    finally:
        checker.close()
    assert committed.offset == INPUTS
