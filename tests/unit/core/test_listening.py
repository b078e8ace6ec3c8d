"""The seam between a Monitor and the core (core/listening.pxi): the Monitor counts its
listener changes, the core keeps its ``listening()`` answers until the count moves; a monitor
that is not a Monitor is asked every time."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.helpers import close_within, unique_topic
from waterdrop import Producer
from waterdrop._core import ListenerChanges
from waterdrop.clients import Dummy
from waterdrop.instrumentation import Monitor
from waterdrop.testing import MockCluster


@pytest.fixture
def producer():
    p = Producer(client_class=Dummy, kafka={"bootstrap.servers": "127.0.0.1:9"})
    yield p
    p.close()


def test_the_count_moves_on_every_subscribe_and_unsubscribe():
    monitor = Monitor()
    changes = monitor.listener_changes
    assert type(changes) is ListenerChanges
    counts = [changes.count]

    def fn(event: Any) -> None:
        pass

    class Listener:
        def on_message_acknowledged(self, event: Any) -> None:
            pass

    listener = Listener()
    monitor.subscribe("message.produced_async", fn)
    counts.append(changes.count)
    monitor.subscribe(listener)
    counts.append(changes.count)
    monitor.unsubscribe(fn)
    counts.append(changes.count)
    monitor.unsubscribe(listener)
    counts.append(changes.count)
    monitor.subscribe("error.occurred", fn)
    counts.append(changes.count)
    monitor.clear("error.occurred")
    counts.append(changes.count)
    monitor.clear()
    counts.append(changes.count)
    assert all(b > a for a, b in zip(counts, counts[1:])), counts
    assert monitor.listener_changes is changes     # one object for the monitor's life


def test_a_count_only_moves_forward():
    changes = ListenerChanges()
    assert changes.count == 0
    changes.bump()
    changes.bump()
    assert changes.count == 2
    with pytest.raises(AttributeError):
        changes.count = 0  # type: ignore[misc]


@pytest.mark.parametrize("method", ["produce_async", "produce_sync"])
def test_a_produce_after_subscribe_emits_after_unsubscribe_does_not(producer, method):
    event = "message.produced_async" if method == "produce_async" else "message.produced_sync"
    produce = getattr(producer, method)
    seen: list[Any] = []
    produce(topic="t", payload=b"before")             # the core has its answers cached now
    producer.monitor.subscribe(event, seen.append)
    produce(topic="t", payload=b"during")
    produce({"topic": "t", "payload": b"during too"})
    producer.monitor.unsubscribe(seen.append)
    produce(topic="t", payload=b"after")
    assert [e["message"]["payload"] for e in seen] == [b"during", b"during too"]
    assert all(e.id == event and e["producer_id"] == producer.id for e in seen)
    assert set(seen[0].payload) == {"producer_id", "message", "time",
                                    "handle" if method == "produce_async" else "report"}


def test_a_new_monitor_object_is_asked_afresh(producer):
    producer.produce_async(topic="t", payload=b"x")
    other = Monitor()
    seen: list[Any] = []
    other.subscribe("message.produced_async", seen.append)
    producer.monitor = other
    producer.produce_async(topic="t", payload=b"x")
    assert len(seen) == 1


class _OwnMonitor:
    """A user's monitor that is not a waterdrop Monitor (no listener_changes)."""

    def __init__(self) -> None:
        self.listen = False
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.asked = 0

    def listening(self, event: str) -> bool:
        self.asked += 1
        return self.listen

    def instrument(self, event: str, **payload: Any) -> None:      # keywords, as ever
        self.events.append((event, payload))


def test_a_monitor_that_is_not_a_monitor_still_gets_produced_events(producer):
    producer.produce_async(topic="t", payload=b"connects")
    own = _OwnMonitor()
    producer.monitor = own
    producer.produce_async(topic="t", payload=b"quiet")
    assert own.events == [] and own.asked > 0
    own.listen = True                       # no count to watch: asked on every message
    producer.produce_async(topic="t", payload=b"a")
    producer.produce_sync(topic="t", payload=b"s")
    producer.produce_async({"topic": "t", "payload": b"m"})
    assert [(e, p["message"]["payload"]) for e, p in own.events] == [
        ("message.produced_async", b"a"),
        ("message.produced_sync", b"s"),
        ("message.produced_async", b"m"),
    ]


def test_delivery_events_follow_subscribe_and_unsubscribe_on_a_connected_client():
    """The poller's side of the seam: on_deliveries runs only while someone listens to a
    delivery event, and notices a subscription made after the client connected."""
    with MockCluster(brokers=1) as cluster:
        topic = unique_topic()
        cluster.create_topic(topic, partitions=1)
        producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
        try:
            producer.produce_sync(topic=topic, payload=b"unheard")
            acked: list[Any] = []
            got = threading.Event()

            def on_ack(event: Any) -> None:
                acked.append(event["delivery_report"].offset)
                got.set()

            producer.monitor.subscribe("message.acknowledged", on_ack)
            report = producer.produce_sync(topic=topic, payload=b"heard")
            assert got.wait(30.0)
            producer.monitor.unsubscribe(on_ack)
            producer.produce_sync(topic=topic, payload=b"unheard again")
            assert acked == [report.offset]
        finally:
            close_within(producer)
