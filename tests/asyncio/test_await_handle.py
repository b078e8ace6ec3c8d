"""``await handle``: no thread blocked, one loop wake-up per delivery batch, cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from waterdrop import KafkaError, WaitTimeoutError, _aio, _core, aio

pytestmark = pytest.mark.asyncio


async def test_await_a_handle_from_the_sync_producer(cluster, topic):
    from waterdrop import Producer

    with Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}) as producer:
        handle = producer.produce_async(topic=topic, payload=b"x", label="one")
        report = await handle
        assert report.error is None
        assert (report.topic_name, report.partition, report.offset, report.label) == (
            topic, 0, 0, "one")
        again = await handle  # a resolved handle: at once, the same report
        assert again is report


async def test_many_awaits_on_one_loop_get_their_own_reports(producer, topic):
    handles = [producer.produce_async(topic=topic, payload=b"%d" % i, label=i) for i in range(500)]
    reports = await asyncio.gather(*handles)
    assert [r.label for r in reports] == list(range(500))
    assert [r.offset for r in reports] == list(range(500))


async def test_a_delivery_error_is_raised_by_await(producer, topic):
    handle = producer.produce_async(topic=topic, payload=b"x", partition=7)  # no partition 7
    with pytest.raises(KafkaError) as raised:
        await handle
    assert raised.value is handle.error
    report = await aio.wait(handle, raise_response_error=False)
    assert report.error is raised.value


async def test_no_thread_waits_while_a_handle_is_awaited(producer, topic, cluster):
    await producer.connect()
    threads_before = threading.active_count()
    cluster.broker_down(1)
    try:
        tasks = [asyncio.ensure_future(producer.produce_async(topic=topic, payload=b"x"))
                 for _ in range(50)]
        await asyncio.sleep(0)
        assert all(not t.done() for t in tasks)
        assert threading.active_count() == threads_before
    finally:
        cluster.broker_up(1)
    assert len(await asyncio.gather(*tasks)) == 50


async def test_a_batch_of_deliveries_wakes_the_loop_once():
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.BaseEventLoop):
        pytest.skip("counts call_soon_threadsafe of the default loop (uvloop's is read-only)")
    handles = [_core.pending_handle("t", label=i) for i in range(1000)]
    futures = [_aio.await_handle(h) for h in handles]
    wakeups = []
    original = loop.call_soon_threadsafe

    def counting(*args, **kwargs):
        wakeups.append(args[0])
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counting
    try:
        # resolved one after the other without the loop running in between, like the poller
        # running the callbacks of one drained batch
        for offset, handle in enumerate(handles):
            handle._resolve(0, offset, None)
        reports = await asyncio.gather(*futures)
    finally:
        del loop.call_soon_threadsafe
    assert len(wakeups) == 1
    assert [r.offset for r in reports] == list(range(1000))


async def test_handles_resolved_from_another_thread_reach_the_loop():
    handles = [_core.pending_handle("t", label=i) for i in range(2000)]
    futures = [_aio.await_handle(h) for h in handles]

    def resolve() -> None:
        for offset, handle in enumerate(handles):
            handle._resolve(0, offset, None)

    thread = threading.Thread(target=resolve)
    thread.start()
    reports = await asyncio.gather(*futures)
    thread.join()
    assert [r.offset for r in reports] == list(range(2000))


async def test_a_resolved_error_handle_raises_at_once():
    error = _core.kafka_error(_core.ERROR_CODES["msg_timed_out"], "gone")
    handle = _core.resolved_handle("t", error=error)
    with pytest.raises(KafkaError) as raised:
        await handle
    assert raised.value.code == "msg_timed_out"


# --- cancellation ----------------------------------------------------------------------------


async def test_cancelling_an_awaiter_loses_nothing(make_producer, topic, cluster):
    producer = make_producer()
    acknowledged = []
    producer.monitor.subscribe("message.acknowledged", lambda event: acknowledged.append(event))
    await producer.connect()
    cluster.broker_down(1)
    try:
        handle = producer.produce_async(topic=topic, payload=b"x", label="kept")
        waiter = asyncio.ensure_future(_await(handle))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert handle.pending  # the message goes on
    finally:
        cluster.broker_up(1)
    report = await handle  # awaited again after the cancellation
    assert report.error is None and report.label == "kept"
    await producer.close()
    assert [event["label"] for event in acknowledged] == ["kept"]  # reported once


async def _await(handle):
    return await handle


async def test_cancel_one_of_two_awaiters_the_other_gets_the_report(producer, topic, cluster):
    await producer.connect()
    cluster.broker_down(1)
    try:
        handle = producer.produce_async(topic=topic, payload=b"x")
        first = asyncio.ensure_future(_await(handle))
        second = asyncio.ensure_future(_await(handle))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert first.cancelled() and not second.done()
    finally:
        cluster.broker_up(1)
    report = await second
    assert report is handle and report.error is None


async def test_wait_for_timeout_then_await_again(producer, topic, cluster):
    await producer.connect()
    cluster.broker_down(1)
    try:
        handle = producer.produce_async(topic=topic, payload=b"x")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_await(handle), 0.01)
        with pytest.raises(WaitTimeoutError):
            await aio.wait(handle, max_wait_timeout=10)
        assert handle.pending
    finally:
        cluster.broker_up(1)
    assert (await handle).offset == 0


async def test_a_cancelled_future_is_replaced_not_kept():
    handle = _core.pending_handle("t")
    for _ in range(100):
        waiter = asyncio.ensure_future(_await(handle))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
    waker = _aio._waker_of(asyncio.get_running_loop())
    entry = waker.waiting[handle]
    assert not isinstance(entry, list)  # one (cancelled) future, not a hundred
    last = asyncio.ensure_future(_await(handle))
    await asyncio.sleep(0)
    handle._resolve(0, 5, None)
    assert (await last).offset == 5
    assert handle not in waker.waiting


async def test_never_double_resolved_when_cancelled_after_the_delivery():
    handle = _core.pending_handle("t")
    waiter = asyncio.ensure_future(_await(handle))
    await asyncio.sleep(0)
    handle._resolve(0, 1, None)  # the drain is scheduled ...
    waiter.cancel()  # ... and the awaiter is cancelled before it runs
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert waiter.cancelled()
    assert (await handle).offset == 1


async def test_wait_all_one_future_for_many():
    handles = [_core.pending_handle("t") for _ in range(10)]
    done = asyncio.ensure_future(aio.wait_all(handles + handles[:3]))
    await asyncio.sleep(0)
    for handle in handles[:-1]:
        handle._resolve(0, 0, None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not done.done()
    handles[-1]._resolve(0, 0, None)
    await done
    with pytest.raises(WaitTimeoutError):
        await aio.wait_all([_core.pending_handle("t")], max_wait_timeout=1)


# --- loops -----------------------------------------------------------------------------------


async def test_awaited_from_two_loops_at_once(producer, topic, cluster):
    await producer.connect()
    cluster.broker_down(1)
    try:
        handle = producer.produce_async(topic=topic, payload=b"x")
        result: list[object] = []
        started = threading.Event()

        def other_loop() -> None:
            async def run():
                started.set()
                return await handle

            result.append(asyncio.run(run()))

        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.to_thread(started.wait)
        local = asyncio.ensure_future(_await(handle))
        await asyncio.sleep(0)
    finally:
        cluster.broker_up(1)
    assert (await local) is handle
    await asyncio.to_thread(thread.join)
    assert result == [handle]
