"""OpenTelemetryListener: a PRODUCER span per message from dispatch to delivery report, W3C
trace context in the headers (SDK in-memory exporter; MockCluster; confluent-kafka reads back)."""

from __future__ import annotations

import gc
import re
import threading
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from tests.helpers import consume, headers_of, unique_topic  # noqa: E402
from tests.unit.instrumentation.conftest import DEADLINE_S  # noqa: E402
from waterdrop import MessageInvalidError, ProduceError, ProduceManyError, Producer  # noqa: E402
from waterdrop.instrumentation.opentelemetry import OpenTelemetryListener  # noqa: E402
from waterdrop.testing import MockCluster  # noqa: E402

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


class Ended(SpanProcessor):
    """Collects ended spans; ``wait(n)`` blocks until n of them ended."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self._cond = threading.Condition()

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            self.spans.append(span)
            self._cond.notify_all()

    def wait(self, count: int, deadline_s: float = DEADLINE_S) -> list[ReadableSpan]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.spans) >= count, timeout=deadline_s)
            spans = list(self.spans)
        assert len(spans) >= count, f"{len(spans)} of {count} spans ended within {deadline_s} s"
        return spans

    def producer_spans(self) -> list[ReadableSpan]:
        with self._cond:
            return [s for s in self.spans if s.kind is SpanKind.PRODUCER]


class Tracing:
    def __init__(self) -> None:
        self.provider = TracerProvider()
        self.exporter = InMemorySpanExporter()
        self.ended = Ended()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.provider.add_span_processor(self.ended)
        self.tracer = self.provider.get_tracer("tests")
        self.listener = OpenTelemetryListener(tracer_provider=self.provider)

    def wait_producer_spans(self, count: int) -> list[ReadableSpan]:
        self.ended.wait(count)
        with self.ended._cond:
            self.ended._cond.wait_for(lambda: len(self.ended.producer_spans()) >= count,
                                      timeout=DEADLINE_S)
        spans = self.ended.producer_spans()
        assert len(spans) >= count
        return spans


@pytest.fixture
def tracing() -> Tracing:
    tracing = Tracing()
    yield tracing
    tracing.provider.shutdown()


@pytest.fixture
def traced(tracing, make_producer):
    """A producer on the MockCluster with the listener installed."""
    return tracing.listener.install(make_producer())


def traceparent_of(headers: dict[str, Any]) -> tuple[str, str]:
    match = TRACEPARENT.fullmatch(headers["traceparent"])
    assert match, headers
    return match.group(1), match.group(2)


def ids(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


# --- one span per message -------------------------------------------------------------------------


def test_install_appends_middleware_and_subscribes(tracing, make_producer):
    producer = make_producer()
    assert tracing.listener.install(producer) is producer
    assert len(producer.middleware.steps) == 1
    for event in ("message.produced_async", "messages.produced_async", "message.produced_sync",
                  "messages.produced_sync", "error.occurred"):
        assert event in producer.monitor.listeners
    # tracing does not need statistics: they stay off
    assert "statistics.emitted" not in producer.monitor.listeners


def test_installing_twice_traces_once(tracing, make_producer, topic):
    producer = make_producer()
    tracing.listener.install(producer)
    tracing.listener.install(producer)
    assert len(producer.middleware.steps) == 1
    producer.produce_sync(topic=topic, payload=b"x")
    assert len(tracing.wait_producer_spans(1)) == 1
    assert len(producer.monitor.listeners["message.produced_sync"]) == 1


def test_a_span_per_async_message_ended_at_the_delivery_report(tracing, traced, topic):
    handles = [
        traced.produce_async(topic=topic, payload=b"abc", key=f"k{i}") for i in range(3)
    ]
    reports = [h.wait() for h in handles]
    spans = tracing.wait_producer_spans(3)
    assert len(spans) == 3
    by_key = {s.attributes["messaging.kafka.message.key"]: s for s in spans}
    for i, report in enumerate(reports):
        span = by_key[f"k{i}"]
        assert span.name == f"send {topic}"
        assert span.kind is SpanKind.PRODUCER
        assert span.status.status_code is StatusCode.UNSET
        assert span.end_time is not None and span.end_time >= span.start_time
        attrs = span.attributes
        assert attrs["messaging.system"] == "kafka"
        assert attrs["messaging.operation.type"] == "send"
        assert attrs["messaging.destination.name"] == topic
        assert attrs["messaging.destination.partition.id"] == str(report.partition)
        assert attrs["messaging.kafka.offset"] == report.offset
        assert attrs["messaging.client.id"] == traced.id
        assert attrs["messaging.message.body.size"] == 3
    assert tracing.listener.pending == 0


def test_the_span_is_open_until_the_report_arrives(tracing, make_producer, topic):
    """Started at dispatch, not ended before librdkafka reports (linger holds the message)."""
    producer = tracing.listener.install(make_producer(kafka={"linger.ms": 60_000}))
    handle = producer.produce_async(topic=topic, payload=b"x")
    assert tracing.ended.producer_spans() == []
    assert handle.pending
    producer.close()        # delivers what librdkafka holds
    (span,) = tracing.wait_producer_spans(1)
    assert span.attributes["messaging.kafka.offset"] == handle.wait().offset


def test_key_attribute_only_for_str_keys(tracing, traced, topic):
    traced.produce_sync(topic=topic, payload=b"x", key=b"\x00bytes")
    traced.produce_sync(topic=topic, payload=b"x")
    for span in tracing.wait_producer_spans(2):
        assert "messaging.kafka.message.key" not in span.attributes


def test_sync_produce_ends_the_span_with_the_report(tracing, traced, topic):
    report = traced.produce_sync(topic=topic, payload=b"x", partition=0)
    (span,) = tracing.wait_producer_spans(1)
    assert span.attributes["messaging.kafka.offset"] == report.offset
    assert span.attributes["messaging.destination.partition.id"] == "0"
    assert tracing.listener.pending == 0


@pytest.mark.parametrize("sync", [True, False])
def test_batches_get_a_span_per_message(tracing, traced, topic, sync):
    batch = [{"topic": topic, "payload": f"{i}", "key": f"{i}"} for i in range(5)]
    handles = traced.produce_many_sync(batch) if sync else traced.produce_many_async(batch)
    offsets = {str(i): h.wait().offset for i, h in enumerate(handles)}
    spans = tracing.wait_producer_spans(5)
    assert {s.attributes["messaging.kafka.message.key"]: s.attributes["messaging.kafka.offset"]
            for s in spans} == offsets
    assert tracing.listener.pending == 0


def test_buffered_messages_are_traced_when_flushed(tracing, traced, topic):
    traced.buffer(topic=topic, payload=b"a")
    traced.buffer(topic=topic, payload=b"b")
    assert tracing.listener.pending == 0  # buffering runs no middleware
    for handle in traced.flush_async():
        handle.wait()
    assert len(tracing.wait_producer_spans(2)) == 2


def test_tombstones_are_traced(tracing, traced, topic):
    traced.tombstone_sync(topic=topic, key="gone", partition=0)
    (span,) = tracing.wait_producer_spans(1)
    assert span.attributes["messaging.kafka.message.tombstone"] is True


def test_variants_are_traced(tracing, traced, topic):
    variant = traced.variant(topic_config={"acks": 1})
    variant.produce_sync(topic=topic, payload=b"x")
    assert len(tracing.wait_producer_spans(1)) == 1


def test_transactional_messages_end_at_commit_or_abort(tracing, make_producer, topic):
    from waterdrop import AbortTransaction

    producer = tracing.listener.install(
        make_producer(kafka={"transactional.id": f"otel-{topic}", "linger.ms": 60_000})
    )
    with producer.transaction():
        producer.produce_async(topic=topic, payload=b"committed", key="c")
    with producer.transaction():
        handle = producer.produce_async(topic=topic, payload=b"aborted", key="a")
        producer.purge()  # what an abort leaves undelivered is purged
        raise AbortTransaction()
    assert handle.wait(DEADLINE_S * 1000, raise_response_error=False).error is not None
    spans = {s.attributes["messaging.kafka.message.key"]: s
             for s in tracing.wait_producer_spans(2)}
    assert spans["c"].status.status_code is StatusCode.UNSET
    assert "messaging.kafka.offset" in spans["c"].attributes
    assert spans["a"].status.status_code is StatusCode.ERROR
    assert spans["a"].attributes["error.type"] == "purge_queue"


def test_one_listener_on_two_producers(tracing, make_producer, topic):
    one = tracing.listener.install(make_producer())
    two = tracing.listener.install(make_producer())
    one.produce_sync(topic=topic, payload=b"1")
    two.produce_sync(topic=topic, payload=b"2")
    spans = tracing.wait_producer_spans(2)
    assert {s.attributes["messaging.client.id"] for s in spans} == {one.id, two.id}


def test_dummy_client_messages_are_traced(tracing):
    with Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, deliver=False) as producer:
        tracing.listener.install(producer)
        producer.produce_async(topic="t", payload=b"x")
        producer.produce_sync(topic="t", payload=b"y")
    spans = tracing.wait_producer_spans(2)
    assert [s.attributes["messaging.kafka.offset"] for s in spans] == [0, 1]


# --- context propagation --------------------------------------------------------------------------


def test_traceparent_header_is_the_spans_context(tracing, traced, topic):
    seen = []
    traced.monitor.subscribe("message.produced_async", lambda e: seen.append(e["message"]))
    traced.produce_async(topic=topic, payload=b"x").wait()
    (span,) = tracing.wait_producer_spans(1)
    assert traceparent_of(seen[0]["headers"]) == ids(span)


def test_a_message_produced_inside_a_span_is_its_child(tracing, traced, topic):
    with tracing.tracer.start_as_current_span("handle-order") as parent:
        traced.produce_async(topic=topic, payload=b"x").wait()
    (span,) = tracing.wait_producer_spans(1)
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id


def test_a_message_outside_any_span_starts_a_trace(tracing, traced, topic):
    traced.produce_sync(topic=topic, payload=b"x")
    (span,) = tracing.wait_producer_spans(1)
    assert span.parent is None


def test_the_users_message_and_headers_are_never_mutated(tracing, traced, topic):
    headers = {"app": "orders", "multi": ["a", "b"]}
    message = {"topic": topic, "payload": b"x", "headers": headers}
    traced.produce_async(message).wait()
    traced.produce_sync(message)
    traced.produce_many_sync([message])
    assert message == {"topic": topic, "payload": b"x", "headers": headers}
    assert headers == {"app": "orders", "multi": ["a", "b"]}


def test_the_traceparent_reaches_the_consumer(tracing, traced, topic, cluster):
    """Read back with confluent-kafka: the headers carry the span's context and the
    user's own headers."""
    with tracing.tracer.start_as_current_span("request"):
        traced.produce_sync(topic=topic, payload=b"x", headers={"app": "orders"})
    (span,) = tracing.wait_producer_spans(1)
    (message,) = consume(cluster.bootstrap_servers, topic, 1)
    headers = dict(headers_of(message))
    assert headers["app"] == b"orders"
    assert traceparent_of({"traceparent": headers["traceparent"].decode()}) == ids(span)


