"""Interpreter exit: live producers are closed by waterdrop's exit hook (what WaterDrop's
finalizer does at VM shutdown), so messages produced with produce_async by a script that
never calls close() are all delivered; and a producer dropped without close() is closed
and emits a ResourceWarning naming where it was created.

Each case runs a script in its own interpreter (``sys.executable -c``) with a hard timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import create_topic, message_count

COUNT = 10_000
TIMEOUT_S = 120.0


def run_script(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    try:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(body), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"script hung for {TIMEOUT_S} s at exit:\n{error.stderr}")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


# Registered before waterdrop is imported, so it runs after waterdrop's exit hook (atexit
# runs hooks last-in first-out): it sees the handles as the exit hook left them.
EXIT_CHECK = """
import atexit, collections, sys

handles = []
acknowledged = []

@atexit.register
def report():
    pending = sum(1 for h in handles if h.pending)
    errors = collections.Counter(
        h.wait(0, raise_response_error=False).error.code
        for h in handles
        if not h.pending and h.wait(0, raise_response_error=False).error is not None
    )
    print(f"handles={len(handles)} pending={pending} errors={dict(errors)} "
          f"acknowledged={len(acknowledged)}", flush=True)
"""


def test_produce_async_then_exit_without_close_delivers_everything_mock_cluster():
    result = run_script(
        EXIT_CHECK
        + f"""
import waterdrop
from waterdrop.testing import MockCluster

cluster = MockCluster(brokers=1)
cluster.create_topic("exit", partitions=3)
producer = waterdrop.Producer(kafka={{
    "bootstrap.servers": cluster.bootstrap_servers,
    # a long linger: nothing would be sent before exit without the hook's flush
    "queue.buffering.max.ms": 10_000,
}})
producer.monitor.subscribe("message.acknowledged", lambda e: acknowledged.append(e["offset"]))
for i in range({COUNT}):
    handles.append(producer.produce_async(topic="exit", payload=str(i)))
print("produced", producer.queue_size > 0, flush=True)
# no close(): the interpreter exits here
"""
    )
    assert "produced True" in result.stdout
    assert f"handles={COUNT} pending=0 errors={{}} acknowledged={COUNT}" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "ResourceWarning" not in result.stderr  # closed by the exit hook, not a finalizer


def test_produce_async_then_exit_without_close_delivers_everything_real_broker(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap, partitions=3)
    result = run_script(
        EXIT_CHECK
        + f"""
import waterdrop

producer = waterdrop.Producer(kafka={{
    "bootstrap.servers": sys.argv[1],
    "queue.buffering.max.ms": 10_000,
}})
producer.monitor.subscribe("message.acknowledged", lambda e: acknowledged.append(e["offset"]))
for i in range({COUNT}):
    handles.append(producer.produce_async(topic=sys.argv[2], payload=str(i)))
""",
        kafka_bootstrap,
        topic,
    )
    assert f"handles={COUNT} pending=0 errors={{}} acknowledged={COUNT}" in result.stdout, (
        result.stdout + result.stderr
    )
    assert message_count(kafka_bootstrap, topic) == COUNT


def test_exit_hook_flushes_the_internal_buffer_too():
    result = run_script(
        """
import atexit
state = {}

@atexit.register
def report():  # runs after waterdrop's exit hook
    print("status", state["producer"].status, flush=True)
    print("kept", len(state["client"].messages), flush=True)

import waterdrop
from waterdrop.clients import Buffered

producer = waterdrop.Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, client_class=Buffered)
producer.produce_sync(topic="t", payload=b"connect")
producer.buffer_many([{"topic": "t", "payload": str(i)} for i in range(100)])
state["producer"] = producer
state["client"] = producer.client
"""
    )
    assert "status closed" in result.stdout, result.stdout + result.stderr
    assert "kept 101" in result.stdout, result.stdout + result.stderr


def test_a_dropped_producer_is_closed_with_a_resource_warning_naming_where_it_was_made():
    script = """
import gc, warnings
import waterdrop
from waterdrop.testing import MockCluster

cluster = MockCluster(brokers=1)
cluster.create_topic("dropped", partitions=1)

def make_and_forget():
    producer = waterdrop.Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})  # MADE HERE
    handles = [producer.produce_async(topic="dropped", payload=str(i)) for i in range(100)]
    return handles

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    handles = make_and_forget()
    gc.collect()

resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
assert len(resource) == 1, [str(w.message) for w in caught]
text = str(resource[0].message)
print("WARNING:", text, flush=True)
# the producer was closed: everything it held was delivered
assert all(not h.pending for h in handles)
assert all(h.wait(0).error is None for h in handles)

# an unused (never connected) producer is just collected, with no warning
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    waterdrop.Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    gc.collect()
assert not [w for w in caught if issubclass(w.category, ResourceWarning)]

# a closed producer leaves no warning either
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    p = waterdrop.Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    p.produce_sync(topic="dropped", payload=b"x")
    p.close()
    del p
    gc.collect()
assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
print("OK", flush=True)
"""
    result = run_script(script)
    made_at = textwrap.dedent(script).splitlines().index(
        next(line for line in textwrap.dedent(script).splitlines() if "MADE HERE" in line)
    ) + 1
    assert "OK" in result.stdout, result.stdout + result.stderr
    warning = next(line for line in result.stdout.splitlines() if line.startswith("WARNING:"))
    # "<string>:<line>" is where a -c script lives; the line is the one marked MADE HERE
    assert "never closed" in warning or "not closed" in warning
    assert f"created at <string>:{made_at} " in warning, warning
