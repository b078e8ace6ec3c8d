"""Transactions on the real broker (the MockCluster cannot hide aborted data).

Everything the producer writes is read back with confluent-kafka: a ``read_committed``
consumer must see committed messages and never aborted ones, a ``read_uncommitted`` one sees
aborted data that was written before the abort. Reads stop at a sentinel message committed
last, so "never sees" is checked over the whole log, not over a timeout.

Waits are on handles, events and thread handshakes with generous deadlines (hang detectors),
never on sleeps; nothing asserts on timing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, TopicPartition

import waterdrop
from tests.helpers import close_within, create_topic
from waterdrop import AbortTransaction, KafkaError, ProduceManyError, Producer, Status
from waterdrop.errors import (
    ProducerNotTransactionalError,
    ProducerTransactionalCloseAttemptError,
    TransactionalOffsetInvalidError,
    TransactionRequiredError,
)

PURGED = {"purge_queue", "purge_inflight"}
PACKAGE_DIR = os.path.dirname(waterdrop.__file__) + os.sep
DEADLINE_S = 30.0
SENTINEL = "end-of-test"
TRANSACTION_EVENTS = (
    "transaction.started",
    "transaction.committed",
    "transaction.aborted",
    "transaction.finished",
    "transaction.marked_as_consumed",
)


# --- helpers ----------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class Recorder:
    """Records events of one producer; ``wait_for`` blocks on a condition with a deadline."""

    def __init__(self, producer: Producer, *names: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        for name in names:
            producer.monitor.subscribe(name, self._record)

    def _record(self, event: Any) -> None:
        with self._cond:
            self.events.append((event.id, dict(event.payload)))
            self._cond.notify_all()

    def ids(self, prefix: str = "") -> list[str]:
        with self._cond:
            return [name for name, _ in self.events if name.startswith(prefix)]

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._cond:
            return [payload for event, payload in self.events if event == name]

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {self.events}")
                self._cond.wait(remaining)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll a condition that no event signals (e.g. a thread blocked on a lock)."""
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def blocked_in(thread: threading.Thread, function: str) -> bool:
    """True while ``thread`` is inside waterdrop's ``function`` and its innermost Python frame
    is waterdrop code: it waits on a lock there (the acquire is a C call: no deeper frame)."""
    frame = sys._current_frames().get(thread.ident)
    if frame is None or not frame.f_code.co_filename.startswith(PACKAGE_DIR):
        return False
    while frame is not None:
        if frame.f_code.co_name == function and frame.f_code.co_filename.startswith(PACKAGE_DIR):
            return True
        frame = frame.f_back
    return False


def read_payloads(
    bootstrap: str, topic: str, isolation: str, sentinel: str = SENTINEL
) -> list[str]:
    """Every payload of single-partition ``topic`` from the beginning up to and including
    ``sentinel``, as a ``isolation`` ("read_committed" / "read_uncommitted") consumer sees it."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("wd-reader"),
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "isolation.level": isolation,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        payloads: list[str] = []
        deadline = time.monotonic() + DEADLINE_S
        while sentinel not in payloads:
            if time.monotonic() > deadline:
                raise AssertionError(f"{isolation}: no {sentinel!r} in {topic}, got {payloads}")
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise AssertionError(f"consumer error: {message.error()}")
            payloads.append(message.value().decode())
        return payloads
    finally:
        consumer.close()


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> Any:
    """The group's committed TopicPartition (offset OFFSET_INVALID when nothing committed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        return consumer.committed([TopicPartition(topic, partition)], timeout=DEADLINE_S)[0]
    finally:
        consumer.close()


def committed_metadata(
    java_offsets: Callable[[str], Any], group: str, topic: str, partition: int = 0
) -> str:
    """The metadata of the group's committed offset, read by Kafka's Java Admin client:
    confluent-kafka reads metadata as a C string from a buffer librdkafka does not terminate
    (see tests/integration/java_admin.py), so it cannot check what was stored."""
    return java_offsets(group)[(topic, partition)][1].decode("utf-8")


def produce_inputs(bootstrap: str, topic: str, count: int) -> None:
    with Producer(kafka={"bootstrap.servers": bootstrap}) as plain:
        plain.produce_many_sync([{"topic": topic, "payload": f"in-{i}"} for i in range(count)])


