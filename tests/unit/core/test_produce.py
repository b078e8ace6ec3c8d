"""Payload ownership: librdkafka points at an immutable payload (bytes, str) instead of
copying it, and the message's handle keeps the payload object alive until the delivery
report (or a failure, a purge, a forced close) resolves it. Every reference taken is released
exactly once: the payload's reference count returns to where it started on every path, and
what reaches the broker is the payload as given, even when the caller dropped it meanwhile.
"""

from __future__ import annotations

import gc
import sys

import pytest

from tests.helpers import close_within, consume, unique_topic
from waterdrop import Producer
from waterdrop.errors import ProduceError, ProduceManyError

pytestmark = pytest.mark.timeout(120)


def make(cluster, **kafka):
    settings = {"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 5}
    settings.update(kafka)
    return Producer(kafka=settings, max_wait_timeout=30_000, wait_on_queue_full=False)


def through_both_paths(producer, topic, payload, n):
    """n messages through produce_async and n through produce_many_async; their handles."""
    handles = [producer.produce_async(topic=topic, payload=payload) for _ in range(n)]
    return handles + producer.produce_many_async([{"topic": topic, "payload": payload}] * n)


def fresh_payload(size: int = 100) -> bytes:
    # built at run time: its own object, whose reference count only this test moves
    return bytes(bytearray(b"p" * size))


def test_a_delivered_payload_is_released_while_its_handle_lives_on(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    payload = fresh_payload()
    text = "".join(["é", "x" * 50])   # non-ASCII str: librdkafka points at its cached UTF-8
    start_bytes, start_text = sys.getrefcount(payload), sys.getrefcount(text)
    producer = make(cluster, **{"linger.ms": 60_000})
    try:
        handles = [producer.produce_async(topic=topic, payload=payload, key=b"k")
                   for _ in range(3)]
        handles += producer.produce_many_async([{"topic": topic, "payload": text}] * 2)
        handles.append(producer.produce_async({"topic": topic, "payload": payload,
                                               "headers": {"h": "v"}, "timestamp": 1_000}))
        # the pending handles keep the payloads alive: librdkafka has no copy
        assert sys.getrefcount(payload) == start_bytes + 4
        assert sys.getrefcount(text) == start_text + 2
        assert producer.client.flush(20_000)   # linger over: send them now
        for handle in handles:
            assert handle.wait().error is None
        assert sys.getrefcount(payload) == start_bytes
        assert sys.getrefcount(text) == start_text
    finally:
        close_within(producer)
    got = sorted(m.value() for m in consume(cluster.bootstrap_servers, topic, 6))
    assert got == sorted([payload] * 4 + [text.encode()] * 2)


def test_the_broker_gets_the_payload_after_the_caller_dropped_it(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster)
    try:
        # large enough to be pinned even though nothing else keeps them
        handles = [producer.produce_async(topic=topic, payload=b"%06d" % i + b"z" * 600)
                   for i in range(500)]
        handles += producer.produce_many_async(
            [{"topic": topic, "payload": "%06d" % i + "é" * 300} for i in range(500, 1000)])
        gc.collect()
        for handle in handles:
            assert handle.wait().error is None
    finally:
        close_within(producer)
    got = sorted(m.value() for m in consume(cluster.bootstrap_servers, topic, 1000))
    assert got == sorted([b"%06d" % i + b"z" * 600 for i in range(500)]
                         + [("%06d" % i + "é" * 300).encode() for i in range(500, 1000)])


def test_a_small_payload_nothing_else_keeps_is_copied_not_kept(cluster):
    # kept alive, it would cost more memory than librdkafka's copy
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    message = {"topic": topic, "payload": fresh_payload()}
    # no local name for the payload: it would be one more reference, making it look shared
    start = sys.getrefcount(message["payload"])
    producer = make(cluster, **{"linger.ms": 60_000})
    try:
        handle = producer.produce_many_async([message])[0]
        single = producer.produce_async(message)
        now = sys.getrefcount(message["payload"])
        assert now == start
        assert producer.client.flush(20_000)
        assert handle.wait().error is None and single.wait().error is None
    finally:
        close_within(producer)
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 2)] == [
        message["payload"]] * 2


def test_a_mutable_buffer_is_copied_when_produced(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    buffer = bytearray(b"before")
    start = sys.getrefcount(buffer)
    producer = make(cluster, **{"linger.ms": 200})
    try:
        handle = producer.produce_async(topic=topic, payload=buffer)
        assert sys.getrefcount(buffer) == start   # librdkafka has its own copy
        buffer[:] = b"AFTER!"
        assert handle.wait().error is None
    finally:
        close_within(producer)
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 1)] == [b"before"]


