"""Eight threads racing on one producer, on a ConnectionPool and on transactional producers:
every path of the core and of the Python layer at once.

- one producer: produce_async + wait, produce_many_async, produce_sync, buffer + flush_sync and
  flush_async, a variant, listeners subscribed and unsubscribed, then a burst nobody waits for
  with purge() racing it, and purge() and close() racing the last deliveries;
- a ConnectionPool of three producers lent to eight threads: the same calls on whichever
  producer a thread gets, listeners on the pool's producers, a reload() while producers are
  lent out, and a shutdown() at the end;
- transactions: eight threads share one transactional producer (the blocks queue on its
  transaction lock; some abort) and a transactional ConnectionPool (pool.transaction()).

Every message is accounted for exactly once: each handle resolves once (counted with
add_done_callback), is either delivered (a distinct partition/offset) or reported with an error
(purged, or aborted with its transaction), and no handle is left pending or referenced by
librdkafka.

Runs on any build; it is the free-threading check on a free-threaded CPython (3.13t+), where
importing waterdrop leaves the GIL off (run with PYTHON_GIL=0 to make sure of it), and the
stress suite ci/tsan runs under ThreadSanitizer (docs/free-threading.md). MockCluster by
default; the transaction test also runs against the real broker when one answers.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import close_within, create_topic, unique_topic
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import AbortTransaction, ConnectionPool, Producer
from waterdrop.errors import ConnectionPoolClosedError
from waterdrop.producer import Status
from waterdrop.testing import MockCluster

pytestmark = pytest.mark.timeout(sized(240, 1_800))

THREADS = 8
ROUNDS = sized(60, 1_000)      # per thread; each round sends 1 + 1 + BATCH + 2 + 1 messages
BATCH = 20
BURST = sized(2_000, 20_000)   # produced without waiting right before purge() and close()
JOIN_DEADLINE_S = 180.0


class Ledger:
    """Every message sent (by label) and every resolution seen (by label)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[str, Any]] = []
        self.resolved: Counter[str] = Counter()
        self.handles: dict[str, Any] = {}

    def track(self, label: str, handle: Any) -> None:
        with self.lock:
            self.sent.append((label, handle))
            self.handles[label] = handle

        def done(resolved: Any) -> None:
            assert resolved is handle
            with self.lock:
                self.resolved[label] += 1

        handle.add_done_callback(done)


def _gil_state() -> str:
    enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
    return "with the GIL" if enabled else "without the GIL"


