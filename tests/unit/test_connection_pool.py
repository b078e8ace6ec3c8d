"""waterdrop.ConnectionPool and the process-wide pool (waterdrop.connection_pool).

Producers here use the Buffered client: nothing leaves the process, every message is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

import waterdrop
from waterdrop import ConnectionPool, Producer, ProducerClosedError, Status
from waterdrop.errors import ConnectionPoolClosedError, ConnectionPoolTimeoutError
from waterdrop import connection_pool as cp
from waterdrop.clients import Buffered

NOWHERE = {"bootstrap.servers": "127.0.0.1:1"}
DEADLINE_S = 10.0


def configure(config):
    config.kafka = dict(NOWHERE)
    config.client_class = Buffered


@pytest.fixture
def pool():
    pool = ConnectionPool(size=2, timeout=200, configure=configure)
    yield pool
    pool.shutdown()


@pytest.fixture
def events():
    """Every connection_pool.* event on waterdrop.monitor, as (name, payload)."""
    seen: list[tuple[str, dict]] = []
    listeners = []
    for name in (
        "connection_pool.created",
        "connection_pool.setup",
        "connection_pool.shutdown",
        "connection_pool.reload",
        "connection_pool.reloaded",
    ):
        listeners.append(
            waterdrop.monitor.subscribe(name, lambda e: seen.append((e.id, dict(e.payload))))
        )
    yield seen
    for fn in listeners:
        waterdrop.monitor.unsubscribe(fn)


@pytest.fixture(autouse=True)
def no_global_pool():
    yield
    cp.shutdown()


def test_exported_from_the_package():
    assert waterdrop.ConnectionPool is ConnectionPool
    assert "ConnectionPool" in waterdrop.__all__


def test_defaults_match_waterdrop():
    pool = ConnectionPool(configure=configure)
    try:
        assert pool.size == 5
        assert pool.timeout == 5_000
        assert pool.available == 5
        assert pool.stats() == {"size": 5, "available": 5}
    finally:
        pool.shutdown()


def test_configure_is_required_and_arguments_are_checked():
    with pytest.raises(TypeError, match="configure"):
        ConnectionPool()
    with pytest.raises(ValueError):
        ConnectionPool(size=0, configure=configure)
    with pytest.raises(ValueError):
        ConnectionPool(timeout=-1, configure=configure)


def test_producers_are_built_lazily_up_to_size(pool):
    assert pool.producers == []
    with pool.producer() as producer:
        assert isinstance(producer, Producer)
        assert producer.status is Status.CONFIGURED
        assert len(pool.producers) == 1
        assert pool.available == 1
        producer.produce_sync(topic="events", payload=b"data")
        assert producer.client.messages_for("events")[0]["payload"] == b"data"
    assert pool.available == 2
    # an idle producer is reused before another one is built
    with pool.producer() as again:
        assert again is producer
    assert len(pool.producers) == 1


def test_configure_with_config_only_gets_no_index():
    calls = []

    def one(config):
        calls.append(config)
        configure(config)

    with ConnectionPool(size=1, configure=one) as pool, pool.producer():
        pass
    assert len(calls) == 1


def test_configure_with_index_gets_one_based_unique_indexes():
    seen = []

    def two(config, index):
        seen.append(index)
        configure(config)
        config.id = f"pooled-{index}"

    pool = ConnectionPool(size=3, configure=two)
    try:
        with pool.producer() as a, _in_thread(pool) as b, _in_thread(pool) as c:
            ids = {a.id, b.id, c.id}
        assert sorted(seen) == [1, 2, 3]
        assert ids == {"pooled-1", "pooled-2", "pooled-3"}
    finally:
        pool.shutdown()


def test_index_is_detected_for_any_two_positional_callable():
    seen = []

    class Configurer:
        def __call__(self, config, index):
            seen.append(index)
            configure(config)

    def star(*args):
        seen.append(args[1])
        configure(args[0])

    for fn in (Configurer(), star, lambda config, index: (seen.append(index), configure(config))):
        with ConnectionPool(size=1, configure=fn) as pool, pool.producer():
            pass
    assert seen == [1, 1, 1]


class _in_thread:
    """Check a producer out in another thread and hold it until the block ends."""

    def __init__(self, pool):
        self.pool = pool
        self.got = threading.Event()
        self.release = threading.Event()
        self.producer = None
        self.error = None

    def _run(self):
        try:
            with self.pool.producer() as producer:
                self.producer = producer
                self.got.set()
                self.release.wait(DEADLINE_S)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            self.error = error
            self.got.set()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.got.wait(DEADLINE_S)
        if self.error is not None:
            raise self.error
        return self.producer

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(DEADLINE_S)


def test_checkout_times_out_after_timeout_ms(pool):
    with _in_thread(pool), _in_thread(pool):
        assert pool.available == 0
        start = time.monotonic()
        with pytest.raises(ConnectionPoolTimeoutError, match="200 ms"), pool.producer():
            pass
        assert time.monotonic() - start < DEADLINE_S


def test_pool_errors_are_waterdrop_errors():
    assert issubclass(ConnectionPoolTimeoutError, waterdrop.errors.Error)
    assert issubclass(ConnectionPoolTimeoutError, TimeoutError)
    assert issubclass(ConnectionPoolClosedError, ProducerClosedError)


def test_a_waiting_checkout_gets_the_producer_given_back():
    pool = ConnectionPool(size=1, timeout=int(DEADLINE_S * 1000), configure=configure)
    holder = _in_thread(pool)
    try:
        with holder as first:
            result = {}

            def wait_for_one():
                with pool.producer() as producer:
                    result["producer"] = producer

            waiter = threading.Thread(target=wait_for_one)
            waiter.start()
            holder.release.set()
            waiter.join(DEADLINE_S)
            assert result["producer"] is first
    finally:
        pool.shutdown()


def test_nested_checkout_in_one_thread_reuses_the_producer():
    pool = ConnectionPool(size=1, timeout=100, configure=configure)
    try:
        with pool.producer() as outer:
            with pool.producer() as inner:
                assert inner is outer
            assert pool.available == 0
        assert pool.available == 1
    finally:
        pool.shutdown()


def test_asyncio_tasks_get_their_own_producers():
    pool = ConnectionPool(size=2, timeout=1_000, configure=configure)

    async def borrow(barrier):
        with pool.producer() as producer:
            barrier.append(producer)
            while len(barrier) < 2:
                await asyncio.sleep(0.001)
            return producer

    async def main():
        barrier: list = []
        return await asyncio.gather(borrow(barrier), borrow(barrier))

    try:
        a, b = asyncio.run(main())
        assert a is not b
    finally:
        pool.shutdown()


def test_concurrent_use_never_shares_a_producer():
    pool = ConnectionPool(size=3, timeout=5_000, configure=configure)
    in_use: set[int] = set()
    lock = threading.Lock()
    clashes = []

    def work():
        for _ in range(200):
            with pool.producer() as producer:
                with lock:
                    if id(producer) in in_use:
                        clashes.append(producer)
                    in_use.add(id(producer))
                producer.produce_async(topic="events", payload=b"x")
                with lock:
                    in_use.discard(id(producer))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S * 3)
    try:
        assert not clashes
        assert len(pool.producers) <= 3
        total = sum(len(p.client.messages) for p in pool.producers)
        assert total == 8 * 200
    finally:
        pool.shutdown()


@pytest.fixture
def fake_transactions(monkeypatch):
    """Producer.transaction() recorded, so the pool's wiring is tested on its own."""
    log: list[tuple[str, Producer]] = []

    @contextlib.contextmanager
    def transaction(self):
        log.append(("begin", self))
        yield
        log.append(("commit", self))

    monkeypatch.setattr(Producer, "transaction", transaction)
    return log


