"""waterdrop.aio.Producer: every coroutine and plain method, events, errors, the handoff."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.asyncio.conftest import read_back
from tests.helpers import message_count
from waterdrop import (
    DeliveryHandle,
    KafkaError,
    MessageInvalidError,
    ProduceError,
    ProduceManyError,
    ProducerClosedError,
    Status,
    aio,
)

pytestmark = pytest.mark.asyncio


def _events(producer: aio.Producer, *names: str) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    for name in names:
        producer.monitor.subscribe(name, lambda event, name=name: seen.append((name, event)))
    return seen


async def test_settings_and_lifecycle(make_producer):
    producer = make_producer(id="aio-1", max_wait_timeout=30_000)
    assert producer.id == "aio-1" and producer.config.max_wait_timeout == 30_000
    assert producer.status is Status.CONFIGURED
    async with producer as entered:
        assert entered is producer
        assert producer.status is Status.CONNECTED  # the client was built (in a thread)
    assert producer.status is Status.CLOSED
    await producer.close()  # closing twice does nothing


async def test_setup_later_and_configure_callable(cluster):
    def configure(config):
        config.kafka = {"bootstrap.servers": cluster.bootstrap_servers}
        config.id = "configured"

    producer = aio.Producer()
    assert producer.status is Status.INITIAL
    producer.setup(configure)
    assert producer.id == "configured"
    await producer.close()


async def test_produce_sync(producer, topic):
    seen = _events(producer, "message.produced_sync", "message.produced_async")
    report = await producer.produce_sync(topic=topic, payload=b"x", key="k", label="l")
    assert (report.topic_name, report.offset, report.label, report.error) == (topic, 0, "l", None)
    report = await producer.produce_sync({"topic": topic, "payload": "text"})
    assert report.offset == 1
    assert [name for name, _ in seen] == ["message.produced_sync"] * 2
    assert seen[0][1]["report"] is not None and seen[0][1]["time"] >= 0


async def test_produce_sync_failure_is_a_produce_error(producer, topic):
    errors = _events(producer, "error.occurred")
    with pytest.raises(ProduceError) as raised:
        await producer.produce_sync(topic=topic, payload=b"x", partition=9)
    assert isinstance(raised.value.__cause__, KafkaError)
    assert [event["type"] for _, event in errors if event["type"] == "message.produce_sync"]


async def test_produce_sync_invalid_message_raises_before_sending(producer, topic):
    with pytest.raises(MessageInvalidError) as raised:
        await producer.produce_sync(topic=topic, payload=123)
    assert "payload" in raised.value.errors
    assert raised.value.index is None


@pytest.mark.parametrize(
    "method", ["produce_many_sync", "produce_many_async", "tombstone_many_sync",
               "tombstone_many_async"])
@pytest.mark.parametrize("transactional", [False, True], ids=["plain", "transactional"])
async def test_a_batch_names_its_first_invalid_message(make_producer, topic, method,
                                                       transactional):
    kafka = {"transactional.id": f"aio-index-{topic}"} if transactional else {}
    producer = make_producer(kafka)
    if method.startswith("tombstone"):
        messages = [{"topic": topic, "key": "k", "partition": 0} for _ in range(3)]
        del messages[1]["partition"]
        field = "partition"
    else:
        messages = [{"topic": topic, "payload": b"ok"}, {"topic": topic, "payload": b"ok"},
                    {"topic": topic, "payload": 42}, {"topic": topic}]
        field = "payload"
    index = 1 if method.startswith("tombstone") else 2
    with pytest.raises(MessageInvalidError) as raised:
        result = getattr(producer, method)(messages)
        if asyncio.iscoroutine(result):
            await result
    assert raised.value.index == index and field in raised.value.errors
    assert f"message {index} of the batch" in str(raised.value)
    await producer.close()
    assert await asyncio.to_thread(message_count, producer.config.kafka["bootstrap.servers"],
                                   topic) == 0


async def test_produce_async_returns_an_awaitable_handle(producer, topic):
    seen = _events(producer, "message.produced_async")
    handle = producer.produce_async(topic=topic, payload=b"x", label=1)
    assert isinstance(handle, DeliveryHandle)
    report = await handle
    assert report.offset == 0 and report.label == 1
    assert len(seen) == 1


async def test_produce_many_sync(producer, topic):
    seen = _events(producer, "messages.produced_sync", "messages.produced_async")
    handles = await producer.produce_many_sync(
        [{"topic": topic, "payload": b"%d" % i} for i in range(100)])
    assert all(not h.pending and h.error is None for h in handles)
    assert [h.offset for h in handles] == list(range(100))
    assert [name for name, _ in seen] == ["messages.produced_sync"]


async def test_produce_many_sync_failure_is_a_produce_many_error(producer, topic):
    # the partitions known first, so partition 9 is refused when enqueued on every run (with
    # them still unknown librdkafka takes it and fails it at delivery: the two raced)
    assert await producer.partition_count(topic) < 9
    messages = [{"topic": topic, "payload": b"ok"}, {"topic": topic, "payload": b"x", "partition": 9}]
    with pytest.raises(ProduceManyError) as raised:
        await producer.produce_many_sync(messages)
    assert len(raised.value.dispatched) == 1
    assert all(not h.pending for h in raised.value.dispatched)
    assert raised.value.dispatched[0].error is None
    assert isinstance(raised.value.__cause__, KafkaError)
    assert raised.value.__cause__.code == "unknown_partition"


async def test_produce_many_async(producer, topic):
    seen = _events(producer, "messages.produced_async")
    handles = producer.produce_many_async([{"topic": topic, "payload": b"x"}] * 10)
    assert len(handles) == 10
    await aio.wait_all(handles)
    assert [(await h).offset for h in handles] == list(range(10))
    assert len(seen) == 1


async def test_tombstones(producer, topic, cluster):
    report = await producer.tombstone_sync(topic=topic, key="a", partition=0)
    assert report.offset == 0
    handle = producer.tombstone_async(topic=topic, key="b", partition=0)
    assert (await handle).offset == 1
    handles = await producer.tombstone_many_sync([{"topic": topic, "key": "c", "partition": 0}])
    assert handles[0].offset == 2
    handles = producer.tombstone_many_async([{"topic": topic, "key": "d", "partition": 0}])
    assert (await handles[0]).offset == 3
    with pytest.raises(MessageInvalidError):
        await producer.tombstone_sync(topic=topic, key="e")  # no partition
    messages = await asyncio.to_thread(read_back, cluster.bootstrap_servers, topic, 4)
    assert [(m.key(), m.value()) for m in messages] == [
        (b"a", None), (b"b", None), (b"c", None), (b"d", None)]


SINGLE_MESSAGE_METHODS = ("produce_sync", "produce_async", "tombstone_sync", "tombstone_async",
                          "buffer")


@pytest.mark.parametrize("method", SINGLE_MESSAGE_METHODS)
@pytest.mark.parametrize("through", ["producer", "variant", "middleware"])
async def test_a_mapping_with_keyword_fields_raises_type_error_and_sends_nothing(
    producer, topic, method, through
):
    ran = []
    if through == "middleware":
        producer.middleware.append(lambda m: ran.append(m) or m)
    target = producer.variant(max_wait_timeout=10_000) if through == "variant" else producer
    message = ({"topic": topic, "key": "k", "partition": 0} if method.startswith("tombstone")
               else {"topic": topic, "payload": b"x"})
    with pytest.raises(TypeError, match=rf"^{method}\(\) .*not both.*bogus=, partition="):
        result = getattr(target, method)(message, partition=0, bogus=1)
        if asyncio.iscoroutine(result):
            await result
    assert producer.messages == () and ran == []
    await producer.flush_sync()
    await producer.close()
    assert await asyncio.to_thread(message_count, producer.config.kafka["bootstrap.servers"],
                                   topic) == 0


async def test_buffer_and_flush(producer, topic):
    producer.buffer(topic=topic, payload=b"1")
    producer.buffer_many([{"topic": topic, "payload": b"2"}, {"topic": topic, "payload": b"3"}])
    assert len(producer.messages) == 3
    handles = await producer.flush_sync()
    assert [h.offset for h in handles] == [0, 1, 2] and not producer.messages
    producer.buffer(topic=topic, payload=b"4")
    handles = await producer.flush_async()
    assert [(await h).offset for h in handles] == [3]


async def test_variant(producer, topic):
    variant = producer.variant(topic_config={"acks": 1}, max_wait_timeout=5_000)
    assert variant.max_wait_timeout == 5_000 and variant.topic_config == {"acks": 1}
    seen = []
    producer.monitor.subscribe(
        "message.produced_sync",
        lambda event: seen.append(producer.sync.current_variant))
    report = await variant.produce_sync(topic=topic, payload=b"x")
    assert report.offset == 0
    assert (await variant.produce_async(topic=topic, payload=b"y")).offset == 1
    assert [h.offset for h in await variant.produce_many_sync([{"topic": topic, "payload": b"z"}])] == [2]
    assert producer.sync.current_variant.default  # nothing leaks out of the variant


async def test_partition_count_disconnect_purge(producer, topic):
    assert await producer.partition_count(topic) == 1
    await producer.produce_sync(topic=topic, payload=b"x")
    assert await producer.disconnect() is True
    assert producer.status is Status.DISCONNECTED
    # the next dispatch reconnects (in a thread, not on the loop)
    assert (await producer.produce_async(topic=topic, payload=b"y")).offset == 1
    producer.buffer(topic=topic, payload=b"dropped")
    producer.purge()
    assert not producer.messages
    assert producer.queue_size == 0


async def test_closed_producer_raises(producer, topic):
    await producer.close()
    with pytest.raises(ProducerClosedError):
        producer.produce_async(topic=topic, payload=b"x")
    with pytest.raises(ProducerClosedError):
        await producer.produce_sync(topic=topic, payload=b"x")
    with pytest.raises(ProducerClosedError):
        producer.produce_many_async([{"topic": topic, "payload": b"x"}])


async def test_close_delivers_what_is_awaited(producer, topic, cluster):
    await producer.connect()
    cluster.broker_down(1)
    handles = [producer.produce_async(topic=topic, payload=b"%d" % i) for i in range(20)]
    waiters = [asyncio.ensure_future(_await(h)) for h in handles]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(producer.close())
    await asyncio.sleep(0)
    assert not closing.done()  # close waits in a thread; the loop goes on
    cluster.broker_up(1)
    await closing
    reports = await asyncio.gather(*waiters)
    assert [r.offset for r in reports] == list(range(20))


async def _await(handle):
    return await handle


# --- never blocking the loop -----------------------------------------------------------------


async def test_queue_full_waits_in_a_thread_and_keeps_the_order(make_producer, topic, cluster):
    producer = make_producer(kafka={"queue.buffering.max.messages": 2})
    full = _events(producer, "error.occurred")
    await producer.connect()
    cluster.broker_down(1)
    try:
        handles = [producer.produce_async(topic=topic, payload=b"%d" % i) for i in range(6)]
        # the loop was not put to sleep: every call returned a pending handle at once
        assert all(h.pending for h in handles)
        sync_report = asyncio.ensure_future(producer.produce_sync(topic=topic, payload=b"6"))
        await asyncio.sleep(0)  # the task runs up to its first wait: "6" is handed over
        many = producer.produce_many_async([{"topic": topic, "payload": b"7"}])
        ticks = 0
        while ticks < 3:  # the loop keeps running other tasks meanwhile
            await asyncio.sleep(0)
            ticks += 1
        assert not sync_report.done()
    finally:
        cluster.broker_up(1)
    reports = [await h for h in handles] + [await sync_report, await many[0]]
    assert [r.offset for r in reports] == list(range(8))  # produce order kept
    messages = await asyncio.to_thread(read_back, cluster.bootstrap_servers, topic, 8)
    assert [m.value() for m in messages] == [b"%d" % i for i in range(8)]
    assert any(e["type"] == "message.produce_async" for _, e in full)  # queue-full reported


async def test_queue_full_timeout_fails_the_handle(make_producer, topic, cluster):
    producer = make_producer(
        kafka={"queue.buffering.max.messages": 1}, wait_timeout_on_queue_full=50,
        wait_backoff_on_queue_full=10)
    errors = _events(producer, "error.occurred")
    await producer.connect()
    cluster.broker_down(1)
    try:
        first = producer.produce_async(topic=topic, payload=b"0")
        second = producer.produce_async(topic=topic, payload=b"1")
        with pytest.raises(KafkaError) as raised:
            await second
        assert raised.value.code == "queue_full"
        with pytest.raises(ProduceError):
            await producer.produce_sync(topic=topic, payload=b"2")
        many = producer.produce_many_async([{"topic": topic, "payload": b"3"}] * 2)
        await aio.wait_all(many)
        assert [h.error.code for h in many] == ["queue_full", "queue_full"]
        with pytest.raises(ProduceManyError):
            await producer.produce_many_sync([{"topic": topic, "payload": b"4"}])
    finally:
        cluster.broker_up(1)
    assert (await first).offset == 0
    types = [event["type"] for _, event in errors]
    assert "message.produce_async" in types and "message.produce_sync" in types
    assert "messages.produce_many_async" in types and "messages.produce_many_sync" in types


async def test_the_loop_thread_never_sleeps_in_the_producer(make_producer, topic, cluster):
    producer = make_producer(kafka={"queue.buffering.max.messages": 1})
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    waiting_threads: list[int] = []
    waited = asyncio.Event()

    def on_error(event):  # emitted by each queue-full wait, on the thread that waits
        if event["type"] == "message.produce_async":
            waiting_threads.append(threading.get_ident())
            loop.call_soon_threadsafe(waited.set)

    producer.monitor.subscribe("error.occurred", on_error)
    await producer.connect()
    cluster.broker_down(1)
    try:
        handles = [producer.produce_async(topic=topic, payload=b"x") for _ in range(3)]
        await waited.wait()
    finally:
        cluster.broker_up(1)
    await aio.wait_all(handles)
    assert waiting_threads and loop_thread not in waiting_threads


# --- no client yet: built in a thread --------------------------------------------------------


async def test_first_dispatch_builds_the_client_off_the_loop(make_producer, topic):
    producer = make_producer()
    assert producer.status is Status.CONFIGURED
    handle = producer.produce_async(topic=topic, payload=b"x")
    assert handle.pending
    assert (await handle).offset == 0
    assert producer.status is Status.CONNECTED


# --- ping: the startup check, awaited --------------------------------------------------------


async def test_ping_counts_the_brokers(make_producer):
    producer = make_producer()
    assert await producer.ping() >= 1
    assert producer.status is Status.CONNECTED
    assert await producer.variant(topic_config={"acks": 1}).ping() >= 1


async def test_ping_of_an_unreachable_cluster_fails_without_blocking_the_loop():
    from waterdrop import ClusterUnreachableError
    from waterdrop.testing import MockCluster

    with MockCluster(brokers=1) as gone:
        servers = gone.bootstrap_servers        # closed on exit: its port refuses now
    producer = aio.Producer(kafka={"bootstrap.servers": servers})
    ticks = 0
    pinging = True

    async def tick() -> None:
        nonlocal ticks
        while pinging:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(ClusterUnreachableError) as info:
            await producer.ping(max_wait_timeout=1_000)
        assert servers in str(info.value) and "Connection refused" in str(info.value)
        assert ticks > 1, "the loop did not run while ping waited"
    finally:
        pinging = False
        await ticker
        await producer.close()