@pytest.fixture
def make_txn(make_producer) -> Callable[..., Producer]:
    """``make_txn(transactional_id=None, kafka=None, **settings)``: a transactional producer
    (unique transactional.id unless given), closed when the test ends."""

    def make(transactional_id: str | None = None, kafka: dict[str, Any] | None = None,
             **settings: Any) -> Producer:
        conf = {
            "transactional.id": transactional_id or unique("wd-txn"),
            "transaction.timeout.ms": 30_000,
            "message.timeout.ms": 30_000,
        }
        conf.update(kafka or {})
        settings.setdefault("max_wait_timeout", 20_000)
        return make_producer(conf, **settings)

    return make


@pytest.fixture
def txn(make_txn) -> Producer:
    return make_txn()


def commit_sentinel(producer: Producer, topic: str) -> None:
    with producer.transaction():
        producer.produce_async(topic=topic, payload=SENTINEL)


# --- the block: commit, return, exception, AbortTransaction, nesting -----------------------------


def test_normal_exit_commits(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    with txn.transaction() as inside:
        assert inside is txn
        assert txn.in_transaction
        handles = [txn.produce_async(topic=topic, payload=f"m{i}") for i in range(3)]
        txn.produce_async(topic=topic, payload=SENTINEL)
    assert not txn.in_transaction
    assert [h.wait().offset for h in handles] == [0, 1, 2]
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["m0", "m1", "m2", SENTINEL]
    assert events.ids() == ["transaction.started", "transaction.committed", "transaction.finished"]


def test_return_inside_the_block_commits(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)

    def work() -> str:
        with txn.transaction():
            txn.produce_async(topic=topic, payload="returned")
            return "value"
        raise AssertionError("unreachable")

    assert work() == "value"
    assert events.ids() == ["transaction.started", "transaction.committed", "transaction.finished"]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["returned", SENTINEL]


def test_exception_aborts_and_propagates(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with txn.transaction():
            # produce_sync waits for the delivery: the message is written, then aborted
            report = txn.produce_sync(topic=topic, payload="aborted")
            assert report.offset == 0
            raise Boom()
    assert not txn.in_transaction
    assert events.ids() == ["transaction.started", "transaction.aborted"]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == ["aborted", SENTINEL]


def test_abort_transaction_aborts_quietly(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    reached: list[str] = []

    def work() -> Any:
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="aborted")
            raise waterdrop.AbortTransaction()
        reached.append("after the block")  # the block swallowed the abort

    assert work() is None
    assert reached == ["after the block"]
    assert events.ids() == [
        "transaction.started", "transaction.aborted", "transaction.finished",
    ]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == ["aborted", SENTINEL]


def test_nested_blocks_are_one_transaction(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    with txn.transaction():
        txn.produce_async(topic=topic, payload="outer")
        with txn.transaction():
            txn.produce_async(topic=topic, payload="inner")
            with txn.transaction():
                txn.produce_async(topic=topic, payload="innermost")
        assert txn.in_transaction
        txn.produce_async(topic=topic, payload=SENTINEL)
    assert events.ids() == ["transaction.started", "transaction.committed", "transaction.finished"]
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "outer", "inner", "innermost", SENTINEL,
    ]


def test_abort_in_a_nested_block_aborts_the_whole_transaction(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    after_inner: list[str] = []
    with txn.transaction():
        txn.produce_sync(topic=topic, payload="outer")
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="inner")
            raise AbortTransaction()
        after_inner.append("reached")  # not: the abort leaves the outermost block
    assert after_inner == []
    assert events.ids() == ["transaction.started", "transaction.aborted", "transaction.finished"]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == [
        "outer", "inner", SENTINEL,
    ]


def test_read_committed_sees_only_committed_read_uncommitted_sees_both(
    kafka_bootstrap, topic, txn
):
    with txn.transaction():
        txn.produce_many_sync([{"topic": topic, "payload": f"c1-{i}"} for i in range(3)])
    with txn.transaction():
        txn.produce_many_sync([{"topic": topic, "payload": f"a1-{i}"} for i in range(3)])
        raise AbortTransaction()
    with txn.transaction():
        txn.produce_sync(topic=topic, payload="c2")
    with pytest.raises(RuntimeError):
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="a2")
            raise RuntimeError("abort")
    commit_sentinel(txn, topic)
    committed = ["c1-0", "c1-1", "c1-2", "c2", SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == committed
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == [
        "c1-0", "c1-1", "c1-2", "a1-0", "a1-1", "a1-2", "c2", "a2", SENTINEL,
    ]


def test_base_exceptions_abort_too(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    with pytest.raises(SystemExit):
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="aborted")
            raise SystemExit(3)
    assert events.ids() == ["transaction.started", "transaction.aborted"]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]


def test_transaction_on_a_non_transactional_producer_raises(producer):
    with pytest.raises(ProducerNotTransactionalError):
        with producer.transaction():
            raise AssertionError("unreachable")
    assert not producer.transactional


def test_variant_transaction(kafka_bootstrap, topic, txn):
    variant = txn.variant(topic_config={"compression.codec": "gzip"}, max_wait_timeout=15_000)
    with variant.transaction():
        assert txn.current_variant is variant
        variant.produce_sync(topic=topic, payload="via-variant")
        txn.produce_async(topic=topic, payload=SENTINEL)
    assert txn.current_variant is not variant
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["via-variant", SENTINEL]


def test_forbidden_inside_a_transaction(kafka_bootstrap, topic, txn):
    with pytest.raises(waterdrop.errors.VariantInvalidError):
        txn.variant(topic_config={"acks": 1})
    with txn.transaction():
        txn.produce_sync(topic=topic, payload="kept")
        assert txn.disconnect() is False
        assert txn.status is Status.CONNECTED
        txn.produce_async(topic=topic, payload=SENTINEL)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["kept", SENTINEL]


def test_closed_producer_refuses_a_transaction(txn):
    txn.close()
    with pytest.raises(waterdrop.ProducerClosedError):
        with txn.transaction():
            raise AssertionError("unreachable")


# --- implicit transactions of a transactional producer ------------------------------------------


def test_dispatches_outside_a_block_each_run_in_their_own_transaction(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)

    def committed_count() -> int:
        return len(events.of("transaction.committed"))

    report = txn.produce_sync(topic=topic, payload="sync")
    assert report.error is None
    assert committed_count() == 1
    # committed when the call returns: a read_committed reader sees it right away
    assert read_payloads(kafka_bootstrap, topic, "read_committed", "sync") == ["sync"]

    handle = txn.produce_async(topic=topic, payload="async")
    assert committed_count() == 2
    assert handle.wait().error is None
    assert read_payloads(kafka_bootstrap, topic, "read_committed", "async")[-1] == "async"

    handles = txn.produce_many_sync(
        [{"topic": topic, "payload": f"many-sync-{i}"} for i in range(3)]
    )
    assert committed_count() == 3  # one transaction for the whole batch
    assert all(not h.pending for h in handles)

    handles = txn.produce_many_async(
        [{"topic": topic, "payload": f"many-async-{i}"} for i in range(3)]
    )
    assert committed_count() == 4
    assert [h.wait().error for h in handles] == [None] * 3

    txn.buffer(topic=topic, payload="buffered-0")
    txn.buffer(topic=topic, payload="buffered-1")
    txn.flush_sync()
    assert committed_count() == 5

    txn.produce_async(topic=topic, payload=SENTINEL)
    assert committed_count() == 6
    assert len(events.of("transaction.started")) == 6
    assert events.of("transaction.aborted") == []
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "sync", "async", "many-sync-0", "many-sync-1", "many-sync-2",
        "many-async-0", "many-async-1", "many-async-2", "buffered-0", "buffered-1", SENTINEL,
    ]


