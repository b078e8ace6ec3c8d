"""OpenTelemetry tracing: one PRODUCER span per message, from dispatch to delivery report.

Install ``opentelemetry-api`` (``pip install '.[otel]'`` in a checkout of waterdrop installs
it with waterdrop); an SDK, e.g. ``opentelemetry-sdk``, exports the spans::

    from waterdrop.instrumentation.opentelemetry import OpenTelemetryListener

    OpenTelemetryListener().install(producer)

How it works:

- ``install`` appends a middleware step to the producer and subscribes the listener to its
  monitor. Install it last, after the middleware that builds the final message: the span
  is correlated with the exact message dict this step returns.
- The middleware step starts a ``send <topic>`` span of kind PRODUCER (a child of the span
  active in the calling thread, if any) and injects its W3C trace context into a copy of the
  message's ``headers`` (the user's dict and headers are never mutated), so consumers can
  continue the trace.
- ``message.produced_async`` / ``messages.produced_async`` carry the delivery handle(s): the
  span ends from ``handle.add_done_callback`` when the delivery report arrives (on the
  producer's poller thread), with the partition and offset, or the delivery error and an
  ERROR status. ``message.produced_sync`` / ``messages.produced_sync`` end it at once.
- ``error.occurred`` of a dispatch (``message.produce_*``, ``messages.produce_many_*``) ends
  the span with the error. A ``queue_full`` (which the producer may retry: WaterDrop reports
  each one it waits on) is recorded as a span event and the span stays open; once the
  message is given up on and released, its span ends with that error at the next dispatch.
  An explicit ``retry`` key in the payload decides instead, when present.
- A message rejected before it reached librdkafka without an event (``MessageInvalidError``
  is never instrumented, as in WaterDrop) is found by a periodic sweep once nothing else
  references it, and its span ends with an ERROR status ("not dispatched").
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from waterdrop.instrumentation._extras import missing_extra

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise missing_extra(__name__, "opentelemetry-api", "otel") from error

from waterdrop._version import __version__

__all__ = ["OpenTelemetryListener"]

_TRACER_NAME = "waterdrop"
_NOT_DISPATCHED = "message was not dispatched (rejected before it reached librdkafka)"

#: Pending spans above this many trigger a sweep for messages nobody can dispatch any more.
_SWEEP_MIN = 1024


class OpenTelemetryListener:
    """Traces every message a producer sends (see the module docstring).

    ``tracer_provider``: the provider to get the tracer from (the global one by default).
    ``propagator``: a ``TextMapPropagator`` for the headers (the global one by default,
    W3C ``traceparent``/``tracestate`` and baggage unless configured otherwise).

    One listener may be installed on several producers.
    """

    def __init__(self, tracer_provider: Any = None, propagator: Any = None) -> None:
        self._tracer = trace.get_tracer(
            _TRACER_NAME, __version__, tracer_provider=tracer_provider
        )
        self._propagator = propagator
        # id(message dict) -> (message dict, span): spans started by the middleware that no
        # dispatch event has claimed yet. Plain dict operations (atomic under the GIL);
        # the lock only serialises sweeps.
        self._pending: dict[int, tuple[dict[str, Any], Any]] = {}
        self._sweep_lock = threading.Lock()
        self._sweep_at = _SWEEP_MIN
        # id(message dict) -> the error of a queue_full that may be retried: the span stays
        # open; if the message is given up on (nothing references it any more) the span
        # ends with that error at the next dispatch or sweep.
        self._parked: dict[int, _Failure] = {}
        self._installed: weakref.WeakSet[Any] = weakref.WeakSet()
        self._monitors: weakref.WeakSet[Any] = weakref.WeakSet()

    # --- installation ----------------------------------------------------------------------------

    def install(self, producer: Any) -> Any:
        """Append the tracing middleware to ``producer`` and subscribe to its monitor.

        Returns the producer. Installing before the first use is not required (tracing
        does not depend on statistics), but the step must be the last one that replaces the
        message dict. Installing twice on a producer does nothing the second time; a
        monitor shared by several producers is subscribed to once.
        """
        if producer in self._installed:
            return producer
        producer.middleware.append(self.middleware_for(producer.id))
        if producer.monitor not in self._monitors:
            producer.monitor.subscribe(self)
            self._monitors.add(producer.monitor)
        self._installed.add(producer)
        return producer

    def middleware_for(self, client_id: str | None = None) -> Callable[[dict[str, Any]], Any]:
        """A middleware step that starts the span (``messaging.client.id`` = ``client_id``)."""

        def step(message: dict[str, Any]) -> dict[str, Any]:
            return self._start(message, client_id)

        return step

    @property
    def middleware(self) -> Callable[[dict[str, Any]], Any]:
        """A middleware step without ``messaging.client.id``."""
        return self.middleware_for(None)

    @property
    def pending(self) -> int:
        """Spans started and not yet handed to a dispatch event (tests, diagnostics)."""
        return len(self._pending)

    # --- the middleware step ---------------------------------------------------------------------

    def _start(self, message: Mapping[str, Any], client_id: str | None) -> dict[str, Any]:
        topic = message.get("topic")
        topic_name = str(topic) if topic is not None else ""
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic_name,
        }
        if client_id is not None:
            attributes["messaging.client.id"] = client_id
        key = message.get("key")
        if type(key) is str:
            attributes["messaging.kafka.message.key"] = key
        partition = message.get("partition")
        if type(partition) is int and partition >= 0:
            attributes["messaging.destination.partition.id"] = str(partition)
        payload = message.get("payload")
        if payload is None and "payload" in message:
            attributes["messaging.kafka.message.tombstone"] = True
        elif type(payload) is bytes:
            attributes["messaging.message.body.size"] = len(payload)
        span = self._tracer.start_span(
            f"send {topic_name}" if topic_name else "send",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        traced = dict(message)
        headers = message.get("headers")
        if headers is None or type(headers) is dict:
            # a copy: the caller's headers dict is never modified
            headers = dict(headers) if headers else {}
            ctx = trace.set_span_in_context(span, otel_context.get_current())
            if self._propagator is not None:
                self._propagator.inject(headers, context=ctx)
            else:
                propagate.inject(headers, context=ctx)
            traced["headers"] = headers
        # else: headers of a type the message contract rejects; left for it to reject
        if self._parked:
            self._sweep_parked()
        pending = self._pending
        # the entry holds the message: its id cannot be reused while the span is pending
        pending[id(traced)] = (traced, span)
        if len(pending) >= self._sweep_at:
            self.sweep()
        return traced

    def _claim(self, message: Any) -> Any:
        entry = self._pending.pop(id(message), None)
        if entry is None:
            return None
        if self._parked:
            self._parked.pop(id(message), None)
        if entry[0] is not message:  # pragma: no cover - ids are unique among live objects
            self._pending[id(entry[0])] = entry
            return None
        return entry[1]

    def sweep(self) -> int:
        """End the spans of messages nobody can dispatch any more (rejected before
        librdkafka without an event); returns how many. Runs on its own when many spans are
        pending; call it directly to clean up sooner."""
        if not self._sweep_lock.acquire(blocking=False):
            return 0
        try:
            ended = 0
            pending = self._pending
            for key in list(pending):
                entry = pending.get(key)
                if entry is not None and _refs(entry) <= _ONLY_PENDING:
                    error = self._parked.get(key)
                    if pending.pop(key, None) is entry:
                        self._parked.pop(key, None)
                        _end_abandoned(entry[1], error)
                        ended += 1
            self._sweep_at = max(_SWEEP_MIN, 2 * len(pending))
            return ended
        finally:
            self._sweep_lock.release()

    def _sweep_parked(self) -> None:
        """The parked (queue_full) messages only: few, checked at every dispatch."""
        pending = self._pending
        parked = self._parked
        for key in list(parked):
            entry = pending.get(key)
            error = parked.get(key)
            if entry is None:
                parked.pop(key, None)
            elif _refs(entry) <= _ONLY_PENDING and pending.pop(key, None) is entry:
                parked.pop(key, None)
                _end_abandoned(entry[1], error)

    # --- dispatch events -------------------------------------------------------------------------

    def on_message_produced_async(self, event: Any) -> None:
        span = self._claim(event["message"])
        if span is not None:
            event["handle"].add_done_callback(_Finisher(span))

    def on_messages_produced_async(self, event: Any) -> None:
        for message, handle in zip(event["messages"], event["handles"]):
            span = self._claim(message)
            if span is not None:
                handle.add_done_callback(_Finisher(span))

    def on_message_produced_sync(self, event: Any) -> None:
        span = self._claim(event["message"])
        if span is not None:
            _finish(span, event["report"])

    def on_messages_produced_sync(self, event: Any) -> None:
        for message, handle in zip(event["messages"], event["handles"]):
            span = self._claim(message)
            if span is not None:
                _finish(span, handle.report())

    def on_error_occurred(self, event: Any) -> None:
        kind = event.payload.get("type")
        if kind in ("message.produce_async", "message.produce_sync"):
            self._failed_single(event)
        elif kind in ("messages.produce_many_async", "messages.produce_many_sync"):
            self._failed_many(event)
        elif kind in ("message.produce_many_async", "message.produce_many_sync"):
            # a retried queue_full inside a batch: one message is named, the batch goes on
            self._record_retry(event, event.payload.get("message"))

    def _failed_single(self, event: Any) -> None:
        message = event.payload.get("message")
        error = event.payload.get("error")
        retry = event.payload.get("retry")
        if retry is None:
            # WaterDrop reports each queue_full it waits on with the same payload as the
            # final one: treat it as retried; a given-up message is ended once unreferenced
            retry = _code(error) == "queue_full"
        if retry:
            self._record_retry(event, message)
            return
        span = self._claim(message)
        if span is not None:
            _end_error(span, error)

    def _record_retry(self, event: Any, message: Any) -> None:
        entry = self._pending.get(id(message))
        if entry is not None and entry[0] is message:
            error = event.payload.get("error")
            summary = _Failure(error)
            entry[1].add_event(
                "waterdrop.retry",
                {"exception.type": summary.type_name, "exception.message": summary.message},
            )
            # a summary, not the error: its traceback would keep the message alive
            self._parked[id(message)] = summary

    def _failed_many(self, event: Any) -> None:
        messages = event.payload.get("messages") or ()
        dispatched = event.payload.get("dispatched") or ()
        error = event.payload.get("error")
        for index, message in enumerate(messages):
            span = self._claim(message)
            if span is None:
                continue
            if index < len(dispatched):
                dispatched[index].add_done_callback(_Finisher(span))
            else:
                _end_error(span, error)


def _refs(entry: tuple[Any, ...]) -> int:
    return sys.getrefcount(entry[0])


#: What ``_refs`` reads for a message only the pending entry references (calibrated, as
#: interpreters count stack references differently).
_ONLY_PENDING = _refs(({}, None))


class _Finisher:
    """A delivery handle's done callback: ends its span (on the poller thread)."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def __call__(self, handle: Any) -> None:
        _finish(self.span, handle.report())


