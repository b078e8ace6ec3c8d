"""aio's produce_many_* dispatch through the sync producer's ``Batch``: the same errors (with
the index of the message at fault, the handles dispatched before it), the same events and the
same middleware pass as ``waterdrop.Producer``, on the loop or handed to a thread."""

from __future__ import annotations

import pytest

from waterdrop import KafkaError, MessageInvalidError, ProduceManyError, aio

pytestmark = pytest.mark.asyncio


def _errors(producer: aio.Producer) -> list[dict]:
    seen: list[dict] = []
    producer.monitor.subscribe("error.occurred", lambda event: seen.append(dict(event.payload)))
    return seen


def _batch(topic: str) -> list[dict]:
    return [
        {"topic": topic, "payload": b"first"},
        {"topic": topic, "payload": b"second"},
        {"topic": topic, "payload": 42},  # invalid, at index 2
        {"topic": topic, "payload": b"fourth"},
    ]


@pytest.mark.parametrize("method", ["produce_many_async", "produce_many_sync"])
async def test_an_invalid_message_is_reported_with_its_index(make_producer, topic, method):
    producer = make_producer()
    await producer.connect()
    with pytest.raises(MessageInvalidError) as raised:
        result = getattr(producer, method)(_batch(topic))
        if method == "produce_many_sync":
            await result
    assert raised.value.errors == {
        "payload": "must be bytes, bytearray, memoryview, str or None, got int"
    }
    assert producer.queue_size == 0  # nothing before the invalid message was sent either
    # the sync producer reports the same (the same index, once errors carry one)
    with pytest.raises(MessageInvalidError) as sync_raised:
        getattr(producer.sync, method)(_batch(topic))
    assert sync_raised.value.errors == raised.value.errors
    assert sync_raised.value.index == raised.value.index == 2


async def _call(producer_or_variant, method, arg):
    result = getattr(producer_or_variant, method)(arg)
    if hasattr(result, "__await__"):
        await result


@pytest.mark.parametrize("through", ["producer", "variant"])
@pytest.mark.parametrize(
    "method, bad_at",
    [("produce_many_sync", 2), ("produce_many_async", 2), ("tombstone_many_sync", 1),
     ("tombstone_many_async", 1), ("buffer_many", 2)],
)
async def test_every_batch_method_names_the_index(make_producer, topic, method, bad_at, through):
    """API.md: MessageInvalidError.index is the first invalid message's position in a batch
    (buffer_many: in the buffer its flush sends)."""
    producer = make_producer()
    target = producer if through == "producer" else producer.variant(max_wait_timeout=5_000)
    if method.startswith("tombstone"):
        batch = [{"topic": topic, "key": "k", "partition": 0}, {"topic": topic, "key": "k"}]
    else:
        batch = _batch(topic)
    with pytest.raises(MessageInvalidError) as raised:
        await _call(target, method, batch)
        if method == "buffer_many":
            await producer.flush_sync()
    assert raised.value.index == bad_at
    assert f"message {bad_at} of the batch is invalid" in str(raised.value)
    assert producer.queue_size == 0


@pytest.mark.parametrize(
    "method, message",
    [("produce_sync", {"payload": 42}), ("produce_async", {"payload": 42}),
     ("tombstone_sync", {"key": "k"}), ("tombstone_async", {"key": "k"})],
)
async def test_a_single_message_method_has_no_index(make_producer, topic, method, message):
    producer = make_producer()
    with pytest.raises(MessageInvalidError) as raised:
        await _call(producer, method, {"topic": topic, **message})
    assert raised.value.index is None


async def test_a_failed_batch_keeps_what_was_dispatched_and_reports_it(make_producer, topic):
    producer = make_producer()
    await producer.connect()
    # the topic's partitions known first: without them librdkafka accepts partition 9 and fails
    # it at delivery; with them it refuses it when enqueued, the case this test is about
    partitions = await producer.partition_count(topic)
    assert partitions < 9
    errors = _errors(producer)
    messages = [
        {"topic": topic, "payload": b"ok"},
        {"topic": topic, "payload": b"x", "partition": 9},  # no such partition
    ]
    with pytest.raises(ProduceManyError) as raised:
        await producer.produce_many_sync(messages)
    assert isinstance(raised.value.__cause__, KafkaError)
    assert raised.value.__cause__.code == "unknown_partition"
    # what was dispatched before the refused message stays dispatched, and is delivered
    [first] = raised.value.dispatched
    assert first.error is None
    assert first.partition >= 0 and first.offset >= 0
    [reported] = [e for e in errors if e["type"].startswith("messages.")]
    assert reported["type"] == "messages.produce_many_sync"
    assert reported["error"] is raised.value
    assert reported["messages"] == messages
    assert reported["dispatched"] == raised.value.dispatched


async def test_a_batch_handed_to_a_thread_reports_as_on_the_loop(make_producer, topic):
    producer = make_producer()  # not connected: the client is built in the handoff thread
    seen: list[str] = []
    producer.monitor.subscribe("messages.produced_async", lambda event: seen.append(event.id))
    handles = producer.produce_many_async([{"topic": topic, "payload": b"x"}] * 3)
    await aio.wait_all(handles)
    assert [h.error for h in handles] == [None, None, None]
    assert [h.offset for h in handles] == [0, 1, 2]
    assert seen == ["messages.produced_async"]


async def test_middleware_runs_once_per_message_with_the_variant_current(make_producer, topic):
    producer = make_producer()
    variant = producer.variant(topic_config={"acks": 1})
    calls: list[object] = []

    def step(message: dict) -> dict:
        calls.append(producer.sync.current_variant)
        return {**message, "headers": {"via": "middleware"}}

    producer.middleware.append(step)
    handles = await variant.produce_many_sync([{"topic": topic, "payload": b"x"}] * 2)
    assert len(calls) == 2
    assert all(current is not None and current.topic_config == {"acks": 1} for current in calls)
    assert all(h.error is None for h in handles)
