"""The message contract (WaterDrop inventory section 3.1), checked twice for every rule:

- ``waterdrop._core.check_message``: the contract itself;
- the real dispatch path, ``Producer.produce_async`` (and friends) on a producer connected to
  librdkafka's mock cluster: MessageInvalidError with the same ``.errors`` and nothing
  enqueued.

Reasons are spelled out literally (WaterDrop's wording), so a change of wording in
``waterdrop.contracts.wording`` fails here too.
"""

from __future__ import annotations

import datetime as dt
import types

import pytest

from waterdrop import MessageInvalidError, Producer, _core
from waterdrop.contracts import wording
from waterdrop.testing import MockCluster

MISSING = "must be present"
TOPIC = "does not match the topic allowed format"
PAYLOAD = "must be string or nil"
KEY = "must be a non-empty string"
PARTITION = "must be an integer greater or equal to -1"
PARTITION_KEY = "must be a non-empty string"
TIMESTAMP = "must be either time or integer"
HEADERS = "must be a hash"
HEADER_KEY = "all headers keys need to be of type String"
HEADER_VALUE = "all headers values need to be strings or arrays of strings"
MAX_SIZE = "is more than `max_payload_size` config value"
UNKNOWN = "is not a known message key"

T = "contract-topic"


def msg(**fields):
    """A valid message with ``fields`` replacing (or, with value ``DROP``, removing) keys."""
    base = {"topic": T, "payload": b"x"}
    for name, value in fields.items():
        if value is DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


DROP = object()


