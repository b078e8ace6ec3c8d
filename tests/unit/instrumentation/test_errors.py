"""``error.occurred`` and its types (inventory §4.3), each with WaterDrop's payload keys."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.helpers import close_within, unique_topic
from tests.unit.instrumentation.conftest import DEADLINE_S, Recorder, record
from waterdrop import KafkaError, ProduceError, ProduceManyError, Producer
from waterdrop.testing import MockCluster

DISPATCH_ERROR_KEYS = {
    "caller", "error", "producer_id", "offset", "partition", "topic", "delivery_report", "label",
    "type",
}
PRODUCE_ERROR_KEYS = {"producer_id", "message", "error", "type"}
PRODUCE_MANY_ERROR_KEYS = {"producer_id", "messages", "dispatched", "error", "type"}
CLIENT_ERROR_KEYS = {"caller", "error", "producer_id", "type"}


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def of_type(rec: Recorder, kind: str) -> list:
    return [e for e in rec.named("error.occurred") if e["type"] == kind]


@pytest.fixture
def down_cluster():
    """A one-broker MockCluster whose broker is down: deliveries time out."""
    with MockCluster(brokers=1) as mc:
        name = unique_topic()
        mc.create_topic(name, partitions=1)
        mc.broker_down(1)
        yield mc, name


# --- dispatch failures ----------------------------------------------------------------------------


def test_message_produce_async_inline_failure(make_producer, topic):
    producer = make_producer(kafka={"message.max.bytes": 1_000})
    rec = record(producer.monitor, "error.occurred", "message.produced_async")
    message = {"topic": topic, "payload": b"x" * 5_000, "label": "too big"}
    with pytest.raises(ProduceError) as info:
        producer.produce_async(message)
    assert info.value.cause.code == "msg_size_too_large"
    (event,) = rec.named("error.occurred")
    assert set(event.payload) == PRODUCE_ERROR_KEYS
    assert event["type"] == "message.produce_async"
    assert event["producer_id"] == producer.id
    assert event["message"] == message
    assert event["error"] is info.value
    assert isinstance(event["error"].cause, KafkaError)
    assert rec.named("message.produced_async") == []  # only after the work succeeded


def test_message_produce_sync_failure_is_reported_twice(down_cluster, make_producer):
    """As WaterDrop: the delivery callback's dispatch_error and the wait's produce_sync."""
    cluster, name = down_cluster
    producer = make_producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500},
    )
    rec = record(producer.monitor, "error.occurred", "message.produced_sync")
    with pytest.raises(ProduceError) as info:
        producer.produce_sync(topic=name, payload=b"x", label="sync-label")
    assert info.value.cause.code == "msg_timed_out"
    rec.wait_for("error.occurred", where=lambda e: e["type"] == "librdkafka.dispatch_error")
    (sync,) = of_type(rec, "message.produce_sync")
    assert set(sync.payload) == PRODUCE_ERROR_KEYS
    assert sync["error"] is info.value
    assert sync["message"]["label"] == "sync-label"
    (dispatch,) = of_type(rec, "librdkafka.dispatch_error")
    assert dispatch["label"] == "sync-label"
    assert rec.named("message.produced_sync") == []


def test_librdkafka_dispatch_error_carries_the_report_and_label(down_cluster, make_producer):
    cluster, name = down_cluster
    producer = make_producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500},
    )
    rec = record(producer.monitor, "error.occurred", "message.acknowledged")
    handle = producer.produce_async(topic=name, payload=b"x", label={"order": 7})
    report = handle.wait(DEADLINE_S * 1000, raise_response_error=False)
    assert report.error.code == "msg_timed_out"
    (event,) = rec.wait_for("error.occurred", where=lambda e: e["type"] ==
                            "librdkafka.dispatch_error")
    assert set(event.payload) == DISPATCH_ERROR_KEYS
    assert event["producer_id"] == producer.id
    assert event["caller"] is producer
    assert event["topic"] == name
    assert event["label"] == {"order": 7}
    assert event["error"].code == "msg_timed_out"
    assert event["error"].rdkafka_response == -192
    report = event["delivery_report"]
    assert report.label == {"order": 7}
    assert report.error.code == "msg_timed_out"
    assert event["offset"] == report.offset
    assert event["partition"] == report.partition
    assert rec.named("message.acknowledged") == []


def test_messages_produce_many_async_failure(make_producer, topic):
    producer = make_producer(kafka={"message.max.bytes": 1_000})
    rec = record(producer.monitor, "error.occurred", "messages.produced_async")
    batch = [
        {"topic": topic, "payload": b"ok"},
        {"topic": topic, "payload": b"x" * 5_000},
        {"topic": topic, "payload": b"never"},
    ]
    with pytest.raises(ProduceManyError) as info:
        producer.produce_many_async(batch)
    failures = of_type(rec, "messages.produce_many_async")
    assert len(failures) == 1
    event = failures[0]
    assert set(event.payload) == PRODUCE_MANY_ERROR_KEYS
    assert event["messages"] == batch
    assert event["error"] is info.value
    assert event["dispatched"] == info.value.dispatched
    assert len(event["dispatched"]) == 1
    assert event["dispatched"][0].wait().error is None
    assert info.value.cause.code == "msg_size_too_large"
    assert rec.named("messages.produced_async") == []


def test_messages_produce_many_sync_failure(down_cluster, make_producer):
    cluster, name = down_cluster
    producer = make_producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500},
    )
    rec = record(producer.monitor, "error.occurred", "messages.produced_sync")
    batch = [{"topic": name, "payload": f"{i}", "label": i} for i in range(3)]
    with pytest.raises(ProduceManyError) as info:
        producer.produce_many_sync(batch)
    (event,) = of_type(rec, "messages.produce_many_sync")
    assert set(event.payload) == PRODUCE_MANY_ERROR_KEYS
    assert event["messages"] == batch
    assert event["error"] is info.value
    assert len(event["dispatched"]) == 3
    assert all(h.error is not None for h in event["dispatched"])
    # and each message's own delivery failure
    dispatch = rec.wait_for("error.occurred", 3,
                            where=lambda e: e["type"] == "librdkafka.dispatch_error")
    assert sorted(e["label"] for e in dispatch) == [0, 1, 2]
    assert rec.named("messages.produced_sync") == []


# --- client errors --------------------------------------------------------------------------------


def unreachable(make_producer):
    """A producer bootstrapped to a closed port; its messages time out after 500 ms."""
    return make_producer(
        kafka={"bootstrap.servers": f"127.0.0.1:{closed_port()}", "message.timeout.ms": 500},
        max_wait_timeout=5_000,
    )


def test_librdkafka_error_from_the_client(make_producer):
    producer = unreachable(make_producer)
    rec = record(producer.monitor, "error.occurred")
    handle = producer.produce_async(topic="nowhere", payload=b"x")
    events = rec.wait_for("error.occurred", where=lambda e: e["type"] == "librdkafka.error")
    event = events[0]
    assert set(event.payload) == CLIENT_ERROR_KEYS
    assert event["producer_id"] == producer.id
    assert event["caller"] is producer
    assert isinstance(event["error"], KafkaError)
    assert event["error"].code in {"transport", "all_brokers_down", "resolve"}
    assert event["error"].fatal is False
    assert handle.wait(DEADLINE_S * 1000, raise_response_error=False).error is not None


def test_client_errors_go_only_to_their_own_producer(make_producer, topic):
    healthy = make_producer()
    broken = unreachable(make_producer)
    healthy_rec = record(healthy.monitor, "error.occurred")
    broken_rec = record(broken.monitor, "error.occurred")
    healthy.produce_sync(topic=topic, payload=b"x")
    broken.produce_async(topic="nowhere", payload=b"x")
    broken_rec.wait_for("error.occurred")
    healthy.produce_sync(topic=topic, payload=b"y")
    assert healthy_rec.events == []


# --- listener failures on the background thread -------------------------------------------------


def test_a_raising_acknowledged_listener_is_reported_and_the_poller_survives(producer, topic):
    boom = RuntimeError("listener failed")
    calls = []

    def raising(event):
        calls.append(event["label"])
        if event["label"] == "first":
            raise boom

    producer.monitor.subscribe("message.acknowledged", raising)
    rec = record(producer.monitor, "error.occurred")
    threads = []
    producer.monitor.subscribe("error.occurred",
                               lambda e: threads.append(threading.current_thread().name))
    assert producer.produce_async(topic=topic, payload=b"1", label="first").wait().offset >= 0
    (event,) = rec.wait_for("error.occurred")
    assert set(event.payload) == CLIENT_ERROR_KEYS
    assert event["type"] == "callbacks.delivery.error"
    assert event["error"] is boom
    assert event["producer_id"] == producer.id
    assert not threads[0].startswith("Dummy"), threads  # never a librdkafka thread
    # the poller keeps serving: later deliveries resolve and are acknowledged
    handles = [producer.produce_async(topic=topic, payload=b"n", label=i) for i in range(10)]
    assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    waited = threading.Event()

    def last(event):
        if event["label"] == "last":
            waited.set()

    producer.monitor.subscribe("message.acknowledged", last)
    producer.produce_async(topic=topic, payload=b"z", label="last")
    assert waited.wait(DEADLINE_S)
    assert len(of_type(rec, "callbacks.delivery.error")) == 1


def test_a_raising_listener_does_not_hide_the_rest_of_the_batch(producer, topic):
    """One listener failure is one message's problem: the other messages delivered in the
    same batch are still acknowledged (WaterDrop calls its delivery callback per message)."""
    producer.produce_sync(topic=topic, payload=b"warm-up")
    acked = []

    def raising(event):
        if event["label"] is None:  # the warm-up's acknowledgement may come late
            return
        acked.append(event["label"])
        if event["label"] == 0:
            raise RuntimeError("only the first")

    producer.monitor.subscribe("message.acknowledged", raising)
    rec = record(producer.monitor, "error.occurred")
    handles = producer.produce_many_sync(
        [{"topic": topic, "payload": b"x", "label": i} for i in range(5)]
    )
    assert len(handles) == 5
    rec.wait_for("error.occurred")
    assert sorted(acked) == [0, 1, 2, 3, 4]


def test_a_raising_statistics_listener_is_reported(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    emitted = threading.Event()

    def raising(event):
        emitted.set()
        raise ValueError("stats listener failed")

    producer.monitor.subscribe("statistics.emitted", raising)
    rec = record(producer.monitor, "error.occurred")
    producer.produce_sync(topic=topic, payload=b"x")
    event = rec.wait_for("error.occurred", where=lambda e: e["type"] ==
                         "callbacks.statistics.error")[0]
    assert set(event.payload) == CLIENT_ERROR_KEYS
    assert isinstance(event["error"], ValueError)
    assert producer.produce_sync(topic=topic, payload=b"y").error is None


def test_a_raising_error_listener_is_reported_as_callbacks_error_error(make_producer):
    producer = unreachable(make_producer)
    rec = record(producer.monitor, "error.occurred")

    def raising(event):
        if event["type"] == "librdkafka.error":
            raise RuntimeError("error listener failed")

    producer.monitor.subscribe("error.occurred", raising)
    producer.produce_async(topic="nowhere", payload=b"x")
    event = rec.wait_for("error.occurred", where=lambda e: e["type"] ==
                         "callbacks.error.error")[0]
    assert set(event.payload) == CLIENT_ERROR_KEYS
    assert str(event["error"]) == "error listener failed"


# --- never instrumented ---------------------------------------------------------------------------


def test_invalid_and_closed_are_never_instrumented(make_producer, topic):
    from waterdrop import MessageInvalidError
    from waterdrop.errors import ProducerClosedError

    producer = make_producer()
    rec = record(producer.monitor, "error.occurred")
    with pytest.raises(MessageInvalidError):
        producer.produce_sync(topic=topic)
    producer.close()
    with pytest.raises(ProducerClosedError):
        producer.produce_sync(topic=topic, payload=b"x")
    assert rec.events == []


def test_error_listeners_see_a_closed_producer_still_report_deliveries(down_cluster):
    """close(force=True) purges what is undelivered: those failures are still reported."""
    cluster, topic = down_cluster
    producer = Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 60_000},
        max_wait_timeout=100,
    )
    rec = record(producer.monitor, "error.occurred")
    handle = producer.produce_async(topic=topic, payload=b"x", label="purged-on-close")
    close_within(producer, force=True)
    assert handle.wait(DEADLINE_S * 1000, raise_response_error=False).error is not None
    event = rec.wait_for("error.occurred", where=lambda e: e["type"] ==
                         "librdkafka.dispatch_error")[0]
    assert event["label"] == "purged-on-close"
    assert event["error"].code in {"purge_queue", "purge_inflight"}
