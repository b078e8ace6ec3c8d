"""ping() against the real broker: the startup check a web application runs before it
serves traffic. The broker count is read back through confluent-kafka (another client)."""

from __future__ import annotations

import socket

import pytest
from confluent_kafka.admin import AdminClient

from waterdrop import ClusterUnreachableError, Producer

# the timeouts given to ping are bounds under test; this one only ends a hang
pytestmark = pytest.mark.timeout(120)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ping_answers_with_the_brokers_of_the_real_cluster(kafka_bootstrap):
    expected = len(AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(
        timeout=30).brokers)
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as producer:
        assert producer.ping() == expected >= 1
        # and the producer it checked works
        assert producer.produce_sync(topic="wd-ping", payload=b"x").error is None


def test_ping_of_an_address_that_refuses_fails_naming_servers_and_cause():
    servers = f"127.0.0.1:{_closed_port()}"
    producer = Producer(kafka={"bootstrap.servers": servers})
    try:
        with pytest.raises(ClusterUnreachableError) as info:
            producer.ping(max_wait_timeout=2_000)
        text = str(info.value)
        assert servers in text and "2,000 ms" in text
        assert "Connection refused" in text
    finally:
        producer.close()


def test_ping_of_a_host_that_does_not_resolve_says_so():
    producer = Producer(kafka={"bootstrap.servers": "no-such-host.invalid:9092"})
    try:
        with pytest.raises(ClusterUnreachableError) as info:
            producer.ping(max_wait_timeout=2_000)
        assert "no-such-host.invalid:9092" in str(info.value)
        assert "resolve" in info.value.cause
    finally:
        producer.close()


def test_ping_of_a_server_that_never_answers_ends_at_its_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel does), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        servers = f"127.0.0.1:{silent.getsockname()[1]}"
        producer = Producer(kafka={"bootstrap.servers": servers})
        try:
            with pytest.raises(ClusterUnreachableError) as info:
                producer.ping(max_wait_timeout=1_500)
            assert servers in str(info.value) and "1,500 ms" in str(info.value)
        finally:
            producer.close()