# (id, message, max_payload_size, expected errors)
INVALID = [
    # required keys
    ("empty-message", {}, 100, {"topic": MISSING, "payload": MISSING}),
    ("missing-topic", msg(topic=DROP), 100, {"topic": MISSING}),
    ("missing-payload", msg(payload=DROP), 100, {"payload": MISSING}),
    # topic: WaterDrop's /\A(\w|-|\.)+\z/ with ASCII \w
    ("topic-space", msg(topic="my topic"), 100, {"topic": TOPIC}),
    ("topic-leading-space", msg(topic=" topic"), 100, {"topic": TOPIC}),
    ("topic-unicode-letter", msg(topic="tópico"), 100, {"topic": TOPIC}),
    ("topic-unicode-word-char", msg(topic="ｔｏｐｉｃ"), 100, {"topic": TOPIC}),
    ("topic-unicode-digit", msg(topic="topic٣"), 100, {"topic": TOPIC}),
    ("topic-empty", msg(topic=""), 100, {"topic": TOPIC}),
    ("topic-slash", msg(topic="a/b"), 100, {"topic": TOPIC}),
    ("topic-trailing-newline", msg(topic="topic\n"), 100, {"topic": TOPIC}),
    ("topic-int", msg(topic=123), 100, {"topic": TOPIC}),
    ("topic-bytes", msg(topic=b"topic"), 100, {"topic": TOPIC}),
    ("topic-none", msg(topic=None), 100, {"topic": TOPIC}),
    # payload
    ("payload-int", msg(payload=1), 100, {"payload": PAYLOAD}),
    ("payload-dict", msg(payload={"a": 1}), 100, {"payload": PAYLOAD}),
    ("payload-bool", msg(payload=True), 100, {"payload": PAYLOAD}),
    ("payload-float", msg(payload=1.5), 100, {"payload": PAYLOAD}),
    ("payload-list", msg(payload=[b"x"]), 100, {"payload": PAYLOAD}),
    ("payload-lone-surrogate", msg(payload="abc\ud800"), 100, {"payload": PAYLOAD}),
    # key / partition_key
    ("key-empty-str", msg(key=""), 100, {"key": KEY}),
    ("key-empty-bytes", msg(key=b""), 100, {"key": KEY}),
    ("key-int", msg(key=1), 100, {"key": KEY}),
    ("key-list", msg(key=["k"]), 100, {"key": KEY}),
    ("key-lone-surrogate", msg(key="\udc00"), 100, {"key": KEY}),
    ("partition-key-empty-str", msg(partition_key=""), 100, {"partition_key": PARTITION_KEY}),
    ("partition-key-empty-bytes", msg(partition_key=b""), 100, {"partition_key": PARTITION_KEY}),
    ("partition-key-int", msg(partition_key=7), 100, {"partition_key": PARTITION_KEY}),
    # partition
    ("partition-minus-two", msg(partition=-2), 100, {"partition": PARTITION}),
    ("partition-none", msg(partition=None), 100, {"partition": PARTITION}),
    ("partition-true", msg(partition=True), 100, {"partition": PARTITION}),
    ("partition-false", msg(partition=False), 100, {"partition": PARTITION}),
    ("partition-over-int32", msg(partition=2**31), 100, {"partition": PARTITION}),
    ("partition-float", msg(partition=1.0), 100, {"partition": PARTITION}),
    ("partition-str", msg(partition="1"), 100, {"partition": PARTITION}),
    # timestamp
    ("timestamp-str", msg(timestamp="2024-01-01"), 100, {"timestamp": TIMESTAMP}),
    ("timestamp-float", msg(timestamp=1_700_000_000_000.0), 100, {"timestamp": TIMESTAMP}),
    ("timestamp-date", msg(timestamp=dt.date(2024, 1, 1)), 100, {"timestamp": TIMESTAMP}),
    # headers
    ("headers-list", msg(headers=[("a", "b")]), 100, {"headers": HEADERS}),
    ("headers-str", msg(headers="a=b"), 100, {"headers": HEADERS}),
    ("header-key-bytes", msg(headers={b"k": "v"}), 100, {"headers": HEADER_KEY}),
    ("header-key-int", msg(headers={1: "v"}), 100, {"headers": HEADER_KEY}),
    ("header-value-int", msg(headers={"k": 1}), 100, {"headers": HEADER_VALUE}),
    ("header-value-none", msg(headers={"k": None}), 100, {"headers": HEADER_VALUE}),
    ("header-value-list-with-int", msg(headers={"k": ["a", 1]}), 100, {"headers": HEADER_VALUE}),
    ("header-value-dict", msg(headers={"k": {"a": "b"}}), 100, {"headers": HEADER_VALUE}),
    ("header-value-lone-surrogate", msg(headers={"k": "\ud800"}), 100, {"headers": HEADER_VALUE}),
    # payload size: only the payload counts, in bytes (str: UTF-8 bytes)
    ("bytes-over-max", msg(payload=b"x" * 11), 10, {"payload": MAX_SIZE}),
    ("str-over-max-in-utf8", msg(payload="é" * 5 + "a"), 10, {"payload": MAX_SIZE}),
    ("bytearray-over-max", msg(payload=bytearray(11)), 10, {"payload": MAX_SIZE}),
    ("memoryview-over-max", msg(payload=memoryview(bytes(11))), 10, {"payload": MAX_SIZE}),
    # unknown keys are refused up front
    ("unknown-key", msg(foo=1), 100, {"foo": UNKNOWN}),
    ("unknown-key-topic-config", msg(topic_config={"acks": 1}), 100, {"topic_config": UNKNOWN}),
    # several plain rules at once: all reported
    (
        "several-errors",
        {"topic": "", "payload": 1, "key": "", "partition": -5, "extra": 1},
        100,
        {"topic": TOPIC, "payload": PAYLOAD, "key": KEY, "partition": PARTITION, "extra": UNKNOWN},
    ),
    # virtual rules (size) only run when the plain rules passed (WaterDrop reports in stages)
    ("size-not-checked-with-other-errors", msg(topic="", payload=b"x" * 11), 10, {"topic": TOPIC}),
]