def test_transaction_checks_out_inside_a_transaction(fake_transactions):
    pool = ConnectionPool(size=1, timeout=100, configure=configure)
    try:
        with pool.transaction() as producer:
            assert fake_transactions == [("begin", producer)]
            assert pool.available == 0
            producer.produce_async(topic="events", payload=b"tx")
        assert fake_transactions == [("begin", producer), ("commit", producer)]
        assert pool.available == 1
    finally:
        pool.shutdown()


def test_shutdown_closes_every_producer_and_refuses_checkouts(events):
    pool = ConnectionPool(size=2, configure=configure)
    with pool.producer() as a, _in_thread(pool) as b:
        pass
    assert a.status is Status.CONFIGURED and b.status is Status.CONFIGURED
    events.clear()
    pool.shutdown()
    assert a.status is Status.CLOSED and b.status is Status.CLOSED
    assert events == [("connection_pool.shutdown", {"pool": pool})]
    assert pool.available == 0
    with pytest.raises(ConnectionPoolClosedError), pool.producer():
        pass
    pool.shutdown()  # a second shutdown does nothing
    assert len(events) == 1


def test_shutdown_is_graceful_buffers_are_flushed():
    pool = ConnectionPool(size=1, configure=configure)
    with pool.producer() as producer:
        producer.buffer(topic="events", payload=b"buffered")
        client = producer.client
    pool.shutdown()
    assert producer.status is Status.CLOSED
    assert [m["payload"] for m in client.messages] == [b"buffered"]


