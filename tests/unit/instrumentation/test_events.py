"""Every per-producer event a MockCluster run can produce, with WaterDrop's payload keys
(inventory §4.2). Extra keys the port adds for tracing listeners (``handle``, ``handles``,
``report``) are named where they are expected."""

from __future__ import annotations

import threading

import pytest

from tests.unit.instrumentation.conftest import DEADLINE_S, record
from waterdrop import DeliveryHandle, MessageInvalidError, Producer, Status
from waterdrop.errors import ProducerClosedError


def _served_by_waterdrop(name: str) -> bool:
    """Delivery events run on a Python thread waterdrop serves its queue on: the client's
    poller, or the thread blocked in ``handle.wait()`` (which serves the queue itself
    meanwhile); never on a librdkafka thread (Python would name it ``Dummy-N``)."""
    return name.startswith("waterdrop-poller") or name == threading.current_thread().name


# --- lifecycle ------------------------------------------------------------------------------------


def test_producer_connected_on_first_use(producer, topic):
    rec = record(producer.monitor, "producer.connected")
    assert rec.named("producer.connected") == []  # configured, not connected
    producer.produce_sync(topic=topic, payload=b"x")
    producer.produce_sync(topic=topic, payload=b"y")
    (event,) = rec.named("producer.connected")
    assert event.payload == {"producer_id": producer.id}


def test_closing_then_closed_with_time(make_producer, topic):
    producer = make_producer()
    rec = record(producer.monitor, "producer.closing", "producer.closed")
    producer.produce_sync(topic=topic, payload=b"x")
    producer.close()
    assert rec.ids() == ["producer.closing", "producer.closed"]
    closing, closed = rec.events
    assert closing.payload == {"producer_id": producer.id}
    assert set(closed.payload) == {"producer_id", "time"}
    assert closed["producer_id"] == producer.id
    assert isinstance(closed["time"], float) and closed["time"] >= 0
    producer.close()  # closing again emits nothing
    assert len(rec.events) == 2


def test_closing_a_producer_that_never_connected_still_reports(make_producer):
    producer = make_producer()
    rec = record(producer.monitor, "producer.closing", "producer.closed", "producer.connected")
    producer.close()
    assert rec.ids() == ["producer.closing", "producer.closed"]


def test_disconnecting_then_disconnected_with_time(producer, topic):
    rec = record(producer.monitor, "producer.disconnecting", "producer.disconnected",
                 "producer.connected")
    producer.produce_sync(topic=topic, payload=b"x")
    assert producer.disconnect() is True
    assert producer.status is Status.DISCONNECTED
    assert rec.ids() == ["producer.connected", "producer.disconnecting", "producer.disconnected"]
    disconnecting, disconnected = rec.events[1:]
    assert disconnecting.payload == {"producer_id": producer.id}
    assert set(disconnected.payload) == {"producer_id", "time"}
    # used again: connected once more
    producer.produce_sync(topic=topic, payload=b"y")
    assert rec.ids()[-1] == "producer.connected"


def test_a_refused_disconnect_emits_nothing(producer, topic):
    rec = record(producer.monitor, "producer.disconnecting", "producer.disconnected")
    producer.buffer(topic=topic, payload=b"x")  # a non-empty buffer blocks disconnect
    producer.produce_sync(topic=topic, payload=b"y")
    assert producer.disconnect() is False
    assert rec.events == []


# --- dispatch -------------------------------------------------------------------------------------


def test_message_produced_async(producer, topic):
    rec = record(producer.monitor, "message.produced_async")
    message = {"topic": topic, "payload": b"x", "key": "k", "label": "L"}
    handle = producer.produce_async(message)
    (event,) = rec.events
    assert {"producer_id", "message", "time"} <= set(event.payload)
    assert set(event.payload) - {"producer_id", "message", "time"} <= {"handle"}
    assert event["producer_id"] == producer.id
    assert event["message"] == message
    assert isinstance(event["time"], float) and event["time"] >= 0
    assert event["handle"] is handle
    assert event.payload.get("handle", handle) is handle
    handle.wait()


