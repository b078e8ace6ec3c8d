"""MessageInvalidError.index (API.md): in a batch method, the position of the first invalid
message, named in the error's text too; None for a single-message method. Nothing of the
batch is sent. On librdkafka's mock cluster, and with the Dummy client."""

from __future__ import annotations

import pickle
import uuid

import pytest

from waterdrop import MessageInvalidError, Producer
from waterdrop.clients import Dummy

from tests.helpers import close_within, message_count, unique_topic


@pytest.fixture
def topic(cluster):
    name = unique_topic()
    cluster.create_topic(name, partitions=1)
    return name


@pytest.fixture(params=["plain", "transactional", "dummy"])
def producer(request, cluster):
    kafka = {"bootstrap.servers": cluster.bootstrap_servers}
    settings = {}
    if request.param == "transactional":
        kafka["transactional.id"] = f"wd-index-{uuid.uuid4().hex}"
    elif request.param == "dummy":
        settings["client_class"] = Dummy
    p = Producer(kafka=kafka, **settings)
    yield p
    close_within(p)


def batch(topic: str, bad_at: int, size: int = 5) -> list[dict]:
    messages = [{"topic": topic, "payload": b"m%d" % i} for i in range(size)]
    messages[bad_at] = {"topic": topic, "payload": 42}  # not str/bytes
    messages[-1] = {"topic": topic}                       # invalid too, later: not reported
    return messages


def assert_index(raised: pytest.ExceptionInfo, index: int, field: str) -> None:
    error = raised.value
    assert error.index == index
    assert field in error.errors
    assert f"message {index} of the batch" in str(error)


@pytest.mark.parametrize("method", ["produce_many_sync", "produce_many_async"])
@pytest.mark.parametrize("bad_at", [0, 2])
def test_a_batch_names_its_first_invalid_message(producer, cluster, topic, method, bad_at):
    with pytest.raises(MessageInvalidError) as raised:
        getattr(producer, method)(batch(topic, bad_at))
    assert_index(raised, bad_at, "payload")
    if producer.config.client_class is not Dummy:
        close_within(producer)
        assert message_count(cluster.bootstrap_servers, topic) == 0  # nothing of the batch


@pytest.mark.parametrize("method", ["tombstone_many_sync", "tombstone_many_async"])
def test_a_tombstone_batch_names_its_first_invalid_message(producer, topic, method):
    tombstones = [{"topic": topic, "key": "k%d" % i, "partition": 0} for i in range(4)]
    del tombstones[3]["partition"]
    with pytest.raises(MessageInvalidError) as raised:
        getattr(producer, method)(tombstones)
    assert_index(raised, 3, "partition")


def test_a_flush_names_the_index_in_the_buffer(producer, topic):
    producer.buffer_many(batch(topic, 1, size=3))
    with pytest.raises(MessageInvalidError) as raised:
        producer.flush_sync()
    assert_index(raised, 1, "payload")


def test_a_variant_batch_names_it_too(producer, topic):
    with pytest.raises(MessageInvalidError) as raised:
        producer.variant(max_wait_timeout=5_000).produce_many_sync(batch(topic, 3))
    assert_index(raised, 3, "payload")


def test_with_middleware_the_index_is_in_the_batch_the_middleware_returned(producer, topic):
    producer.middleware.append(lambda m: m)
    with pytest.raises(MessageInvalidError) as raised:
        producer.produce_many_sync(batch(topic, 2))
    assert_index(raised, 2, "payload")


@pytest.mark.parametrize("method", ["produce_sync", "produce_async", "buffer_then_flush"])
def test_a_single_message_has_no_index(producer, topic, method):
    with pytest.raises(MessageInvalidError) as raised:
        if method == "buffer_then_flush":
            producer.buffer(topic=topic)
            producer.flush_sync()
        else:
            getattr(producer, method)(topic=topic)
    if method == "buffer_then_flush":  # a flush is a batch: position 0
        assert raised.value.index == 0
    else:
        assert raised.value.index is None
        assert str(raised.value) == str(raised.value.errors)  # the text as before


def test_the_index_survives_pickling():
    error = MessageInvalidError({"payload": "must be present"}, 7)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.index, copy.errors, str(copy)) == (7, error.errors, str(error))
    assert pickle.loads(pickle.dumps(MessageInvalidError({"topic": "x"}))).index is None
