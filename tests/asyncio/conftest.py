"""asyncio tests: every test runs on the default event loop and on uvloop.

Most run on librdkafka's mock cluster (no broker, milliseconds to start); the few that need
what only a real broker does (read_committed hiding an aborted transaction) use the
``kafka_bootstrap`` fixture of tests/conftest.py and skip without a broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from waterdrop import aio
from waterdrop.testing import MockCluster

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in requirements-test.txt
    uvloop = None


def pytest_asyncio_loop_factories(config, item):
    """Run every asyncio test once per event loop implementation."""
    factories = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(scope="session")
def cluster() -> Iterator[MockCluster]:
    with MockCluster(brokers=1) as mc:
        yield mc


@pytest.fixture
def topic(cluster) -> str:
    name = f"wd-aio-{uuid.uuid4().hex}"
    cluster.create_topic(name, partitions=1, replication_factor=1)
    return name


@pytest.fixture
def make_producer(cluster) -> Iterator[Callable[..., aio.Producer]]:
    """``make_producer(kafka=None, **settings)``: an aio.Producer on the mock cluster, closed
    (synchronously, after the test's loop is gone) when the test ends."""
    made: list[aio.Producer] = []

    def make(kafka: dict[str, Any] | None = None, **settings: Any) -> aio.Producer:
        conf: dict[str, Any] = {"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0}
        conf.update(kafka or {})
        producer = aio.Producer(kafka=conf, **settings)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.sync.close()


@pytest.fixture
def producer(make_producer) -> aio.Producer:
    return make_producer()


def read_back(bootstrap: str, topic: str, count: int, **conf: Any) -> list[Any]:
    """Read ``count`` messages of ``topic`` with confluent-kafka (an independent client)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"wd-aio-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        **conf,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        messages: list[Any] = []
        for _ in range(200):  # bounded: 200 x 0.1 s at most, ends as soon as all arrived
            if len(messages) >= count:
                break
            for message in consumer.consume(num_messages=count - len(messages), timeout=0.1):
                assert message.error() is None, message.error()
                messages.append(message)
        return messages
    finally:
        consumer.close()