def test_close_flushes_the_buffer_of_a_transactional_producer_in_a_transaction(
    kafka_bootstrap, topic, txn
):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    txn.produce_sync(topic=topic, payload="first")
    txn.buffer_many([{"topic": topic, "payload": f"buffered-{i}"} for i in range(3)])
    txn.buffer(topic=topic, payload=SENTINEL)
    close_within(txn)
    assert txn.status is Status.CLOSED
    assert len(events.of("transaction.committed")) == 2
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "first", "buffered-0", "buffered-1", "buffered-2", SENTINEL,
    ]


# --- handles of aborted messages ----------------------------------------------------------------


def test_handles_of_an_aborted_transaction_resolve_purged_and_emit_message_purged(
    kafka_bootstrap, topic, make_txn
):
    # a long linger keeps the messages queued in librdkafka until the abort purges them
    txn = make_txn(kafka={"linger.ms": 10_000})
    events = Recorder(txn, "message.purged", "error.occurred", "message.acknowledged")
    with txn.transaction():
        handles = [txn.produce_async(topic=topic, payload=f"p{i}", label=i) for i in range(3)]
        handles += txn.produce_many_async([{"topic": topic, "payload": "pm", "label": 3}])
        raise AbortTransaction()
    reports = [h.wait(raise_response_error=False) for h in handles]
    assert all(r.error is not None and r.error.code in PURGED for r in reports), reports
    assert [r.label for r in reports] == [0, 1, 2, 3]
    with pytest.raises(KafkaError) as raised:
        handles[0].wait()
    assert raised.value.code in PURGED

    events.wait_for(lambda: len(events.of("message.purged")) == 4, "4 message.purged")
    purged = events.of("message.purged")
    assert sorted(p["label"] for p in purged) == [0, 1, 2, 3]
    assert all(p["error"].code in PURGED for p in purged)
    assert all(p["topic"] == topic for p in purged)
    assert events.of("error.occurred") == []
    assert events.of("message.acknowledged") == []
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == [SENTINEL]


