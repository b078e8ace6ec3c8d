"""The seed's "WaterDrop Usage" section, one test per call, in Python form; every message is
read back with confluent-kafka's Consumer."""

from __future__ import annotations

from tests.helpers import consume, message_count
from waterdrop import DeliveryReport, Producer, Status


def _seed_producer(bootstrap: str) -> Producer:
    # producer = WaterDrop::Producer.new
    # producer.setup { |config| config.kafka = { 'bootstrap.servers': 'localhost:9092' } }
    producer = Producer()

    def configure(config):
        config.kafka = {"bootstrap.servers": bootstrap}

    producer.setup(configure)
    return producer


def test_usage_produce_sync(kafka_bootstrap, topic):
    producer = _seed_producer(kafka_bootstrap)
    try:
        report = producer.produce_sync(topic=topic, payload="my message")
    finally:
        producer.close()
    assert isinstance(report, DeliveryReport)
    assert report.error is None
    [message] = consume(kafka_bootstrap, topic, 1)
    assert message.value() == b"my message"
    assert (message.partition(), message.offset()) == (report.partition, report.offset)


def test_usage_produce_async(kafka_bootstrap, topic):
    producer = _seed_producer(kafka_bootstrap)
    try:
        handle = producer.produce_async(topic=topic, payload="my message")
        report = handle.wait()
    finally:
        producer.close()
    assert report.error is None
    [message] = consume(kafka_bootstrap, topic, 1)
    assert message.value() == b"my message"
    assert message.offset() == report.offset


def test_usage_produce_many_sync(kafka_bootstrap, topic):
    producer = _seed_producer(kafka_bootstrap)
    try:
        handles = producer.produce_many_sync(
            [
                {"topic": topic, "payload": "my message"},
                {"topic": topic, "payload": "my message"},
            ]
        )
        # all final on return: no waiting needed
        assert [h.pending for h in handles] == [False, False]
        reports = [h.report() for h in handles]
    finally:
        producer.close()
    assert [r.error for r in reports] == [None, None]
    assert sorted(r.offset for r in reports) == [0, 1]
    messages = consume(kafka_bootstrap, topic, 2)
    assert [m.value() for m in messages] == [b"my message", b"my message"]
    assert [m.offset() for m in messages] == [r.offset for r in reports]


def test_usage_produce_many_async(kafka_bootstrap, topic):
    producer = _seed_producer(kafka_bootstrap)
    try:
        handles = producer.produce_many_async(
            [
                {"topic": topic, "payload": "my message"},
                {"topic": topic, "payload": "my message"},
            ]
        )
        assert len(handles) == 2
        reports = [h.wait() for h in handles]
    finally:
        producer.close()
    assert [r.offset for r in reports] == [0, 1]
    messages = consume(kafka_bootstrap, topic, 2)
    assert [(m.offset(), m.value()) for m in messages] == [(0, b"my message"), (1, b"my message")]


def test_usage_close_flushes_internal_buffers(kafka_bootstrap, topic):
    # "Don't forget to close the producer once you're done to flush the internal buffers":
    # a long linger keeps the message in librdkafka's buffer until close() sends it.
    producer = Producer(
        kafka={"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.ms": 30_000}
    )
    handle = producer.produce_async(topic=topic, payload="my message")
    assert handle.pending
    producer.close()
    assert producer.status is Status.CLOSED
    assert not handle.pending
    assert handle.wait().error is None
    assert message_count(kafka_bootstrap, topic) == 1
    [message] = consume(kafka_bootstrap, topic, 1)
    assert message.value() == b"my message"
