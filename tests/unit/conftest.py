"""Fixtures for every unit test: one librdkafka MockCluster per test module (one broker).

A module that needs another cluster (three brokers, a topic made up front) defines its own
``cluster``, which wins over this one."""

from __future__ import annotations

import pytest

from waterdrop.testing import MockCluster


@pytest.fixture(scope="module")
def cluster():
    with MockCluster(brokers=1) as mc:
        yield mc