def test_failed_produce_many_sync_reports_nothing_dispatched_in_its_error_event(
    kafka_bootstrap, topic, txn
):
    """WaterDrop (producer/sync.rb): in an aborted transaction nothing counts as dispatched, so
    a transactional producer's ``error.occurred`` of ``messages.produce_many_sync`` carries
    ``dispatched=[]``; the raised ProduceManyError still holds the (purged) handles."""
    events = Recorder(txn, "error.occurred")
    batch = [
        {"topic": topic, "payload": "m0"},
        {"topic": topic, "payload": "m1"},
        {"topic": topic, "payload": "m2", "partition": 9},  # no such partition: fails
    ]
    txn.produce_sync(topic=topic, payload="warm-up")  # partitions known: the failure is inline
    with pytest.raises(ProduceManyError) as raised:
        txn.produce_many_sync(batch)  # its own transaction, aborted
    [event] = [e for e in events.of("error.occurred") if e["type"] == "messages.produce_many_sync"]
    assert event["dispatched"] == []
    assert event["messages"] == batch
    assert event["error"] is raised.value
    assert raised.value.dispatched, "the raised error keeps the handles"
    assert all(not handle.pending for handle in raised.value.dispatched)
    assert not txn.in_transaction
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["warm-up", SENTINEL]


def test_failed_produce_many_async_in_a_transaction_still_reports_its_dispatched(
    kafka_bootstrap, topic, txn
):
    """WaterDrop empties ``dispatched`` for produce_many_sync only: produce_many_async's event
    lists the handles enqueued before the failure, transactional or not."""
    events = Recorder(txn, "error.occurred")
    batch = [{"topic": topic, "payload": "a0"}, {"topic": topic, "payload": "a1", "partition": 9}]
    txn.produce_sync(topic=topic, payload="warm-up")  # partitions known: the failure is inline
    with pytest.raises(ProduceManyError) as raised:
        with txn.transaction():
            txn.produce_many_async(batch)
    [event] = [e for e in events.of("error.occurred") if e["type"] == "messages.produce_many_async"]
    assert len(raised.value.dispatched) == 1
    assert event["dispatched"] == raised.value.dispatched


def test_wait_timeout_on_transaction_abort_writes_the_first_message_then_aborts(
    kafka_bootstrap, topic, make_txn
):
    # librdkafka#4849 mitigation: the first delivery is awaited before the abort, so that
    # message is written (then aborted) instead of purged
    txn = make_txn(wait_timeout_on_transaction_abort=20_000)
    events = Recorder(txn, "message.purged", "message.acknowledged")
    with txn.transaction():
        first = txn.produce_async(topic=topic, payload="first", label="first")
        raise AbortTransaction()
    report = first.wait(raise_response_error=False)
    assert report.error is None
    assert report.offset == 0
    events.wait_for(lambda: len(events.of("message.acknowledged")) == 1, "the acknowledgement")
    assert events.of("message.purged") == []
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == ["first", SENTINEL]


# --- events -------------------------------------------------------------------------------------


