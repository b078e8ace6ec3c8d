"""Instrumentation end to end on a real broker: acknowledgements match what a consumer reads,
broker-side delivery errors carry their label, statistics from a real cluster feed the
Prometheus gauges, the OpenTelemetry trace context reaches the consumer, and OAUTHBEARER
authentication with an unsecured JWS.

The OAuth test needs a broker with a SASL_PLAINTEXT OAUTHBEARER listener:
``KAFKA_OAUTHBEARER_BOOTSTRAP_SERVERS`` names one; otherwise the test starts one with
``ci/kafka`` (a second single-node cluster on free ports), and skips if it cannot.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import close_within, consume, create_topic, headers_of, unique_topic
from waterdrop import Producer
from waterdrop.instrumentation import LoggerListener

DEADLINE_S = 30.0
REPO = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self) -> None:
        self.events: list = []
        self._cond = threading.Condition()

    def __call__(self, event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, count: int = 1, where=lambda e: True) -> list:
        with self._cond:
            self._cond.wait_for(lambda: len([e for e in self.events if where(e)]) >= count,
                                timeout=DEADLINE_S)
            found = [e for e in self.events if where(e)]
        assert len(found) >= count, f"{len(found)} of {count} events within {DEADLINE_S} s"
        return found


# --- events ---------------------------------------------------------------------------------------


def test_acknowledgements_match_what_a_consumer_reads(make_producer, kafka_bootstrap):
    topic = create_topic(kafka_bootstrap, partitions=3)
    producer = make_producer()
    acked = Recorder()
    producer.monitor.subscribe("message.acknowledged", acked)
    handles = [
        producer.produce_async(topic=topic, payload=f"m{i}", key=f"k{i}", label=i)
        for i in range(30)
    ]
    for handle in handles:
        handle.wait()
    events = acked.wait_for(30)
    by_label = {e["label"]: (e["topic"], e["partition"], e["offset"]) for e in events}
    assert len(by_label) == 30
    read = consume(kafka_bootstrap, topic, 30)
    positions = {m.value().decode(): (m.topic(), m.partition(), m.offset()) for m in read}
    assert {f"m{label}": pos for label, pos in by_label.items()} == positions


def test_a_broker_rejection_is_a_dispatch_error_with_its_label(make_producer, kafka_bootstrap):
    """The topic's max.message.bytes (the broker-side size check) fails the delivery."""
    topic = create_topic(kafka_bootstrap, config={"max.message.bytes": "2000"})
    producer = make_producer(kafka={"compression.codec": "none"})
    errors = Recorder()
    producer.monitor.subscribe("error.occurred", errors)
    handle = producer.produce_async(topic=topic, payload=os.urandom(20_000), label="too-big")
    report = handle.wait(raise_response_error=False)
    assert report.error is not None
    event = errors.wait_for(where=lambda e: e["type"] == "librdkafka.dispatch_error")[0]
    assert event["label"] == "too-big"
    assert event["delivery_report"].label == "too-big"
    assert event["error"].code == report.error.code == "msg_size_too_large"
    assert event["topic"] == topic


