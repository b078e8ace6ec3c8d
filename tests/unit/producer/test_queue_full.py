"""The queue-full policy: wait_on_queue_full, wait_backoff_on_queue_full,
wait_timeout_on_queue_full, instrument_on_wait_queue_full.

librdkafka's queue is kept full with a small queue.buffering.max.messages and a mock
cluster whose every broker is down, so nothing drains until the test brings one back.
"""

from __future__ import annotations

import threading
import time

import pytest

from waterdrop import ProduceError, Producer
from waterdrop.errors import KafkaError
from waterdrop.testing import MockCluster

TOPIC = "queue-full"
CAPACITY = 5
DEADLINE_S = 30.0


@pytest.fixture
def cluster():
    with MockCluster(brokers=1) as mc:
        mc.create_topic(TOPIC, partitions=1)
        yield mc
        mc.broker_up(1)


def dispatch_errors(producer):
    """error.occurred events of the dispatch path (librdkafka.error ones, such as "all
    brokers down", are reported too and left out)."""
    errors = []
    producer.monitor.subscribe(
        "error.occurred",
        lambda e: errors.append(e) if e["type"].startswith("message") else None,
    )
    return errors


def make_producer(cluster, **settings):
    return Producer(
        kafka={
            "bootstrap.servers": cluster.bootstrap_servers,
            "queue.buffering.max.messages": CAPACITY,
            "message.timeout.ms": 60_000,
        },
        max_wait_timeout=60_000,
        **settings,
    )


def fill(producer, cluster):
    """Connect, stop every broker, then fill librdkafka's queue to its capacity."""
    producer.produce_sync(topic=TOPIC, partition=0, payload=b"warm-up")
    cluster.broker_down(1)
    handles = [
        producer.produce_async(topic=TOPIC, partition=0, payload=f"fill-{i}")
        for i in range(CAPACITY)
    ]
    assert all(h.pending for h in handles)
    return handles


def test_without_waiting_queue_full_fails_at_once(cluster):
    producer = make_producer(cluster, wait_on_queue_full=False)
    errors = dispatch_errors(producer)
    try:
        handles = fill(producer, cluster)
        start = time.monotonic()
        with pytest.raises(ProduceError) as info:
            producer.produce_async(topic=TOPIC, partition=0, payload=b"one too many")
        assert time.monotonic() - start < 1.0  # generous: it does not wait
        cause = info.value.__cause__
        assert isinstance(cause, KafkaError)
        assert cause.code == "queue_full"
        assert info.value.cause is cause
        assert [e["type"] for e in errors] == ["message.produce_async"]

        cluster.broker_up(1)
        assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    finally:
        cluster.broker_up(1)
        producer.close()


def test_waiting_gives_up_after_wait_timeout_and_instruments_each_retry(cluster):
    producer = make_producer(
        cluster,
        wait_on_queue_full=True,
        wait_timeout_on_queue_full=500,
        wait_backoff_on_queue_full=50,
        instrument_on_wait_queue_full=True,
    )
    errors = dispatch_errors(producer)
    try:
        handles = fill(producer, cluster)
        start = time.monotonic()
        with pytest.raises(ProduceError) as info:
            producer.produce_async(topic=TOPIC, partition=0, payload=b"waits")
        elapsed = time.monotonic() - start
        assert 0.45 <= elapsed < 10.0
        assert info.value.__cause__.code == "queue_full"

        # about 500 / 50 retries, each one reported as it happens, then the final error
        assert len(errors) >= 4
        assert all(e["type"] == "message.produce_async" for e in errors)
        assert all(isinstance(e["error"], ProduceError) for e in errors)
        assert all(e["error"].__cause__.code == "queue_full" for e in errors)
        assert all(e["message"]["payload"] == b"waits" for e in errors)

        cluster.broker_up(1)
        assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    finally:
        cluster.broker_up(1)
        producer.close()


def test_waiting_without_instrumentation_reports_only_the_final_error(cluster):
    producer = make_producer(
        cluster,
        wait_timeout_on_queue_full=300,
        wait_backoff_on_queue_full=50,
        instrument_on_wait_queue_full=False,
    )
    errors = dispatch_errors(producer)
    try:
        fill(producer, cluster)
        with pytest.raises(ProduceError):
            producer.produce_async(topic=TOPIC, partition=0, payload=b"waits")
        assert len(errors) == 1
    finally:
        cluster.broker_up(1)
        producer.close()


def test_a_waiting_dispatch_succeeds_once_the_broker_is_back(cluster):
    producer = make_producer(
        cluster,
        wait_timeout_on_queue_full=int(DEADLINE_S * 1000),
        wait_backoff_on_queue_full=50,
    )
    retried = threading.Event()
    producer.monitor.subscribe(
        "error.occurred", lambda e: retried.set() if e["type"].startswith("message") else None
    )
    outcome = {}

    def dispatch():
        try:
            outcome["report"] = producer.produce_sync(topic=TOPIC, partition=0, payload=b"waited")
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome["error"] = error

    try:
        handles = fill(producer, cluster)
        thread = threading.Thread(target=dispatch)
        thread.start()
        assert retried.wait(DEADLINE_S), "the dispatch never hit queue_full"
        assert "report" not in outcome
        cluster.broker_up(1)
        thread.join(DEADLINE_S)
        assert not thread.is_alive()
        assert "error" not in outcome, outcome.get("error")
        report = outcome["report"]
        assert report.error is None
        fill_offsets = [h.wait(0).offset for h in handles]
        assert report.offset > max(fill_offsets)
    finally:
        cluster.broker_up(1)
        producer.close()


def test_produce_many_waits_and_continues_with_what_was_left(cluster):
    producer = make_producer(
        cluster,
        wait_timeout_on_queue_full=int(DEADLINE_S * 1000),
        wait_backoff_on_queue_full=50,
    )
    retried = threading.Event()
    producer.monitor.subscribe(
        "error.occurred", lambda e: retried.set() if e["type"].startswith("message") else None
    )
    outcome = {}

    def dispatch():
        try:
            outcome["handles"] = producer.produce_many_sync(
                [{"topic": TOPIC, "partition": 0, "payload": f"m{i}"} for i in range(12)]
            )
        except BaseException as error:  # noqa: BLE001
            outcome["error"] = error

    try:
        producer.produce_sync(topic=TOPIC, partition=0, payload=b"warm-up")
        cluster.broker_down(1)
        thread = threading.Thread(target=dispatch)
        thread.start()
        assert retried.wait(DEADLINE_S)
        cluster.broker_up(1)
        thread.join(DEADLINE_S)
        assert "error" not in outcome, outcome.get("error")
        reports = [h.wait(0) for h in outcome["handles"]]
        assert len(reports) == 12
        assert all(r.error is None for r in reports)
        offsets = [r.offset for r in reports]
        assert offsets == list(range(offsets[0], offsets[0] + 12))
    finally:
        cluster.broker_up(1)
        producer.close()
