"""produce_many_async's fast path for plain messages (only topic / payload / key / partition,
exact types) and the direct handle constructor: the same outcome as the general path for
every field combination, the same refusals, and handles that start as the general ones did.

Each message is produced twice: inside a produce_many_async batch (the fast path when it is
plain) and alone through produce_async (the general path), and the two records must match.
"""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import product

import pytest

from tests.helpers import close_within, consume, unique_topic
from waterdrop import Producer, _core

from waterdrop.errors import MessageInvalidError

pytestmark = pytest.mark.timeout(120)


def make(cluster):
    return Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 5},
                    max_wait_timeout=30_000)


def record(message):
    """What a consumer sees of a message, without the offset."""
    return (message.value(), message.key(), message.partition(), message.headers(),
            message.timestamp()[1] if message.timestamp()[0] == 1 else None)


def built(text: str) -> str:
    """An equal str that is not the interned literal (the fast path matches by identity)."""
    return "".join(list(text))


def plain_variants(topic):
    """Every combination of the plain fields, and each of them with one thing that is not."""
    out = []
    for key, partition in product([None, b"k1", b"kk" * 40], [None, -1, 0, 2]):
        m = {"topic": topic, "payload": b"v-%d-%s" % (len(out), key or b"")}
        if key is not None:
            m["key"] = key
        if partition is not None:
            m["partition"] = partition
        out.append(m)
    n = len(out)
    general = [
        {"topic": topic, "payload": "str-%d" % n},                  # str payload
        {"topic": topic, "payload": b"x", "key": "str-key"},        # str key
        {"topic": topic, "payload": None, "key": b"tomb"},          # tombstone
        {"topic": topic, "payload": bytearray(b"buf")},             # mutable buffer
        {"topic": topic, "payload": b"lab", "label": {"n": 1}},     # label
        {"topic": topic, "payload": b"hdr", "headers": {"h": "v", "l": ["a", b"b"]}},
        {"topic": topic, "payload": b"ts", "timestamp": 1_700_000_000_123},
        {"topic": topic, "payload": b"dt",
         "timestamp": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)},
        {"topic": topic, "payload": b"pk", "partition_key": "pk-1"},
        {"topic": topic, "payload": b"pk2", "partition_key": b"pk-2", "key": b"k"},
        {"topic": topic, "payload": b"none-key", "key": None},
        {built("topic"): topic, built("payload"): b"by-value"},     # keys equal, not interned
        {"topic": built(topic), "payload": b"other-topic-object"},  # an equal topic object
        {"payload": b"payload-first", "partition": 1, "topic": topic, "key": b"z"},
    ]
    return out + general


def test_every_field_combination_lands_as_the_general_path_puts_it(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=3)
    messages = plain_variants(topic)
    producer = make(cluster)
    try:
        producer.produce_sync(topic=topic, payload=b"warm")  # the last topic is now this one
        many = producer.produce_many_async(messages)
        reports = [h.wait() for h in many]
        labels = [r.label for r in reports]
        one = [producer.produce_async(dict(m)).wait() for m in messages]
        assert [r.label for r in one] == labels
        assert [m.get("label") for m in messages] == labels
        assert all(r.error is None and r.topic_name == topic for r in reports + one)
        # a given partition is kept; none given: librdkafka's partitioner picks one
        for m, a, b in zip(messages, reports, one):
            if m.get("partition", -1) >= 0:
                assert a.partition == b.partition == m["partition"]
    finally:
        close_within(producer)
    got = [record(r) for r in consume(cluster.bootstrap_servers, topic, 1 + 2 * len(messages))]
    got = [r for r in got if r[0] != b"warm"]
    assert len(got) == 2 * len(messages)
    # each message twice, with the same value, key and headers from both paths
    pairs = {}
    for r in got:
        pairs.setdefault((r[0], r[1], tuple(r[3] or ())), []).append(r)
    assert sorted(len(v) for v in pairs.values()) == [2] * len(messages), pairs
    # timestamps given are kept; a partition given is the one both land in
    for m in messages:
        if "timestamp" in m:
            ts = m["timestamp"]
            ms = ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
            value = m["payload"]
            assert [r[4] for r in got if r[0] == value] == [ms, ms]
        if m.get("partition", -1) >= 0:
            assert {r[2] for r in got if r[0] == m["payload"]} == {m["partition"]}