def test_statistics_from_a_real_broker(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    stats = Recorder()
    producer.monitor.subscribe("statistics.emitted", stats)
    producer.produce_sync(topic=topic, payload=b"x")

    def has_broker_rtt(event):
        return any(b["nodeid"] >= 0 and b["rtt"]["cnt"] > 0
                   for b in event["statistics"]["brokers"].values())

    event = stats.wait_for(where=has_broker_rtt)[0]
    statistics = event["statistics"]
    brokers = [b for b in statistics["brokers"].values() if b["nodeid"] >= 0]
    assert brokers
    for broker in brokers:
        assert {"tx_d", "tx_fd", "txerrs_d", "txretries_d", "rxerrs_d"} <= set(broker)
    assert topic in statistics["topics"]


def test_logger_listener_on_a_real_broker(make_producer, topic, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="tests.waterdrop.integration")
    producer = make_producer(id="it-logger")
    producer.monitor.subscribe(
        LoggerListener(logging.getLogger("tests.waterdrop.integration"), log_messages=False)
    )
    producer.produce_sync(topic=topic, payload=b"x")
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.waterdrop.integration"]
    assert any(line.startswith(f"[it-logger] Sync producing of a message to '{topic}' topic took ")
               for line in lines), lines


# --- OpenTelemetry and Prometheus -----------------------------------------------------------------


def test_opentelemetry_trace_context_reaches_a_consumer(make_producer, topic, kafka_bootstrap):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from waterdrop.instrumentation.opentelemetry import OpenTelemetryListener

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    producer = OpenTelemetryListener(tracer_provider=provider).install(make_producer())
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("checkout") as parent:
        report = producer.produce_sync(topic=topic, payload=b"x", headers={"app": "shop"})
    producer.close()  # every span has ended
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert len(spans) == 1
    span = spans[0]
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["messaging.kafka.offset"] == report.offset
    (message,) = consume(kafka_bootstrap, topic, 1)
    headers = dict(headers_of(message))
    assert headers["app"] == b"shop"
    version, trace_id, span_id, _flags = headers["traceparent"].decode().split("-")
    assert version == "00"
    assert int(trace_id, 16) == span.context.trace_id
    assert int(span_id, 16) == span.context.span_id
    provider.shutdown()


def test_prometheus_metrics_from_a_real_broker(make_producer, topic):
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry

    from waterdrop.instrumentation.prometheus import PrometheusListener

    registry = CollectorRegistry()
    metrics = PrometheusListener(registry=registry)
    producer = metrics.install(make_producer(kafka={"statistics.interval.ms": 100}))
    gauges = threading.Event()

    def on_stats(event):
        if any(b["nodeid"] >= 0 and b["rtt"]["cnt"] > 0
               for b in event["statistics"]["brokers"].values()):
            gauges.set()

    producer.monitor.subscribe("statistics.emitted", on_stats)  # after the metrics listener
    acked = Recorder()
    producer.monitor.subscribe("message.acknowledged", acked)
    for _ in range(5):
        producer.produce_sync(topic=topic, payload=b"x")
    acked.wait_for(5)
    assert gauges.wait(DEADLINE_S)
    assert registry.get_sample_value("waterdrop_messages_produced_total", {"topic": topic}) == 5
    assert registry.get_sample_value(
        "waterdrop_messages_acknowledged_total", {"topic": topic}) == 5
    assert registry.get_sample_value(
        "waterdrop_delivery_latency_seconds_count", {"topic": topic}) == 5
    assert registry.get_sample_value("waterdrop_queue_size", {"producer_id": producer.id}) \
        is not None
    rtts = [
        s for metric in registry.collect() if metric.name == "waterdrop_broker_rtt_seconds"
        for s in metric.samples if s.labels["producer_id"] == producer.id
    ]
    assert rtts and all(s.value >= 0 for s in rtts)


# --- OAUTHBEARER ----------------------------------------------------------------------------------


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_oauth_broker():
    """(sasl_bootstrap, plaintext_bootstrap, stop) for a fresh single-node cluster."""
    script = REPO / "ci" / "kafka"
    if not script.exists():
        pytest.skip("no ci/kafka script to start an OAUTHBEARER broker")
    port = next((p for p in range(9300, 9398, 2)
                 if _free(p) and _free(p + 1) and _free(p + 100)), None)
    if port is None:
        pytest.skip("no free ports for an OAUTHBEARER broker")
    sasl = port + 1
    jaas = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredLoginStringClaim_sub="admin";')
    env = dict(os.environ, KAFKA_PORT=str(port))
    command = [
        sys.executable, str(script), "start", "--port", str(port),
        "--config", f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl},"
                    f"CONTROLLER://127.0.0.1:{port + 100}",
        "--config", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "--config", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                    "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "--config", "sasl.enabled.mechanisms=OAUTHBEARER",
        "--config", f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={jaas}",
    ]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not start an OAUTHBEARER broker: {exc}")
    if done.returncode != 0:
        pytest.skip(f"could not start an OAUTHBEARER broker: {done.stderr[-2000:]}")

    def stop() -> None:
        subprocess.run([sys.executable, str(script), "stop"], env=env, capture_output=True,
                       timeout=120)

    return f"127.0.0.1:{sasl}", f"127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def oauth_broker():
    configured = os.environ.get("KAFKA_OAUTHBEARER_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured, None
        return
    sasl, plaintext, stop = _start_oauth_broker()
    try:
        yield sasl, plaintext
    finally:
        stop()


def unsecured_jws(subject: str = "admin", lifetime_s: int = 3_600) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


def test_oauthbearer_token_from_the_application(oauth_broker):
    sasl, plaintext = oauth_broker
    name = unique_topic()
    if plaintext is not None:
        create_topic(plaintext, name)
    refreshes = []

    class TokenProvider:
        def on_oauthbearer_token_refresh(self, event):
            refreshes.append(threading.current_thread().name)
            event["bearer"].oauthbearer_set_token(
                token=unsecured_jws("admin"),
                lifetime_ms=int(time.time() * 1000) + 3_600_000,
                principal_name="admin",
            )

    producer = Producer(
        kafka={
            "bootstrap.servers": sasl,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "message.timeout.ms": 20_000,
        },
        oauth={"token_provider_listener": TokenProvider()},
        max_wait_timeout=30_000,
    )
    errors = Recorder()
    producer.monitor.subscribe("error.occurred", errors)
    try:
        report = producer.produce_sync(topic=name, payload=b"authenticated", label="oauth")
        assert report.error is None and report.offset == 0
        assert refreshes, "librdkafka never asked the application for a token"
        assert not any(e["type"] == "librdkafka.error" and e["error"].code == "authentication"
                       for e in errors.events)
    finally:
        close_within(producer)
    if plaintext is not None:
        (message,) = consume(plaintext, name, 1)
        assert message.value() == b"authenticated"
