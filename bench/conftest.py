"""One MockCluster for the whole benchmark run, shared by waterdrop and confluent-kafka."""

from __future__ import annotations

import pytest

# the librdkafka settings both clients get (so only the binding differs) and the 100-byte
# payload: the same as bench/compare.py's
from waterdrop._bench.settings import COMMON, PAYLOAD  # noqa: F401 (for the test files)
from waterdrop.testing import MockCluster

MESSAGES = 100_000
TOPIC = "bench"

_RESULTS: dict[str, float] = {}


@pytest.fixture(scope="session")
def cluster():
    with MockCluster(brokers=3) as mc:
        mc.create_topic(TOPIC, partitions=3, replication_factor=3)
        yield mc


@pytest.fixture(scope="session")
def results():
    return _RESULTS


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write(f"messages/s (median of rounds, {MESSAGES:,} x 100 B per round, same MockCluster):")
    base = _RESULTS.get("confluent_produce_callback")
    for name, rate in _RESULTS.items():
        ratio = f"  {rate / base:5.2f}x confluent-kafka" if base else ""
        write(f"  {name:<32} {rate:>12,.0f}{ratio}")