def test_transaction_events_carry_producer_id_and_time(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    with txn.transaction():
        txn.produce_async(topic=topic, payload="x")
    with txn.transaction():
        txn.produce_async(topic=topic, payload="y")
        raise AbortTransaction()
    assert events.ids() == [
        "transaction.started", "transaction.committed", "transaction.finished",
        "transaction.started", "transaction.aborted", "transaction.finished",
    ]
    for _, payload in events.events:
        assert payload["producer_id"] == txn.id
        assert isinstance(payload["time"], float) and payload["time"] >= 0


def test_marked_as_consumed_event(kafka_bootstrap, topic, txn):
    events = Recorder(txn, "transaction.marked_as_consumed")
    group = unique("wd-group")
    with txn.transaction():
        txn.transaction_mark_as_consumed(group, (topic, 0, 4), "meta")
    [payload] = events.of("transaction.marked_as_consumed")
    assert payload["message"] == (topic, 0, 4)
    assert payload["offset_metadata"] == "meta"
    assert payload["producer_id"] == txn.id
    assert isinstance(payload["time"], float) and payload["time"] >= 0


# --- transaction_mark_as_consumed ---------------------------------------------------------------


def _subscribed_consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    return consumer


def _poll(consumer: Consumer) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        return message
    raise AssertionError("no message consumed")


def test_mark_as_consumed_with_a_confluent_kafka_consumer(
    kafka_bootstrap, topic, txn, java_offsets
):
    source = create_topic(kafka_bootstrap)
    produce_inputs(kafka_bootstrap, source, 5)
    group = unique("wd-group")
    consumer = _subscribed_consumer(kafka_bootstrap, group, source)
    try:
        first = _poll(consumer)
        second = _poll(consumer)
        assert (first.offset(), second.offset()) == (0, 1)
        with txn.transaction():
            txn.produce_async(topic=topic, payload=b"out-" + first.value())
            txn.transaction_mark_as_consumed(consumer, first)
        assert committed_offset(kafka_bootstrap, group, source).offset == first.offset() + 1
        # an aborted transaction leaves the group's offset where it was
        with txn.transaction():
            txn.produce_async(topic=topic, payload=b"out-" + second.value())
            txn.transaction_mark_as_consumed(consumer, second, "aborted")
            raise AbortTransaction()
        assert committed_offset(kafka_bootstrap, group, source).offset == first.offset() + 1
        with txn.transaction():
            txn.produce_async(topic=topic, payload=b"out-" + second.value())
            txn.transaction_mark_as_consumed(consumer, second, "second")
        tp = committed_offset(kafka_bootstrap, group, source)
        assert tp.offset == second.offset() + 1
        assert committed_metadata(java_offsets, group, source) == "second"
    finally:
        consumer.close()
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "out-in-0", "out-in-1", SENTINEL,
    ]


def test_mark_as_consumed_aborted_commits_nothing(kafka_bootstrap, txn):
    source = create_topic(kafka_bootstrap)
    produce_inputs(kafka_bootstrap, source, 1)
    group = unique("wd-group")
    consumer = _subscribed_consumer(kafka_bootstrap, group, source)
    try:
        message = _poll(consumer)
        with txn.transaction():
            txn.transaction_mark_as_consumed(consumer, message)
            raise AbortTransaction()
    finally:
        consumer.close()
    assert committed_offset(kafka_bootstrap, group, source).offset == OFFSET_INVALID


def test_mark_as_consumed_with_a_group_id_and_a_tuple(kafka_bootstrap, txn, java_offsets):
    source = create_topic(kafka_bootstrap, partitions=2)
    produce_inputs(kafka_bootstrap, source, 10)
    group = unique("wd-group")
    with txn.transaction():
        txn.transaction_mark_as_consumed(group, (source, 0, 3))
        txn.transaction_mark_as_consumed(group, (source, 1, 0), "p1")
    assert committed_offset(kafka_bootstrap, group, source, 0).offset == 4
    tp = committed_offset(kafka_bootstrap, group, source, 1)
    assert (tp.offset, committed_metadata(java_offsets, group, source, 1)) == (1, "p1")


def test_a_variant_marks_as_consumed_too(kafka_bootstrap, topic, txn):
    # API.md: a Variant has every transaction method (WaterDrop's variant wraps them all)
    source = create_topic(kafka_bootstrap, partitions=1)
    produce_inputs(kafka_bootstrap, source, 3)
    group = unique("wd-group")
    variant = txn.variant(max_wait_timeout=20_000)
    with pytest.raises(TransactionRequiredError):
        variant.transaction_mark_as_consumed(group, (source, 0, 1))
    with variant.transaction():
        variant.produce_sync(topic=topic, payload="with-offset")
        variant.transaction_mark_as_consumed(group, (source, 0, 1), "via-variant")
    commit_sentinel(txn, topic)
    assert committed_offset(kafka_bootstrap, group, source, 0).offset == 2
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["with-offset", SENTINEL]