def test_shutdown_force_closes_with_force(monkeypatch):
    pool = ConnectionPool(size=1, configure=configure)
    with pool.producer() as producer:
        pass
    forced = []
    original = Producer.close

    def spy(self, force=False):
        forced.append(force)
        return original(self, force=force)

    monkeypatch.setattr(Producer, "close", spy)
    pool.shutdown(force=True)
    assert forced == [True]
    assert producer.status is Status.CLOSED


def test_a_producer_lent_out_at_shutdown_is_closed_when_it_comes_back():
    pool = ConnectionPool(size=1, configure=configure)
    with pool.producer() as producer:
        pool.shutdown()
        assert producer.status.active  # still usable by its borrower
        producer.produce_sync(topic="events", payload=b"late")
    assert producer.status is Status.CLOSED


def test_reload_replaces_producers(events):
    pool = ConnectionPool(size=2, configure=configure)
    try:
        with pool.producer() as old:
            pass
        events.clear()
        pool.reload()
        assert old.status is Status.CLOSED
        assert events == [("connection_pool.reloaded", {"pool": pool})]
        with pool.producer() as new:
            assert new is not old
            assert new.status.active
            new.produce_sync(topic="events", payload=b"after reload")
    finally:
        pool.shutdown()


def test_reload_after_shutdown_is_refused():
    pool = ConnectionPool(size=1, configure=configure)
    pool.shutdown()
    with pytest.raises(ConnectionPoolClosedError):
        pool.reload()


def test_reload_closes_a_lent_out_producer_when_it_comes_back():
    seen = []

    def indexed(config, index):
        seen.append(index)
        configure(config)

    pool = ConnectionPool(size=1, timeout=100, configure=indexed)
    try:
        with pool.producer() as old:
            pool.reload()
            assert old.status.active
        assert old.status is Status.CLOSED
        with pool.producer() as new:
            assert new is not old
        # the index is reused: a transactional.id built from it stays stable
        assert seen == [1, 1]
    finally:
        pool.shutdown()


def test_a_producer_closed_by_its_borrower_is_replaced(pool):
    with pool.producer() as producer:
        producer.close()
    with pool.producer() as other:
        assert other is not producer
        assert other.status.active


def test_a_failing_configure_frees_the_slot():
    calls = []

    def flaky(config):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        configure(config)

    pool = ConnectionPool(size=1, timeout=100, configure=flaky)
    try:
        with pytest.raises(RuntimeError, match="boom"), pool.producer():
            pass
        assert pool.available == 1
        with pool.producer() as producer:
            assert producer.status.active
    finally:
        pool.shutdown()


