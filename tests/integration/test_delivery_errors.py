"""A delivery error reaches the caller all three ways:

- ``handle.wait(raise_response_error=False).error`` is the KafkaError;
- ``handle.wait()`` raises it;
- ``produce_sync`` raises ProduceError whose ``__cause__`` is the KafkaError.

Two real errors: the broker rejecting a batch larger than the topic's max.message.bytes
(``msg_size_too_large``), and no broker at all (``msg_timed_out``).
"""

from __future__ import annotations

import pytest

from tests.helpers import close_within, create_topic, message_count
from waterdrop import KafkaError, ProduceError, ProduceManyError, Producer

UNREACHABLE = "127.0.0.1:1"
BIG = b"\xab" * 5_000  # over the topic limit of 1,000 bytes (librdkafka does not compress by default)


@pytest.fixture
def small_topic(kafka_bootstrap):
    return create_topic(kafka_bootstrap, config={"max.message.bytes": "1000"})


@pytest.fixture
def unreachable():
    producer = Producer(
        kafka={"bootstrap.servers": UNREACHABLE, "message.timeout.ms": 1_000},
        max_wait_timeout=30_000,
    )
    yield producer
    close_within(producer)


def _assert_error(error, code):
    assert isinstance(error, KafkaError)
    assert error.code == code
    assert error.rdkafka_response == {"msg_size_too_large": 10, "msg_timed_out": -192}[code]


# --- rejected by the broker --------------------------------------------------------------------


def test_broker_rejection_in_report_error(kafka_bootstrap, small_topic, producer):
    report = producer.produce_async(topic=small_topic, payload=BIG, label="L1").wait(
        raise_response_error=False
    )
    _assert_error(report.error, "msg_size_too_large")
    assert report.label == "L1"
    assert message_count(kafka_bootstrap, small_topic) == 0


def test_broker_rejection_raised_by_wait(small_topic, producer):
    handle = producer.produce_async(topic=small_topic, payload=BIG, label="L2")
    with pytest.raises(KafkaError) as info:
        handle.wait()
    _assert_error(info.value, "msg_size_too_large")
    assert handle.error is info.value
    assert not handle.pending


def test_broker_rejection_raised_by_produce_sync(small_topic, producer):
    with pytest.raises(ProduceError) as info:
        producer.produce_sync(topic=small_topic, payload=BIG)
    _assert_error(info.value.__cause__, "msg_size_too_large")


def test_broker_rejection_in_produce_many_sync(kafka_bootstrap, small_topic, producer):
    batch = [
        {"topic": small_topic, "payload": b"ok-1"},
        {"topic": small_topic, "payload": BIG},
        {"topic": small_topic, "payload": b"ok-2"},
    ]
    with pytest.raises(ProduceManyError) as info:
        producer.produce_many_sync(batch)
    error = info.value
    _assert_error(error.__cause__, "msg_size_too_large")
    assert len(error.dispatched) == 3
    assert all(not h.pending for h in error.dispatched)


def test_payload_size_limit_can_be_raised_to_reach_the_broker(small_topic, make_producer):
    # With max_payload_size below the payload, the contract refuses it before Kafka does.
    from waterdrop import MessageInvalidError

    strict = make_producer(max_payload_size=1_000)
    with pytest.raises(MessageInvalidError):
        strict.produce_async(topic=small_topic, payload=BIG)
    lenient = make_producer(max_payload_size=10_000)
    report = lenient.produce_async(topic=small_topic, payload=BIG).wait(raise_response_error=False)
    _assert_error(report.error, "msg_size_too_large")


# --- no broker at all ---------------------------------------------------------------------------


def test_timeout_in_report_error(unreachable):
    handle = unreachable.produce_async(topic="nowhere", payload=b"x", label="L3")
    report = handle.wait(raise_response_error=False)
    _assert_error(report.error, "msg_timed_out")
    assert report.label == "L3"
    assert report.topic_name == "nowhere"


def test_timeout_raised_by_wait(unreachable):
    handle = unreachable.produce_async(topic="nowhere", payload=b"x")
    with pytest.raises(KafkaError) as info:
        handle.wait()
    _assert_error(info.value, "msg_timed_out")


def test_timeout_raised_by_produce_sync(unreachable):
    with pytest.raises(ProduceError) as info:
        unreachable.produce_sync(topic="nowhere", payload=b"x")
    assert not isinstance(info.value, KafkaError)
    _assert_error(info.value.__cause__, "msg_timed_out")


def test_wait_timeout_while_still_pending():
    from waterdrop import WaitTimeoutError

    producer = Producer(
        kafka={"bootstrap.servers": UNREACHABLE, "message.timeout.ms": 60_000},
        max_wait_timeout=2_000,  # close() flushes this long before it purges
    )
    try:
        handle = producer.produce_async(topic="nowhere", payload=b"x")
        with pytest.raises(WaitTimeoutError):
            handle.wait(max_wait_timeout=50)
        assert handle.pending  # it may still be delivered
    finally:
        close_within(producer, force=True)
    assert not handle.pending