def test_a_custom_propagator(tracing, make_producer, topic):
    from opentelemetry.propagators.textmap import TextMapPropagator

    class OwnHeader(TextMapPropagator):
        def inject(self, carrier, context=None, setter=None):
            span = trace.get_current_span(context)
            carrier["x-trace"] = f"{span.get_span_context().trace_id:032x}"

        def extract(self, carrier, context=None, getter=None):  # pragma: no cover
            return context

        @property
        def fields(self):  # pragma: no cover
            return {"x-trace"}

    listener = OpenTelemetryListener(tracer_provider=tracing.provider, propagator=OwnHeader())
    producer = listener.install(make_producer())
    seen = []
    producer.monitor.subscribe("message.produced_sync", lambda e: seen.append(e["message"]))
    producer.produce_sync(topic=topic, payload=b"x")
    (span,) = tracing.wait_producer_spans(1)
    assert seen[0]["headers"] == {"x-trace": ids(span)[0]}


# --- failures -------------------------------------------------------------------------------------


@pytest.fixture
def down():
    with MockCluster(brokers=1) as mc:
        name = unique_topic()
        mc.create_topic(name, partitions=1)
        mc.broker_down(1)
        yield mc, name


def test_a_failed_delivery_ends_the_span_with_an_error(tracing, down, make_producer):
    cluster, name = down
    producer = tracing.listener.install(make_producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500}
    ))
    handle = producer.produce_async(topic=name, payload=b"x")
    assert handle.wait(DEADLINE_S * 1000, raise_response_error=False).error is not None
    (span,) = tracing.wait_producer_spans(1)
    assert span.status.status_code is StatusCode.ERROR
    assert "timed out" in span.status.description
    assert span.attributes["error.type"] == "msg_timed_out"
    assert "messaging.kafka.offset" not in span.attributes
    assert any(e.name == "exception" for e in span.events)


