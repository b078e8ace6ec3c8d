"""Integration fixtures: a real broker (see ``kafka_bootstrap`` in tests/conftest.py), a fresh
topic per test and producers that are always closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import close_within, create_topic
from tests.integration import java_admin
from waterdrop import Producer


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def topic(kafka_bootstrap) -> str:
    """A fresh single-partition topic."""
    return create_topic(kafka_bootstrap)


@pytest.fixture
def make_producer(kafka_bootstrap) -> Callable[..., Producer]:
    """``make_producer(kafka_overrides=None, **settings)``: a producer on the broker (or on the
    ``bootstrap.servers`` given in ``kafka``), closed when the test ends."""
    made: list[Producer] = []

    def make(kafka: dict[str, Any] | None = None, **settings: Any) -> Producer:
        conf = {"bootstrap.servers": kafka_bootstrap}
        conf.update(kafka or {})
        producer = Producer(kafka=conf, **settings)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        close_within(producer)


@pytest.fixture
def producer(make_producer) -> Producer:
    return make_producer()


@pytest.fixture(scope="session")
def java_offsets(kafka_bootstrap, tmp_path_factory) -> Callable[[str], Any]:
    """``java_offsets(group)``: the group's committed offsets as Kafka's Java Admin client reads
    them, ``{(topic, partition): (offset, metadata bytes)}`` (see tests/integration/java_admin.py).
    Skips when java or javac is missing."""
    reason = java_admin.missing_java()
    if reason is not None:
        pytest.skip(reason)
    reader = java_admin.compile_reader(str(tmp_path_factory.mktemp("java-admin")))
    return lambda group: java_admin.read_offsets(reader, kafka_bootstrap, group)
