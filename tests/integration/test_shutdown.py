"""Shutdown: close() delivers what is in flight; close(force=True) purges what cannot be
delivered; either way every handle is resolved when close() returns."""

from __future__ import annotations

import time

from tests.helpers import close_within, consume, message_count
from waterdrop import Producer, ProducerClosedError, Status

UNREACHABLE = "127.0.0.1:1"
PURGED = {"purge_queue", "purge_inflight"}


def test_close_delivers_20000_in_flight_messages(kafka_bootstrap, topic):
    count = 20_000
    producer = Producer(kafka={"bootstrap.servers": kafka_bootstrap})
    handles = [producer.produce_async(topic=topic, payload=f"message-{i}") for i in range(count)]
    assert producer.queue_size > 0, "something must still be in flight when close() starts"
    close_within(producer)
    assert producer.status is Status.CLOSED
    assert sum(1 for h in handles if h.pending) == 0
    errors = [h.report().error for h in handles if h.report().error is not None]
    assert errors == []
    assert sorted(h.report().offset for h in handles) == list(range(count))
    assert message_count(kafka_bootstrap, topic) == count
    messages = consume(kafka_bootstrap, topic, count)
    assert len(messages) == count
    assert {m.value() for m in messages} == {f"message-{i}".encode() for i in range(count)}


def test_close_force_against_unreachable_broker_purges_promptly():
    producer = Producer(
        kafka={"bootstrap.servers": UNREACHABLE, "message.timeout.ms": 600_000},
        max_wait_timeout=2_000,
    )
    handles = [producer.produce_async(topic="nowhere", payload=b"x", label=i) for i in range(100)]
    handles += producer.produce_many_async([{"topic": "nowhere", "payload": b"y"}] * 10)
    assert all(h.pending for h in handles)
    started = time.monotonic()
    close_within(producer, force=True)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"close(force=True) took {elapsed:.1f} s"
    assert producer.status is Status.CLOSED
    assert not any(h.pending for h in handles)
    codes = {h.wait(raise_response_error=False).error.code for h in handles}
    assert codes <= PURGED, codes
    assert [h.report().label for h in handles[:100]] == list(range(100))


def test_close_without_force_still_resolves_every_handle():
    # Nothing can be delivered; after max_wait_timeout close() gives up, and no handle is
    # left pending forever.
    producer = Producer(
        kafka={"bootstrap.servers": UNREACHABLE, "message.timeout.ms": 600_000},
        max_wait_timeout=1_000,
    )
    handles = [producer.produce_async(topic="nowhere", payload=b"x") for _ in range(10)]
    close_within(producer)
    assert not any(h.pending for h in handles)
    assert all(h.wait(raise_response_error=False).error is not None for h in handles)


def test_produce_after_close_is_refused(kafka_bootstrap, topic):
    producer = Producer(kafka={"bootstrap.servers": kafka_bootstrap})
    producer.produce_sync(topic=topic, payload=b"x")
    close_within(producer)
    try:
        producer.produce_async(topic=topic, payload=b"y")
    except ProducerClosedError:
        pass
    else:
        raise AssertionError("produce_async after close() must raise ProducerClosedError")
    assert message_count(kafka_bootstrap, topic) == 1


def test_librdkafka_version():
    import waterdrop

    assert waterdrop.librdkafka_version() == "2.14.2"
