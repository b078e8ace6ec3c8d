"""PrometheusListener: counters, the delivery latency histogram and statistics gauges,
read back from the registry (MockCluster)."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from tests.helpers import unique_topic  # noqa: E402
from tests.unit.instrumentation.conftest import DEADLINE_S, Recorder  # noqa: E402
from waterdrop import ProduceError, Producer  # noqa: E402
from waterdrop.instrumentation import Event  # noqa: E402
from waterdrop.instrumentation.prometheus import PrometheusListener  # noqa: E402
from waterdrop.testing import MockCluster  # noqa: E402


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry) -> PrometheusListener:
    return PrometheusListener(registry=registry)


def value(registry, name: str, **labels) -> float:
    sample = registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def test_metric_names_and_types(registry, metrics):
    text = generate_latest(registry).decode()
    for line in (
        "# TYPE waterdrop_messages_produced_total counter",
        "# TYPE waterdrop_messages_acknowledged_total counter",
        "# TYPE waterdrop_messages_failed_total counter",
        "# TYPE waterdrop_errors_total counter",
        "# TYPE waterdrop_delivery_latency_seconds histogram",
        "# TYPE waterdrop_queue_size gauge",
        "# TYPE waterdrop_broker_rtt_seconds gauge",
    ):
        assert line in text


def test_namespace(registry):
    PrometheusListener(registry=registry, namespace="orders")
    assert "# TYPE orders_messages_produced_total counter" in generate_latest(registry).decode()


def test_the_default_registry_is_prometheus_clients(monkeypatch):
    import prometheus_client

    own = CollectorRegistry()
    monkeypatch.setattr(prometheus_client, "REGISTRY", own)
    listener = PrometheusListener(namespace="defaulted")
    assert listener.registry is own


def test_produced_and_acknowledged_by_topic(registry, metrics, make_producer, cluster):
    orders, payments = unique_topic(), unique_topic()
    for name in (orders, payments):
        cluster.create_topic(name, partitions=1)
    producer = metrics.install(make_producer())
    acked = Recorder()
    producer.monitor.subscribe("message.acknowledged", acked)
    handles = [producer.produce_async(topic=orders, payload=b"x") for _ in range(3)]
    producer.produce_sync(topic=payments, payload=b"y")
    handles += producer.produce_many_async(
        [{"topic": orders, "payload": b"z"}, {"topic": payments, "payload": b"z"}]
    )
    for handle in handles:
        handle.wait()
    acked.wait_for("message.acknowledged", 6)
    assert value(registry, "waterdrop_messages_produced_total", topic=orders) == 4
    assert value(registry, "waterdrop_messages_produced_total", topic=payments) == 2
    assert value(registry, "waterdrop_messages_acknowledged_total", topic=orders) == 4
    assert value(registry, "waterdrop_messages_acknowledged_total", topic=payments) == 2
    assert value(registry, "waterdrop_messages_failed_total", topic=orders) == 0


def test_delivery_latency_histogram(registry, metrics, make_producer, topic):
    producer = metrics.install(make_producer())
    acked = Recorder()
    producer.monitor.subscribe("message.acknowledged", acked)
    reports = [producer.produce_sync(topic=topic, payload=b"x") for _ in range(5)]
    acked.wait_for("message.acknowledged", 5)
    count = value(registry, "waterdrop_delivery_latency_seconds_count", topic=topic)
    total = value(registry, "waterdrop_delivery_latency_seconds_sum", topic=topic)
    assert count == 5
    # seconds, from librdkafka's own per-message latency
    assert total == pytest.approx(sum(r.latency_ms for r in reports) / 1000.0)
    assert value(registry, "waterdrop_delivery_latency_seconds_bucket", topic=topic,
                 le="+Inf") == 5


def test_buffer_flushes_count_once(registry, metrics, make_producer, topic):
    producer = metrics.install(make_producer())
    producer.buffer_many([{"topic": topic, "payload": b"x"}] * 3)
    producer.flush_sync()
    assert value(registry, "waterdrop_messages_produced_total", topic=topic) == 3


def test_failed_deliveries_by_topic_and_errors_by_type(registry, metrics, make_producer):
    with MockCluster(brokers=1) as cluster:
        name = unique_topic()
        cluster.create_topic(name, partitions=1)
        cluster.broker_down(1)
        producer = metrics.install(make_producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 500},
        ))
        errors = Recorder()
        producer.monitor.subscribe("error.occurred", errors)
        handle = producer.produce_async(topic=name, payload=b"x")
        with pytest.raises(ProduceError):
            producer.produce_sync(topic=name, payload=b"y")
        handle.wait(DEADLINE_S * 1000, raise_response_error=False)
        errors.wait_for("error.occurred", 2,
                        where=lambda e: e["type"] == "librdkafka.dispatch_error")
        producer.close(force=True)
    assert value(registry, "waterdrop_messages_failed_total", topic=name) == 2
    assert value(registry, "waterdrop_messages_acknowledged_total", topic=name) == 0
    assert value(registry, "waterdrop_errors_total", type="librdkafka.dispatch_error") == 2
    assert value(registry, "waterdrop_errors_total", type="message.produce_sync") == 1
    assert value(registry, "waterdrop_delivery_latency_seconds_count", topic=name) == 0


def test_transactional_purges_count_as_failed(registry, metrics):
    metrics.on_message_purged(Event("message.purged", {"topic": "orders", "producer_id": "p"}))
    assert value(registry, "waterdrop_messages_failed_total", topic="orders") == 1


def test_statistics_gauges(registry, metrics, make_producer, topic):
    producer = metrics.install(make_producer(kafka={"statistics.interval.ms": 100}))
    stats = Recorder()
    producer.monitor.subscribe("statistics.emitted", stats)  # after the metrics listener
    producer.produce_sync(topic=topic, payload=b"x")

    def has_rtt(event):
        return any(b["nodeid"] != -1 and b["rtt"]["cnt"] > 0
                   for b in event["statistics"]["brokers"].values())

    event = stats.wait_for("statistics.emitted", where=has_rtt)[-1]
    statistics = event["statistics"]
    # the gauges hold the latest emission seen by the metrics listener; this one (or later)
    assert registry.get_sample_value("waterdrop_queue_size", {"producer_id": producer.id}) \
        is not None
    brokers = [b for b in statistics["brokers"].values() if b["nodeid"] != -1]
    for broker in brokers:
        rtt = registry.get_sample_value(
            "waterdrop_broker_rtt_seconds",
            {"producer_id": producer.id, "broker": broker["nodename"]},
        )
        assert rtt is not None and rtt >= 0
    # bootstrap entries are not brokers
    bootstrap = [b["nodename"] for b in statistics["brokers"].values() if b["nodeid"] == -1]
    for nodename in bootstrap:
        assert registry.get_sample_value(
            "waterdrop_broker_rtt_seconds", {"producer_id": producer.id, "broker": nodename}
        ) is None


def test_statistics_gauge_values_from_a_known_emission(registry, metrics):
    metrics.on_statistics_emitted(Event("statistics.emitted", {
        "producer_id": "p1",
        "statistics": {
            "msg_cnt": 42,
            "brokers": {
                "b1": {"nodeid": 1, "nodename": "kafka-1:9092", "rtt": {"avg": 2_500, "cnt": 3}},
                "b2": {"nodeid": 2, "nodename": "kafka-2:9092", "rtt": {"avg": 0, "cnt": 0}},
                "boot": {"nodeid": -1, "nodename": "boot:9092", "rtt": {"avg": 9, "cnt": 1}},
            },
        },
    }))
    assert value(registry, "waterdrop_queue_size", producer_id="p1") == 42
    assert registry.get_sample_value(
        "waterdrop_broker_rtt_seconds", {"producer_id": "p1", "broker": "kafka-1:9092"}
    ) == pytest.approx(0.0025)  # microseconds -> seconds
    # no samples in the window: no value rather than a misleading 0
    assert registry.get_sample_value(
        "waterdrop_broker_rtt_seconds", {"producer_id": "p1", "broker": "kafka-2:9092"}
    ) is None
    assert registry.get_sample_value(
        "waterdrop_broker_rtt_seconds", {"producer_id": "p1", "broker": "boot:9092"}
    ) is None


def test_gauges_are_per_producer(registry, metrics, make_producer, topic):
    one = metrics.install(make_producer(kafka={"statistics.interval.ms": 100}))
    two = metrics.install(make_producer(kafka={"statistics.interval.ms": 100}))
    recs = []
    for producer in (one, two):
        rec = Recorder()
        producer.monitor.subscribe("statistics.emitted", rec)
        recs.append(rec)
        producer.produce_sync(topic=topic, payload=b"x")
    for rec in recs:
        rec.wait_for("statistics.emitted")
    for producer in (one, two):
        assert registry.get_sample_value(
            "waterdrop_queue_size", {"producer_id": producer.id}) is not None


def test_a_late_install_is_refused(registry, metrics, make_producer, topic):
    """After the first use statistics are off for good: the listener (which has
    on_statistics_emitted) is refused as a whole, as WaterDrop refuses it. Install first."""
    from waterdrop.errors import StatisticsNotEnabledError

    producer = make_producer()
    producer.produce_sync(topic=topic, payload=b"x")
    with pytest.raises(StatisticsNotEnabledError):
        metrics.install(producer)


def test_counters_only_on_a_producer_already_in_use(registry, metrics, make_producer, topic):
    """What docs/prometheus.md suggests after the first use: subscribe the methods one by one."""
    producer = make_producer()
    producer.produce_sync(topic=topic, payload=b"warm-up")
    for event in ("message.produced_async", "message.produced_sync", "messages.produced_async",
                  "messages.produced_sync", "message.acknowledged", "message.purged",
                  "error.occurred"):
        producer.monitor.subscribe(event, getattr(metrics, "on_" + event.replace(".", "_")))
    acked = Recorder()
    producer.monitor.subscribe("message.acknowledged", acked)
    producer.produce_sync(topic=topic, payload=b"x")
    acked.wait_for("message.acknowledged")
    assert value(registry, "waterdrop_messages_produced_total", topic=topic) == 1
    assert value(registry, "waterdrop_messages_acknowledged_total", topic=topic) == 1


def test_one_listener_for_many_producers_counts_them_all(registry, metrics, make_producer,
                                                         topic):
    producers = [metrics.install(make_producer()) for _ in range(3)]
    for producer in producers:
        producer.produce_sync(topic=topic, payload=b"x")
    assert value(registry, "waterdrop_messages_produced_total", topic=topic) == 3


def test_installing_twice_counts_once(registry, metrics, make_producer, topic):
    producer = make_producer()
    metrics.install(producer)
    metrics.install(producer)
    producer.produce_sync(topic=topic, payload=b"x")
    assert value(registry, "waterdrop_messages_produced_total", topic=topic) == 1


def test_dummy_client_counts(registry, metrics):
    with Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, deliver=False) as producer:
        metrics.install(producer)
        producer.produce_sync(topic="t", payload=b"x")
    assert value(registry, "waterdrop_messages_produced_total", topic="t") == 1
