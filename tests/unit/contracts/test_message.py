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
import re
import types

import pytest

from waterdrop import MessageInvalidError, Producer, _core
from waterdrop.contracts import wording
from waterdrop.testing import MockCluster

MISSING = "must be present"
CHARS = "a topic name uses only ASCII letters, digits, '.', '_' and '-'"
PAYLOAD_TYPES = "must be bytes, bytearray, memoryview, str or None, got "
KEY_TYPES = "must be a non-empty str or bytes, got "
NOT_UTF8 = "must be encodable as UTF-8 (it holds a lone surrogate)"
PARTITION = "must be an int >= -1, got "
TIMESTAMP = "must be an int (milliseconds since the epoch) or a datetime.datetime, got "
HEADERS = "must be a dict or None, got "
HEADER_VALUE = "values must be str, bytes or a list of those: "
UNKNOWN = (
    "is not a message field "
    "(the fields are topic, payload, key, partition, partition_key, timestamp, headers, label)"
)


TOMBSTONE_KEY = "must be present (a tombstone names the key it deletes)"
TOMBSTONE_PARTITION = "must be present (a tombstone names its partition: the key's partition)"


class Text(str):
    pass


class Blob(bytes):
    pass


class Headers(dict):
    pass


def topic_char(topic, char):
    return f"{topic!r} has the character {char!r}: {CHARS}"