def test_message_produced_async_carries_the_message_after_middleware(producer, topic):
    rec = record(producer.monitor, "message.produced_async")
    seen_by_middleware = []

    def stamp(message):
        seen_by_middleware.append(message)
        return {**message, "headers": {"stamped": "yes"}}

    producer.middleware.append(stamp)
    user_message = {"topic": topic, "payload": b"x"}
    producer.produce_async(user_message).wait()
    (event,) = rec.events
    assert event["message"]["headers"] == {"stamped": "yes"}
    assert "headers" not in user_message


def test_message_produced_sync(producer, topic):
    rec = record(producer.monitor, "message.produced_sync")
    report = producer.produce_sync(topic=topic, payload=b"x")
    (event,) = rec.events
    assert {"producer_id", "message", "time"} <= set(event.payload)
    assert set(event.payload) - {"producer_id", "message", "time"} <= {"report"}
    assert event["message"] == {"topic": topic, "payload": b"x"}
    if "report" in event:
        assert event["report"] is report
    assert event["time"] >= 0


def test_messages_produced_async_and_sync(producer, topic):
    rec = record(producer.monitor, "messages.produced_async", "messages.produced_sync")
    batch = [{"topic": topic, "payload": f"{i}"} for i in range(3)]
    handles = producer.produce_many_async(batch)
    producer.produce_many_sync(batch)
    for handle in handles:
        handle.wait()
    assert rec.ids() == ["messages.produced_async", "messages.produced_sync"]
    for event in rec.events:
        assert {"producer_id", "messages", "time"} <= set(event.payload)
        assert set(event.payload) - {"producer_id", "messages", "time"} <= {"handles"}
        assert event["messages"] == batch
        assert event["producer_id"] == producer.id
    assert rec.events[0].payload.get("handles", handles) == handles


def test_tombstones_are_reported_as_produced(producer, topic):
    rec = record(producer.monitor, "message.produced_sync")
    producer.tombstone_sync(topic=topic, key="k", partition=0)
    (event,) = rec.events
    assert event["message"]["payload"] is None


def test_no_dispatch_event_when_the_message_is_invalid(producer, topic):
    rec = record(producer.monitor, "message.produced_async", "message.produced_sync",
                 "messages.produced_async", "error.occurred")
    with pytest.raises(MessageInvalidError):
        producer.produce_async(topic=topic, payload=123)
    with pytest.raises(MessageInvalidError):
        producer.produce_sync(topic="", payload=b"x")
    with pytest.raises(MessageInvalidError):
        producer.produce_many_async([{"topic": topic, "payload": b"ok"}, {"topic": topic}])
    # as WaterDrop: MessageInvalidError is never instrumented
    assert rec.events == []


def test_no_dispatch_event_on_a_closed_producer(make_producer, topic):
    producer = make_producer()
    rec = record(producer.monitor, "message.produced_async", "error.occurred")
    producer.close()
    with pytest.raises(ProducerClosedError):
        producer.produce_async(topic=topic, payload=b"x")
    assert rec.events == []


# --- buffering ------------------------------------------------------------------------------------


def test_message_buffered(producer, topic):
    rec = record(producer.monitor, "message.buffered")
    message = {"topic": topic, "payload": b"x"}
    producer.buffer(message)
    (event,) = rec.events
    assert set(event.payload) == {"producer_id", "message", "buffer", "time"}
    assert event["producer_id"] == producer.id
    assert event["message"] == message
    assert list(event["buffer"]) == [message]
    producer.purge()


def test_messages_buffered(producer, topic):
    rec = record(producer.monitor, "messages.buffered")
    batch = [{"topic": topic, "payload": b"a"}, {"topic": topic, "payload": b"b"}]
    producer.buffer(topic=topic, payload=b"first")
    producer.buffer_many(batch)
    (event,) = rec.events
    assert set(event.payload) == {"producer_id", "messages", "buffer", "time"}
    assert list(event["messages"]) == batch
    assert len(event["buffer"]) == 3
    producer.purge()