def test_eight_threads_on_one_producer_account_for_every_message() -> None:
    ledger = Ledger()
    acknowledged = Counter()
    ack_lock = threading.Lock()
    failures: list[BaseException] = []

    with MockCluster(brokers=1) as cluster:
        topic = unique_topic("wd-ft")
        cluster.create_topic(topic, partitions=3)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1},
            max_wait_timeout=60_000,
        )
        variant = producer.variant(topic_config={"acks": 1})
        start = threading.Barrier(THREADS, timeout=JOIN_DEADLINE_S)
        bursting = threading.Barrier(THREADS, timeout=JOIN_DEADLINE_S)

        def on_ack(event: Any) -> None:
            with ack_lock:
                acknowledged[threading.get_ident()] += 1

        def work(n: int) -> None:
            try:
                start.wait()
                for r in range(ROUNDS):
                    base = f"t{n}-r{r}"
                    handle = producer.produce_async(topic=topic, payload=b"a" * 64,
                                                    label=f"{base}-async")
                    ledger.track(f"{base}-async", handle)
                    assert handle.wait().error is None

                    report = producer.produce_sync(topic=topic, payload=b"s",
                                                   label=f"{base}-sync")
                    ledger.track(f"{base}-sync", report)
                    assert report.error is None and report.offset >= 0

                    handles = producer.produce_many_async([
                        {"topic": topic, "payload": b"m" * (i + 1), "label": f"{base}-many{i}"}
                        for i in range(BATCH)
                    ])
                    for i, h in enumerate(handles):
                        ledger.track(f"{base}-many{i}", h)
                    for h in handles:
                        h.wait()

                    # the buffer is shared: a flush may send another thread's messages, so
                    # each buffered message is tracked by the thread whose flush sent it
                    producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf0")
                    producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf1")
                    if r % 2:
                        flushed = producer.flush_async()
                        for h in flushed:
                            ledger.track(h.label, h)
                        for h in flushed:
                            h.wait()
                    else:
                        for h in producer.flush_sync():
                            ledger.track(h.label, h)

                    h = variant.produce_async(topic=topic, payload=b"v", key=base,
                                              label=f"{base}-variant")
                    ledger.track(f"{base}-variant", h)
                    h.wait()   # only the burst below is left for purge()

                    if n == 0 and r % 3 == 0:
                        producer.monitor.subscribe("message.acknowledged", on_ack)
                    elif n == 0:
                        producer.monitor.unsubscribe(on_ack)
                    elif n == 1 and r % 5 == 0:
                        listener = _Listener()
                        producer.monitor.subscribe(listener)
                        producer.monitor.unsubscribe(listener)
                # the end: a burst nobody waits for, with a purge() racing it (thread 0,
                # halfway through its own part), then purge() and close() race the rest
                bursting.wait()
                for i in range(BURST // THREADS):
                    label = f"t{n}-burst{i}"
                    ledger.track(label, producer.produce_async(topic=topic, payload=b"x",
                                                               label=label))
                    if n == 0 and i == BURST // THREADS // 2:
                        producer.purge()
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
                bursting.abort()   # the others must not wait for this thread at the barrier

        threads = [threading.Thread(target=work, args=(n,), name=f"ft-{n}")
                   for n in range(THREADS)]
        _join(threads, failures)

        # everything still queued fails with purge_*; what already left is delivered
        producer.purge()
        client = producer.client
        close_within(producer)
        assert client.handles_in_flight == 0

    assert producer.messages == ()
    expected = THREADS * ROUNDS * (1 + 1 + BATCH + 2 + 1) + THREADS * (BURST // THREADS)
    # only the burst may have been purged
    delivered, failed = _account(ledger, expected, may_fail=lambda label: "-burst" in label,
                                 errors={"purge_queue", "purge_inflight"})
    record("threads_without_gil", {
        "interpreter": _interpreter(),
        "gil": _gil_state(),
        "threads": THREADS,
        "sent": expected,
        "delivered": delivered,
        "purged": failed,
    })


def _account(ledger: Ledger, expected: int, may_fail: Any, errors: set[str]) -> tuple[int, int]:
    """Every message exactly once: resolved once, delivered at an offset of its own or
    reported with one of ``errors`` (only those ``may_fail(label)`` allows)."""
    sent = len(ledger.sent)
    labels = [label for label, _ in ledger.sent]
    assert len(set(labels)) == sent, "a message was tracked twice"
    assert sent == expected
    # every handle resolved exactly once
    assert not [h for _, h in ledger.sent if h.pending]
    counts = Counter(ledger.resolved.values())
    assert set(counts) == {1}, f"resolutions per handle: {dict(counts)}"
    assert len(ledger.resolved) == sent
    # delivered or reported, and a delivered one has an offset of its own
    delivered = [(h.topic_name, h.partition, h.offset) for _, h in ledger.sent if h.error is None]
    failed = [h.error.code for _, h in ledger.sent if h.error is not None]
    assert all(offset >= 0 for _, _, offset in delivered)
    assert len(set(delivered)) == len(delivered), "two messages at one offset"
    assert set(failed) <= errors, Counter(failed)
    assert len(delivered) + len(failed) == sent
    unexpected = [label for label, h in ledger.sent if h.error is not None and not may_fail(label)]
    assert not unexpected, unexpected[:5]
    return len(delivered), len(failed)


def _join(threads: list[threading.Thread], failures: list[BaseException]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_DEADLINE_S)
    assert not [t.name for t in threads if t.is_alive()], "a thread never finished"
    assert not failures, failures[:3]


POOL_SIZE = 3
POOL_ROUNDS = sized(25, 400)   # per thread; each round sends 1 + 1 + BATCH + 2 + 1 messages


def test_eight_threads_on_a_connection_pool_account_for_every_message() -> None:
    """Eight threads borrow three producers: checkout and checkin race, a reload() retires
    the producers while they are lent out, and shutdown() closes them at the end."""
    ledger = Ledger()
    failures: list[BaseException] = []
    built: list[Producer] = []
    built_lock = threading.Lock()

    with MockCluster(brokers=1) as cluster:
        topic = unique_topic("wd-ft-pool")
        cluster.create_topic(topic, partitions=3)

        def configure(config: Any, index: int) -> None:
            config.kafka = {"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1,
                            "client.id": f"wd-ft-pool-{index}"}
            config.max_wait_timeout = 60_000

        pool = ConnectionPool(size=POOL_SIZE, timeout=60_000, configure=configure)
        start = threading.Barrier(THREADS, timeout=JOIN_DEADLINE_S)

        def work(n: int) -> None:
            try:
                start.wait()
                for r in range(POOL_ROUNDS):
                    base = f"t{n}-r{r}"
                    with pool.producer() as producer:
                        with built_lock:
                            if producer not in built:
                                built.append(producer)
                        listener = _Listener()
                        producer.monitor.subscribe(listener)
                        h = producer.produce_async(topic=topic, payload=b"a", label=f"{base}-async")
                        ledger.track(h.label, h)
                        report = producer.produce_sync(topic=topic, payload=b"s",
                                                       label=f"{base}-sync")
                        ledger.track(report.label, report)
                        many = producer.produce_many_async([
                            {"topic": topic, "payload": b"m", "label": f"{base}-many{i}"}
                            for i in range(BATCH)
                        ])
                        for h in many:
                            ledger.track(h.label, h)
                        producer.monitor.unsubscribe(listener)
                    # a nested checkout in the same thread gets the same producer back
                    with pool.producer() as producer, pool.producer() as again:
                        assert again is producer
                        producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf0")
                        producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf1")
                        flushed = producer.flush_async() if r % 2 else producer.flush_sync()
                        for h in flushed:
                            ledger.track(h.label, h)
                        variant = producer.variant(topic_config={"acks": 1})
                        h = variant.produce_async(topic=topic, payload=b"v", label=f"{base}-variant")
                        ledger.track(h.label, h)
                    if n == 1 and r == POOL_ROUNDS // 2:
                        pool.reload()   # lent producers are closed when they come back
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(n,), name=f"ft-pool-{n}")
                   for n in range(THREADS)]
        _join(threads, failures)
        pool.shutdown()   # graceful: every producer delivers what it holds, then closes
        assert pool.producers == []
        with pytest.raises(ConnectionPoolClosedError):
            with pool.producer():
                pass

    # the reload retired the first producers: more were built than the pool holds at once
    assert len(built) > POOL_SIZE
    assert all(p.status is Status.CLOSED for p in built)
    expected = THREADS * POOL_ROUNDS * (1 + 1 + BATCH + 2 + 1)
    delivered, failed = _account(ledger, expected, may_fail=lambda label: False, errors=set())
    record("threads_without_gil_pool", {
        "interpreter": _interpreter(), "gil": _gil_state(), "threads": THREADS,
        "pool_size": POOL_SIZE, "producers_built": len(built), "sent": expected,
        "delivered": delivered,
    })


