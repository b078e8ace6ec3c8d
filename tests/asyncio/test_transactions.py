"""``async with producer.transaction():`` — commands off the loop, one transaction at a time."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.asyncio.conftest import read_back
from waterdrop import AbortTransaction, ProduceManyError, aio
from waterdrop.errors import (
    ProducerNotTransactionalError,
    ProducerTransactionalCloseAttemptError,
    TransactionRequiredError,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
def tx_producer(make_producer) -> aio.Producer:
    return make_producer(kafka={"transactional.id": f"aio-{uuid.uuid4().hex}"})


def _events(producer, *names):
    seen = []
    for name in names:
        producer.monitor.subscribe(name, lambda event, name=name: seen.append(name))
    return seen


async def test_commit(tx_producer, topic, cluster):
    seen = _events(tx_producer, "transaction.started", "transaction.committed",
                   "transaction.aborted", "transaction.finished")
    async with tx_producer:
        async with tx_producer.transaction() as inside:
            assert inside is tx_producer and tx_producer.in_transaction
            handle = tx_producer.produce_async(topic=topic, payload=b"a")
            report = await tx_producer.produce_sync(topic=topic, payload=b"b")
            handles = await tx_producer.produce_many_sync([{"topic": topic, "payload": b"c"}])
            tx_producer.produce_many_async([{"topic": topic, "payload": b"d"}])
        assert not tx_producer.in_transaction
        assert (await handle).offset == 0 and report.offset == 1 and handles[0].offset == 2
    assert seen == ["transaction.started", "transaction.committed", "transaction.finished"]
    messages = await asyncio.to_thread(
        read_back, cluster.bootstrap_servers, topic, 4, **{"isolation.level": "read_committed"})
    assert [m.value() for m in messages] == [b"a", b"b", b"c", b"d"]


async def test_abort_transaction_is_quiet_and_an_error_propagates(tx_producer, topic):
    seen = _events(tx_producer, "transaction.aborted", "transaction.committed")
    async with tx_producer.transaction():
        tx_producer.produce_async(topic=topic, payload=b"x")
        raise AbortTransaction
    with pytest.raises(ValueError):
        async with tx_producer.transaction():
            await tx_producer.produce_sync(topic=topic, payload=b"y")
            raise ValueError("boom")
    assert seen == ["transaction.aborted", "transaction.aborted"]
    async with tx_producer.transaction():  # the producer goes on
        await tx_producer.produce_sync(topic=topic, payload=b"z")
    assert seen[-1] == "transaction.committed"


async def test_nested_blocks_join_the_outer_transaction(tx_producer, topic):
    seen = _events(tx_producer, "transaction.started", "transaction.committed")
    async with tx_producer.transaction():
        async with tx_producer.transaction():
            await tx_producer.produce_sync(topic=topic, payload=b"x")
        assert tx_producer.in_transaction
    assert seen == ["transaction.started", "transaction.committed"]


async def test_transactions_of_two_tasks_run_one_after_the_other(tx_producer, topic):
    order: list[str] = []
    a_inside = asyncio.Event()
    a_may_leave = asyncio.Event()

    async def a():
        async with tx_producer.transaction():
            order.append("a in")
            a_inside.set()
            await a_may_leave.wait()
            await tx_producer.produce_sync(topic=topic, payload=b"a")
            order.append("a out")

    async def b():
        await a_inside.wait()
        async with tx_producer.transaction():
            order.append("b in")
            assert tx_producer.in_transaction
            await tx_producer.produce_sync(topic=topic, payload=b"b")

    task_a, task_b = asyncio.ensure_future(a()), asyncio.ensure_future(b())
    await a_inside.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a in"]  # b waits for a's transaction
    a_may_leave.set()
    await asyncio.gather(task_a, task_b)
    assert order == ["a in", "a out", "b in"]


async def test_dispatch_outside_a_transaction_is_its_own_transaction(tx_producer, topic):
    seen = _events(tx_producer, "transaction.committed")
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def holder():
        async with tx_producer.transaction():
            inside.set()
            await leave.wait()

    task = asyncio.ensure_future(holder())
    await inside.wait()
    assert not tx_producer.in_transaction  # this task is not the one in the transaction
    handle = tx_producer.produce_async(topic=topic, payload=b"solo")  # never blocks the loop
    assert handle.pending
    report_task = asyncio.ensure_future(tx_producer.produce_sync(topic=topic, payload=b"solo2"))
    leave.set()
    await task
    assert (await handle).error is None
    assert (await report_task).error is None
    handles = await tx_producer.produce_many_sync([{"topic": topic, "payload": b"many"}])
    assert handles[0].error is None
    assert len(seen) == 4  # the holder's, then one for each dispatch outside it


@pytest.mark.parametrize("inside", [True, False], ids=["in-a-block", "own-transaction"])
async def test_failed_produce_many_sync_reports_nothing_dispatched(tx_producer, topic, inside):
    """As WaterDrop: a transactional producer's error.occurred of messages.produce_many_sync
    has dispatched=[]; the raised ProduceManyError keeps the handles."""
    seen = []
    tx_producer.monitor.subscribe("error.occurred", seen.append)
    await tx_producer.produce_sync(topic=topic, payload=b"warm-up")  # partitions known
    batch = [{"topic": topic, "payload": b"ok"}, {"topic": topic, "payload": b"x", "partition": 9}]
    with pytest.raises(ProduceManyError) as raised:
        if inside:
            async with tx_producer.transaction():
                await tx_producer.produce_many_sync(batch)
        else:
            await tx_producer.produce_many_sync(batch)
    [event] = [e for e in seen if e["type"] == "messages.produce_many_sync"]
    assert event["dispatched"] == [] and event["error"] is raised.value
    assert len(raised.value.dispatched) == 1


async def test_close_inside_a_transaction_is_refused(tx_producer):
    async with tx_producer.transaction():
        with pytest.raises(ProducerTransactionalCloseAttemptError):
            await tx_producer.close()
    await tx_producer.close()


async def test_a_cancelled_task_aborts_its_transaction(tx_producer, topic):
    seen = _events(tx_producer, "transaction.aborted", "transaction.committed")
    inside = asyncio.Event()

    async def body():
        async with tx_producer.transaction():
            await tx_producer.produce_sync(topic=topic, payload=b"x")
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.ensure_future(body())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["transaction.aborted"]
    async with tx_producer.transaction():  # the lock was released
        await tx_producer.produce_sync(topic=topic, payload=b"y")
    assert seen == ["transaction.aborted", "transaction.committed"]


async def test_mark_as_consumed_needs_this_tasks_transaction(tx_producer, topic):
    with pytest.raises(TransactionRequiredError):
        await tx_producer.transaction_mark_as_consumed("group", (topic, 0, 0))
    async with tx_producer.transaction():
        await tx_producer.produce_sync(topic=topic, payload=b"x")
        await tx_producer.transaction_mark_as_consumed("aio-group", (topic, 0, 41))


async def test_a_variant_marks_as_consumed_in_its_transaction(tx_producer, topic):
    seen = _events(tx_producer, "transaction.marked_as_consumed", "transaction.committed")
    variant = tx_producer.variant(max_wait_timeout=20_000)
    with pytest.raises(TransactionRequiredError):
        await variant.transaction_mark_as_consumed("group", (topic, 0, 0))
    async with variant.transaction() as inside:
        await inside.produce_sync(topic=topic, payload=b"x")
        await inside.transaction_mark_as_consumed("aio-variant-group", (topic, 0, 41), "meta")
    assert seen == ["transaction.marked_as_consumed", "transaction.committed"]


async def test_variant_transaction(tx_producer, topic):
    variant = tx_producer.variant(max_wait_timeout=20_000)
    async with variant.transaction() as inside:
        assert isinstance(inside, aio.Variant)
        report = await inside.produce_sync(topic=topic, payload=b"x")
        assert tx_producer.sync.current_variant.max_wait_timeout == 20_000
    assert report.error is None
    assert tx_producer.sync.current_variant.default


async def test_not_transactional(producer):
    with pytest.raises(ProducerNotTransactionalError):
        producer.transaction()


@pytest.mark.integration
async def test_aborted_is_hidden_from_read_committed_on_a_real_broker(kafka_bootstrap):
    from tests.helpers import consume, create_topic

    topic = await asyncio.to_thread(create_topic, kafka_bootstrap)
    producer = aio.Producer(kafka={
        "bootstrap.servers": kafka_bootstrap, "transactional.id": f"aio-{uuid.uuid4().hex}"})
    async with producer:
        async with producer.transaction():
            await producer.produce_sync(topic=topic, payload=b"aborted")
            raise AbortTransaction
        async with producer.transaction():
            await producer.produce_sync(topic=topic, payload=b"committed")
    messages = await asyncio.to_thread(
        consume, kafka_bootstrap, topic, 1, 10.0, {"isolation.level": "read_committed"})
    assert [m.value() for m in messages] == [b"committed"]
