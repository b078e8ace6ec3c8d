"""What a message becomes on the broker: payload, key, timestamp, partition, label; read back
with confluent-kafka."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from tests.helpers import consume, create_topic


def _only(bootstrap, topic):
    [message] = consume(bootstrap, topic, 1)
    return message


# --- payloads ------------------------------------------------------------------------------------


def test_str_payload_arrives_as_utf8(kafka_bootstrap, topic, producer):
    text = "zażółć gęślą jaźń – 日本語 – 🚀"
    producer.produce_sync(topic=topic, payload=text)
    assert _only(kafka_bootstrap, topic).value() == text.encode("utf-8")


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"\x00\x01\xfe\xff", b"\x00\x01\xfe\xff"),
        (bytearray(b"from-bytearray"), b"from-bytearray"),
        (memoryview(b"xxfrom-memoryviewxx")[2:-2], b"from-memoryview"),
    ],
    ids=["bytes", "bytearray", "memoryview-slice"],
)
def test_binary_payloads_arrive_byte_for_byte(kafka_bootstrap, topic, producer, payload, expected):
    producer.produce_sync(topic=topic, payload=payload)
    assert _only(kafka_bootstrap, topic).value() == expected


@pytest.mark.parametrize("payload", [b"", ""], ids=["empty-bytes", "empty-str"])
def test_empty_payload_arrives_empty_not_null(kafka_bootstrap, topic, producer, payload):
    producer.produce_sync(topic=topic, payload=payload, key="k")
    value = _only(kafka_bootstrap, topic).value()
    assert value is not None
    assert value == b""


def test_none_payload_is_a_tombstone(kafka_bootstrap, topic, producer):
    producer.produce_sync(topic=topic, payload=None, key="user-1")
    message = _only(kafka_bootstrap, topic)
    assert message.value() is None
    assert message.key() == b"user-1"


def test_tombstone_sync_writes_a_null_value(kafka_bootstrap, topic, producer):
    report = producer.tombstone_sync(topic=topic, key="user-1", partition=0)
    assert report.error is None
    message = _only(kafka_bootstrap, topic)
    assert message.value() is None
    assert message.key() == b"user-1"
    assert (message.partition(), message.offset()) == (0, report.offset)


def test_large_payload_up_to_the_default_max(kafka_bootstrap, topic, producer):
    payload = bytes(range(256)) * 3_000  # 768,000 bytes
    producer.produce_sync(topic=topic, payload=payload)
    assert _only(kafka_bootstrap, topic).value() == payload


# --- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [("order-42", b"order-42"), ("klucz-ż", "klucz-ż".encode()), (b"\x00\xff", b"\x00\xff")],
    ids=["str", "utf8-str", "bytes"],
)
def test_key_arrives(kafka_bootstrap, topic, producer, key, expected):
    producer.produce_sync(topic=topic, payload=b"x", key=key)
    assert _only(kafka_bootstrap, topic).key() == expected


def test_no_key_arrives_as_null_key(kafka_bootstrap, topic, producer):
    producer.produce_sync(topic=topic, payload=b"x")
    assert _only(kafka_bootstrap, topic).key() is None


# --- partitions -------------------------------------------------------------------------------------


@pytest.fixture
def six_partitions(kafka_bootstrap):
    return create_topic(kafka_bootstrap, partitions=6)


def test_explicit_partition_is_honoured(kafka_bootstrap, six_partitions, producer):
    reports = [
        producer.produce_sync(topic=six_partitions, payload=f"p{p}", partition=p)
        for p in (4, 0, 5, 4)
    ]
    assert [r.partition for r in reports] == [4, 0, 5, 4]
    messages = consume(kafka_bootstrap, six_partitions, 4)
    got = sorted((m.partition(), m.offset(), m.value()) for m in messages)
    assert got == [(0, 0, b"p0"), (4, 0, b"p4"), (4, 1, b"p4"), (5, 0, b"p5")]


def test_same_partition_key_lands_on_one_partition(kafka_bootstrap, six_partitions, producer):
    handles = [
        producer.produce_async(topic=six_partitions, payload=f"m{i}", partition_key="user-7")
        for i in range(30)
    ]
    partitions = {h.wait().partition for h in handles}
    assert len(partitions) == 1
    messages = consume(kafka_bootstrap, six_partitions, 30)
    assert {m.partition() for m in messages} == partitions
    # and in order within that partition
    assert [m.value() for m in messages] == [f"m{i}".encode() for i in range(30)]


def test_partition_key_is_not_the_message_key(kafka_bootstrap, six_partitions, producer):
    producer.produce_sync(topic=six_partitions, payload=b"x", partition_key="pk", key="real-key")
    producer.produce_sync(topic=six_partitions, payload=b"y", partition_key="pk")
    messages = consume(kafka_bootstrap, six_partitions, 2)
    assert sorted(m.key() or b"" for m in messages) == [b"", b"real-key"]
    assert len({m.partition() for m in messages}) == 1


def test_different_partition_keys_spread(kafka_bootstrap, six_partitions, producer):
    keys = [f"customer-{i}" for i in range(60)]
    reports = [
        producer.produce_async(topic=six_partitions, payload=k, partition_key=k).wait()
        for k in keys
    ]
    assert len({r.partition for r in reports}) >= 3
    # the same key always maps to the same partition
    again = [
        producer.produce_sync(topic=six_partitions, payload=k, partition_key=k).partition
        for k in keys
    ]
    assert again == [r.partition for r in reports]
    messages = consume(kafka_bootstrap, six_partitions, 120)
    landed = {}
    for m in messages:
        landed.setdefault(m.value(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in landed.values())


def test_partition_key_maps_like_a_key_in_other_librdkafka_clients(
    kafka_bootstrap, six_partitions, producer
):
    # librdkafka's default partitioner (consistent_random: CRC32 of the key) decides, so a
    # partition_key lands where confluent-kafka puts a message with that key.
    from confluent_kafka import Producer as ConfluentProducer

    keys = [f"tenant-{i}" for i in range(24)]
    ours = [producer.produce_sync(topic=six_partitions, payload=b"x", partition_key=k).partition for k in keys]
    landed: dict[str, int] = {}
    theirs = ConfluentProducer({"bootstrap.servers": kafka_bootstrap})
    for k in keys:
        theirs.produce(
            six_partitions, b"y", key=k,
            on_delivery=lambda err, msg, k=k: landed.__setitem__(k, msg.partition()),
        )
    assert theirs.flush(30) == 0
    assert ours == [landed[k] for k in keys]


def test_partition_minus_one_lets_the_partitioner_choose(kafka_bootstrap, six_partitions, producer):
    report = producer.produce_sync(topic=six_partitions, payload=b"x", partition=-1, key="k")
    assert 0 <= report.partition < 6
    assert _only(kafka_bootstrap, six_partitions).partition() == report.partition


# --- timestamps ---------------------------------------------------------------------------------------


@pytest.fixture
def kept_forever(kafka_bootstrap):
    # Old timestamps must not be cleaned up by time-based retention while we read.
    return create_topic(kafka_bootstrap, config={"retention.ms": "-1"})


def _utc_ms(*parts, micro=0):
    return calendar.timegm(dt.datetime(*parts).timetuple()) * 1000 + micro // 1000


def test_timestamp_int_milliseconds(kafka_bootstrap, kept_forever, producer):
    producer.produce_sync(topic=kept_forever, payload=b"x", timestamp=1_600_000_000_123)
    assert _only(kafka_bootstrap, kept_forever).timestamp() == (
        TIMESTAMP_CREATE_TIME,
        1_600_000_000_123,
    )


def test_timestamp_naive_datetime_is_utc(kafka_bootstrap, kept_forever, producer):
    when = dt.datetime(2021, 5, 6, 7, 8, 9, 123_456)
    producer.produce_sync(topic=kept_forever, payload=b"x", timestamp=when)
    assert _only(kafka_bootstrap, kept_forever).timestamp() == (
        TIMESTAMP_CREATE_TIME,
        _utc_ms(2021, 5, 6, 7, 8, 9, micro=123_456),
    )


def test_timestamp_aware_datetime(kafka_bootstrap, kept_forever, producer):
    plus_two = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2021, 5, 6, 9, 8, 9, 123_000, tzinfo=plus_two)  # 07:08:09.123 UTC
    producer.produce_sync(topic=kept_forever, payload=b"x", timestamp=when)
    assert _only(kafka_bootstrap, kept_forever).timestamp() == (
        TIMESTAMP_CREATE_TIME,
        _utc_ms(2021, 5, 6, 7, 8, 9, micro=123_000),
    )


def test_timestamp_with_headers_and_key(kafka_bootstrap, kept_forever, producer):
    producer.produce_sync(
        topic=kept_forever, payload=b"x", key="k", headers={"h": "v"}, timestamp=1_600_000_000_000
    )
    message = _only(kafka_bootstrap, kept_forever)
    assert message.timestamp()[1] == 1_600_000_000_000
    assert message.key() == b"k"
    assert message.headers() == [("h", b"v")]


# --- labels ---------------------------------------------------------------------------------------------


def test_label_comes_back_on_handle_and_report(topic, producer):
    label = {"request": "abc", "attempt": 1}
    handle = producer.produce_async(topic=topic, payload=b"x", label=label)
    assert handle.label is label
    assert handle.wait().label is label
    assert producer.produce_sync(topic=topic, payload=b"y", label="sync-label").label == "sync-label"


def test_labels_in_a_batch(topic, producer):
    handles = producer.produce_many_sync(
        [{"topic": topic, "payload": b"x", "label": f"L{i}"} for i in range(5)]
    )
    assert [h.report().label for h in handles] == [f"L{i}" for i in range(5)]


def test_label_is_never_sent(kafka_bootstrap, topic, producer):
    producer.produce_sync(topic=topic, payload=b"x", label="secret")
    message = _only(kafka_bootstrap, topic)
    assert message.headers() is None
    assert b"secret" not in (message.value() or b"")


# --- the mapping form and the keyword form are the same ------------------------------------------------


def test_mapping_and_keyword_forms_write_the_same(kafka_bootstrap, topic, producer):
    producer.produce_sync({"topic": topic, "payload": b"same", "key": "k", "headers": {"h": "1"}})
    producer.produce_sync(topic=topic, payload=b"same", key="k", headers={"h": "1"})
    first, second = consume(kafka_bootstrap, topic, 2)
    assert (first.value(), first.key(), first.headers()) == (
        second.value(),
        second.key(),
        second.headers(),
    )
