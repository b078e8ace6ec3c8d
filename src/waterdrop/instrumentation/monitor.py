"""The event bus: WaterDrop's event names, subscribe by name or by listener object.

Emitting an event nobody listens to costs one dict lookup: no payload, no Event, no timing.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload

from waterdrop.errors import Error
from waterdrop.instrumentation.events import CLASS_EVENTS, EVENTS, STATISTICS_EMITTED

__all__ = ["CLASS_EVENTS", "EVENTS", "Event", "EventNotRegisteredError", "Monitor"]


class EventNotRegisteredError(Error, KeyError):
    """Subscribing to, or emitting, an event name that is not in the registry."""

    def __str__(self) -> str:
        # the text itself, not KeyError's repr of it
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


def _unknown_event(event: str, events: frozenset[str]) -> str:
    """Why ``event`` is not one of ``events``, and what to subscribe to instead."""
    if event in CLASS_EVENTS and event not in events:
        return (f"{event!r} is a process-wide event, not a producer's: subscribe on "
                "waterdrop.monitor")
    if event in EVENTS and event not in events:
        return (f"{event!r} is a producer's event, not a process-wide one: subscribe on "
                "producer.monitor")
    text = f"{event!r} is not a registered event"
    close = difflib.get_close_matches(str(event), sorted(events), n=1, cutoff=0.75)
    if close:
        return f"{text}; did you mean {close[0]!r}?"
    return f"{text} (monitor.available_events lists them)"


class Event(Mapping[str, Any]):
    """One emitted event: reads like a mapping, with ``.id`` and ``.payload``."""

    __slots__ = ("id", "payload")

    def __init__(self, event_id: str, payload: dict[str, Any]) -> None:
        self.id = event_id
        self.payload = payload

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.payload)

    def __len__(self) -> int:
        return len(self.payload)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.payload!r}>"


Listener = Callable[[Event], Any]
_ListenerT = TypeVar("_ListenerT", bound=Listener)
_ObjectT = TypeVar("_ObjectT")


class Monitor:
    """A closed registry of events with copy-on-write listener lists (safe during dispatch)."""

    def __init__(self, events: tuple[str, ...] = EVENTS) -> None:
        self._events = frozenset(events)
        self._lock = threading.Lock()
        # event -> tuple of callables; only events with listeners are present
        self._listeners: dict[str, tuple[Listener, ...]] = {}
        # what was subscribed, to unsubscribe objects and callables alike
        self._subscriptions: list[tuple[Any, dict[str, Listener]]] = []
        self._statistics_frozen = False
        self._statistics_frozen_by: str | None = None
        #: Counts every change of the listeners (subscribe, unsubscribe, clear): whoever keeps
        #: ``listening()`` answers (the core's dispatch, once per message) asks again only once
        #: ``listener_changes.count`` moved. The core's type, whose count it reads in one load;
        #: imported here because the core imports this package's event names.
        from waterdrop._core import ListenerChanges

        self.listener_changes = ListenerChanges()

    @property
    def available_events(self) -> tuple[str, ...]:
        return tuple(sorted(self._events))

    def _check(self, event: str) -> None:
        if event not in self._events:
            raise EventNotRegisteredError(_unknown_event(event, self._events))

    # Overloaded so that a decorated listener keeps its type (mypy --strict refuses an untyped
    # decorator); a str always matches the first two forms.
    @overload
    def subscribe(
        self, event_or_listener: str, callback: None = None
    ) -> Callable[[_ListenerT], _ListenerT]: ...
    @overload
    def subscribe(self, event_or_listener: str, callback: _ListenerT) -> _ListenerT: ...
    @overload
    def subscribe(
        self, event_or_listener: _ObjectT, callback: None = None
    ) -> _ObjectT: ...
    def subscribe(self, event_or_listener: Any, callback: Listener | None = None) -> Any:
        """``subscribe("event.name", fn)``, or ``subscribe(listener)`` with ``on_<event>`` methods.

        Also usable as a decorator: ``@monitor.subscribe("event.name")``.
        """
        if isinstance(event_or_listener, str):
            event = event_or_listener
            self._check(event)
            if callback is None:
                def decorator(fn: Listener) -> Listener:
                    self.subscribe(event, fn)
                    return fn
                return decorator
            self._add(callback, {event: callback})
            return callback
        listener = event_or_listener
        handlers: dict[str, Listener] = {}
        for event in self._events:
            method = getattr(listener, "on_" + event.replace(".", "_"), None)
            if callable(method):
                handlers[event] = method
        self._add(listener, handlers)
        return listener

    def _add(self, owner: Any, handlers: dict[str, Listener]) -> None:
        self._before_subscribe(handlers)
        with self._lock:
            listeners = dict(self._listeners)
            for event, fn in handlers.items():
                listeners[event] = (*listeners.get(event, ()), fn)
            self._listeners = listeners
            self._subscriptions.append((owner, dict(handlers)))
            self.listener_changes.bump()

    def _before_subscribe(self, handlers: dict[str, Listener]) -> None:
        if self._statistics_frozen and STATISTICS_EMITTED in handlers:
            from waterdrop.errors import StatisticsNotEnabledError

            raise StatisticsNotEnabledError(self._statistics_frozen_by)

    def freeze_statistics_listeners(self, producer_id: str | None = None) -> None:
        """Refuse later statistics.emitted subscriptions (the client of ``producer_id``, whom
        the error names, was built without them)."""
        self._statistics_frozen_by = producer_id
        self._statistics_frozen = True

    def unsubscribe(self, listener: Any) -> None:
        with self._lock:
            kept = [(o, hs) for o, hs in self._subscriptions if not (o is listener or o == listener)]
            self._subscriptions = kept
            self._rebuild()

    def _rebuild(self) -> None:
        listeners: dict[str, tuple[Listener, ...]] = {}
        for _owner, handlers in self._subscriptions:
            for event, fn in handlers.items():
                listeners[event] = (*listeners.get(event, ()), fn)
        self._listeners = listeners
        self.listener_changes.bump()

    def clear(self, event: str | None = None) -> None:
        with self._lock:
            if event is None:
                self._subscriptions = []
            else:
                self._check(event)
                self._subscriptions = [
                    (o, {e: fn for e, fn in hs.items() if e != event})
                    for o, hs in self._subscriptions
                ]
            self._rebuild()

    @property
    def listeners(self) -> dict[str, list[Listener]]:
        return {event: list(fns) for event, fns in self._listeners.items()}

    def listening(self, event: str) -> bool:
        """True when someone listens to ``event`` (the hot path's one check).

        The answer changes only with ``listener_changes.count``.
        """
        return event in self._listeners

    def instrument(self, event: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Notify the listeners of ``event`` now (no-op when nobody listens)."""
        fns = self._listeners.get(event)
        if fns is None:
            if event not in self._events:
                self._check(event)
            return
        data = dict(payload or {}, **kwargs)
        evt = Event(event, data)
        for fn in fns:
            fn(evt)

    def timed(self, event: str, **payload: Any) -> "_Timed":
        """Context manager: emit ``event`` with ``time`` (ms) after the block succeeds."""
        return _Timed(self, event, payload)


class _Timed:
    __slots__ = ("monitor", "event", "payload", "start")

    def __init__(self, monitor: Monitor, event: str, payload: dict[str, Any]) -> None:
        self.monitor = monitor
        self.event = event
        self.payload = payload
        self.start = 0.0

    def __enter__(self) -> dict[str, Any]:
        self.start = time.monotonic()
        return self.payload

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None and self.monitor.listening(self.event):
            self.payload["time"] = (time.monotonic() - self.start) * 1000.0
            self.monitor.instrument(self.event, self.payload)