TXN_ROUNDS = sized(6, 60)   # per thread: one block on the shared producer, one from the pool
TXN_BATCH = 5


@pytest.fixture(params=["mock", pytest.param("broker", marks=pytest.mark.integration)])
def txn_bootstrap(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(where, bootstrap servers): a MockCluster always; the real broker when one answers."""
    if request.param == "mock":
        with MockCluster(brokers=1) as cluster:
            cluster.create_topic(TXN_TOPIC, partitions=3)
            yield "mock", cluster.bootstrap_servers
        return
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    create_topic(bootstrap, TXN_TOPIC, partitions=3)
    yield "broker", bootstrap


TXN_TOPIC = unique_topic("wd-ft-txn")


def test_eight_threads_run_transactions_on_one_producer_and_a_pool(
    txn_bootstrap: tuple[str, str],
) -> None:
    """Eight threads take turns on one transactional producer (its transaction lock queues
    the blocks) and borrow two transactional producers from a pool; every third block aborts.
    A committed message is delivered; an aborted one is reported, or delivered and aborted."""
    ledger = Ledger()
    failures: list[BaseException] = []
    aborted: set[str] = set()
    aborted_lock = threading.Lock()
    where, bootstrap = txn_bootstrap
    topic = TXN_TOPIC
    run = unique_topic("wd-ft")

    def kafka(name: str) -> dict[str, Any]:
        return {"bootstrap.servers": bootstrap, "linger.ms": 1,
                "transactional.id": f"{run}-{name}"}

    shared = Producer(kafka=kafka("shared"), max_wait_timeout=60_000,
                      wait_timeout_on_transaction_abort=30_000)

    def configure(config: Any, index: int) -> None:
        config.kafka = kafka(f"pool-{index}")
        config.max_wait_timeout = 60_000
        config.wait_timeout_on_transaction_abort = 30_000

    pool = ConnectionPool(size=2, timeout=120_000, configure=configure)
    start = threading.Barrier(THREADS, timeout=JOIN_DEADLINE_S)

    def block(producer: Any, base: str, abort: bool) -> None:
        handles = [producer.produce_async(topic=topic, payload=b"t", label=f"{base}-async")]
        handles += producer.produce_many_async([
            {"topic": topic, "payload": b"m", "label": f"{base}-many{i}"} for i in range(TXN_BATCH)
        ])
        if not abort:
            handles.append(producer.produce_sync(topic=topic, payload=b"s", label=f"{base}-sync"))
        for h in handles:
            ledger.track(h.label, h)
        if abort:
            with aborted_lock:
                aborted.update(h.label for h in handles)
            raise AbortTransaction

    def work(n: int) -> None:
        try:
            start.wait()
            for r in range(TXN_ROUNDS):
                abort = (n + r) % 3 == 0
                with shared.transaction():
                    assert shared.in_transaction
                    block(shared, f"t{n}-r{r}-shared", abort)
                with pool.transaction() as producer:
                    block(producer, f"t{n}-r{r}-pool", abort)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,), name=f"ft-txn-{n}")
               for n in range(THREADS)]
    try:
        _join(threads, failures)
    finally:
        pool.shutdown()
        close_within(shared)
    assert not shared.in_transaction

    committed_blocks = sum(1 for n in range(THREADS) for r in range(TXN_ROUNDS) if (n + r) % 3)
    aborted_blocks = THREADS * TXN_ROUNDS - committed_blocks
    expected = 2 * (committed_blocks * (TXN_BATCH + 2) + aborted_blocks * (TXN_BATCH + 1))
    assert len(aborted) == 2 * aborted_blocks * (TXN_BATCH + 1)
    delivered, failed = _account(
        ledger, expected, may_fail=lambda label: label in aborted,
        errors={"purge_queue", "purge_inflight"},
    )
    assert delivered >= expected - len(aborted)
    record(f"threads_without_gil_transactions_{where}", {
        "interpreter": _interpreter(), "gil": _gil_state(), "threads": THREADS,
        "sent": expected, "committed": expected - len(aborted), "aborted": len(aborted),
        "aborted_reported": failed,
    })


class _Listener:
    def on_message_acknowledged(self, event: Any) -> None:
        pass

    def on_error_occurred(self, event: Any) -> None:
        pass


def _interpreter() -> str:
    return sys.version.split()[0] + ("t" if _free_threaded() else "")


def _free_threaded() -> bool:
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