@pytest.mark.parametrize("sync", [True, False])
def test_buffer_flushed(producer, topic, sync):
    name = "buffer.flushed_sync" if sync else "buffer.flushed_async"
    rec = record(producer.monitor, name, "messages.produced_sync", "messages.produced_async")
    batch = [{"topic": topic, "payload": f"{i}"} for i in range(3)]
    producer.buffer_many(batch)
    handles = producer.flush_sync() if sync else producer.flush_async()
    for handle in handles:
        handle.wait()
    flushed = rec.named(name)
    assert len(flushed) == 1
    assert set(flushed[0].payload) == {"producer_id", "messages", "time"}
    assert list(flushed[0]["messages"]) == batch
    # the flush dispatches through produce_many, which reports itself first
    produced = "messages.produced_sync" if sync else "messages.produced_async"
    assert rec.ids() == [produced, name]


def test_flushing_an_empty_buffer_still_reports(producer):
    rec = record(producer.monitor, "buffer.flushed_sync")
    assert producer.flush_sync() == []
    (event,) = rec.events
    assert list(event["messages"]) == []


def test_buffer_purged(producer, topic):
    rec = record(producer.monitor, "buffer.purged")
    producer.buffer(topic=topic, payload=b"x")
    producer.purge()
    (event,) = rec.events
    assert set(event.payload) == {"producer_id", "time"}
    assert producer.messages == ()


def test_close_flushes_the_buffer_and_reports_it(make_producer, topic):
    producer = make_producer()
    rec = record(producer.monitor, "producer.closing", "buffer.flushed_sync", "producer.closed")
    producer.buffer(topic=topic, payload=b"x")
    producer.close()
    assert rec.ids() == ["producer.closing", "buffer.flushed_sync", "producer.closed"]


# --- delivery -------------------------------------------------------------------------------------


def test_message_acknowledged_from_the_delivery_path(producer, topic):
    rec = record(producer.monitor, "message.acknowledged")
    threads = []
    producer.monitor.subscribe(
        "message.acknowledged", lambda e: threads.append(threading.current_thread().name)
    )
    handle = producer.produce_async(topic=topic, payload=b"x", label={"order": 42})
    report = handle.wait()
    (event,) = rec.wait_for("message.acknowledged")
    assert set(event.payload) == {
        "caller", "producer_id", "offset", "partition", "topic", "delivery_report", "label",
    }
    assert event["producer_id"] == producer.id
    assert event["caller"] is producer
    assert event["topic"] == topic
    assert event["partition"] == report.partition == 0
    assert event["offset"] == report.offset
    assert event["label"] == {"order": 42}
    assert event["delivery_report"].label == {"order": 42}
    assert event["delivery_report"].error is None
    assert event["delivery_report"].offset == report.offset
    assert _served_by_waterdrop(threads[0]), threads


def test_message_acknowledged_once_per_message(producer, topic):
    rec = record(producer.monitor, "message.acknowledged")
    handles = producer.produce_many_async(
        [{"topic": topic, "payload": b"x", "label": i} for i in range(20)]
    )
    for handle in handles:
        handle.wait()
    events = rec.wait_for("message.acknowledged", 20)
    assert sorted(e["label"] for e in events) == list(range(20))
    assert sorted(e["offset"] for e in events) == sorted(h.wait().offset for h in handles)


def test_acknowledged_is_emitted_after_the_handle_resolved(producer, topic):
    """A listener that looks at the handle's state sees it delivered (not pending)."""
    states = []
    assigned = threading.Event()

    def listener(event):
        assigned.wait(DEADLINE_S)
        states.append(event["label"]["handle"].pending)

    producer.monitor.subscribe("message.acknowledged", listener)
    rec = record(producer.monitor, "message.acknowledged")
    label = {}
    label["handle"] = producer.produce_async(topic=topic, payload=b"x", label=label)
    assigned.set()
    label["handle"].wait()
    rec.wait_for("message.acknowledged")
    assert states == [False]
    label.clear()  # the label referenced its own handle