def max_size(size, limit):
    return f"is {size:,} bytes, above max_payload_size {limit:,}"


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
    ("topic-space", msg(topic="my topic"), 100, {"topic": topic_char("my topic", " ")}),
    ("topic-leading-space", msg(topic=" topic"), 100, {"topic": topic_char(" topic", " ")}),
    ("topic-unicode-letter", msg(topic="tópico"), 100, {"topic": topic_char("tópico", "ó")}),
    ("topic-unicode-word-char", msg(topic="ｔｏｐｉｃ"), 100, {"topic": topic_char("ｔｏｐｉｃ", "ｔ")}),
    ("topic-unicode-digit", msg(topic="topic٣"), 100, {"topic": topic_char("topic٣", "٣")}),
    ("topic-empty", msg(topic=""), 100, {"topic": "must not be empty"}),
    ("topic-slash", msg(topic="a/b"), 100, {"topic": topic_char("a/b", "/")}),
    ("topic-trailing-newline", msg(topic="topic\n"), 100, {"topic": topic_char("topic\n", "\n")}),
    ("topic-int", msg(topic=123), 100, {"topic": "must be a str, got int"}),
    ("topic-bytes", msg(topic=b"topic"), 100, {"topic": "must be a str, got bytes"}),
    ("topic-none", msg(topic=None), 100, {"topic": "must be a str, got None"}),
    # Kafka's limit: 249 characters
    (
        "topic-250", msg(topic="t" * 250), 100,
        {"topic": "is 250 characters long, above Kafka's limit of 249"},
    ),
    (
        "topic-300", msg(topic="t" * 300), 100,
        {"topic": "is 300 characters long, above Kafka's limit of 249"},
    ),
    # payload
    ("payload-int", msg(payload=1), 100, {"payload": PAYLOAD_TYPES + "int"}),
    ("payload-dict", msg(payload={"a": 1}), 100, {"payload": PAYLOAD_TYPES + "dict"}),
    ("payload-bool", msg(payload=True), 100, {"payload": PAYLOAD_TYPES + "True"}),
    ("payload-float", msg(payload=1.5), 100, {"payload": PAYLOAD_TYPES + "float"}),
    ("payload-list", msg(payload=[b"x"]), 100, {"payload": PAYLOAD_TYPES + "list"}),
    ("payload-lone-surrogate", msg(payload="abc\ud800"), 100, {"payload": NOT_UTF8}),
    # key / partition_key
    ("key-empty-str", msg(key=""), 100, {"key": "must not be empty (got an empty str)"}),
    ("key-empty-bytes", msg(key=b""), 100, {"key": "must not be empty (got an empty bytes)"}),
    ("key-int", msg(key=1), 100, {"key": KEY_TYPES + "int"}),
    ("key-list", msg(key=["k"]), 100, {"key": KEY_TYPES + "list"}),
    ("key-lone-surrogate", msg(key="\udc00"), 100, {"key": NOT_UTF8}),
    (
        "partition-key-empty-str", msg(partition_key=""), 100,
        {"partition_key": "must not be empty (got an empty str)"},
    ),
    (
        "partition-key-empty-bytes", msg(partition_key=b""), 100,
        {"partition_key": "must not be empty (got an empty bytes)"},
    ),
    ("partition-key-int", msg(partition_key=7), 100, {"partition_key": KEY_TYPES + "int"}),
    # partition
    ("partition-minus-two", msg(partition=-2), 100, {"partition": "is -2, below -1"}),
    ("partition-none", msg(partition=None), 100, {"partition": PARTITION + "None"}),
    ("partition-true", msg(partition=True), 100, {"partition": PARTITION + "True"}),
    ("partition-false", msg(partition=False), 100, {"partition": PARTITION + "False"}),
    (
        "partition-over-int32", msg(partition=2**31), 100,
        {"partition": "is 2,147,483,648, above the largest partition number 2,147,483,647"},
    ),
    ("partition-float", msg(partition=1.0), 100, {"partition": PARTITION + "float"}),
    ("partition-str", msg(partition="1"), 100, {"partition": PARTITION + "str"}),
    # timestamp
    ("timestamp-str", msg(timestamp="2024-01-01"), 100, {"timestamp": TIMESTAMP + "str"}),
    (
        "timestamp-float", msg(timestamp=1_700_000_000_000.0), 100,
        {"timestamp": TIMESTAMP + "float"},
    ),
    ("timestamp-date", msg(timestamp=dt.date(2024, 1, 1)), 100, {"timestamp": TIMESTAMP + "date"}),
    (
        "timestamp-negative", msg(timestamp=-1), 100,
        {"timestamp": "is -1, before the epoch (must be >= 0)"},
    ),
    (
        "timestamp-before-epoch", msg(timestamp=dt.datetime(1969, 12, 31)), 100,
        {"timestamp": "is 1969-12-31T00:00:00, before the epoch (1970-01-01 UTC)"},
    ),
    # headers
    ("headers-list", msg(headers=[("a", "b")]), 100, {"headers": HEADERS + "list"}),
    ("headers-str", msg(headers="a=b"), 100, {"headers": HEADERS + "str"}),
    (
        "header-key-bytes", msg(headers={b"k": "v"}), 100,
        {"headers": "keys must be str, got bytes (b'k')"},
    ),
    ("header-key-int", msg(headers={1: "v"}), 100, {"headers": "keys must be str, got int (1)"}),
    ("header-value-int", msg(headers={"k": 1}), 100, {"headers": HEADER_VALUE + "'k' has int"}),
    (
        "header-value-none", msg(headers={"k": None}), 100,
        {"headers": HEADER_VALUE + "'k' has None"},
    ),
    (
        "header-value-list-with-int", msg(headers={"k": ["a", 1]}), 100,
        {"headers": HEADER_VALUE + "'k' has int in a list"},
    ),
    (
        "header-value-dict", msg(headers={"k": {"a": "b"}}), 100,
        {"headers": HEADER_VALUE + "'k' has dict"},
    ),
    (
        "header-value-lone-surrogate", msg(headers={"k": "\ud800"}), 100,
        {"headers": "'k' holds a str that is not encodable as UTF-8 (a lone surrogate)"},
    ),
    # payload size: only the payload counts, in bytes (str: UTF-8 bytes)
    ("bytes-over-max", msg(payload=b"x" * 11), 10, {"payload": max_size(11, 10)}),
    ("str-over-max-in-utf8", msg(payload="é" * 5 + "a"), 10, {"payload": max_size(11, 10)}),
    ("bytearray-over-max", msg(payload=bytearray(11)), 10, {"payload": max_size(11, 10)}),
    (
        "memoryview-over-max", msg(payload=memoryview(bytes(11))), 10,
        {"payload": max_size(11, 10)},
    ),
    # subclasses of the named types are refused, and the reason names the subclass
    (
        "topic-str-subclass", msg(topic=Text("topic")), 100,
        {"topic": "must be a str, got Text"},
    ),
    (
        "payload-str-subclass", msg(payload=Text("x")), 100,
        {"payload": PAYLOAD_TYPES + "Text"},
    ),
    ("key-bytes-subclass", msg(key=Blob(b"k")), 100, {"key": KEY_TYPES + "Blob"}),
    (
        "headers-dict-subclass", msg(headers=Headers(a="b")), 100,
        {"headers": HEADERS + "Headers"},
    ),
    (
        "header-value-str-subclass", msg(headers={"k": Text("v")}), 100,
        {"headers": HEADER_VALUE + "'k' has Text"},
    ),
    # unknown keys are refused up front
    ("unknown-key", msg(foo=1), 100, {"foo": UNKNOWN}),
    ("unknown-key-topic-config", msg(topic_config={"acks": 1}), 100, {"topic_config": UNKNOWN}),
    # several plain rules at once: all reported
    (
        "several-errors",
        {"topic": "", "payload": 1, "key": "", "partition": -5, "extra": 1},
        100,
        {
            "topic": "must not be empty",
            "payload": PAYLOAD_TYPES + "int",
            "key": "must not be empty (got an empty str)",
            "partition": "is -5, below -1",
            "extra": UNKNOWN,
        },
    ),
    # virtual rules (size) only run when the plain rules passed (WaterDrop reports in stages)
    (
        "size-not-checked-with-other-errors", msg(topic="", payload=b"x" * 11), 10,
        {"topic": "must not be empty"},
    ),
]