def test_a_failed_sync_produce_ends_the_span_once(tracing, down, make_producer):
    cluster, name = down
    producer = tracing.listener.install(make_producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500}
    ))
    with pytest.raises(ProduceError):
        producer.produce_sync(topic=name, payload=b"x")
    (span,) = tracing.wait_producer_spans(1)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "msg_timed_out"
    assert tracing.listener.pending == 0


def test_an_inline_failure_ends_the_span_with_an_error(tracing, make_producer, topic):
    producer = tracing.listener.install(make_producer(kafka={"message.max.bytes": 1_000}))
    with pytest.raises(ProduceError):
        producer.produce_async(topic=topic, payload=b"x" * 5_000)
    (span,) = tracing.wait_producer_spans(1)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "msg_size_too_large"
    assert tracing.listener.pending == 0


def test_a_failed_batch_ends_every_span(tracing, make_producer, topic):
    producer = tracing.listener.install(make_producer(kafka={"message.max.bytes": 1_000}))
    batch = [
        {"topic": topic, "payload": b"ok", "key": "0"},
        {"topic": topic, "payload": b"x" * 5_000, "key": "1"},
        {"topic": topic, "payload": b"after", "key": "2"},
    ]
    with pytest.raises(ProduceManyError) as info:
        producer.produce_many_async(batch)
    for handle in info.value.dispatched:
        handle.wait(DEADLINE_S * 1000, raise_response_error=False)
    spans = tracing.wait_producer_spans(3)
    by_key = {s.attributes["messaging.kafka.message.key"]: s for s in spans}
    assert by_key["0"].status.status_code is StatusCode.UNSET  # dispatched and delivered
    assert by_key["1"].status.status_code is StatusCode.ERROR
    assert by_key["1"].attributes["error.type"] == "msg_size_too_large"
    # never dispatched (WaterDrop stops at the failing message): ended with the batch's error
    assert by_key["2"].status.status_code is StatusCode.ERROR
    assert "messaging.kafka.offset" not in by_key["2"].attributes
    assert tracing.listener.pending == 0


