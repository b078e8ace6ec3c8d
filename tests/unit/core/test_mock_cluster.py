"""waterdrop.testing.MockCluster: librdkafka's in-process cluster, real protocol on 127.0.0.1.

What waterdrop writes is read back with confluent-kafka's own Consumer.
"""

from __future__ import annotations

import pytest

from tests.helpers import close_within, consume, headers_of, unique_topic
from waterdrop import KafkaError, Producer
from waterdrop.testing import MockCluster


@pytest.fixture
def cluster():
    with MockCluster(brokers=3) as mc:
        yield mc


def test_bootstrap_servers_lists_every_broker(cluster):
    assert cluster.brokers == 3
    servers = cluster.bootstrap_servers.split(",")
    assert len(servers) == 3
    assert all(s.startswith("127.0.0.1:") for s in servers)


def test_produce_and_read_back_with_another_client(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=3)
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        reports = [
            producer.produce_sync(
                topic=topic, payload=f"p{i}", key=f"k{i}", partition=i % 3, headers={"n": str(i)}
            )
            for i in range(9)
        ]
    assert [r.partition for r in reports] == [i % 3 for i in range(9)]
    assert [r.offset for r in reports] == [i // 3 for i in range(9)]
    messages = consume(cluster.bootstrap_servers, topic, 9)
    got = sorted(
        (m.partition(), m.offset(), m.value(), m.key(), headers_of(m)) for m in messages
    )
    assert got == sorted(
        (i % 3, i // 3, f"p{i}".encode(), f"k{i}".encode(), [("n", str(i).encode())])
        for i in range(9)
    )


def test_create_topic_sets_the_partition_count(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=4)
    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert producer.partition_count(topic) == 4
        assert producer.produce_sync(topic=topic, payload=b"x", partition=3).partition == 3


def test_a_partition_count_lookup_does_not_make_a_bad_topic_name_acceptable(cluster):
    from waterdrop.errors import MessageInvalidError

    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        assert producer.partition_count("bad topic!") == -1
        for produce in (producer.produce_sync, producer.produce_async):
            with pytest.raises(MessageInvalidError) as caught:
                produce(topic="bad topic!", payload=b"x")
            assert "topic" in caught.value.errors
        assert producer.client.handles_in_flight == 0


def test_broker_down_times_out_with_label_intact():
    with MockCluster(brokers=1) as cluster:
        topic = unique_topic()
        cluster.create_topic(topic, partitions=1)
        cluster.broker_down(1)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 1_000},
            max_wait_timeout=30_000,
        )
        try:
            handle = producer.produce_async(topic=topic, payload=b"x", label="order-42")
            report = handle.wait(raise_response_error=False)
            assert isinstance(report.error, KafkaError)
            assert report.error.code == "msg_timed_out"
            assert report.error.rdkafka_response == -192
            assert report.label == "order-42"
            assert handle.label == "order-42"
            assert report.topic_name == topic
        finally:
            close_within(producer)


def test_broker_up_again_delivers():
    with MockCluster(brokers=1) as cluster:
        topic = unique_topic()
        cluster.create_topic(topic, partitions=1)
        cluster.broker_down(1)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 60_000},
            max_wait_timeout=60_000,
        )
        try:
            handle = producer.produce_async(topic=topic, payload=b"late")
            assert handle.pending
            cluster.broker_up(1)
            assert handle.wait().offset == 0
        finally:
            close_within(producer)
        assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 1)] == [b"late"]


def test_retriable_request_errors_are_retried(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    with Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "retry.backoff.ms": 10}
    ) as producer:
        producer.produce_sync(topic=topic, payload=b"warm-up")  # metadata and connection ready
        cluster.push_request_errors(0, ["not_leader_for_partition"] * 3)
        report = producer.produce_sync(topic=topic, payload=b"after-errors")
        assert report.error is None
        assert report.offset == 1
    values = [m.value() for m in consume(cluster.bootstrap_servers, topic, 2)]
    assert values == [b"warm-up", b"after-errors"]


@pytest.mark.parametrize("retries, delivered", [(3, True), (2, False)])
def test_request_errors_are_retried_up_to_the_retry_limit(cluster, retries, delivered):
    # Proves the injected errors really reach the client: three not_enough_replicas
    # responses are absorbed with 3 retries and surface with 2. (librdkafka does not count
    # leader errors such as not_leader_for_partition as retries, so they cannot show this.)
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    with Producer(
        kafka={
            "bootstrap.servers": cluster.bootstrap_servers,
            "message.send.max.retries": retries,
            "retry.backoff.ms": 10,
        }
    ) as producer:
        producer.produce_sync(topic=topic, payload=b"warm-up")
        cluster.push_request_errors(0, ["not_enough_replicas"] * 3)
        report = producer.produce_async(topic=topic, payload=b"x").wait(raise_response_error=False)
        if delivered:
            assert report.error is None
            assert report.offset == 1
        else:
            assert isinstance(report.error, KafkaError)
            assert report.error.code == "not_enough_replicas"
            assert report.error.rdkafka_response == 19


def test_push_request_errors_takes_codes_as_integers(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    with Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "message.send.max.retries": 0}
    ) as producer:
        producer.produce_sync(topic=topic, payload=b"warm-up")
        cluster.push_request_errors(0, [10])  # msg_size_too_large: not retriable
        error = producer.produce_async(topic=topic, payload=b"x").wait(
            raise_response_error=False
        ).error
        assert error.code == "msg_size_too_large"


def test_closed_cluster_refuses_use():
    cluster = MockCluster(brokers=1)
    cluster.close()
    cluster.close()  # idempotent
    with pytest.raises(RuntimeError):
        cluster.create_topic("t")
