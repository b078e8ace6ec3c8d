"""Side-by-side throughput: confluent-kafka vs waterdrop on one MockCluster.

Run: ``pytest bench/ --benchmark-only`` (not part of the test suite). Every message's delivery
is waited for on both sides; the summary prints messages/s and ratios.
"""

from __future__ import annotations

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from conftest import COMMON, MESSAGES, PAYLOAD, TOPIC  # noqa: E402

from waterdrop import Producer  # noqa: E402


def _record(benchmark, results, name):
    results[name] = MESSAGES / benchmark.stats.stats.median


def test_confluent_produce_callback(benchmark, cluster, results):
    producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers, **COMMON})
    producer.produce(TOPIC, b"warm-up")
    producer.flush()
    delivered = []

    def on_delivery(err, msg):
        delivered.append(err)

    def run():
        delivered.clear()
        for _ in range(MESSAGES):
            producer.produce(TOPIC, PAYLOAD, on_delivery=on_delivery)
            producer.poll(0)
        producer.flush()
        assert len(delivered) == MESSAGES and not any(delivered)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _record(benchmark, results, "confluent_produce_callback")


@pytest.fixture()
def producer(cluster):
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, **COMMON}) as p:
        p.produce_sync(topic=TOPIC, payload=b"warm-up")
        yield p


def test_waterdrop_produce_async(benchmark, producer, results):
    def run():
        produce = producer.produce_async
        handles = [produce(topic=TOPIC, payload=PAYLOAD) for _ in range(MESSAGES)]
        for handle in handles:
            handle.wait()

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _record(benchmark, results, "waterdrop_produce_async")


def test_waterdrop_produce_many_async(benchmark, producer, results):
    batch = [{"topic": TOPIC, "payload": PAYLOAD}] * 10_000

    def run():
        handles = []
        for _ in range(MESSAGES // len(batch)):
            handles.extend(producer.produce_many_async(batch))
        for handle in handles:
            handle.wait()

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _record(benchmark, results, "waterdrop_produce_many_async")