def test_invalid_headers_are_left_for_the_contract_to_reject(tracing, traced, topic):
    with pytest.raises(MessageInvalidError) as info:
        traced.produce_async(topic=topic, payload=b"x", headers=[("a", "b")])
    assert "headers" in info.value.errors
    del info
    gc.collect()
    tracing.listener.sweep()
    (span,) = tracing.wait_producer_spans(1)
    assert span.attributes["error.type"] == "not_dispatched"


def test_a_rejected_message_span_is_swept(tracing, traced, topic):
    """MessageInvalidError is never instrumented: the sweep ends the orphaned span."""
    with pytest.raises(MessageInvalidError):
        traced.produce_async(topic=topic, payload=12345)  # the middleware ran, then rejection
    assert tracing.listener.pending == 1
    gc.collect()
    assert tracing.listener.sweep() == 1
    (span,) = tracing.wait_producer_spans(1)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "not_dispatched"
    assert tracing.listener.pending == 0


def test_the_sweep_keeps_spans_of_messages_still_in_use(tracing):
    listener = tracing.listener
    message = listener.middleware({"topic": "t", "payload": b"x"})  # as a producer would
    assert listener.sweep() == 0        # someone (we) still holds the message
    assert listener.pending == 1
    del message
    assert listener.sweep() == 1
    assert listener.pending == 0


def test_the_sweep_runs_on_its_own_when_many_are_pending(tracing):
    listener = tracing.listener
    for _ in range(5_000):
        listener.middleware({"topic": "t", "payload": b"x"})  # dropped at once: orphans
    assert listener.pending < 2_100
    assert len(tracing.ended.producer_spans()) > 2_900


