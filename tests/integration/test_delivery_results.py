"""The seed's "Delivery Results" section: delivery reports (sync) and delivery handles (async),
each checked against what an independent consumer reads."""

from __future__ import annotations

import pytest

from tests.helpers import consume, create_topic, message_count
from waterdrop import DeliveryHandle, DeliveryReport, KafkaError


def test_delivery_reports_produce_sync(kafka_bootstrap, topic, producer):
    report = producer.produce_sync(topic=topic, payload="my_payload")
    # "This sent message has an offset #{report.offset} on partition #{report.partition}"
    # "This sent message was sent to #{report.topic_name} topic"
    assert isinstance(report, DeliveryReport)
    assert report.topic_name == topic
    assert report.topic == topic
    assert report.error is None
    [message] = consume(kafka_bootstrap, topic, 1)
    assert (message.topic(), message.partition(), message.offset()) == (
        report.topic_name,
        report.partition,
        report.offset,
    )
    assert message.value() == b"my_payload"


def test_delivery_handles_wait(kafka_bootstrap, topic, producer):
    handle = producer.produce_async(topic=topic, payload="my_payload", label="unique-id")
    assert isinstance(handle, DeliveryHandle)
    assert handle.label == "unique-id"
    report = handle.wait()
    assert not handle.pending
    assert report.topic_name == topic
    assert report.label == "unique-id"
    assert report.error is None
    [message] = consume(kafka_bootstrap, topic, 1)
    assert (message.partition(), message.offset()) == (report.partition, report.offset)
    assert message.value() == b"my_payload"


def test_delivery_handles_wait_without_raising_on_success(kafka_bootstrap, topic, producer):
    handle = producer.produce_async(topic=topic, payload="my_payload")
    report = handle.wait(raise_response_error=False)
    assert report.error is None
    assert report.topic_name == topic
    [message] = consume(kafka_bootstrap, topic, 1)
    assert (message.partition(), message.offset()) == (report.partition, report.offset)


def test_delivery_handles_wait_without_raising_on_failure(kafka_bootstrap, make_producer):
    # A real broker-side rejection: the topic takes at most 1,000 bytes per batch.
    topic = create_topic(kafka_bootstrap, config={"max.message.bytes": "1000"})
    producer = make_producer()
    handle = producer.produce_async(topic=topic, payload=b"\xab" * 5_000)
    report = handle.wait(raise_response_error=False)
    # "if report.error: puts "Following issue occurred #{report.error}""
    assert isinstance(report.error, KafkaError)
    assert report.error.code == "msg_size_too_large"
    assert report.topic_name == topic
    assert message_count(kafka_bootstrap, topic) == 0


def test_report_is_the_same_on_every_wait(topic, producer):
    handle = producer.produce_async(topic=topic, payload=b"x", label=("a", 1))
    first = handle.wait()
    second = handle.wait(raise_response_error=False)
    assert (first.offset, first.partition, first.label) == (second.offset, second.partition, ("a", 1))
    assert handle.report().offset == first.offset


def test_wait_with_its_own_timeout(topic, producer):
    handle = producer.produce_async(topic=topic, payload=b"x")
    assert handle.wait(max_wait_timeout=30_000).error is None


@pytest.mark.parametrize("method", ["produce_many_sync", "produce_many_async"])
def test_produce_many_reports_match_what_was_written(kafka_bootstrap, topic, producer, method):
    batch = [{"topic": topic, "payload": f"m{i}", "label": i} for i in range(50)]
    handles = getattr(producer, method)(batch)
    if method == "produce_many_sync":
        assert all(not h.pending for h in handles)
    reports = [h.wait() for h in handles]
    assert [r.label for r in reports] == list(range(50))
    assert [r.offset for r in reports] == list(range(50))
    messages = consume(kafka_bootstrap, topic, 50)
    assert [(m.offset(), m.value()) for m in messages] == [
        (i, f"m{i}".encode()) for i in range(50)
    ]


async def _await(handle):
    return await handle


def test_await_handle_from_asyncio(topic, producer):
    import asyncio

    handle = producer.produce_async(topic=topic, payload=b"x", label="aio")
    report = asyncio.run(_await(handle))
    assert report.error is None
    assert report.label == "aio"
    assert report.offset == 0