INVALID = [
    ({"partition": -2}, "partition"),
    ({"partition": 2**31}, "partition"),
    ({"partition": 2**70}, "partition"),
    ({"partition": True}, "partition"),
    ({"partition": 1.0}, "partition"),
    ({"key": b""}, "key"),
    ({"key": 7}, "key"),
    ({"payload": 5}, "payload"),
    ({"payload": b"x" * 2000}, "payload"),       # over max_payload_size below
    ({"extra": 1}, "extra"),
    ({"topic": "bad topic!"}, "topic"),
    ({"topic": None}, "topic"),
]


@pytest.mark.parametrize("change,field", INVALID, ids=[f for _, f in INVALID])
def test_an_invalid_message_among_plain_ones_is_refused_as_before(cluster, change, field):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers},
                        max_wait_timeout=30_000, max_payload_size=1000)
    try:
        producer.produce_sync(topic=topic, payload=b"warm")
        bad = {"topic": topic, "payload": b"p", "key": b"k"}
        bad.update(change)
        batch = [{"topic": topic, "payload": b"ok-%d" % i, "partition": 0} for i in range(5)]
        batch.insert(3, bad)
        with pytest.raises(MessageInvalidError) as many:
            producer.produce_many_async(batch)
        with pytest.raises(MessageInvalidError) as one:
            producer.produce_async(dict(bad))
        assert many.value.index == 3
        assert field in many.value.errors
        assert many.value.errors == one.value.errors == _core.check_message(bad, 1000)
        assert str(many.value) == f"message 3 of the batch is invalid: {one.value.errors}"
        # nothing of the batch was sent (everything is checked first): the next message
        # is the partition's second
        producer.produce_sync(topic=topic, payload=b"end")
    finally:
        close_within(producer)
    assert [r.value() for r in consume(cluster.bootstrap_servers, topic, 2)] == [b"warm", b"end"]


def test_a_handle_starts_as_the_general_constructor_made_it(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                               "linger.ms": 60_000}, max_wait_timeout=30_000)
    try:
        producer.produce_async(topic=topic, payload=b"warm")   # the last topic: this one
        handles = producer.produce_many_async(
            [{"topic": topic, "payload": b"a"}, {"topic": topic, "payload": b"b", "label": 9}])
        handles.append(producer.produce_async(topic=topic, payload=b"c", label="l"))
        reference = _core.pending_handle(topic, label=None)
        for handle, label in zip(handles, [None, 9, "l"]):
            assert type(handle) is _core.DeliveryHandle
            assert handle.pending and handle.report() is None
            assert (handle.topic_name, handle.topic, handle.label) == (topic, topic, label)
            assert (handle.partition, handle.offset, handle.error, handle.latency_ms) == (
                reference.partition, reference.offset, reference.error, reference.latency_ms)
            assert repr(handle) == (f"<DeliveryHandle topic={topic!r} pending "
                                    f"label={label!r}>")
        with pytest.raises(TypeError):
            _core.DeliveryHandle()
        assert producer.client.flush(20_000)
        for handle in handles:
            report = handle.wait()
            assert report is handle and report.error is None and report.offset >= 0
            assert report.latency_ms >= 0 and report.partition == 0
    finally:
        close_within(producer)


def test_events_see_plain_messages_as_given(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster)
    seen = []
    producer.monitor.subscribe("messages.produced_async", lambda event: seen.append(event))
    try:
        producer.produce_sync(topic=topic, payload=b"warm")
        batch = [{"topic": topic, "payload": b"e%d" % i, "key": b"k"} for i in range(3)]
        for handle in producer.produce_many_async(batch):
            assert handle.wait().error is None
    finally:
        close_within(producer)
    assert len(seen) == 1
    assert seen[0]["messages"] == batch