def test_a_retried_queue_full_keeps_the_span_open(tracing):
    """error.occurred with retry=True is not final: recorded, the span stays open."""
    from waterdrop.instrumentation import Event

    listener = tracing.listener
    message = listener.middleware({"topic": "t", "payload": b"x"})
    error = ProduceError("queue full")
    listener.on_error_occurred(Event("error.occurred", {
        "producer_id": "p", "message": message, "error": error,
        "type": "message.produce_async", "retry": True,
    }))
    assert listener.pending == 1
    assert tracing.ended.producer_spans() == []
    listener.on_error_occurred(Event("error.occurred", {
        "producer_id": "p", "message": message, "error": error,
        "type": "message.produce_async",
    }))
    (span,) = tracing.wait_producer_spans(1)
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events].count("waterdrop.retry") == 1


QUEUE = 5


@pytest.fixture
def full():
    """(cluster, topic, make) where make(**settings) builds a producer whose librdkafka queue
    (QUEUE messages) is full: the broker is down after a warm-up."""
    with MockCluster(brokers=1) as mc:
        name = unique_topic()
        mc.create_topic(name, partitions=1)
        made = []

        def make(tracing, **settings):
            producer = Producer(
                kafka={"bootstrap.servers": mc.bootstrap_servers,
                       "queue.buffering.max.messages": QUEUE, "message.timeout.ms": 60_000},
                max_wait_timeout=60_000, **settings,
            )
            made.append(producer)
            producer.produce_sync(topic=name, partition=0, payload=b"warm-up")
            mc.broker_down(1)
            for i in range(QUEUE):
                producer.produce_async(topic=name, partition=0, payload=f"fill-{i}")
            tracing.listener.install(producer)
            return producer

        yield mc, name, made, make
        mc.broker_up(1)
        for producer in made:
            producer.close(force=True)


def test_a_queue_full_retried_then_delivered_keeps_its_span(tracing, full):
    cluster, name, _made, make = full
    producer = make(tracing, wait_timeout_on_queue_full=60_000)
    waiting = threading.Event()
    producer.monitor.subscribe(
        "error.occurred", lambda e: e["type"] == "message.produce_async" and waiting.set()
    )
    result = []
    thread = threading.Thread(target=lambda: result.append(
        producer.produce_async(topic=name, partition=0, payload=b"waited", key="waited")
    ))
    thread.start()
    assert waiting.wait(DEADLINE_S)      # queue_full reported, the producer waits
    assert tracing.ended.producer_spans() == []
    cluster.broker_up(1)                 # the queue drains; the retry gets in
    thread.join(DEADLINE_S)
    assert result and result[0].wait(DEADLINE_S * 1000).error is None
    spans = tracing.wait_producer_spans(1)
    (span,) = [s for s in spans if s.attributes.get("messaging.kafka.message.key") == "waited"]
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["messaging.kafka.offset"] >= 0
    assert any(e.name == "waterdrop.retry" for e in span.events)
    assert tracing.listener.pending == 0


@pytest.mark.parametrize("settings", [
    {"wait_on_queue_full": False},
    {"wait_timeout_on_queue_full": 200, "wait_backoff_on_queue_full": 50},
], ids=["no-wait", "gave-up"])
def test_a_queue_full_given_up_ends_its_span_with_the_error(tracing, full, settings):
    _cluster, name, _made, make = full
    producer = make(tracing, **settings)
    with pytest.raises(ProduceError):
        producer.produce_async(topic=name, partition=0, payload=b"rejected", key="rejected")
    assert tracing.listener.pending == 1
    gc.collect()
    # the next dispatch notices the given-up message (nothing references it any more)
    tracing.listener.middleware({"topic": name, "payload": b"next"})
    spans = tracing.wait_producer_spans(1)
    (span,) = [s for s in spans if s.attributes.get("messaging.kafka.message.key") == "rejected"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "queue_full"


def test_other_error_types_are_ignored(tracing, traced):
    from waterdrop.instrumentation import Event

    traced.monitor.instrument("error.occurred", producer_id=traced.id, error=RuntimeError("x"),
                              type="librdkafka.error", caller=traced)
    assert tracing.ended.producer_spans() == []
    tracing.listener.on_error_occurred(Event("error.occurred", {"type": "callbacks.delivery.error"}))