VALID = [
    ("minimal", msg(), 100),
    ("topic-all-allowed-chars", msg(topic="Az09_-.x"), 100),
    ("topic-249-characters", msg(topic="t" * 249), 100),
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


def test_no_reason_is_in_rubys_words():
    """API.md: reasons in Python's words (None, dict, list), never nil / hash / array."""
    texts = [
        *wording.MESSAGE.values(), *wording.TOMBSTONE.values(), *wording.CONFIG.values(),
        *wording.VARIANT.values(), *wording.TRANSACTIONAL_OFFSET.values(),
    ]
    texts += [reason for _, message, size, errors in INVALID for reason in errors.values()]
    ruby = re.compile(r"\b(nil|hash|array|symbols?|String|Integer|Hash)\b|#\w")
    for text in texts:
        assert not ruby.search(text), text


# --- the contract itself ---------------------------------------------------------------------


@pytest.mark.parametrize("message, max_size, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_check_message_rejects(message, max_size, expected):
    assert _core.check_message(message, max_size) == expected


@pytest.mark.parametrize("message, max_size", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_check_message_accepts(message, max_size):
    assert _core.check_message(message, max_size) == {}


def test_check_message_default_max_is_waterdrops():
    assert _core.check_message(msg(payload=b"x" * 1_000_012)) == {}
    assert _core.check_message(msg(payload=b"x" * 1_000_013)) == {
        "payload": "is 1,000,013 bytes, above max_payload_size 1,000,012"
    }


@pytest.mark.parametrize(
    "message, got", [(None, "None"), ([("topic", "t")], "list"), ("topic", "str"), (42, "int")],
    ids=repr,
)
def test_non_mapping_message_reports_required_keys_missing_and_what_it_got(message, got):
    reason = f"must be present: a message is a dict of its fields, got {got}"
    assert _core.check_message(message) == {"topic": reason, "payload": reason}


@pytest.mark.parametrize("method", ["produce_sync", "produce_many_sync", "tombstone_sync",
                                    "tombstone_many_sync"])
def test_a_non_mapping_message_is_refused_with_what_it_was(producer, method):
    many = "many" in method
    with pytest.raises(MessageInvalidError) as info:
        getattr(producer, method)(["not", "a message"] if many else "not a message")
    fields = ("key", "partition") if "tombstone" in method else ("topic", "payload")
    reason = "must be present: a message is a dict of its fields, got str"
    assert info.value.errors == {name: reason for name in fields}
    assert info.value.index == (0 if many else None)


def test_non_dict_mapping_is_checked_like_a_dict():
    assert _core.check_message(types.MappingProxyType(msg())) == {}
    assert _core.check_message(types.MappingProxyType(msg(key=""))) == {
        "key": "must not be empty (got an empty str)"
    }


def test_non_contiguous_memoryview_payload_is_rejected():
    view = memoryview(b"abcdef")[::2]
    assert _core.check_message(msg(payload=view)) == {
        "payload": "is a memoryview that is not C-contiguous (use bytes(view) or a contiguous view)"
    }


def test_released_memoryview_payload_is_rejected():
    view = memoryview(b"abc")
    view.release()
    assert _core.check_message(msg(payload=view)) == {"payload": "is a released memoryview"}


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
    assert info.value.errors == {"topic": topic_char("bad topic", " ")}
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload=b"x", colour="red")
    assert info.value.errors == {"colour": UNKNOWN}


def test_str_payload_size_is_utf8_bytes_on_the_real_path(producer):
    # 6 characters, 11 UTF-8 bytes: over a max of 10 although len() is 6
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload="é" * 5 + "a")
    assert info.value.errors == {"payload": max_size(11, 10)}
    # 5 characters, 10 bytes: exactly the max, accepted
    report = producer.produce_sync(topic=T, payload="é" * 5, partition=0)
    assert report.error is None


def test_lone_surrogate_is_a_message_error_not_unicode_error(producer):
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_async(topic=T, payload="\ud800")
    assert info.value.errors == {"payload": NOT_UTF8}


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
        assert info.value.errors == {"payload": PAYLOAD_TYPES + "int"}
        assert info.value.index == 3
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
        ({"topic": T, "partition": 0}, {"key": TOMBSTONE_KEY}),
        ({"topic": T, "key": "k"}, {"partition": TOMBSTONE_PARTITION}),
        ({"topic": T, "key": "", "partition": 0}, {"key": "must not be empty (got an empty str)"}),
        ({"topic": T, "key": 5, "partition": 0}, {"key": KEY_TYPES + "int"}),
        ({"topic": T, "key": "k", "partition": -1}, {"partition": "is -1, below 0"}),
        (
            {"topic": T, "key": "k", "partition": None},
            {"partition": "must be an int >= 0, got None"},
        ),
        ({"topic": T}, {"key": TOMBSTONE_KEY, "partition": TOMBSTONE_PARTITION}),
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
