"""The seed's variants example ("When to Consider Variants Instead") against the real broker:
one producer with acks '1', a critical variant with acks 'all' and a bulk variant with
snappy compression and a 300 s message.timeout.ms, sharing one client and its connections.

Compression is observed where Kafka exposes it to a client: bytes on the wire. librdkafka's
statistics count the bytes it sent to the brokers (``tx_bytes``) and the message bytes it
produced (``txmsg_bytes``): for compressible payloads the bulk variant sends a fraction of
them, the default and critical ones at least all of them. The consumer's own statistics show
the same on the way back (the broker keeps the producer's compressed batches).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.helpers import consume, create_topic
from waterdrop import Producer
from waterdrop.errors import VariantInvalidError

DEADLINE_S = 30.0
PAYLOAD = b"a" * 50_000  # highly compressible


class Stats:
    """The latest statistics.emitted payload, and a way to wait for a condition on it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.latest = None

    def __call__(self, event):
        with self.cond:
            self.latest = event["statistics"]
            self.cond.notify_all()

    def wait_for(self, predicate):
        deadline = time.monotonic() + DEADLINE_S
        with self.cond:
            while self.latest is None or not predicate(self.latest):
                remaining = deadline - time.monotonic()
                assert remaining > 0, "statistics never showed the expected state"
                self.cond.wait(remaining)
            return self.latest


@pytest.fixture
def topics(kafka_bootstrap):
    return create_topic(kafka_bootstrap, name=None), create_topic(kafka_bootstrap, name=None)


def test_seed_variants_example(kafka_bootstrap, topics):
    alerts, analytics = topics
    stats = Stats()

    # Initialize producer with default settings
    producer = Producer(
        kafka={
            "bootstrap.servers": kafka_bootstrap,
            "acks": "1",  # Default acknowledgment setting
            "statistics.interval.ms": 100,
        }
    )
    producer.monitor.subscribe("statistics.emitted", stats)

    # Create variants for specific requirements
    critical_variant = producer.variant(topic_config={"acks": "all"})
    bulk_variant = producer.variant(
        topic_config={"compression.type": "snappy", "message.timeout.ms": 300_000}
    )
    assert critical_variant.producer is producer and bulk_variant.producer is producer

    # Use variants based on message characteristics
    alert_data = {"level": "critical", "text": "a" * 50_000}
    report = critical_variant.produce_sync(topic=alerts, payload=json.dumps(alert_data))
    assert report.error is None
    after_alert = stats.wait_for(lambda s: s["txmsgs"] >= 1)

    large_data = [{"row": i, "text": "a" * 50_000} for i in range(4)]
    handles = [
        bulk_variant.produce_async(topic=analytics, payload=json.dumps(row)) for row in large_data
    ]
    assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    after_bulk = stats.wait_for(lambda s: s["txmsgs"] >= 5)

    # one client, one set of connections for the three of them
    assert producer.client is not None
    producer.close()

    # the uncompressed alert went out whole, the bulk batch as a fraction of its size
    alert_bytes = after_alert["txmsg_bytes"]
    assert after_alert["tx_bytes"] >= alert_bytes
    bulk_message_bytes = after_bulk["txmsg_bytes"] - after_alert["txmsg_bytes"]
    bulk_wire_bytes = after_bulk["tx_bytes"] - after_alert["tx_bytes"]
    assert bulk_message_bytes >= 4 * 50_000
    assert bulk_wire_bytes < bulk_message_bytes / 10, (bulk_wire_bytes, bulk_message_bytes)

    # read back: every message intact
    [alert] = consume(kafka_bootstrap, alerts, 1)
    assert json.loads(alert.value()) == alert_data
    rows = consume(kafka_bootstrap, analytics, 4)
    assert [json.loads(m.value()) for m in rows] == large_data


def test_compressed_batches_are_what_the_broker_keeps(kafka_bootstrap, topics):
    """The consumer fetches the bulk variant's messages as compressed batches too."""
    plain, compressed = topics
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap, "linger.ms": 50}) as producer:
        bulk = producer.variant(topic_config={"compression.type": "snappy"})
        producer.produce_many_sync([{"topic": plain, "payload": PAYLOAD}] * 4)
        bulk.produce_many_sync([{"topic": compressed, "payload": PAYLOAD}] * 4)

    plain_bytes = _fetched_wire_bytes(kafka_bootstrap, plain, 4)
    compressed_bytes = _fetched_wire_bytes(kafka_bootstrap, compressed, 4)
    assert plain_bytes >= 4 * len(PAYLOAD)
    assert compressed_bytes < plain_bytes / 10, (compressed_bytes, plain_bytes)


