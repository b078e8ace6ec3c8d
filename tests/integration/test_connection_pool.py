"""The seed's "Usage With a Connection-Pool" example, in Python, against the real broker;
everything is read back with confluent-kafka."""

from __future__ import annotations

import logging
import threading

import pytest

import waterdrop
from tests.helpers import consume, create_topic
from waterdrop import ConnectionPool, Status
from waterdrop import connection_pool as cp
from waterdrop.instrumentation import Monitor

DEADLINE_S = 30.0


class AckCounter:
    """A listener object (on_<event> methods), like the seed's LoggerListener."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged = 0
        self.errors = []

    def on_message_acknowledged(self, event):
        with self.lock:
            self.acknowledged += 1

    def on_error_occurred(self, event):
        self.errors.append(event)


def test_seed_connection_pool_example(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap, partitions=3)
    listener = AckCounter()
    logger = logging.getLogger("my_app")

    # KAFKA_PRODUCERS_CP = ConnectionPool.new do ... end
    def configure(config):
        config.kafka = {"bootstrap.servers": kafka_bootstrap}
        config.logger = logger
        # subscribe any listeners you want: each producer gets its own monitor
        config.monitor = Monitor()
        config.monitor.subscribe(listener)

    kafka_producers_cp = ConnectionPool(configure=configure)

    # KAFKA_PRODUCERS_CP.with { |producer| producer.produce_async(...) }, from many threads
    def work(worker):
        for i in range(50):
            with kafka_producers_cp.producer() as producer:
                producer.produce_async(topic=topic, payload=f"my message {worker}-{i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)

    producers = kafka_producers_cp.producers
    assert 1 <= len(producers) <= 5

    # KAFKA_PRODUCERS_CP.shutdown { |producer| producer.close }
    kafka_producers_cp.shutdown()
    assert all(p.status is Status.CLOSED for p in producers)
    # graceful: close() delivered everything before returning
    assert listener.acknowledged == 8 * 50
    assert not listener.errors

    messages = consume(kafka_bootstrap, topic, 8 * 50)
    payloads = sorted(m.value().decode() for m in messages)
    assert payloads == sorted(f"my message {w}-{i}" for w in range(8) for i in range(50))


def test_process_wide_pool(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)

    def configure(config, index):
        config.kafka = {"bootstrap.servers": kafka_bootstrap}
        config.id = f"pooled-{index}"

    ConnectionPool.setup(size=2, timeout=5_000, configure=configure)
    try:
        with cp.with_producer() as producer:
            report = producer.produce_sync(topic=topic, payload=b"global")
            assert producer.id == "pooled-1"
        assert report.error is None
        cp.reload()
        with cp.with_producer() as again:
            assert again is not producer
            assert again.id == "pooled-1"
            again.produce_sync(topic=topic, payload=b"after reload")
    finally:
        cp.shutdown()
    assert cp.pool() is None
    assert [m.value() for m in consume(kafka_bootstrap, topic, 2)] == [b"global", b"after reload"]


def test_transactional_pool_with_unique_ids(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)
    prefix = topic  # unique per run

    def configure(config, index):
        config.kafka = {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"{prefix}-{index}",
        }

    pool = ConnectionPool(size=2, timeout=30_000, configure=configure)
    try:
        with pool.transaction() as producer:
            assert producer.in_transaction
            producer.produce_async(topic=topic, payload=b"in a transaction")
        assert producer.config.kafka["transactional.id"] == f"{prefix}-1"
        assert not producer.in_transaction
        # an error in the block aborts the transaction and propagates
        with pytest.raises(RuntimeError, match="abort me"):
            with pool.transaction() as aborted:
                aborted.produce_async(topic=topic, payload=b"aborted")
                raise RuntimeError("abort me")
        assert not aborted.in_transaction
        with pool.transaction() as producer:
            producer.produce_async(topic=topic, payload=b"after the abort")
    finally:
        pool.shutdown()
    messages = consume(
        kafka_bootstrap, topic, 2, consumer_config={"isolation.level": "read_committed"}
    )
    assert [m.value() for m in messages] == [b"in a transaction", b"after the abort"]
    assert waterdrop.ConnectionPool is ConnectionPool
