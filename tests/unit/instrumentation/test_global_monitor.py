"""The process-wide ``waterdrop.monitor`` (inventory §4.7): producer.created and
producer.configured, the hook libraries use to reach every producer."""

from __future__ import annotations

from typing import Any

import pytest

import waterdrop
from waterdrop import Producer
from waterdrop.instrumentation.global_monitor import monitor as global_monitor


@pytest.fixture
def subscribe():
    """Subscribe to the global monitor for one test only."""
    subscribed: list[Any] = []

    def sub(name_or_listener: Any, fn: Any = None) -> Any:
        if fn is None:
            target = waterdrop.monitor.subscribe(name_or_listener)
        else:
            target = waterdrop.monitor.subscribe(name_or_listener, fn)
        subscribed.append(target)
        return target

    yield sub
    for target in subscribed:
        waterdrop.monitor.unsubscribe(target)


def test_the_package_monitor_is_the_global_one():
    assert waterdrop.monitor is global_monitor


def test_producer_created(subscribe):
    seen = []
    subscribe("producer.created", seen.append)
    producer = Producer()
    (event,) = seen
    assert set(event.payload) == {"producer", "producer_id"}
    assert event["producer"] is producer
    assert event["producer_id"] is None  # not configured yet


def test_producer_configured(subscribe, cluster):
    seen = []
    subscribe("producer.configured", seen.append)
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}, id="configured-1") as p:
        (event,) = seen
        assert set(event.payload) == {"producer", "producer_id", "config"}
        assert event["producer"] is p
        assert event["producer_id"] == "configured-1"
        assert event["config"] is p.config


def test_created_then_configured_in_order(subscribe, cluster):
    order = []
    subscribe("producer.created", lambda e: order.append("created"))
    subscribe("producer.configured", lambda e: order.append("configured"))
    producer = Producer()
    assert order == ["created"]
    producer.setup(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    assert order == ["created", "configured"]
    producer.close()


def test_a_library_adds_middleware_and_listeners_to_every_producer(subscribe, cluster, topic):
    """The recommended hook: on producer.configured, reach into the new producer."""
    acknowledged = []

    class Library:
        def on_producer_configured(self, event):
            producer = event["producer"]
            producer.middleware.append(
                lambda message: {**message, "headers": {"lib": event["producer_id"]}}
            )
            producer.monitor.subscribe("message.acknowledged", acknowledged.append)

    subscribe(Library())
    producers = [
        Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) for _ in range(2)
    ]
    try:
        for producer in producers:
            producer.produce_sync(topic=topic, payload=b"x")
        assert [p.middleware.steps != [] for p in producers] == [True, True]
        seen = []
        for producer in producers:
            producer.monitor.subscribe("message.produced_sync", seen.append)
            producer.produce_sync(topic=topic, payload=b"y")
        assert [e["message"]["headers"] for e in seen] == [
            {"lib": producers[0].id}, {"lib": producers[1].id},
        ]
    finally:
        for producer in producers:
            producer.close()
    assert {e["producer_id"] for e in acknowledged} >= {p.id for p in producers}


def test_a_listener_on_configured_may_subscribe_to_statistics(subscribe, cluster, topic):
    """producer.configured runs before the client is built: statistics can still be enabled."""
    import threading

    got = threading.Event()

    def configured(event):
        event["producer"].monitor.subscribe("statistics.emitted", lambda e: got.set())

    subscribe("producer.configured", configured)
    with Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "statistics.interval.ms": 100}
    ) as producer:
        producer.produce_sync(topic=topic, payload=b"x")
        assert got.wait(30)


def test_connection_pool_events(subscribe, cluster):
    seen = []
    for name in ("connection_pool.created", "connection_pool.shutdown"):
        subscribe(name, seen.append)

    def configure(config):
        config.kafka = {"bootstrap.servers": cluster.bootstrap_servers}

    pool = waterdrop.ConnectionPool(size=2, timeout=5_000, configure=configure)
    pool.shutdown()
    created = [e for e in seen if e.id == "connection_pool.created"]
    assert len(created) == 1
    assert set(created[0].payload) == {"pool", "size", "timeout"}
    assert created[0]["pool"] is pool
    assert (created[0]["size"], created[0]["timeout"]) == (2, 5_000)
    shutdown = [e for e in seen if e.id == "connection_pool.shutdown"]
    assert len(shutdown) >= 1 and shutdown[0]["pool"] is pool
