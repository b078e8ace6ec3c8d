"""The event bus: WaterDrop's closed registry, subscription forms, copy-on-write dispatch."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

import waterdrop
from waterdrop.errors import Error, StatisticsNotEnabledError
from waterdrop.instrumentation import (
    CLASS_EVENTS,
    EVENTS,
    Event,
    EventNotRegisteredError,
    Monitor,
)

#: inventory §4.2, minus the FD poller's events (the port polls on its own thread).
WATERDROP_EVENTS = {
    "producer.connected", "producer.closing", "producer.closed", "producer.reload",
    "producer.reloaded", "producer.disconnecting", "producer.disconnected",
    "message.produced_async", "message.produced_sync", "messages.produced_async",
    "messages.produced_sync", "message.buffered", "messages.buffered",
    "buffer.flushed_async", "buffer.flushed_sync", "buffer.purged", "message.acknowledged",
    "message.purged", "oauthbearer.token_refresh", "transaction.started",
    "transaction.committed", "transaction.aborted", "transaction.marked_as_consumed",
    "transaction.finished", "statistics.emitted", "error.occurred",
}

#: inventory §4.7
WATERDROP_CLASS_EVENTS = {
    "producer.created", "producer.configured", "connection_pool.created",
    "connection_pool.setup", "connection_pool.shutdown", "connection_pool.reload",
    "connection_pool.reloaded",
}


@pytest.fixture
def monitor() -> Monitor:
    return Monitor()


# --- the registry ---------------------------------------------------------------------------------


def test_per_producer_events_are_waterdrops():
    assert WATERDROP_EVENTS <= set(EVENTS)
    assert set(Monitor().available_events) == set(EVENTS)


def test_class_events_are_waterdrops():
    assert set(CLASS_EVENTS) == WATERDROP_CLASS_EVENTS
    assert set(waterdrop.monitor.available_events) == WATERDROP_CLASS_EVENTS


def test_subscribing_to_an_unknown_event_raises(monitor):
    with pytest.raises(EventNotRegisteredError) as info:
        monitor.subscribe("message.nope", lambda event: None)
    assert isinstance(info.value, Error)
    assert "message.nope" in str(info.value)
    assert monitor.listeners == {}


def test_an_unknown_event_says_what_to_subscribe_to_instead(monitor):
    with pytest.raises(EventNotRegisteredError) as info:
        monitor.subscribe("message.acknowledge", lambda event: None)
    assert str(info.value) == (
        "'message.acknowledge' is not a registered event; did you mean 'message.acknowledged'?"
    )
    with pytest.raises(EventNotRegisteredError) as info:
        monitor.subscribe("producer.created", lambda event: None)
    assert "process-wide event" in str(info.value) and "waterdrop.monitor" in str(info.value)
    with pytest.raises(EventNotRegisteredError) as info:
        Monitor(CLASS_EVENTS).subscribe("message.acknowledged", lambda event: None)
    assert "producer.monitor" in str(info.value)


def test_decorator_on_an_unknown_event_raises_at_once(monitor):
    with pytest.raises(EventNotRegisteredError):
        monitor.subscribe("nope.nope")


def test_instrumenting_an_unknown_event_raises_even_without_listeners(monitor):
    with pytest.raises(EventNotRegisteredError):
        monitor.instrument("message.nope", producer_id="x")


def test_clearing_an_unknown_event_raises(monitor):
    with pytest.raises(EventNotRegisteredError):
        monitor.clear("message.nope")


def test_per_producer_monitor_has_no_class_events(monitor):
    with pytest.raises(EventNotRegisteredError):
        monitor.subscribe("producer.created", lambda event: None)


def test_class_monitor_has_no_per_producer_events():
    with pytest.raises(EventNotRegisteredError):
        Monitor(CLASS_EVENTS).subscribe("message.acknowledged", lambda event: None)


# --- subscription forms ---------------------------------------------------------------------------


def test_subscribe_by_name_with_a_callable(monitor):
    seen = []
    returned = monitor.subscribe("message.acknowledged", seen.append)
    assert returned == seen.append
    monitor.instrument("message.acknowledged", producer_id="p", offset=3)
    assert len(seen) == 1
    assert seen[0].id == "message.acknowledged"
    assert seen[0].payload == {"producer_id": "p", "offset": 3}


def test_subscribe_as_a_decorator(monitor):
    seen = []

    @monitor.subscribe("buffer.purged")
    def on_purged(event):
        seen.append(event["producer_id"])

    assert callable(on_purged)  # the function itself is returned
    monitor.instrument("buffer.purged", producer_id="p1")
    on_purged(Event("buffer.purged", {"producer_id": "direct"}))
    assert seen == ["p1", "direct"]


def test_subscribe_a_listener_object_by_its_on_methods(monitor):
    class Listener:
        def __init__(self):
            self.seen = []

        def on_message_produced_async(self, event):
            self.seen.append(event.id)

        def on_error_occurred(self, event):
            self.seen.append(event.id)

        def on_something_else(self, event):  # not an event: ignored
            self.seen.append("wrong")

        on_buffer_purged = "not callable"

    listener = Listener()
    assert monitor.subscribe(listener) is listener
    assert set(monitor.listeners) == {"message.produced_async", "error.occurred"}
    for name in ("message.produced_async", "error.occurred", "buffer.purged", "producer.closed"):
        monitor.instrument(name, producer_id="p")
    assert listener.seen == ["message.produced_async", "error.occurred"]


def test_a_listener_object_without_handlers_subscribes_to_nothing(monitor):
    monitor.subscribe(object())
    assert monitor.listeners == {}


def test_listeners_run_in_subscription_order_on_the_emitting_thread(monitor):
    order = []
    monitor.subscribe("producer.closing", lambda e: order.append(("a", threading.get_ident())))
    monitor.subscribe("producer.closing", lambda e: order.append(("b", threading.get_ident())))
    thread = threading.Thread(target=monitor.instrument, args=("producer.closing",),
                              kwargs={"producer_id": "p"})
    thread.start()
    thread.join()
    assert order == [("a", thread.ident), ("b", thread.ident)]


def test_a_listener_exception_propagates_to_the_emitter(monitor):
    """As karafka-core: listeners run inline. (Background emitters catch it, see
    test_errors.py's callbacks.*.error.)"""

    def boom(event):
        raise RuntimeError("listener failed")

    monitor.subscribe("producer.closing", boom)
    with pytest.raises(RuntimeError, match="listener failed"):
        monitor.instrument("producer.closing", producer_id="p")


# --- listeners, unsubscribe, clear --------------------------------------------------------------


def test_listeners_lists_callables_per_event(monitor):
    def first(event):
        pass

    def second(event):
        pass

    monitor.subscribe("message.acknowledged", first)
    monitor.subscribe("message.acknowledged", second)
    monitor.subscribe("error.occurred", first)
    assert monitor.listeners == {
        "message.acknowledged": [first, second],
        "error.occurred": [first],
    }
    # a copy: mutating it changes nothing
    monitor.listeners["message.acknowledged"].clear()
    assert len(monitor.listeners["message.acknowledged"]) == 2


def test_unsubscribe_a_callable(monitor):
    seen = []

    def listener(event):
        seen.append(event)

    monitor.subscribe("message.acknowledged", listener)
    monitor.subscribe("error.occurred", listener)
    monitor.unsubscribe(listener)
    monitor.instrument("message.acknowledged", producer_id="p")
    monitor.instrument("error.occurred", producer_id="p")
    assert seen == []
    assert monitor.listeners == {}


def test_unsubscribe_a_bound_method(monitor):
    """``obj.method`` is a new object on every access: unsubscribe matches it by equality."""
    seen = []
    monitor.subscribe("message.acknowledged", seen.append)
    monitor.unsubscribe(seen.append)
    monitor.instrument("message.acknowledged", producer_id="p")
    assert seen == []
    assert monitor.listeners == {}


def test_unsubscribe_a_listener_object_keeps_the_others(monitor):
    class Listener:
        def __init__(self):
            self.seen = 0

        def on_producer_closed(self, event):
            self.seen += 1

    gone, kept = Listener(), Listener()
    monitor.subscribe(gone)
    monitor.subscribe(kept)
    monitor.unsubscribe(gone)
    monitor.instrument("producer.closed", producer_id="p", time=1.0)
    assert (gone.seen, kept.seen) == (0, 1)


def test_unsubscribing_what_was_never_subscribed_is_a_no_op(monitor):
    monitor.subscribe("producer.closed", print)
    monitor.unsubscribe(object())
    assert monitor.listeners == {"producer.closed": [print]}


def test_clear_one_event(monitor):
    class Listener:
        def on_producer_closed(self, event):
            pass

        def on_producer_closing(self, event):
            pass

    monitor.subscribe(Listener())
    monitor.subscribe("producer.closed", print)
    monitor.clear("producer.closed")
    assert set(monitor.listeners) == {"producer.closing"}


def test_clear_everything(monitor):
    monitor.subscribe("producer.closed", print)
    monitor.subscribe("error.occurred", print)
    monitor.clear()
    assert monitor.listeners == {}
    assert not monitor.listening("error.occurred")


def test_listening(monitor):
    assert not monitor.listening("message.acknowledged")
    monitor.subscribe("message.acknowledged", print)
    assert monitor.listening("message.acknowledged")
    assert not monitor.listening("error.occurred")


# --- dispatch while the listener lists change ------------------------------------------------------


def test_subscribing_from_inside_a_listener_during_dispatch_is_safe(monitor):
    """Copy-on-write: the running dispatch keeps its snapshot, the next one sees the change."""
    calls = []

    def late(event):
        calls.append(("late", event["n"]))

    def subscriber(event):
        calls.append(("subscriber", event["n"]))
        monitor.subscribe("producer.closing", late)

    monitor.subscribe("producer.closing", subscriber)
    monitor.instrument("producer.closing", n=1)
    assert calls == [("subscriber", 1)]
    monitor.instrument("producer.closing", n=2)
    assert calls == [("subscriber", 1), ("subscriber", 2), ("late", 2)]


def test_unsubscribing_from_inside_a_listener_during_dispatch_is_safe(monitor):
    calls = []

    def first(event):
        calls.append("first")
        monitor.unsubscribe(second)

    def second(event):
        calls.append("second")

    monitor.subscribe("producer.closing", first)
    monitor.subscribe("producer.closing", second)
    monitor.instrument("producer.closing")
    assert calls == ["first", "second"]  # the snapshot of this dispatch
    monitor.instrument("producer.closing")
    assert calls == ["first", "second", "first"]


def test_concurrent_subscribe_and_dispatch(monitor):
    """Many threads subscribing while others dispatch: nothing lost, nothing raised."""
    stop = threading.Event()
    errors = []
    seen = []

    def dispatch():
        try:
            while not stop.is_set():
                monitor.instrument("message.acknowledged", producer_id="p")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    dispatchers = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in dispatchers:
        thread.start()
    listeners = [lambda event, i=i: seen.append(i) for i in range(200)]
    subscribers = [
        threading.Thread(target=lambda chunk=listeners[i::4]: [
            monitor.subscribe("message.acknowledged", fn) for fn in chunk
        ])
        for i in range(4)
    ]
    for thread in subscribers:
        thread.start()
    for thread in subscribers:
        thread.join()
    stop.set()
    for thread in dispatchers:
        thread.join()
    assert errors == []
    assert len(monitor.listeners["message.acknowledged"]) == 200


# --- events ---------------------------------------------------------------------------------------


def test_event_reads_like_a_mapping():
    event = Event("message.acknowledged", {"producer_id": "p", "offset": 7})
    assert isinstance(event, Mapping)
    assert event.id == "message.acknowledged"
    assert event.payload == {"producer_id": "p", "offset": 7}
    assert event["offset"] == 7
    assert dict(event) == {"producer_id": "p", "offset": 7}
    assert len(event) == 2
    assert "offset" in event and "label" not in event
    assert event.get("label") is None
    assert "message.acknowledged" in repr(event)


def test_a_missing_key_raises_key_error_as_waterdrop():
    with pytest.raises(KeyError):
        Event("producer.closed", {"producer_id": "p"})["time"]


def test_instrument_merges_payload_and_keywords(monitor):
    seen = []
    monitor.subscribe("error.occurred", seen.append)
    payload = {"producer_id": "p"}
    monitor.instrument("error.occurred", payload, type="t")
    assert seen[0].payload == {"producer_id": "p", "type": "t"}
    assert payload == {"producer_id": "p"}  # the caller's dict is left alone


def test_timed_emits_after_the_block_with_time_in_ms(monitor):
    seen = []
    monitor.subscribe("producer.closed", seen.append)
    with monitor.timed("producer.closed", producer_id="p"):
        assert seen == []  # not before the work is done
        time.sleep(0.02)   # work of a known minimum length
    assert len(seen) == 1
    event = seen[0]
    assert event["producer_id"] == "p"
    assert isinstance(event["time"], float)
    # milliseconds, not seconds: 20 ms of waiting reads as >= ~20
    assert event["time"] >= 15


def test_timed_does_not_emit_when_the_block_raises(monitor):
    seen = []
    monitor.subscribe("producer.closed", seen.append)
    with pytest.raises(ValueError):
        with monitor.timed("producer.closed", producer_id="p"):
            raise ValueError("work failed")
    assert seen == []


def test_timed_without_listeners_emits_nothing(monitor):
    with monitor.timed("producer.closed", producer_id="p") as payload:
        pass
    assert "time" not in payload


# --- statistics freeze (inventory §4.1, §4.4) -----------------------------------------------------


def test_frozen_statistics_refuse_late_subscriptions(monitor):
    monitor.freeze_statistics_listeners()
    with pytest.raises(StatisticsNotEnabledError, match="statistics.emitted"):
        monitor.subscribe("statistics.emitted", print)

    class Listener:
        def on_statistics_emitted(self, event):
            pass

        def on_error_occurred(self, event):
            pass

    with pytest.raises(StatisticsNotEnabledError):
        monitor.subscribe(Listener())
    assert monitor.listeners == {}  # the refused listener got nothing at all
    monitor.subscribe("error.occurred", print)  # others are fine
    assert isinstance(StatisticsNotEnabledError("x"), Error)