def test_mark_as_consumed_outside_a_transaction_raises(kafka_bootstrap, topic, txn):
    with pytest.raises(TransactionRequiredError):
        txn.transaction_mark_as_consumed(unique("wd-group"), (topic, 0, 0))


@pytest.mark.parametrize(
    ("consumer", "message", "metadata"),
    [
        ("group", None, None),
        ("group", ("TOPIC", 0, -1), None),
        ("group", ("TOPIC", -1, 0), None),
        ("group", ("TOPIC", 0, 0), 42),
        ("group", ("TOPIC", 0, 0), b"bytes"),
        (None, ("TOPIC", 0, 0), None),
        ("", ("TOPIC", 0, 0), None),
    ],
    ids=[
        "none-message", "negative-offset", "negative-partition", "int-metadata",
        "bytes-metadata", "none-consumer", "empty-group",
    ],
)
def test_mark_as_consumed_with_invalid_arguments_raises(topic, txn, consumer, message, metadata):
    if isinstance(message, tuple):
        message = (topic, *message[1:])
    with pytest.raises(TransactionalOffsetInvalidError) as raised:
        with txn.transaction():
            txn.transaction_mark_as_consumed(consumer, message, metadata)
    assert raised.value.errors
    assert not txn.in_transaction
    # the failed block aborted; the producer goes on
    with txn.transaction():
        txn.produce_async(topic=topic, payload="after")


# --- close and threads --------------------------------------------------------------------------


def test_close_inside_own_transaction_raises(kafka_bootstrap, topic, txn):
    events = Recorder(txn, *TRANSACTION_EVENTS)
    with pytest.raises(ProducerTransactionalCloseAttemptError):
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="aborted")
            txn.close()
    assert txn.status is Status.CONNECTED
    assert events.ids() == ["transaction.started", "transaction.aborted"]
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]


def test_close_from_another_thread_waits_for_the_transaction(kafka_bootstrap, topic, txn):
    order: list[str] = []
    txn.monitor.subscribe("transaction.committed", lambda e: order.append("committed"))
    txn.monitor.subscribe("producer.closing", lambda e: order.append("closing"))
    inside = threading.Event()
    proceed = threading.Event()
    failures: list[BaseException] = []

    def transact() -> None:
        try:
            with txn.transaction():
                txn.produce_async(topic=topic, payload="before-close")
                inside.set()
                assert proceed.wait(DEADLINE_S)
                # close() is waiting: the producer is still fully usable here
                txn.produce_sync(topic=topic, payload="during-close")
                txn.produce_async(topic=topic, payload=SENTINEL)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failures.append(error)

    worker = threading.Thread(target=transact, daemon=True)
    worker.start()
    assert inside.wait(DEADLINE_S)
    closer = threading.Thread(target=txn.close, daemon=True)
    closer.start()
    wait_until(lambda: blocked_in(closer, "close"), "close() to wait for the transaction")
    assert txn.status is Status.CONNECTED
    proceed.set()
    worker.join(DEADLINE_S)
    closer.join(DEADLINE_S)
    assert not worker.is_alive() and not closer.is_alive()
    assert failures == []
    assert order == ["committed", "closing"]
    assert txn.status is Status.CLOSED
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "before-close", "during-close", SENTINEL,
    ]


def test_dispatch_from_another_thread_waits_and_is_not_part_of_the_transaction(
    kafka_bootstrap, topic, txn
):
    inside = threading.Event()
    proceed = threading.Event()
    results: dict[str, Any] = {}

    def transact() -> None:
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="aborted")
            inside.set()
            assert proceed.wait(DEADLINE_S)
            raise AbortTransaction()

    def dispatch() -> None:
        try:
            results["report"] = txn.produce_sync(topic=topic, payload="own-transaction")
        except BaseException as error:  # noqa: BLE001
            results["error"] = error

    worker = threading.Thread(target=transact, daemon=True)
    worker.start()
    assert inside.wait(DEADLINE_S)
    other = threading.Thread(target=dispatch, daemon=True)
    other.start()
    wait_until(lambda: blocked_in(other, "__enter__"), "the other dispatch to wait")
    assert "report" not in results
    proceed.set()
    worker.join(DEADLINE_S)
    other.join(DEADLINE_S)
    assert not worker.is_alive() and not other.is_alive()
    assert "error" not in results, results
    commit_sentinel(txn, topic)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["own-transaction", SENTINEL]
    assert read_payloads(kafka_bootstrap, topic, "read_uncommitted") == [
        "aborted", "own-transaction", SENTINEL,
    ]


