"""Middleware, idle disconnect, tags, status and repr, on librdkafka's mock cluster."""

from __future__ import annotations

import threading

import pytest

import waterdrop
from waterdrop import MessageInvalidError, Producer, Status
from waterdrop.instrumentation.idle_disconnector import IdleDisconnectorListener

from tests.helpers import close_within, consume, unique_topic


@pytest.fixture
def producer(cluster):
    p = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    yield p
    close_within(p)


def test_middleware_runs_in_order_once_per_message_before_validation(producer, cluster):
    topic = unique_topic()
    calls = []

    def fill_topic(message):
        calls.append("fill")
        return {**message, "topic": topic}

    def tag(message):
        calls.append("tag")
        return {**message, "headers": {"tagged": "yes"}}

    producer.middleware.append(tag)
    producer.middleware.prepend(fill_topic)  # runs first: the topic exists when tag runs
    # invalid as given (no topic): valid once the middleware ran, so validation comes after it
    producer.produce_sync({"payload": b"one"})
    assert calls == ["fill", "tag"]
    producer.produce_many_sync([{"payload": b"two"}, {"payload": b"three"}])
    assert calls == ["fill", "tag"] * 3
    got = consume(cluster.bootstrap_servers, topic, 3)
    assert sorted(m.value() for m in got) == [b"one", b"three", b"two"]
    assert all(m.headers() == [("tagged", b"yes")] for m in got)


def test_middleware_never_mutates_the_callers_message(producer):
    producer.middleware.append(lambda m: {**m, "payload": b"changed"})
    message = {"topic": unique_topic(), "payload": b"original"}
    producer.produce_sync(message)
    assert message == {"topic": message["topic"], "payload": b"original"}


def test_an_invalid_message_after_middleware_is_still_refused(producer):
    producer.middleware.append(lambda m: {**m, "payload": 42})
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=unique_topic(), payload=b"fine before the middleware")
    assert info.value.errors == {
        "payload": "must be bytes, bytearray, memoryview, str or None, got int"
    }
    assert producer.queue_size == 0


def test_idle_disconnector_disconnects_then_the_next_use_reconnects(cluster):
    producer = Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "statistics.interval.ms": 100}
    )
    disconnected = threading.Event()
    producer.monitor.subscribe("producer.disconnected", lambda e: disconnected.set())
    producer.monitor.subscribe(IdleDisconnectorListener(producer, disconnect_timeout=300))
    try:
        topic = unique_topic()
        first = producer.produce_sync(topic=topic, payload=b"a", partition=0)
        assert disconnected.wait(20), "the idle producer was never disconnected"
        assert producer.status is Status.DISCONNECTED
        second = producer.produce_sync(topic=topic, payload=b"b", partition=0)
        assert producer.status is Status.CONNECTED
        assert second.offset == first.offset + 1
    finally:
        close_within(producer)


def test_idle_disconnect_timeout_below_30_seconds_is_refused(cluster):
    with pytest.raises(waterdrop.ConfigurationInvalidError) as info:
        Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers}, idle_disconnect_timeout=1_000
        )
    assert "idle_disconnect_timeout" in info.value.errors


def test_disconnect_is_refused_with_a_buffered_message(producer):
    producer.produce_sync(topic=unique_topic(), payload=b"x")
    producer.buffer(topic=unique_topic(), payload=b"held")
    assert producer.disconnect() is False
    assert producer.status is Status.CONNECTED


def test_status_walks_the_lifecycle(cluster):
    producer = Producer()
    assert producer.status is Status.INITIAL
    producer.setup(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    assert producer.status is Status.CONFIGURED
    producer.produce_sync(topic=unique_topic(), payload=b"x")
    assert producer.status is Status.CONNECTED
    assert producer.disconnect() is True
    assert producer.status is Status.DISCONNECTED
    producer.produce_sync(topic=unique_topic(), payload=b"y")
    assert producer.status is Status.CONNECTED
    close_within(producer)
    assert producer.status is Status.CLOSED


def test_tags(producer):
    producer.tags.add("service", "billing")
    producer.tags.add("region", "eu")
    producer.tags.add("team", "billing")
    assert producer.tags.to_list() == ["billing", "eu"]
    producer.tags.delete("region")
    assert producer.tags.to_list() == ["billing"]
    producer.tags.clear()
    assert producer.tags.to_list() == []


def test_repr_does_not_block_while_the_buffer_lock_is_held(producer):
    producer.buffer(topic=unique_topic(), payload=b"x")
    with producer._buffer_lock:  # another thread in the middle of a flush
        text = repr(producer)
    assert producer.id in text and "buffer_size=1" in text and "status=configured" in text