def test_a_failed_delivery_releases_the_payload(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    payload = fresh_payload()
    start = sys.getrefcount(payload)
    producer = make(cluster, **{"message.timeout.ms": 300})
    try:
        cluster.broker_down(1)
        handles = through_both_paths(producer, topic, payload, 5)
        for handle in handles:
            assert handle.wait(raise_response_error=False).error is not None
        assert sys.getrefcount(payload) == start
    finally:
        cluster.broker_up(1)
        close_within(producer)


def test_purge_releases_the_payloads(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    payload = fresh_payload()
    start = sys.getrefcount(payload)
    producer = make(cluster, **{"linger.ms": 60_000})
    try:
        handles = through_both_paths(producer, topic, payload, 10)
        assert sys.getrefcount(payload) == start + 20
        producer.purge()
        for handle in handles:
            assert handle.wait(raise_response_error=False).error.code == "purge_queue"
        assert sys.getrefcount(payload) == start
    finally:
        close_within(producer)


def test_a_forced_close_releases_the_payloads(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    payload = fresh_payload()
    start = sys.getrefcount(payload)
    producer = make(cluster, **{"linger.ms": 60_000})
    handles = through_both_paths(producer, topic, payload, 10)
    producer.close(force=True)
    assert not any(h.pending for h in handles)
    assert sys.getrefcount(payload) == start


def test_inline_failures_release_the_payload(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    payload = fresh_payload()
    start = sys.getrefcount(payload)
    producer = make(cluster, **{"linger.ms": 60_000, "queue.buffering.max.messages": 4})
    try:
        kept = [producer.produce_async(topic=topic, payload=payload) for _ in range(2)]
        # a batch that only partly fits: the messages enqueued stay pinned, the rest not
        with pytest.raises(ProduceManyError) as info:
            producer.produce_many_async([{"topic": topic, "payload": payload}] * 5)
        dispatched = info.value.dispatched
        assert len(dispatched) == 2
        del info   # its traceback holds the batch (and so the payload) too
        gc.collect()
        assert sys.getrefcount(payload) == start + 4
        # a single message that does not fit
        with pytest.raises(ProduceError) as single:
            producer.produce_async(topic=topic, payload=payload)
        assert "queue_full" in str(single.value)
        del single
        gc.collect()
        assert sys.getrefcount(payload) == start + 4
        producer.purge()
        for handle in kept + dispatched:
            assert handle.wait(raise_response_error=False).error.code == "purge_queue"
        assert sys.getrefcount(payload) == start
    finally:
        close_within(producer)


class _Label:
    """A plain object: freed straight to the allocator, where a sanitizer sees any reuse."""


def _timestamp_that_mutates(message: dict, mutate) -> object:
    """A datetime whose arithmetic (run by the contract) changes ``message`` on first use."""
    from datetime import datetime, timezone

    calls = []

    class Mutating(datetime):
        def __sub__(self, other):
            calls.append(1)
            if len(calls) == 1:
                mutate(message)
            return datetime.__sub__(self, other)

    return Mutating(2024, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("many", [False, True], ids=["produce_async", "produce_many_async"])
def test_fields_read_from_a_message_stay_owned_while_python_code_mutates_it(cluster, many):
    # Python code can run while a message is read (a datetime subclass's arithmetic, another
    # thread): values the message held when they were read must stay alive and be the ones
    # sent, never memory the mutation freed (ci/sanitize runs this under ASan).
    import weakref

    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    label = _Label()
    label_ref = weakref.ref(label)
    payload = fresh_payload()
    message = {"topic": topic, "payload": payload, "label": label, "headers": {"trace": "abc"}}

    def mutate(m: dict) -> None:
        m.pop("label")
        m["headers"] = {}
        m["payload"] = b"replaced"

    message["timestamp"] = _timestamp_that_mutates(message, mutate)
    del label
    producer = make(cluster)
    try:
        if many:
            (handle,) = producer.produce_many_async([message])
        else:
            handle = producer.produce_async(message)
        report = handle.wait()
        assert report.error is None
        assert report.label is label_ref() and label_ref() is not None
    finally:
        close_within(producer)
    records = consume(cluster.bootstrap_servers, topic, 1)
    assert [(r.value(), r.headers()) for r in records] == [(payload, [("trace", b"abc")])]