def test_transactions_from_two_threads_are_serialised(kafka_bootstrap, topic, txn):
    threads, transactions, per_transaction = 2, 5, 4
    trace: list[tuple[str, str]] = []
    trace_lock = threading.Lock()
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(name: str) -> None:
        try:
            start.wait(DEADLINE_S)
            for t in range(transactions):
                with txn.transaction():
                    with trace_lock:
                        trace.append(("begin", f"{name}-{t}"))
                    for i in range(per_transaction):
                        txn.produce_async(topic=topic, payload=f"{name}-{t}-{i}")
                    with trace_lock:
                        trace.append(("end", f"{name}-{t}"))
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    workers = [threading.Thread(target=work, args=(f"T{n}",), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(DEADLINE_S * 2)
    assert not any(w.is_alive() for w in workers)
    assert failures == []
    # no two blocks overlap: every begin is followed by the end of the same transaction
    assert len(trace) == 2 * threads * transactions
    for (kind_a, id_a), (kind_b, id_b) in zip(trace[::2], trace[1::2]):
        assert (kind_a, kind_b, id_a) == ("begin", "end", id_b), trace
    commit_sentinel(txn, topic)
    payloads = read_payloads(kafka_bootstrap, topic, "read_committed")
    assert payloads.pop() == SENTINEL
    assert len(payloads) == threads * transactions * per_transaction
    # each transaction's messages are contiguous in the log, in the order they committed
    chunks = [payloads[i:i + per_transaction] for i in range(0, len(payloads), per_transaction)]
    committed_order = [chunk[0].rsplit("-", 1)[0] for chunk in chunks]
    for chunk, name in zip(chunks, committed_order):
        assert chunk == [f"{name}-{i}" for i in range(per_transaction)], payloads
    assert committed_order == [id_ for kind, id_ in trace if kind == "begin"]


def test_librdkafka_error_in_a_transaction_reloads_the_client(kafka_bootstrap, topic, make_txn):
    # WaterDrop reloads after an abort caused by any librdkafka error (here a broker
    # rejection of an oversized message), so the next transaction starts on a fresh client
    txn = make_txn(kafka={"message.max.bytes": 10_000}, wait_backoff_on_transaction_fatal_error=10)
    events = Recorder(txn, "producer.reload", "producer.reloaded", "producer.connected")
    txn.produce_sync(topic=topic, payload="before")
    with pytest.raises(waterdrop.ProduceError) as raised:
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="x" * 20_000)
    assert isinstance(raised.value.__cause__, KafkaError)
    [reload] = events.of("producer.reload")
    assert reload["error"].code == raised.value.__cause__.code
    assert (reload["attempt"], reload["caller"]) == (1, txn)
    assert [p["attempt"] for p in events.of("producer.reloaded")] == [1]
    assert txn.status is Status.CONFIGURED
    txn.produce_sync(topic=topic, payload=SENTINEL)
    assert len(events.of("producer.connected")) == 2
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == ["before", SENTINEL]


def test_no_reload_when_reload_on_transaction_fatal_error_is_off(kafka_bootstrap, topic, make_txn):
    txn = make_txn(kafka={"message.max.bytes": 10_000}, reload_on_transaction_fatal_error=False)
    events = Recorder(txn, "producer.reload", "producer.connected")
    with pytest.raises(waterdrop.ProduceError):
        with txn.transaction():
            txn.produce_sync(topic=topic, payload="x" * 20_000)
    assert events.of("producer.reload") == []
    txn.produce_sync(topic=topic, payload=SENTINEL)
    assert len(events.of("producer.connected")) == 1
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [SENTINEL]


# --- fencing and the reload loop ----------------------------------------------------------------


def test_fenced_producer_is_not_reloaded_by_default_and_reports_it(
    kafka_bootstrap, topic, make_txn
):
    transactional_id = unique("wd-fence")
    older = make_txn(transactional_id)
    events = Recorder(older, "producer.reload", "producer.reloaded", "error.occurred")
    older.produce_sync(topic=topic, payload="older-1")
    newer = make_txn(transactional_id)
    newer.produce_sync(topic=topic, payload="newer-1")  # init_transactions fences the older one
    with pytest.raises(KafkaError) as raised:
        with older.transaction():
            older.produce_sync(topic=topic, payload="older-fenced")
    assert raised.value.code == "fenced"
    assert raised.value.fatal
    assert events.of("producer.reload") == []
    assert events.of("producer.reloaded") == []
    # the fencing was reported to the monitor
    assert any(
        getattr(p["error"], "code", None) == "fenced" for p in events.of("error.occurred")
    ), events.events
    # not reloaded: the older producer stays fenced
    with pytest.raises(KafkaError) as again:
        older.produce_sync(topic=topic, payload="older-still-fenced")
    assert again.value.code == "fenced"
    newer.produce_sync(topic=topic, payload=SENTINEL)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "older-1", "newer-1", SENTINEL,
    ]


