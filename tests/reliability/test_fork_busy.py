"""fork() while the delivery poller is busy: a thread keeps producing, the poller keeps
serving delivery reports (and a listener on every acknowledgement), and the main thread
forks again and again. Each child must not hang (nothing of the parent's librdkafka is
touched), must refuse the parent's producer (ProducerUsedInParentProcessError) and must be
able to produce with a producer of its own; the parent loses nothing.

The scenario runs in its own interpreter with a hard timeout; it kills a child that does
not exit in time, so a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.reliability.report import record
from tests.reliability.sizes import sized

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.timeout(300),
]

FORKS = sized(15, 200)
MESSAGES = sized(60_000, 600_000)

SCRIPT = r'''
import collections, os, signal, sys, threading, time
from confluent_kafka import Consumer, TopicPartition
from waterdrop import Producer
from waterdrop.errors import ProducerUsedInParentProcessError
from waterdrop.testing import MockCluster

FORKS, MESSAGES = int(sys.argv[1]), int(sys.argv[2])
CHILD_TIMEOUT_S = 30.0

cluster = MockCluster(brokers=1)
cluster.create_topic("parent", partitions=1)
cluster.create_topic("children", partitions=1)
producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1},
                    max_wait_timeout=120_000)
acked = [0]
def on_ack(_event):                     # keeps the poller busy in Python on every delivery
    acked[0] += 1
    sum(range(50))
producer.monitor.subscribe("message.acknowledged", on_ack)
producer.produce_sync(topic="parent", payload=b"warm-up")

handles = []
producing = threading.Event()
forks_done = threading.Event()
def produce():              # until every fork is done (and at least MESSAGES)
    i = 0
    while i < MESSAGES or not forks_done.is_set():
        handles.append(producer.produce_async(topic="parent", payload=b"%d" % i))
        i += 1
        if i == 1000:
            producing.set()
        if i % 500 == 0 and producer.queue_size > 20_000:
            time.sleep(0.005)       # an application's back-pressure
thread = threading.Thread(target=produce)
thread.start()
assert producing.wait(60)

def child():
    try:
        producer.produce_sync(topic="parent", payload=b"from child")
        print("child used the parent's producer", flush=True)
        return 3
    except ProducerUsedInParentProcessError:
        pass
    producer.close()                  # returns at once, never touches the parent's client
    own = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers},
                   max_wait_timeout=30_000)
    for i in range(3):
        own.produce_sync(topic="children", payload=b"%d" % os.getpid())
    own.close()
    return 0

statuses = collections.Counter()
busy_at_fork = 0
for n in range(FORKS):
    busy_at_fork += producer.queue_size > 0
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child()
        finally:
            sys.stdout.flush()
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            statuses[os.waitstatus_to_exitcode(status)] += 1
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            statuses["hung"] += 1
            break
        time.sleep(0.005)

forks_done.set()
thread.join(120)
for h in handles:
    h.wait(120_000)
producer.close()

def count(topic):
    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "n"})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30, cached=False)
    c.close()
    return high            # offsets written (the mock cluster may have evicted old ones)

children = ",".join(f"{k}:{v}" for k, v in sorted(statuses.items(), key=str))
print(f"RESULT forks={FORKS} children={children} busy_at_fork={busy_at_fork} "
      f"parent_delivered={sum(1 for h in handles if h.error is None)}/{len(handles)} "
      f"parent_topic={count('parent')} children_topic={count('children')} acked={acked[0]}",
      flush=True)
'''


def test_fork_while_the_poller_is_busy():
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    try:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SCRIPT), str(FORKS), str(MESSAGES)],
            capture_output=True, text=True, timeout=240, env=env,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the fork scenario hung:\n{error.stdout}\n{error.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, f"{result.stdout}\n{result.stderr[-4000:]}"
    fields = dict(item.split("=", 1) for item in lines[0].split()[1:])
    record("fork_while_busy", fields)
    assert fields["children"] == f"0:{FORKS}", f"a child failed or hung: {lines[0]}"
    assert int(fields["busy_at_fork"]) >= FORKS // 2, "the poller was rarely busy at a fork"
    delivered, produced = map(int, fields["parent_delivered"].split("/"))
    assert delivered == produced >= MESSAGES
    assert int(fields["parent_topic"]) == produced + 1          # + the warm-up
    assert int(fields["children_topic"]) == 3 * FORKS
    assert int(fields["acked"]) == produced + 1