def test_context_manager_shuts_down():
    with ConnectionPool(size=1, configure=configure) as pool, pool.producer() as producer:
        pass
    assert producer.status is Status.CLOSED
    assert pool.shut_down


def test_repr_never_blocks(pool):
    with pool._cond:  # held by "another" operation
        text = repr(pool)
    assert "ConnectionPool" in text and "size=2" in text


def test_created_event(events):
    pool = ConnectionPool(size=3, timeout=1_234, configure=configure)
    try:
        assert events == [
            ("connection_pool.created", {"pool": pool, "size": 3, "timeout": 1_234})
        ]
    finally:
        pool.shutdown()


# --- the process-wide pool -------------------------------------------------------------------


def test_no_global_pool_by_default():
    assert cp.pool() is None
    assert not cp.active()
    assert cp.stats() is None
    with pytest.raises(RuntimeError, match="No global connection pool configured"):
        with cp.with_producer():
            pass
    with pytest.raises(RuntimeError, match="Call setup first"):
        with cp.transaction():
            pass
    cp.shutdown()  # nothing to do
    cp.reload()


def test_setup_creates_the_global_pool(events):
    pool = ConnectionPool.setup(size=3, timeout=1_000, configure=configure)
    assert isinstance(pool, ConnectionPool)
    assert cp.pool() is pool
    assert cp.active()
    assert cp.stats() == {"size": 3, "available": 3}
    assert events == [
        ("connection_pool.created", {"pool": pool, "size": 3, "timeout": 1_000}),
        ("connection_pool.setup", {"pool": pool, "size": 3, "timeout": 1_000}),
    ]
    with cp.with_producer() as producer:
        producer.produce_sync(topic="events", payload=b"global")
        assert producer in pool.producers
    assert producer.client.messages_for("events")[0]["payload"] == b"global"


def test_module_setup_is_the_same():
    pool = cp.setup(size=1, configure=configure)
    assert cp.pool() is pool


def test_setup_again_replaces_and_shuts_down_the_previous_pool():
    first = ConnectionPool.setup(size=1, configure=configure)
    with cp.with_producer() as producer:
        pass
    second = ConnectionPool.setup(size=1, configure=configure)
    assert cp.pool() is second
    assert first.shut_down
    assert producer.status is Status.CLOSED


def test_global_shutdown_emits_once_and_forgets_the_pool(events):
    pool = ConnectionPool.setup(size=1, configure=configure)
    with cp.with_producer() as producer:
        pass
    events.clear()
    cp.shutdown()
    assert producer.status is Status.CLOSED
    assert events == [("connection_pool.shutdown", {"pool": pool})]
    assert cp.pool() is None and not cp.active()
    assert cp.close is cp.shutdown


def test_global_reload_emits_reloaded_then_reload(events):
    pool = ConnectionPool.setup(size=1, configure=configure)
    with cp.with_producer() as old:
        pass
    events.clear()
    cp.reload()
    assert old.status is Status.CLOSED
    assert events == [
        ("connection_pool.reloaded", {"pool": pool}),
        ("connection_pool.reload", {"pool": pool}),
    ]
    with cp.with_producer() as new:
        assert new is not old
    assert cp.pool() is pool


def test_global_transaction(fake_transactions):
    pool = ConnectionPool.setup(size=1, configure=configure)
    with cp.transaction() as producer:
        assert fake_transactions == [("begin", producer)]
        assert producer in pool.producers
    assert fake_transactions[-1] == ("commit", producer)


def test_global_helpers_are_thread_safe():
    ConnectionPool.setup(size=4, timeout=5_000, configure=configure)
    errors = []

    def work():
        try:
            for _ in range(100):
                with cp.with_producer() as producer:
                    producer.produce_async(topic="events", payload=b"x")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S * 3)
    assert not errors
    assert sum(len(p.client.messages) for p in cp.pool().producers) == 800
