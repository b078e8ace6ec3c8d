"""A single-message method takes a mapping or its fields as keywords, never both: a mapping
with keyword fields too raises TypeError and nothing is sent (API.md: nothing is silently
dropped or merged). On librdkafka's mock cluster: what reached the topic is counted after the
producer closed (every enqueued message flushed by then)."""

from __future__ import annotations

import types

import pytest

from waterdrop import Producer
from waterdrop.testing import MockCluster

from tests.helpers import close_within, message_count, unique_topic

METHODS = ("produce_sync", "produce_async", "tombstone_sync", "tombstone_async", "buffer")


@pytest.fixture
def topic(cluster):
    name = unique_topic()
    cluster.create_topic(name, partitions=4)
    return name


@pytest.fixture
def producer(cluster):
    p = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    yield p
    close_within(p)


def message(method: str, topic: str) -> dict:
    if method.startswith("tombstone"):
        return {"topic": topic, "key": "k", "partition": 0}
    return {"topic": topic, "payload": b"x"}


def refused_everywhere(producer: Producer, cluster: MockCluster, topic: str, call) -> None:
    """``call`` raises TypeError naming the keywords; nothing reached ``topic`` or the buffer."""
    with pytest.raises(TypeError) as raised:
        call()
    text = str(raised.value)
    assert "not both" in text
    assert "partition=" in text and "bogus=" in text
    assert producer.messages == ()
    producer.flush_sync()
    close_within(producer)
    assert message_count(cluster.bootstrap_servers, topic) == 0


@pytest.mark.parametrize("method", METHODS)
def test_a_mapping_with_keyword_fields_raises_type_error_and_sends_nothing(
    producer, cluster, topic, method
):
    call = getattr(producer, method)
    refused_everywhere(producer, cluster, topic,
                       lambda: call(message(method, topic), partition=3, bogus=1))


@pytest.mark.parametrize("method", METHODS)
def test_the_error_names_the_method_and_one_keyword_is_enough(producer, topic, method):
    with pytest.raises(TypeError, match=rf"^{method}\(\) .*: got a mapping and label=;"):
        getattr(producer, method)(message(method, topic), label=None)


@pytest.mark.parametrize("method", METHODS)
def test_with_middleware_the_slow_path_refuses_it_too(producer, cluster, topic, method):
    ran = []
    producer.middleware.append(lambda m: ran.append(m) or m)
    call = getattr(producer, method)
    refused_everywhere(producer, cluster, topic,
                       lambda: call(message(method, topic), partition=3, bogus=1))
    assert ran == []


@pytest.mark.parametrize("method", METHODS)
def test_a_mapping_other_than_dict_with_keyword_fields_is_refused(
    producer, cluster, topic, method
):
    mapping = types.MappingProxyType(message(method, topic))
    call = getattr(producer, method)
    refused_everywhere(producer, cluster, topic, lambda: call(mapping, partition=3, bogus=1))


@pytest.mark.parametrize("method", METHODS)
def test_a_variant_refuses_it_too(producer, cluster, topic, method):
    variant = producer.variant(max_wait_timeout=10_000)
    call = getattr(variant, method)
    refused_everywhere(producer, cluster, topic,
                       lambda: call(message(method, topic), partition=3, bogus=1))


def test_a_mapping_alone_and_keywords_alone_still_send(producer, cluster, topic):
    assert producer.produce_sync({"topic": topic, "payload": b"a", "partition": 3}).partition == 3
    assert producer.produce_sync(topic=topic, payload=b"b", partition=2).partition == 2
    assert producer.produce_sync(None, topic=topic, payload=b"c", partition=1).partition == 1
    close_within(producer)
    assert message_count(cluster.bootstrap_servers, topic) == 3