VALID = [
    ("minimal", msg(), 100),
    ("topic-all-allowed-chars", msg(topic="Az09_-.x"), 100),
    ("topic-long", msg(topic="t" * 300), 100),
    ("payload-str", msg(payload="text"), 100),
    ("payload-empty-bytes", msg(payload=b""), 100),
    ("payload-empty-str", msg(payload=""), 100),
    ("payload-bytearray", msg(payload=bytearray(b"abc")), 100),
    ("payload-memoryview", msg(payload=memoryview(b"abc")), 100),
    ("payload-none-tombstone", msg(payload=None, key="k"), 100),
    ("key-str", msg(key="k"), 100),
    ("key-bytes", msg(key=b"\x00\xff"), 100),
    ("key-none", msg(key=None), 100),
    ("partition-key-str", msg(partition_key="pk"), 100),
    ("partition-key-bytes", msg(partition_key=b"pk"), 100),
    ("partition-key-none", msg(partition_key=None), 100),
    ("partition-minus-one", msg(partition=-1), 100),
    ("partition-zero", msg(partition=0), 100),
    ("partition-int32-max", msg(partition=2**31 - 1), 100),
    ("timestamp-int-ms", msg(timestamp=1_700_000_000_000), 100),
    ("timestamp-naive-datetime", msg(timestamp=dt.datetime(2024, 1, 2, 3, 4, 5)), 100),
    (
        "timestamp-aware-datetime",
        msg(timestamp=dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        100,
    ),
    ("timestamp-none", msg(timestamp=None), 100),
    ("headers-none", msg(headers=None), 100),
    ("headers-empty", msg(headers={}), 100),
    ("headers-str-values", msg(headers={"request-id": "123abc", "source": "svc"}), 100),
    ("headers-bytes-value", msg(headers={"bin": b"\x00\x01"}), 100),
    ("headers-list-values", msg(headers={"flags": ["internal", "async"], "s": ["x"]}), 100),
    ("headers-mixed-list", msg(headers={"flags": ["a", b"b"]}), 100),
    ("label-any-object", msg(label=object()), 100),
    ("label-none", msg(label=None), 100),
    ("bytes-at-max", msg(payload=b"x" * 10), 10),
    ("str-at-max-in-utf8", msg(payload="é" * 5), 10),
    ("bytearray-at-max", msg(payload=bytearray(10)), 10),
    ("memoryview-at-max", msg(payload=memoryview(bytes(10))), 10),
    ("tombstone-ignores-max", msg(payload=None), 1),
]


def test_wording_table_is_waterdrops():
    assert wording.MESSAGE["missing"] == MISSING
    assert wording.MESSAGE["topic_format"] == TOPIC
    assert wording.MESSAGE["payload_format"] == PAYLOAD
    assert wording.MESSAGE["key_format"] == KEY
    assert wording.MESSAGE["partition_format"] == PARTITION
    assert wording.MESSAGE["partition_key_format"] == PARTITION_KEY
    assert wording.MESSAGE["timestamp_format"] == TIMESTAMP
    assert wording.MESSAGE["headers_format"] == HEADERS
    assert wording.MESSAGE["headers_invalid_key_type"] == HEADER_KEY
    assert wording.MESSAGE["headers_invalid_value_type"] == HEADER_VALUE
    assert wording.MESSAGE["payload_max_size"] == MAX_SIZE


# --- the contract itself ---------------------------------------------------------------------


@pytest.mark.parametrize("message, max_size, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_check_message_rejects(message, max_size, expected):
    assert _core.check_message(message, max_size) == expected


@pytest.mark.parametrize("message, max_size", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_check_message_accepts(message, max_size):
    assert _core.check_message(message, max_size) == {}


def test_check_message_default_max_is_waterdrops():
    assert _core.check_message(msg(payload=b"x" * 1_000_012)) == {}
    assert _core.check_message(msg(payload=b"x" * 1_000_013)) == {"payload": MAX_SIZE}


@pytest.mark.parametrize("message", [None, [("topic", "t")], "topic", 42], ids=repr)
def test_non_mapping_message_reports_required_keys_missing(message):
    assert _core.check_message(message) == {"topic": MISSING, "payload": MISSING}


def test_non_dict_mapping_is_checked_like_a_dict():
    assert _core.check_message(types.MappingProxyType(msg())) == {}
    assert _core.check_message(types.MappingProxyType(msg(key=""))) == {"key": KEY}


def test_non_contiguous_memoryview_payload_is_rejected():
    view = memoryview(b"abcdef")[::2]
    assert _core.check_message(msg(payload=view)) == {"payload": PAYLOAD}


# --- the real dispatch path ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_cluster():
    with MockCluster(brokers=1) as cluster:
        cluster.create_topic(T, partitions=1)
        yield cluster


@pytest.fixture
def producer(mock_cluster):
    """A producer on the mock cluster; max_payload_size 10 so size cases apply as listed."""
    producer = Producer(
        kafka={"bootstrap.servers": mock_cluster.bootstrap_servers, "message.timeout.ms": 10_000},
        max_payload_size=10,
        max_wait_timeout=20_000,
    )
    yield producer
    producer.close()


def _invalid_for_producer(cases):
    """The same cases on a producer whose max_payload_size is 10: every case listed with 100
    has a payload of at most 10 bytes, so its expectation holds there too."""
    out = []
    for name, message, max_size, expected in cases:
        if max_size != 10:
            payload = message.get("payload") if isinstance(message, dict) else None
            assert not isinstance(payload, (bytes, bytearray)) or len(payload) <= 10, name
        out.append(pytest.param(message, expected, id=name))
    return out


PRODUCER_INVALID = _invalid_for_producer(INVALID)


@pytest.mark.parametrize("message, expected", PRODUCER_INVALID)
def test_produce_async_rejects_and_enqueues_nothing(producer, message, expected):
    snapshot = dict(message)
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(message)
    assert info.value.errors == expected
    assert producer.queue_size == 0
    assert message == snapshot, "the caller's message is never mutated"


@pytest.mark.parametrize("message, expected", PRODUCER_INVALID)
def test_produce_sync_rejects(producer, message, expected):
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_sync(message)
    assert info.value.errors == expected
    assert producer.queue_size == 0


def test_keyword_form_is_validated_like_the_mapping_form(producer):
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic="bad topic", payload=b"x")
    assert info.value.errors == {"topic": TOPIC}
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload=b"x", colour="red")
    assert info.value.errors == {"colour": UNKNOWN}


def test_str_payload_size_is_utf8_bytes_on_the_real_path(producer):
    # 6 characters, 11 UTF-8 bytes: over a max of 10 although len() is 6
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload="é" * 5 + "a")
    assert info.value.errors == {"payload": MAX_SIZE}
    # 5 characters, 10 bytes: exactly the max, accepted
    report = producer.produce_sync(topic=T, payload="é" * 5, partition=0)
    assert report.error is None


