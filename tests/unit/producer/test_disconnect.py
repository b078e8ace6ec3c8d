"""disconnect(): connections closed now, transparent reconnect on the next use.

WaterDrop's test: 100 produce/disconnect cycles, every message on one partition, offsets
increasing by one each cycle (nothing lost, nothing duplicated across reconnects).
"""

from __future__ import annotations

import pytest

from waterdrop import Producer, Status
from waterdrop.testing import MockCluster

TOPIC = "disconnect-cycles"


@pytest.fixture(scope="module")
def cluster():
    with MockCluster(brokers=1) as mc:
        mc.create_topic(TOPIC, partitions=1)
        yield mc


@pytest.fixture
def producer(cluster):
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers},
                        max_wait_timeout=30_000)
    yield producer
    producer.close()


def test_hundred_produce_disconnect_cycles_with_increasing_offsets(producer):
    events = []
    for name in ("producer.connected", "producer.disconnecting", "producer.disconnected"):
        producer.monitor.subscribe(name, lambda e: events.append(e.id))

    offsets = []
    for i in range(100):
        report = producer.produce_sync(topic=TOPIC, partition=0, payload=f"cycle-{i}")
        assert report.error is None
        assert report.partition == 0
        offsets.append(report.offset)
        assert producer.status is Status.CONNECTED
        assert producer.disconnect() is True
        assert producer.status is Status.DISCONNECTED
        assert producer.queue_size == 0

    assert offsets == list(range(offsets[0], offsets[0] + 100))
    assert events.count("producer.connected") == 100
    assert events.count("producer.disconnecting") == 100
    assert events.count("producer.disconnected") == 100
    # the events come in connect -> disconnecting -> disconnected order each cycle
    assert events[:3] == ["producer.connected", "producer.disconnecting", "producer.disconnected"]


def test_disconnect_delivers_what_is_queued(producer):
    handles = [producer.produce_async(topic=TOPIC, partition=0, payload=f"q{i}") for i in range(50)]
    assert producer.disconnect() is True
    reports = [h.wait(0) for h in handles]  # all final already: no waiting
    assert all(r.error is None for r in reports)
    offsets = [r.offset for r in reports]
    assert offsets == sorted(offsets) and len(set(offsets)) == 50


def test_disconnect_refused_when_not_disconnectable(producer):
    assert producer.disconnect() is False          # configured, never connected
    producer.produce_sync(topic=TOPIC, payload=b"x")
    producer.buffer(topic=TOPIC, payload=b"buffered")
    assert producer.disconnect() is False          # a non-empty buffer blocks it
    producer.flush_sync()
    assert producer.disconnect() is True
    assert producer.disconnect() is False          # already disconnected
    producer.close()
    assert producer.disconnect() is False          # closed
