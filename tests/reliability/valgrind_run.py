"""A short produce/close run for valgrind memcheck (ci/valgrind); also runs on its own.

On librdkafka's in-process mock cluster: a few thousand messages through every dispatch path
(produce_async one by one, produce_many_async batches, produce_sync, with and without keys,
headers, labels, partition keys and timestamps), a handful of refused messages, deliveries
that fail (a purge on close of a producer whose only broker is down), each producer closed and
everything released, so that at exit whatever our extension allocated is either freed or a leak
that memcheck can attribute to it; then clients built but never started, dropped without
close(). Exits non-zero if the run itself goes wrong.

    python tests/reliability/valgrind_run.py [messages]     # default 3000
"""

from __future__ import annotations

import gc
import sys
import time
import weakref

from waterdrop import Producer, _core
from waterdrop.errors import MessageInvalidError
from waterdrop.testing import MockCluster

TOPIC = "valgrind"
WAIT_MS = 120_000   # valgrind slows everything down some 20-50 times


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"valgrind_run: {what}")


def delivered(producer: Producer, cluster: MockCluster, count: int) -> None:
    """``count`` messages through every path, all acknowledged without error."""
    shared_key = b"shared-key"
    third = count // 3
    handles = []
    for i in range(third):
        if i % 2:
            handles.append(producer.produce_async(topic=TOPIC, payload=b"a" * (i % 300),
                                                  key=shared_key, label=("async", i)))
        else:
            handles.append(producer.produce_async(
                topic=TOPIC, payload="é" * (i % 50), partition_key=str(i),
                headers={"trace": str(i), "multi": [b"1", "2"]}, timestamp=time.time_ns() // 10**6))
    for start in range(0, third, 250):
        handles.extend(producer.produce_many_async(
            [{"topic": TOPIC, "payload": b"m%d" % j, "key": b"k%d" % j, "label": j}
             if j % 3 else
             {"topic": TOPIC, "payload": "h", "headers": {"h": b"v"}}
             for j in range(start, min(start + 250, third))]))
    for handle in handles:
        report = handle.wait(WAIT_MS, False)
        _check(report.error is None, f"delivery failed: {report.error!r}")
    for i in range(max(1, count - 2 * third) // 20):
        report = producer.produce_sync(topic=TOPIC, payload=b"s%d" % i,
                                       key=shared_key if i % 2 else None)
        _check(report.error is None and report.offset >= 0, f"produce_sync: {report!r}")
    for bad in ({"topic": TOPIC}, {"topic": "", "payload": b"x"},
                {"topic": TOPIC, "payload": b"x", "headers": {"h": 1}}):
        try:
            producer.produce_async(bad)
        except MessageInvalidError:
            pass
        else:
            _check(False, f"invalid message accepted: {bad!r}")
    _check(producer.client.handles_in_flight == 0,
           f"{producer.client.handles_in_flight} handles still held by librdkafka")


def purged(cluster: MockCluster) -> None:
    """Messages still queued when the producer closes: failed by the purge, handles freed."""
    cluster.broker_down(1)
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                               "message.timeout.ms": 600_000},
                        max_wait_timeout=1_000)     # close waits this long before its purge
    handles = [producer.produce_async(topic=TOPIC, payload=b"p%d" % i, key=b"k")
               for i in range(100)]
    handles += producer.produce_many_async([{"topic": TOPIC, "payload": b"q"}] * 100)
    producer.close(force=True)
    _check(all(not h.pending and h.error is not None for h in handles),
           "a purged message was not failed")
    cluster.broker_up(1)


def unstarted(cluster: MockCluster) -> None:
    """Clients built but never started, dropped without close() (a producer whose wiring
    failed before the start): Client.__dealloc__ frees the librdkafka handle, a topic handle
    included, with nothing lost."""
    clients = []
    for _ in range(3):
        client = _core.Client({"bootstrap.servers": cluster.bootstrap_servers}, WAIT_MS,
                              name="unstarted", start=False)
        client.partition_count(TOPIC, 5_000)     # a topic handle and a metadata answer
        clients.append(weakref.ref(client))
        del client
    gc.collect()
    _check(all(ref() is None for ref in clients), "an unstarted client was not freed")


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=2)
        producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                                   "linger.ms": 5},
                            max_wait_timeout=WAIT_MS)
        delivered(producer, cluster, count)
        client = producer.client
        producer.close()
        _check(client.closed and client.handles_in_flight == 0, "producer not closed")
        del client
        del producer
        purged(cluster)
        unstarted(cluster)
    gc.collect()
    print(f"valgrind_run: {count} messages delivered, 200 purged, producers closed, "
          "3 unstarted clients freed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
