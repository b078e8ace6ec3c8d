"""DeliveryHandle memory and delivery batches.

Handle blocks are reused from a bounded free list: a reused handle starts as new as a fresh
one, and the list never keeps more than its bound. A delivery batch is collected for
``message.acknowledged`` listeners only when there are any, while done-callbacks and asyncio
waiters run either way.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.helpers import consume, unique_topic
from waterdrop import Producer, _core

pytestmark = pytest.mark.timeout(120)



def make(cluster):
    return Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 2},
                    max_wait_timeout=30_000)


def test_free_list_is_bounded_and_reused_handles_start_fresh():
    bound = _core._handle_freelist_size()[1]
    # 16,384 blocks (1.3 MB) at most; none in a sanitizer build, where reuse would hide a
    # use after free from ASan, nor on a free-threaded build (CPython's per-thread heaps)
    assert bound in (16_384, 0)
    handles = [_core.resolved_handle("used", partition=7, offset=42, label={"old": True},
                                     error=ValueError("old"))
               for _ in range(bound + 500)]
    assert _core._handle_freelist_size()[0] == 0
    del handles
    assert _core._handle_freelist_size()[0] == bound
    fresh = [_core.pending_handle("new", label=i) for i in range(100)]
    assert _core._handle_freelist_size()[0] == max(0, bound - 100)
    for i, handle in enumerate(fresh):
        # nothing of the previous owner survives in a reused block
        assert handle.pending
        assert handle.topic_name == "new"
        assert handle.label == i
        assert handle.partition == -1
        assert handle.report() is None
        handle._resolve(partition=1, offset=i)
        assert handle.wait() is handle
        assert handle.offset == i
        assert handle.error is None


def test_a_pending_handle_shows_no_verdict_until_resolved():
    # a pending handle keeps its default wait where the offset goes and its payload where
    # the error goes: none of that shows through its getters
    handle = _core.pending_handle("t", label="x", max_wait_ms=4321)
    assert (handle.partition, handle.offset, handle.error, handle.latency_ms) == (
        -1, -1001, None, -1.0)
    assert repr(handle) == "<DeliveryHandle topic='t' pending label='x'>"
    handle._resolve(partition=2, offset=7)
    assert (handle.partition, handle.offset, handle.error) == (2, 7, None)
    assert repr(handle) == "<DeliveryHandle topic='t' partition=2 offset=7 label='x'>"


def test_callbacks_and_waiters_run_when_no_listener_wants_the_batch(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster)
    try:
        # a producer whose monitor has no delivery listener: batches are not collected
        # for it, but a done-callback and an awaiting coroutine still get their handle
        called = threading.Event()
        seen = []
        handle = producer.produce_async(topic=topic, payload=b"cb")
        handle.add_done_callback(lambda h: (seen.append(h.offset), called.set()))

        async def awaited():
            return await producer.produce_async(topic=topic, payload=b"aw")

        report = asyncio.run(awaited())
        assert report.error is None and report.offset >= 0
        assert called.wait(30)
        assert seen == [handle.offset] and handle.offset >= 0
    finally:
        producer.close()


def test_acknowledged_listener_sees_every_message_of_a_batch(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster)
    acknowledged = []
    producer.monitor.subscribe("message.acknowledged", lambda event: acknowledged.append(event))
    try:
        handles = producer.produce_many_async(
            [{"topic": topic, "payload": b"%d" % i} for i in range(2_000)])
        for handle in handles:
            handle.wait()
        producer.client.flush(10_000)
        producer.close()
        assert len(acknowledged) == 2_000
        assert sorted(event["offset"] for event in acknowledged) == sorted(
            handle.offset for handle in handles)
    finally:
        producer.close()
    # what the listener saw acknowledged is what the topic holds
    stored = {m.offset(): m.value() for m in consume(cluster.bootstrap_servers, topic, 2_000)}
    assert {h.offset: b"%d" % i for i, h in enumerate(handles)} == stored