def test_purging_queued_messages_reports_dispatch_errors(make_producer, topic):
    """Non-transactional: a purge is a delivery failure (librdkafka.dispatch_error)."""
    producer = make_producer(kafka={"linger.ms": 60_000})
    rec = record(producer.monitor, "error.occurred", "buffer.purged", "message.purged")
    handle = producer.produce_async(topic=topic, payload=b"x", label="held")
    producer.purge()
    report = handle.wait(raise_response_error=False)
    assert report.error.code == "purge_queue"
    (event,) = rec.wait_for("error.occurred")
    assert event["type"] == "librdkafka.dispatch_error"
    assert event["label"] == "held"
    assert event["error"].code == "purge_queue"
    assert rec.named("message.purged") == []
    assert len(rec.named("buffer.purged")) == 1


def test_message_purged_for_transactional_producers(make_producer, topic):
    from waterdrop import AbortTransaction

    producer = make_producer(kafka={"transactional.id": f"tx-{topic}", "linger.ms": 60_000})
    rec = record(producer.monitor, "message.purged", "error.occurred")
    with producer.transaction():
        handle = producer.produce_async(topic=topic, payload=b"x", label="in-tx")
        producer.purge()
        assert handle.wait(raise_response_error=False).error.code == "purge_queue"
        raise AbortTransaction()
    (event,) = rec.wait_for("message.purged")
    assert set(event.payload) == {
        "caller", "error", "producer_id", "offset", "partition", "topic", "delivery_report",
        "label", "type",
    }
    assert event["type"] == "librdkafka.dispatch_error"
    assert event["error"].code == "purge_queue"
    assert event["label"] == "in-tx"
    assert event["topic"] == topic
    assert event["caller"] is producer
    # a transactional purge is not an error
    assert [e for e in rec.named("error.occurred")
            if e["type"] == "librdkafka.dispatch_error"] == []


# --- transactions ---------------------------------------------------------------------------------


def test_transaction_events(make_producer, topic):
    from waterdrop import AbortTransaction

    producer = make_producer(kafka={"transactional.id": f"tx-{topic}"})
    names = ("transaction.started", "transaction.committed", "transaction.aborted",
             "transaction.finished")
    rec = record(producer.monitor, *names)
    with producer.transaction():
        producer.produce_async(topic=topic, payload=b"x")
    assert rec.ids() == ["transaction.started", "transaction.committed", "transaction.finished"]
    with producer.transaction():
        producer.produce_async(topic=topic, payload=b"y")
        raise AbortTransaction()
    assert rec.ids()[3:] == ["transaction.started", "transaction.aborted", "transaction.finished"]
    for event in rec.events:
        assert set(event.payload) == {"producer_id", "time"}
        assert event["producer_id"] == producer.id


def test_no_transaction_finished_when_another_exception_escapes(make_producer, topic):
    producer = make_producer(kafka={"transactional.id": f"tx-{topic}"})
    rec = record(producer.monitor, "transaction.aborted", "transaction.finished")
    with pytest.raises(ValueError):
        with producer.transaction():
            producer.produce_async(topic=topic, payload=b"x")
            raise ValueError("user code failed")
    assert rec.ids() == ["transaction.aborted"]


# --- the test clients -----------------------------------------------------------------------------


def test_dummy_client_emits_the_same_dispatch_events():
    with Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, deliver=False) as producer:
        rec = record(producer.monitor, "producer.connected", "message.produced_async",
                     "message.produced_sync")
        handle = producer.produce_async(topic="t", payload=b"x")
        assert isinstance(handle, DeliveryHandle)
        producer.produce_sync(topic="t", payload=b"y")
    assert rec.ids() == ["producer.connected", "message.produced_async", "message.produced_sync"]


def test_events_without_listeners_cost_nothing_visible(producer, topic):
    """Nobody listens: the produce path still works and nothing is recorded anywhere."""
    handles = [producer.produce_async(topic=topic, payload=b"x") for _ in range(50)]
    assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    assert producer.monitor.listeners == {}