def _finish(span: Any, report: Any) -> None:
    if report is None:  # pragma: no cover - handles are resolved when callbacks run
        span.end()
        return
    if report.partition >= 0:
        span.set_attribute("messaging.destination.partition.id", str(report.partition))
    error = report.error
    if error is None:
        if report.offset >= 0:
            span.set_attribute("messaging.kafka.offset", report.offset)
        span.end()
        return
    _end_error(span, error)


def _code(error: Any) -> Any:
    cause = getattr(error, "cause", None) or error
    return getattr(cause, "code", None)


def _end_error(span: Any, error: Any) -> None:
    cause = getattr(error, "cause", None) or error
    code = getattr(cause, "code", None)
    span.set_attribute("error.type", str(code) if code is not None else type(cause).__name__)
    if isinstance(error, BaseException):
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, str(error)))
    span.end()


class _Failure:
    """What a span needs of an error, without holding the error (and its traceback)."""

    __slots__ = ("code", "type_name", "message")

    def __init__(self, error: Any) -> None:
        code = _code(error)
        self.code = str(code) if code is not None else None
        self.type_name = type(error).__name__
        self.message = str(error)


def _end_abandoned(span: Any, failure: _Failure | None) -> None:
    """A message nothing references any more: it failed (a queue_full given up on), or was
    rejected without an event."""
    if failure is None:
        _end_not_dispatched(span)
        return
    span.set_attribute("error.type", failure.code or failure.type_name)
    span.add_event(
        "exception", {"exception.type": failure.type_name, "exception.message": failure.message}
    )
    span.set_status(Status(StatusCode.ERROR, failure.message))
    span.end()


def _end_not_dispatched(span: Any) -> None:
    span.set_attribute("error.type", "not_dispatched")
    span.set_status(Status(StatusCode.ERROR, _NOT_DISPATCHED))
    span.end()
