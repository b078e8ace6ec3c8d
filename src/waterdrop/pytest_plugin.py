"""pytest fixtures for testing code that uses waterdrop, without a Kafka broker.

Installed as a pytest plugin (entry point ``pytest11``), so these fixtures are available in
any project that has waterdrop installed:

- ``waterdrop_mock_cluster``: librdkafka's in-process cluster (3 brokers), one per test.
- ``waterdrop_mock_cluster_session``: the same, shared by the whole session (faster).
- ``waterdrop_buffered_producer``: a producer with the ``Buffered`` client: every message is
  validated exactly as in production and kept in ``producer.client.messages``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from waterdrop import Producer
from waterdrop.clients import Buffered
from waterdrop.testing import MockCluster


@pytest.fixture
def waterdrop_mock_cluster() -> Iterator[MockCluster]:
    """A fresh 3-broker MockCluster for this test (``.bootstrap_servers``)."""
    with MockCluster(brokers=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def waterdrop_mock_cluster_session() -> Iterator[MockCluster]:
    """One 3-broker MockCluster for the whole test session."""
    with MockCluster(brokers=3) as cluster:
        yield cluster


@pytest.fixture
def waterdrop_buffered_producer() -> Iterator[Producer]:
    """A configured producer whose dispatches are validated and kept, never sent."""
    producer = Producer(kafka={"bootstrap.servers": "buffered.invalid:9092"}, client_class=Buffered)
    try:
        yield producer
    finally:
        producer.close()
