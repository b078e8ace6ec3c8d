"""The seed's "Headers" section: every example, read back with confluent-kafka. A list value is
KIP-82 repeated headers: one header per item, same key, in order."""

from __future__ import annotations

from tests.helpers import consume, headers_of


def _read_one(bootstrap, topic):
    [message] = consume(bootstrap, topic, 1)
    return message


def test_headers_single_value_per_header(kafka_bootstrap, topic, producer):
    producer.produce_sync(
        topic=topic,
        payload="x",
        headers={"request-id": "123abc", "source": "payment-service"},
    )
    message = _read_one(kafka_bootstrap, topic)
    assert headers_of(message) == [("request-id", b"123abc"), ("source", b"payment-service")]


def test_headers_multiple_values_per_header_key(kafka_bootstrap, topic, producer):
    producer.produce_sync(
        topic=topic,
        payload="x",
        headers={"flags": ["internal", "async"], "source": ["payment-service"]},
    )
    message = _read_one(kafka_bootstrap, topic)
    assert headers_of(message) == [
        ("flags", b"internal"),
        ("flags", b"async"),
        ("source", b"payment-service"),
    ]


def test_headers_sync_with_headers(kafka_bootstrap, topic, producer):
    report = producer.produce_sync(
        topic=topic,
        payload="payload-with-headers",
        headers={"request-id": "abc-123", "tags": ["blue", "fast"]},
    )
    message = _read_one(kafka_bootstrap, topic)
    assert message.value() == b"payload-with-headers"
    assert message.offset() == report.offset
    assert headers_of(message) == [
        ("request-id", b"abc-123"),
        ("tags", b"blue"),
        ("tags", b"fast"),
    ]


def test_headers_async_with_headers(kafka_bootstrap, topic, producer):
    handle = producer.produce_async(
        topic=topic,
        payload="payload-with-headers",
        headers={"tenant-id": "tenant-42", "features": ["beta", "test"]},
    )
    report = handle.wait()
    message = _read_one(kafka_bootstrap, topic)
    assert message.value() == b"payload-with-headers"
    assert message.offset() == report.offset
    assert headers_of(message) == [
        ("tenant-id", b"tenant-42"),
        ("features", b"beta"),
        ("features", b"test"),
    ]


def test_headers_bytes_and_utf8_values(kafka_bootstrap, topic, producer):
    producer.produce_sync(
        topic=topic,
        payload=b"x",
        headers={"bin": b"\x00\xff", "text": "zażółć", "mixed": ["a", b"\x01"]},
    )
    message = _read_one(kafka_bootstrap, topic)
    assert headers_of(message) == [
        ("bin", b"\x00\xff"),
        ("text", "zażółć".encode()),
        ("mixed", b"a"),
        ("mixed", b"\x01"),
    ]


def test_headers_with_many_messages_and_batches(kafka_bootstrap, topic, producer):
    handles = producer.produce_many_sync(
        [
            {"topic": topic, "payload": f"m{i}", "headers": {"n": str(i), "flags": ["a", str(i)]}}
            for i in range(3)
        ]
    )
    assert all(h.report().error is None for h in handles)
    messages = consume(kafka_bootstrap, topic, 3)
    assert [headers_of(m) for m in messages] == [
        [("n", str(i).encode()), ("flags", b"a"), ("flags", str(i).encode())] for i in range(3)
    ]


def test_no_headers_means_no_headers(kafka_bootstrap, topic, producer):
    producer.produce_sync(topic=topic, payload=b"x")
    producer.produce_sync(topic=topic, payload=b"y", headers={})
    messages = consume(kafka_bootstrap, topic, 2)
    assert [headers_of(m) for m in messages] == [[], []]
