"""producer.ping(): the startup check. It builds the client, waits until a broker answers a
metadata request and returns how many brokers the cluster has; with no broker answering it
raises ClusterUnreachableError naming the servers and librdkafka's cause, within its
timeout. Faults come from librdkafka's MockCluster."""

from __future__ import annotations

import pytest

from waterdrop import ClusterUnreachableError, Producer, Status
from waterdrop.clients import Buffered, Dummy
from waterdrop.errors import (
    Error,
    ProduceError,
    ProducerClosedError,
    ProducerNotConfiguredError,
)
from waterdrop.testing import MockCluster

# ping's timeouts below are hang detectors, not expectations: pytest-timeout ends a hang
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cluster():
    with MockCluster(brokers=3) as mc:
        yield mc


def test_ping_builds_the_client_and_counts_the_brokers(cluster):
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert producer.status is Status.CONFIGURED
        assert producer.ping() == 3
        assert producer.status is Status.CONNECTED
        assert producer.ping(max_wait_timeout=5_000) == 3   # again, on the same client
        assert producer.variant(topic_config={"acks": 1}).ping() == 3


def test_every_broker_down_is_unreachable_and_up_again_answers(cluster):
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert producer.ping() == 3
        for broker in (1, 2, 3):
            cluster.broker_down(broker)
        with pytest.raises(ClusterUnreachableError) as info:
            producer.ping(max_wait_timeout=1_500)
        error = info.value
        assert error.bootstrap_servers == cluster.bootstrap_servers
        assert cluster.bootstrap_servers in str(error) and "1,500 ms" in str(error)
        assert error.cause and error.cause in str(error)   # librdkafka's last word on it
        assert isinstance(error, Error) and isinstance(error, ConnectionError)
        for broker in (1, 2, 3):
            cluster.broker_up(broker)
        assert producer.ping(max_wait_timeout=30_000) == 3


def test_one_broker_down_still_answers_with_the_brokers_that_are_up(cluster):
    cluster.broker_down(2)
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert producer.ping(max_wait_timeout=30_000) == 2


def test_a_refused_connection_names_the_servers_and_the_cause():
    with MockCluster(brokers=1) as gone:
        servers = gone.bootstrap_servers
    # the cluster is closed: its port refuses connections now
    producer = Producer(kafka={"bootstrap.servers": servers})
    try:
        with pytest.raises(ClusterUnreachableError) as info:
            producer.ping(max_wait_timeout=1_000)
        assert servers in str(info.value)
        assert "Connection refused" in info.value.cause
        assert producer.status is Status.CONNECTED   # the client stays: a later ping may pass
    finally:
        producer.close()


@pytest.mark.parametrize("settings", [{"client_class": Dummy}, {"client_class": Buffered},
                                      {"deliver": False}])
def test_the_test_clients_answer_at_once_with_no_brokers(settings):
    with Producer(kafka={"client.id": "unit"}, **settings) as producer:
        assert producer.ping() == 0


def test_ping_before_setup_or_after_close_says_so(cluster):
    with pytest.raises(ProducerNotConfiguredError):
        Producer().ping()
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    producer.close()
    with pytest.raises(ProducerClosedError):
        producer.ping()


@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), (1.5, TypeError),
                                              ("10", TypeError), (None, TypeError),
                                              (True, TypeError)])
def test_ping_timeout_must_be_milliseconds(cluster, value, error):
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        with pytest.raises(error, match="max_wait_timeout"):
            producer.ping(max_wait_timeout=value)


def test_settings_librdkafka_judges_only_together_fail_at_ping(cluster):
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                               "enable.idempotence": True, "acks": 0})
    try:
        with pytest.raises(Error) as info:
            producer.ping()
        assert "acks" in str(info.value)
    finally:
        producer.close()


def test_a_transactional_producer_pings_within_its_timeout_not_max_wait_timeout(cluster):
    # building a transactional client waits for the cluster too (init_transactions): ping
    # bounds that wait by its own timeout, and says why as for any other producer
    with MockCluster(brokers=1) as gone:
        servers = gone.bootstrap_servers
    producer = Producer(kafka={"bootstrap.servers": servers, "transactional.id": "ping-tx"},
                        max_wait_timeout=600_000)
    try:
        with pytest.raises(ClusterUnreachableError) as info:
            producer.ping(max_wait_timeout=1_000)
        assert servers in str(info.value) and "Connection refused" in info.value.cause
        assert producer.status is Status.CONFIGURED   # nothing half-built: a later try builds
    finally:
        producer.close()
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                         "transactional.id": "ping-tx-ok"}) as producer:
        assert producer.ping(max_wait_timeout=30_000) == 3
        assert producer.transactional


# --- without ping: a message that times out says that no broker was reached ----------------------


def _refusing_servers() -> str:
    with MockCluster(brokers=1) as gone:
        return gone.bootstrap_servers   # closed: its port refuses connections now


@pytest.mark.parametrize("method", ["produce_sync", "produce_many_sync", "variant"])
def test_a_message_that_timed_out_unreached_says_why_and_what_to_do(method):
    # the README's quick start without its ping() line, with no broker at hand
    servers = _refusing_servers()
    producer = Producer(kafka={"bootstrap.servers": servers, "message.timeout.ms": 1_000})
    message = {"topic": "t", "payload": b"x"}
    try:
        with pytest.raises(ProduceError) as info:
            if method == "produce_sync":
                producer.produce_sync(message)
            elif method == "produce_many_sync":
                producer.produce_many_sync([message, message])
            else:
                producer.variant(topic_config={"message.timeout.ms": 1_500}).produce_sync(message)
        text = str(info.value)
        assert info.value.cause.code == "msg_timed_out"
        assert text.startswith("<KafkaError msg_timed_out")   # WaterDrop's text comes first
        timeout = "1,500" if method == "variant" else "1,000"
        assert f"not delivered within message.timeout.ms ({timeout} ms)" in text
        assert f"no Kafka broker at {servers} could be reached" in text
        assert "Connection refused" in text and "producer.ping()" in text
    finally:
        producer.close(force=True)


def test_a_message_that_timed_out_with_the_broker_up_claims_no_unreachable_broker(cluster):
    cluster.create_topic("slow", partitions=1, replication_factor=1)
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                         "message.timeout.ms": 300}) as producer:
        assert producer.ping() == 3
        cluster.set_rtt(-1, 2_000)   # every broker answers, too late for the message
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic="slow", payload=b"x")
        assert info.value.cause.code == "msg_timed_out"
        assert "could be reached" not in str(info.value)
        cluster.set_rtt(-1, 0)