def test_fenced_reload_loop_stops_at_its_attempt_limit(kafka_bootstrap, topic, make_txn):
    transactional_id = unique("wd-fence-loop")
    attempts = 3
    producer = make_txn(
        transactional_id,
        non_reloadable_errors=[],
        max_attempts_on_transaction_fatal_error=attempts,
        wait_backoff_on_transaction_fatal_error=10,
    )
    events = Recorder(producer, "producer.reload", "producer.reloaded")
    producer.produce_sync(topic=topic, payload="first")
    codes = []
    for _ in range(attempts + 3):
        try:
            with producer.transaction():
                # A newer instance with the same transactional.id appears mid-transaction,
                # every time: the reload (a new client, a new epoch) never escapes it.
                fencer = Producer(
                    kafka={
                        "bootstrap.servers": kafka_bootstrap,
                        "transactional.id": transactional_id,
                    }
                )
                try:
                    fencer.client  # builds the client: init_transactions fences `producer`
                finally:
                    close_within(fencer)
                producer.produce_sync(topic=topic, payload="fenced")
        except KafkaError as error:
            codes.append(error.code)
        else:
            codes.append("committed")
    assert codes == ["fenced"] * (attempts + 3)
    reloads = events.of("producer.reload")
    assert [p["attempt"] for p in reloads] == list(range(1, attempts + 1))
    assert all(p["error"].code == "fenced" and p["caller"] is producer for p in reloads)
    assert [p["attempt"] for p in events.of("producer.reloaded")] == list(range(1, attempts + 1))


def test_fencing_escape_by_changing_transactional_id_in_producer_reload(
    kafka_bootstrap, topic, make_txn
):
    transactional_id = unique("wd-fence-escape")
    older = make_txn(
        transactional_id,
        non_reloadable_errors=[],
        max_attempts_on_transaction_fatal_error=5,
        wait_backoff_on_transaction_fatal_error=10,
    )
    new_ids: list[str] = []

    def escape(event: Any) -> None:
        new_ids.append(unique(f"{transactional_id}-recovered"))
        event["caller"].config.kafka["transactional.id"] = new_ids[-1]

    older.monitor.subscribe("producer.reload", escape)
    reloaded = Recorder(older, "producer.reloaded")
    older.produce_sync(topic=topic, payload="older-1")
    newer = make_txn(transactional_id)
    newer.produce_sync(topic=topic, payload="newer-first")
    # the reload happens, but the fencing is still raised: the caller retries the transaction
    with pytest.raises(KafkaError) as raised:
        with older.transaction():
            older.produce_sync(topic=topic, payload="older-fenced")
    assert raised.value.code == "fenced"
    assert len(new_ids) == 1
    assert older.config.kafka["transactional.id"] == new_ids[0]
    for i in range(3):
        with older.transaction():
            older.produce_sync(topic=topic, payload=f"older-recovered-{i}")
        with newer.transaction():
            newer.produce_sync(topic=topic, payload=f"newer-{i}")
    assert [p["attempt"] for p in reloaded.of("producer.reloaded")] == [1]
    newer.produce_sync(topic=topic, payload=SENTINEL)
    assert read_payloads(kafka_bootstrap, topic, "read_committed") == [
        "older-1", "newer-first",
        "older-recovered-0", "newer-0", "older-recovered-1", "newer-1",
        "older-recovered-2", "newer-2", SENTINEL,
    ]
