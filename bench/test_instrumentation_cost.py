"""What instrumentation costs on the hot path: produce_async with nobody listening to
message.acknowledged, then with one listener on it, on the same MockCluster.

Run: ``pytest bench/test_instrumentation_cost.py --benchmark-only`` (not part of the test
suite). Prints messages/s for both and their ratio; nothing is asserted about timing.
"""

from __future__ import annotations

import pytest

from conftest import COMMON, MESSAGES, PAYLOAD, TOPIC

from waterdrop import Producer

_RATES: dict[str, float] = {}


def _run(benchmark, producer, results, name):
    def run():
        produce = producer.produce_async
        handles = [produce(topic=TOPIC, payload=PAYLOAD) for _ in range(MESSAGES)]
        for handle in handles:
            handle.wait()

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    rate = MESSAGES / benchmark.stats.stats.median
    results[name] = rate
    _RATES[name] = rate


@pytest.fixture()
def make(cluster):
    made = []

    def make_producer():
        producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, **COMMON})
        producer.produce_sync(topic=TOPIC, payload=b"warm-up")
        made.append(producer)
        return producer

    yield make_producer
    for producer in made:
        producer.close()


def test_produce_async_nobody_listening(benchmark, make, results):
    producer = make()
    assert not producer.monitor.listening("message.acknowledged")
    _run(benchmark, producer, results, "produce_async_no_listener")


def test_produce_async_acknowledged_listener(benchmark, make, results, capsys):
    producer = make()
    acknowledged = [0]

    def on_acknowledged(event):
        acknowledged[0] += 1

    producer.monitor.subscribe("message.acknowledged", on_acknowledged)
    _run(benchmark, producer, results, "produce_async_ack_listener")
    assert acknowledged[0] > 0
    base = _RATES.get("produce_async_no_listener")
    if base:
        with capsys.disabled():
            print(
                f"\nmessage.acknowledged listener: {_RATES['produce_async_ack_listener']:,.0f} "
                f"msg/s vs {base:,.0f} msg/s without "
                f"(ratio {_RATES['produce_async_ack_listener'] / base:.2f})"
            )
