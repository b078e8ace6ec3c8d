"""core/client.pxi: a Client that is never started (``start=False``, e.g. a producer whose
wiring failed between building and starting it) and dropped without close() still frees its
librdkafka handle, and with it librdkafka's threads."""

from __future__ import annotations

import gc
import os
import sys
import time

import pytest

from waterdrop import _core

TASKS = "/proc/self/task"
DEADLINE_S = 30.0

pytestmark = pytest.mark.skipif(
    not os.path.isdir(TASKS), reason=f"counts the process's threads in {TASKS} (Linux)"
)


def threads() -> int:
    return len(os.listdir(TASKS))


def settled(target: int) -> int:
    """The thread count once it is at most ``target`` (polled up to DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        gc.collect()
        count = threads()
        if count <= target or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


def build(**conf: str) -> _core.Client:
    config = {"bootstrap.servers": "127.0.0.1:1", "log_level": "0", **conf}
    return _core.Client(config, 10_000, name="unstarted", start=False)


def test_unstarted_clients_dropped_without_close_free_their_threads():
    gc.collect()
    baseline = threads()
    client = build()
    per_client = threads() - baseline  # librdkafka's threads (main, internal, bootstrap, ...)
    assert per_client >= 1
    del client
    assert settled(baseline) == baseline
    clients = [build() for _ in range(20)]
    assert threads() >= baseline + 20  # every client has librdkafka threads of its own
    del clients
    assert settled(baseline) == baseline


def test_an_unstarted_client_with_a_topic_handle_is_freed_too():
    """Its topic handles go before the librdkafka handle (as in close())."""
    gc.collect()
    baseline = threads()
    client = build()
    assert client.partition_count("wd-never-there", 100) == -1  # a topic handle, no broker
    del client
    assert settled(baseline) == baseline


def test_a_closed_client_is_not_destroyed_twice():
    client = build()
    client.close(0, True)
    assert client.closed
    del client
    gc.collect()