def test_lone_surrogate_is_a_message_error_not_unicode_error(producer):
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload="\ud800")
    assert info.value.errors == {"payload": PAYLOAD}


@pytest.mark.parametrize("method", ["produce_many_async", "produce_many_sync"])
def test_produce_many_with_one_invalid_message_sends_nothing(mock_cluster, method):
    topic = "many-" + method
    mock_cluster.create_topic(topic, partitions=1)
    producer = Producer(
        kafka={"bootstrap.servers": mock_cluster.bootstrap_servers}, max_wait_timeout=20_000
    )
    try:
        batch = [{"topic": topic, "payload": f"m{i}", "partition": 0} for i in range(5)]
        batch.insert(3, {"topic": topic, "payload": 42, "partition": 0})
        with pytest.raises(MessageInvalidError) as info:
            getattr(producer, method)(batch)
        assert info.value.errors == {"payload": PAYLOAD}
        assert producer.queue_size == 0
        # Nothing reached the partition: the next message gets offset 0.
        assert producer.produce_sync(topic=topic, payload=b"after", partition=0).offset == 0
    finally:
        producer.close()


def test_valid_messages_go_through_the_real_path(producer):
    accepted = [
        m for _, m, size in VALID
        if size == 100 and m["topic"] == T and m.get("partition", 0) in (-1, 0)
    ]
    assert len(accepted) > 20
    handles = [producer.produce_async(m) for m in accepted]
    for handle in handles:
        report = handle.wait()
        assert report.error is None
        assert report.topic_name == T
        assert report.offset >= 0


# --- the tombstone contract (inventory 3.2) ---------------------------------------------------


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"topic": T, "partition": 0}, {"key": MISSING}),
        ({"topic": T, "key": "k"}, {"partition": MISSING}),
        ({"topic": T, "key": "", "partition": 0}, {"key": KEY}),
        ({"topic": T, "key": 5, "partition": 0}, {"key": KEY}),
        (
            {"topic": T, "key": "k", "partition": -1},
            {"partition": "must be an integer greater or equal to 0"},
        ),
        (
            {"topic": T, "key": "k", "partition": None},
            {"partition": "must be an integer greater or equal to 0"},
        ),
        ({"topic": T}, {"key": MISSING, "partition": MISSING}),
    ],
    ids=["no-key", "no-partition", "empty-key", "int-key", "partition-minus-one",
         "partition-none", "neither"],
)
@pytest.mark.parametrize("method", ["tombstone_sync", "tombstone_async"])
def test_tombstone_contract(producer, method, fields, expected):
    with pytest.raises(MessageInvalidError) as info:
        getattr(producer, method)(**fields)
    assert info.value.errors == expected
    assert producer.queue_size == 0


def test_tombstone_many_with_one_invalid_sends_nothing(producer):
    with pytest.raises(MessageInvalidError):
        producer.tombstone_many_async(
            [{"topic": T, "key": "a", "partition": 0}, {"topic": T, "key": "b"}]
        )
    assert producer.queue_size == 0


def test_tombstone_is_a_null_payload_to_the_given_partition(producer):
    report = producer.tombstone_sync(topic=T, key="user-1", partition=0)
    assert report.error is None
    assert report.partition == 0
