"""The test clients: Dummy (acknowledges locally) and Buffered (also keeps the messages).

Nothing here talks to Kafka: the bootstrap points at a port where nothing listens, so any
attempt to really send would time out instead of acknowledging.
"""

from __future__ import annotations

import pytest

from waterdrop import MessageInvalidError, Producer, Status
from waterdrop.clients import Buffered, Dummy

NOWHERE = {"bootstrap.servers": "127.0.0.1:1"}


def client_of(producer):
    """The producer's client: the public accessor if there is one (see findings)."""
    client = getattr(producer, "client", None)
    return client if client is not None else producer._client


@pytest.fixture(params=["deliver_false", "dummy", "buffered"])
def producer(request):
    settings = {
        "deliver_false": {"deliver": False},
        "dummy": {"client_class": Dummy},
        "buffered": {"client_class": Buffered},
    }[request.param]
    producer = Producer(kafka=dict(NOWHERE), max_wait_timeout=1_000, **settings)
    yield producer
    producer.close()


def test_deliver_false_uses_the_dummy_client():
    with Producer(kafka=dict(NOWHERE), deliver=False) as producer:
        assert producer.config.client_class is Dummy
        producer.produce_sync(topic="t", payload=b"x")
        assert isinstance(client_of(producer), Dummy)


def test_offsets_count_from_zero_per_topic_and_partition(producer):
    def offset(**message):
        return producer.produce_sync(message).offset

    assert offset(topic="a", payload=b"1") == 0
    assert offset(topic="a", payload=b"2") == 1
    assert offset(topic="b", payload=b"1") == 0
    assert offset(topic="a", payload=b"3", partition=2) == 0
    assert offset(topic="a", payload=b"4", partition=2) == 1
    assert offset(topic="a", payload=b"5") == 2


def test_report_fields(producer):
    report = producer.produce_sync(topic="orders", payload=b"x", partition=3, label={"id": 7})
    assert report.error is None
    assert report.topic_name == "orders"
    assert report.topic == "orders"
    assert report.partition == 3
    assert report.offset == 0
    assert report.label == {"id": 7}


def test_partition_defaults_to_zero(producer):
    assert producer.produce_sync(topic="t", payload=b"x").partition == 0
    assert producer.produce_sync(topic="t", payload=b"x", partition_key="pk").partition == 0


def test_async_handles_are_already_resolved(producer):
    handle = producer.produce_async(topic="t", payload=b"x", label="L")
    assert not handle.pending
    report = handle.wait()
    assert (report.offset, report.label) == (0, "L")


def test_produce_many(producer):
    handles = producer.produce_many_sync(
        [{"topic": "t", "payload": b"x"}, {"topic": "t", "payload": b"y"}]
    )
    assert [h.wait().offset for h in handles] == [0, 1]
    handles = producer.produce_many_async([{"topic": "t", "payload": b"z"}])
    assert [h.wait().offset for h in handles] == [2]


def test_validation_still_runs(producer):
    with pytest.raises(MessageInvalidError) as info:
        producer.produce_sync(topic="bad topic", payload=b"x")
    assert info.value.errors == {
        "topic": "'bad topic' has the character ' ': a topic name uses only ASCII letters, "
        "digits, '.', '_' and '-'"
    }
    with pytest.raises(MessageInvalidError):
        producer.produce_many_async([{"topic": "t", "payload": b"x"}, {"topic": "t"}])
    # nothing of the rejected batch counted
    assert producer.produce_sync(topic="t", payload=b"x").offset == 0


def test_max_payload_size_still_applies():
    with Producer(kafka=dict(NOWHERE), deliver=False, max_payload_size=3) as producer:
        producer.produce_sync(topic="t", payload=b"abc")
        with pytest.raises(MessageInvalidError) as info:
            producer.produce_sync(topic="t", payload=b"abcd")
    assert info.value.errors == {"payload": "is 4 bytes, above max_payload_size 3"}


def test_queue_size_is_zero_and_lifecycle_holds(producer):
    producer.produce_async(topic="t", payload=b"x")
    assert producer.queue_size == 0
    assert producer.status is Status.CONNECTED
    producer.close()
    assert producer.status is Status.CLOSED


def test_buffered_keeps_messages_in_order():
    producer = Producer(kafka=dict(NOWHERE), client_class=Buffered)
    producer.produce_sync(topic="a", payload=b"1", key="k")
    producer.produce_async(topic="b", payload="2", headers={"h": "v"})
    producer.produce_many_sync([{"topic": "a", "payload": b"3"}])
    client = client_of(producer)
    assert [(m["topic"], m["payload"]) for m in client.messages] == [
        ("a", b"1"),
        ("b", "2"),
        ("a", b"3"),
    ]
    assert client.messages[0]["key"] == "k"
    assert client.messages[1]["headers"] == {"h": "v"}
    assert [m["payload"] for m in client.messages_for("a")] == [b"1", b"3"]
    client.reset()
    assert client.messages == []
    producer.close()


def test_buffered_does_not_keep_invalid_messages():
    producer = Producer(kafka=dict(NOWHERE), client_class=Buffered)
    with pytest.raises(MessageInvalidError):
        producer.produce_many_sync([{"topic": "a", "payload": b"1"}, {"topic": "a", "payload": 1}])
    producer.produce_sync(topic="a", payload=b"ok")
    assert [m["payload"] for m in client_of(producer).messages] == [b"ok"]
    producer.close()


def test_buffered_client_is_reachable_through_a_public_attribute():
    producer = Producer(kafka=dict(NOWHERE), client_class=Buffered)
    producer.produce_sync(topic="a", payload=b"1")
    assert [m["payload"] for m in producer.client.messages] == [b"1"]
    producer.close()
