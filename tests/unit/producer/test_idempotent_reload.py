"""Idempotent producers: recovery from a fatal librdkafka error by rebuilding the client
(reload_on_idempotent_fatal_error), its backoff and attempt limit, and non_reloadable_errors.

The fatal error is injected with librdkafka's rd_kafka_test_fatal_error, exposed on the
client as ``trigger_test_fatal_error`` (WaterDrop's Testing module does the same).
"""

from __future__ import annotations

import time

import pytest

from waterdrop import ProduceError, Producer, Status
from waterdrop.errors import KafkaError
from waterdrop.testing import MockCluster

TOPIC = "idempotent-reload"
INVALID_PRODUCER_EPOCH = 47
DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def cluster():
    with MockCluster(brokers=1) as mc:
        mc.create_topic(TOPIC, partitions=1)
        yield mc


def make_producer(cluster, **settings):
    settings.setdefault("wait_backoff_on_idempotent_fatal_error", 10)
    return Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True},
        max_wait_timeout=30_000,
        **settings,
    )


def record(producer, *names):
    seen = []
    for name in names:
        producer.monitor.subscribe(name, lambda e: seen.append((e.id, dict(e.payload))))
    return seen


def make_fatal(producer):
    """Connect, inject the fatal error, wait until librdkafka is in the fatal state."""
    producer.produce_sync(topic=TOPIC, payload=b"before")
    client = producer.client
    assert client.fatal_error() is None
    assert client.trigger_test_fatal_error(INVALID_PRODUCER_EPOCH, "test") == 0
    deadline = time.monotonic() + DEADLINE_S
    while client.fatal_error() is None:
        assert time.monotonic() < deadline, "librdkafka never reached the fatal state"
        time.sleep(0.005)
    return client


def test_idempotent_property(cluster):
    with make_producer(cluster) as producer:
        assert producer.idempotent
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert not producer.idempotent
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                         "enable.idempotence": "true"}) as producer:
        assert producer.idempotent


def test_fatal_error_reloads_the_client_and_the_produce_succeeds(cluster):
    producer = make_producer(cluster, reload_on_idempotent_fatal_error=True)
    events = record(producer, "producer.reload", "producer.reloaded", "error.occurred",
                    "producer.connected")
    try:
        old = make_fatal(producer)
        fatal = old.fatal_error()
        assert fatal.fatal and fatal.code == "invalid_producer_epoch"
        events.clear()

        report = producer.produce_sync(topic=TOPIC, payload=b"after")
        assert report.error is None
        assert producer.client is not old
        assert producer.client.fatal_error() is None
        assert producer.status is Status.CONNECTED

        names = [name for name, _ in events]
        assert "producer.reload" in names and "producer.reloaded" in names
        assert names.index("producer.reload") < names.index("producer.reloaded")
        assert names.index("producer.reloaded") < len(names) - names[::-1].index(
            "producer.connected"
        )
        idempotent = [p for n, p in events if n == "error.occurred"
                      and p["type"] == "librdkafka.idempotent_fatal_error"]
        assert len(idempotent) == 1
        assert idempotent[0]["attempt"] == 1
        assert idempotent[0]["error"].code == "invalid_producer_epoch"
        reload_payload = next(p for n, p in events if n == "producer.reload")
        assert reload_payload["producer_id"] == producer.id
        assert reload_payload["attempt"] == 1

        # and the reloaded producer keeps working
        assert producer.produce_sync(topic=TOPIC, payload=b"later").error is None
    finally:
        producer.close()


def test_produce_async_also_reloads(cluster):
    producer = make_producer(cluster, reload_on_idempotent_fatal_error=True)
    events = record(producer, "producer.reloaded")
    try:
        make_fatal(producer)
        handle = producer.produce_async(topic=TOPIC, payload=b"async after")
        assert handle.wait(DEADLINE_S * 1000).error is None
        assert len(events) == 1
    finally:
        producer.close()


def test_without_reload_the_fatal_error_is_raised(cluster):
    producer = make_producer(cluster, reload_on_idempotent_fatal_error=False)
    events = record(producer, "producer.reload", "producer.reloaded")
    try:
        old = make_fatal(producer)
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic=TOPIC, payload=b"after")
        cause = info.value.__cause__
        assert isinstance(cause, KafkaError)
        assert cause.fatal
        assert producer.client is old
        assert events == []
    finally:
        producer.close()


def test_reload_is_off_by_default(cluster):
    producer = make_producer(cluster)
    assert producer.config.reload_on_idempotent_fatal_error is False
    try:
        make_fatal(producer)
        with pytest.raises(ProduceError) as info:
            producer.produce_async(topic=TOPIC, payload=b"after")
        assert info.value.__cause__.fatal
    finally:
        producer.close()


def test_non_reloadable_errors_are_not_reloaded(cluster):
    producer = make_producer(
        cluster,
        reload_on_idempotent_fatal_error=True,
        non_reloadable_errors=["invalid_producer_epoch"],
    )
    events = record(producer, "producer.reload", "producer.reloaded")
    try:
        old = make_fatal(producer)
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic=TOPIC, payload=b"after")
        assert info.value.__cause__.code == "invalid_producer_epoch"
        assert producer.client is old
        assert events == []
    finally:
        producer.close()


def test_attempts_reset_after_a_successful_produce(cluster):
    producer = make_producer(
        cluster, reload_on_idempotent_fatal_error=True, max_attempts_on_idempotent_fatal_error=1
    )
    attempts = []
    producer.monitor.subscribe(
        "error.occurred",
        lambda e: attempts.append(e["attempt"])
        if e["type"] == "librdkafka.idempotent_fatal_error" else None,
    )
    try:
        for _ in range(3):
            make_fatal(producer)
            assert producer.produce_sync(topic=TOPIC, payload=b"after").error is None
        assert attempts == [1, 1, 1]
    finally:
        producer.close()


def test_non_idempotent_producer_never_reloads(cluster):
    producer = Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers},
        reload_on_idempotent_fatal_error=True,
        wait_backoff_on_idempotent_fatal_error=10,
    )
    events = record(producer, "producer.reload")
    try:
        client = make_fatal(producer)
        assert not producer.idempotent
        # librdkafka's reaction to a (test) fatal error on a non-idempotent producer varies:
        # the message may go through or be purged; waterdrop must never reload either way
        try:
            producer.produce_sync(topic=TOPIC, payload=b"after")
        except ProduceError:
            pass
        assert producer.client is client
        assert events == []
    finally:
        producer.close()