def _fetched_wire_bytes(bootstrap, topic, count):
    """Read ``count`` messages with a fresh consumer; return the bytes it received from the
    brokers (its statistics' ``rxbytes``), once its statistics have counted the fetch."""
    latest = {}

    def on_stats(raw):
        latest["stats"] = json.loads(raw)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"wd-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "statistics.interval.ms": 100,
            "stats_cb": on_stats,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        received = []
        deadline = time.monotonic() + DEADLINE_S
        while True:
            for message in consumer.consume(num_messages=count, timeout=0.2):
                assert message.error() is None, message.error()
                received.append(message.value())
            stats = latest.get("stats")
            if len(received) >= count and stats is not None:
                fetched = stats["topics"].get(topic, {}).get("partitions", {}).get("0", {})
                if fetched.get("rxmsgs", 0) >= count:
                    break
            assert time.monotonic() < deadline, "the consumer never counted the fetch"
        assert received == [PAYLOAD] * count
        return stats["rx_bytes"]
    finally:
        consumer.close()


def test_variant_refuses_settings_that_are_not_per_topic(kafka_bootstrap):
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as producer:
        for key, value in (
            ("queue.buffering.max.ms", 1_000),
            ("batch.size", 64_000),
            ("socket.timeout.ms", 1_000),
            ("enable.idempotence", True),
        ):
            with pytest.raises(VariantInvalidError) as info:
                producer.variant(topic_config={key: value})
            assert f"topic_config.{key}" in info.value.errors
        with pytest.raises(VariantInvalidError) as info:
            producer.variant(max_wait_timeout=-1)
        assert "max_wait_timeout" in info.value.errors
        # every per-topic key WaterDrop allows is accepted
        producer.variant(
            topic_config={
                "acks": "all",
                "compression.codec": "lz4",
                "compression.level": 3,
                "compression.type": "lz4",
                "delivery.timeout.ms": 60_000,
                "message.timeout.ms": 60_000,
                "partitioner": "murmur2_random",
                "request.required.acks": 1,
                "request.timeout.ms": 10_000,
            }
        )


def test_acks_cannot_change_on_an_idempotent_producer(kafka_bootstrap):
    kafka = {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True}
    with Producer(kafka=kafka) as producer:
        for key in ("acks", "request.required.acks"):
            with pytest.raises(VariantInvalidError) as info:
                producer.variant(topic_config={key: "1"})
            assert f"topic_config.{key}" in info.value.errors
        # other per-topic settings are fine
        variant = producer.variant(topic_config={"compression.type": "snappy"})
        assert variant.produce_sync(topic=create_topic(kafka_bootstrap), payload=b"x").error is None


def test_variant_max_wait_timeout_applies_to_its_sync_waits(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as producer:
        quick = producer.variant(max_wait_timeout=15_000)
        assert quick.max_wait_timeout == 15_000
        assert producer.current_variant.max_wait_timeout == producer.config.max_wait_timeout
        assert quick.produce_sync(topic=topic, payload=b"x").error is None


def test_current_variant_seen_by_middleware_across_threads_and_tasks(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)
    producer = Producer(kafka={"bootstrap.servers": kafka_bootstrap})
    seen = []
    lock = threading.Lock()

    def record(message):
        with lock:
            seen.append((message["headers"]["expect"], producer.current_variant))
        return message

    producer.middleware.append(record)
    variants = {
        "default": producer.current_variant,
        "critical": producer.variant(topic_config={"acks": "all"}),
        "bulk": producer.variant(topic_config={"compression.type": "snappy"}),
    }
    assert variants["default"].default

    def send(name, i):
        target = producer if name == "default" else variants[name]
        handle = target.produce_async(
            topic=topic, payload=f"{name}-{i}", headers={"expect": name}
        )
        # outside a call the producer is back on its default variant
        assert producer.current_variant is variants["default"]
        return handle

    # threads interleaving the three
    barrier = threading.Barrier(6)
    handles = []

    def thread_body(name):
        barrier.wait()
        for i in range(100):
            handles.append(send(name, i))

    threads = [threading.Thread(target=thread_body, args=(n,)) for n in variants for _ in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)

    # asyncio tasks interleaving the three on one thread
    async def task_body(name):
        for i in range(50):
            handle = send(name, i)
            await asyncio.sleep(0)  # let the other tasks run in between
            handles.append(handle)
        # a variant call inside a task does not leak into the task's later code
        assert producer.current_variant is variants["default"]

    async def main():
        await asyncio.gather(*(task_body(n) for n in variants for _ in (0, 1)))

    asyncio.run(main())

    assert len(seen) == 6 * 100 + 6 * 50
    wrong = [(expect, v) for expect, v in seen if v is not variants[expect]]
    assert not wrong, wrong[:5]
    assert all(h.wait(DEADLINE_S * 1000).error is None for h in handles)
    producer.close()
    assert len(consume(kafka_bootstrap, topic, len(handles))) == len(handles)


def test_a_variant_inside_a_variant_restores_the_outer_one(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)
    producer = Producer(kafka={"bootstrap.servers": kafka_bootstrap})
    outer = producer.variant(topic_config={"acks": "all"})
    inner = producer.variant(topic_config={"compression.type": "snappy"})
    seen = []

    def middleware(message):
        seen.append((message["payload"], producer.current_variant))
        if message["payload"] == "outer":
            inner.produce_async(topic=topic, payload="inner")
            seen.append(("after inner", producer.current_variant))
        return message

    producer.middleware.append(middleware)
    outer.produce_sync(topic=topic, payload="outer")
    producer.close()
    assert seen == [("outer", outer), ("inner", inner), ("after inner", outer)]
