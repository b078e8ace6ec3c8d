"""asyncio: ``waterdrop.aio.Producer``, a producer whose waits never block the event loop.

```python
from waterdrop import aio

async with aio.Producer(kafka={"bootstrap.servers": "localhost:9092"}) as producer:
    report = await producer.produce_sync(topic="events", payload=b"x")
    handle = producer.produce_async(topic="events", payload=b"y")   # a DeliveryHandle
    report = await handle
```

It wraps a ``waterdrop.Producer`` (``producer.sync``) built from the same settings and keeps
its semantics (middleware, variants, instrumentation events, error wrapping, transactions).
What differs is where the waiting happens:

- a delivery is awaited on the loop: the poller thread wakes the loop once per delivery batch
  (see ``waterdrop._aio``), no thread waits for it;
- everything that can block (building the client, a queue-full wait, an idempotent reload, a
  flush, close, disconnect, a transaction command, a metadata lookup) runs in a thread, in
  order: a dispatch that would have to wait on the loop is handed, with every dispatch after
  it, to a worker thread, and the caller gets a DeliveryHandle that resolves with the real one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Generic, TypeVar, Unpack, overload

from waterdrop import _aio, _core
from waterdrop import producer as _producer_module
from waterdrop.config import Config, Settings
from waterdrop.errors import (
    KafkaError,
    ProduceError,
    ProducerTransactionalCloseAttemptError,
    TransactionRequiredError,
    WaitTimeoutError,
)
from waterdrop.instrumentation import events as ev
from waterdrop.instrumentation.monitor import Monitor
from waterdrop.producer import Producer as SyncProducer
from waterdrop.producer.status import Status
from waterdrop.producer.variant import Variant as SyncVariant
from waterdrop.producer._internal import (
    IDEMPOTENT, Batch, Forwarded, ReloadPolicy, one_message,
)
from waterdrop._core import CURRENT_VARIANT, DeliveryHandle, DeliveryReport
from waterdrop.types import Headers, Key, Message, Payload, Timestamp, Tombstone
from waterdrop.instrumentation.payloads import produced_sync

__all__ = ["Producer", "Variant", "Transaction", "wait", "wait_all"]

wait = _aio.wait
wait_all = _aio.wait_all

_FLOW_ERRORS = (KafkaError, WaitTimeoutError)
_R = TypeVar("_R")
_get_running_loop = asyncio._get_running_loop
_current_task = asyncio.current_task


# ----------------------------------------------------------------------------------------------
# The wrapped producer: where it would sleep on a loop's thread, it hands over instead
# ----------------------------------------------------------------------------------------------


class _WouldBlock(Exception):
    """Raised on an event loop's thread where the producer would wait (queue full, reload)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class _LoopSafeProducer(SyncProducer):
    """``waterdrop.Producer`` whose waits refuse to run on an event loop's thread.

    Off the loop (a worker thread) it behaves exactly as ``waterdrop.Producer``.
    """

    def __init__(self, created_at: str) -> None:
        super().__init__()
        self._created_at = created_at  # the ResourceWarning of a producer never closed names it

    def _queue_full_wait(self, message: Any, error: KafkaError, error_type: str) -> None:
        if _get_running_loop() is not None:
            raise _WouldBlock(error)
        super()._queue_full_wait(message, error, error_type)

    def _reload_after_fatal(
        self, error: KafkaError, attempt: int, policy: ReloadPolicy = IDEMPOTENT
    ) -> None:
        if _get_running_loop() is not None:
            raise _WouldBlock(error)
        super()._reload_after_fatal(error, attempt, policy)


# ----------------------------------------------------------------------------------------------
# The handoff: dispatches that cannot run on the loop, in order, on one thread at a time
# ----------------------------------------------------------------------------------------------


def _settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _settle_threadsafe(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
    error: BaseException | None,
) -> None:
    try:
        loop.call_soon_threadsafe(_settle_future, future, result, error)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


class _Handoff:
    """A FIFO of dispatches run on a worker thread (one at a time, started on demand).

    While it holds anything, every later dispatch of the producer goes through it too, so
    messages keep the order they were produced in. ``active`` is read without the lock on the
    loop (a stale True only sends one more dispatch through here).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._items: deque[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]]]
        self._items = deque()
        self._lock = threading.Lock()
        self.active = False

    def submit(
        self, fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """Run ``fn()`` after everything submitted before it; then ``done(result, error)`` on
        the worker thread."""
        with self._lock:
            self._items.append((fn, done))
            if self.active:
                return
            self.active = True
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._items:
                    self.active = False
                    return
                fn, done = self._items.popleft()
            try:
                result = fn()
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                try:
                    done(None, error)
                except BaseException:  # noqa: BLE001
                    sys.unraisablehook(_unraisable(sys.exc_info(), done))
            else:
                try:
                    done(result, None)
                except BaseException:  # noqa: BLE001
                    sys.unraisablehook(_unraisable(sys.exc_info(), done))

    def call(self, fn: Callable[[], _R]) -> asyncio.Future[_R]:
        """``fn()`` in order on the worker thread, as a future of the running loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.submit(fn, lambda result, error: _settle_threadsafe(loop, future, result, error))
        return future

    async def idle(self) -> None:
        """Until everything submitted so far has run."""
        if self.active:
            await self.call(_nothing)


def _nothing() -> None:
    return None


def _unraisable(exc_info: Any, obj: Any) -> Any:
    class _Args:
        exc_type, exc_value, exc_traceback = exc_info
        err_msg = "Exception ignored in waterdrop.aio handoff callback"
        object = obj

    return _Args


def _report_error(error: BaseException) -> BaseException:
    """What a stand-in handle fails with: the librdkafka error under a ProduceError."""
    cause = error.__cause__ if isinstance(error, ProduceError) else None
    return cause if isinstance(cause, KafkaError) else error


def _relay(real: Any, stand_in: Any) -> None:
    """Resolve ``stand_in`` as ``real`` resolves."""
    real.add_done_callback(
        lambda handle: stand_in._resolve(handle.partition, handle.offset, handle.error)
    )


def _fail(stand_ins: Iterable[Any], error: BaseException) -> None:
    error = _report_error(error)
    for stand_in in stand_ins:
        stand_in._resolve(-1, -1001, error)


# ----------------------------------------------------------------------------------------------
# Dispatch methods shared by the producer and its variants
# ----------------------------------------------------------------------------------------------


class _Dispatch:
    """The produce, tombstone, buffer and flush methods, for a producer or one variant."""

    _aio: Producer
    _variant: SyncVariant | None  # None: the producer's current one

    # --- helpers ---------------------------------------------------------------------------------

    def _target(self) -> SyncProducer | SyncVariant:
        """Where public sync calls go: the sync variant, or the sync producer."""
        return self._variant if self._variant is not None else self._aio._sync

    def _sync_variant(self) -> SyncVariant:
        variant = self._variant
        if variant is None:
            variant = self._aio._sync.current_variant
            if variant is None:
                from waterdrop.errors import ProducerNotConfiguredError

                raise ProducerNotConfiguredError(self._aio._sync.id)
        return variant

    def _scoped(self, fn: Callable[[], _R]) -> Callable[[], _R]:
        """``fn`` run with this variant current (in whatever thread runs it)."""
        variant = self._variant
        if variant is None:
            return fn

        def run() -> _R:
            token = CURRENT_VARIANT.set(variant)
            try:
                return fn()
            finally:
                CURRENT_VARIANT.reset(token)

        return run

    def _solo(self) -> bool:
        """A transactional producer outside this task's transaction: each dispatch is its own
        transaction, which commits in a thread."""
        owner = self._aio
        return owner._transactional and (
            owner._tx_task is None or owner._tx_task is not _current_task()
        )

    def _stand_ins(self, messages: list[Any], batch: bool = False) -> list[DeliveryHandle]:
        """Pending handles for messages handed to a thread (validated here when possible;
        ``batch``: those of a batch method)."""
        wait_ms = int(self._sync_variant().max_wait_timeout)
        self._aio._sync._check_messages(messages, batch)
        stand_ins = []
        for message in messages:
            if isinstance(message, Mapping):
                topic, label = message.get("topic"), message.get("label")
            else:
                topic, label = None, None
            stand_ins.append(_core.pending_handle(str(topic or ""), label, wait_ms))
        return stand_ins

    def _handoff_one(self, handoff: _Handoff, message: Any, fn: Callable[[], Any]) -> DeliveryHandle:
        stand_in = self._stand_ins([message])[0]

        def done(handle: Any, error: BaseException | None) -> None:
            if error is None:
                _relay(handle, stand_in)
            else:
                _fail((stand_in,), error)

        handoff.submit(self._scoped(fn), done)
        return stand_in

    def _handoff_many(
        self, handoff: _Handoff, messages: list[Any], fn: Callable[[], Any]
    ) -> list[DeliveryHandle]:
        stand_ins = self._stand_ins(messages, batch=True)

        def done(handles: Any, error: BaseException | None) -> None:
            if error is None:
                for handle, stand_in in zip(handles, stand_ins):
                    _relay(handle, stand_in)
                return
            dispatched = getattr(error, "dispatched", None) or []
            for handle, stand_in in zip(dispatched, stand_ins):
                _relay(handle, stand_in)
            _fail(stand_ins[len(dispatched):], error)

        handoff.submit(self._scoped(fn), done)
        return stand_ins

    def _must_hand_off(self) -> bool:
        """True when a dispatch cannot run on the loop right now (never blocks itself)."""
        owner = self._aio
        sync = owner._sync
        if owner._handoff.active:
            return True
        if sync._client is None:
            sync._ensure_active()  # closed / not configured: raise here, as the sync producer
            return True  # building the client (or a reconnect) happens in the thread
        return False

    # --- single messages -------------------------------------------------------------------------

    @overload
    def produce_async(self, message: Message, /) -> DeliveryHandle: ...
    @overload
    def produce_async(
        self, *, topic: str, payload: Payload, key: Key = ..., partition: int = ...,
        partition_key: Key = ..., timestamp: Timestamp = ..., headers: Headers | None = ...,
        label: Any = ...,
    ) -> DeliveryHandle: ...
    def produce_async(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Message | None = None, /, **fields: Any
    ) -> DeliveryHandle:
        """Enqueue one message; return its DeliveryHandle (``await handle`` for the report).

        Never blocks the loop: when the producer would have to wait (librdkafka's queue is
        full, the client is being built), the message goes to a thread, in order, and the
        handle returned resolves with the delivery.
        """
        message = one_message("produce_async", message, fields)
        owner = self._aio
        target = self._target()
        if owner._transactional and self._solo():
            return self._handoff_one(owner._solo_handoff, message,
                                     lambda: target.produce_async(message))
        if not self._must_hand_off():
            try:
                return target.produce_async(message)
            except _WouldBlock:
                pass  # nothing was enqueued: the thread retries it
        return self._handoff_one(owner._handoff, message, lambda: target.produce_async(message))

    @overload
    async def produce_sync(self, message: Message, /) -> DeliveryReport: ...
    @overload
    async def produce_sync(
        self, *, topic: str, payload: Payload, key: Key = ..., partition: int = ...,
        partition_key: Key = ..., timestamp: Timestamp = ..., headers: Headers | None = ...,
        label: Any = ...,
    ) -> DeliveryReport: ...
    async def produce_sync(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Message | None = None, /, **fields: Any
    ) -> DeliveryReport:
        """Send one message and await the broker's acknowledgement; return the report.

        Raises ProduceError (its ``__cause__`` the KafkaError or WaitTimeoutError), as
        ``waterdrop.Producer.produce_sync``.
        """
        one = one_message("produce_sync", message, fields)
        owner = self._aio
        if owner._transactional and self._solo():
            target = self._target()
            return await owner._solo_handoff.call(
                self._scoped(lambda: target.produce_sync(one)))
        sync = owner._sync
        variant = self._sync_variant()
        start = time.monotonic()
        enqueue = self._scoped(lambda: sync._enqueue(one, variant, "message.produce_sync"))
        sent: tuple[Any, Any] | None = None
        if not self._must_hand_off():
            try:
                sent = enqueue()
            except _WouldBlock:
                sent = None
        if sent is None:
            sent = await owner._handoff.call(enqueue)
        sent_message, handle = sent
        try:
            report = await _aio.wait(handle, variant.max_wait_timeout)
        except _FLOW_ERRORS as error:
            raise sync._produce_error(sent_message, error, "message.produce_sync") from error
        monitor = sync.monitor
        if monitor.listening(ev.MESSAGE_PRODUCED_SYNC):
            monitor.instrument(
                ev.MESSAGE_PRODUCED_SYNC, **produced_sync(sync.id, sent_message, report, start))
        return report

    # --- many messages ---------------------------------------------------------------------------

    def produce_many_async(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """Validate every message, enqueue them all; return their handles (never blocks)."""
        owner = self._aio
        if owner._transactional and self._solo():
            batch = list(messages)
            target = self._target()
            return self._handoff_many(owner._solo_handoff, batch,
                                      lambda: target.produce_many_async(batch))
        handles: list[Any] = self._many(messages, sync=False)
        return handles

    async def produce_many_sync(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """Send every message and await all of them; return their (final) handles.

        ProduceManyError (with ``.dispatched``) as ``waterdrop.Producer.produce_many_sync``.
        """
        owner = self._aio
        if owner._transactional and self._solo():
            batch = list(messages)
            target = self._target()
            done: list[Any] = await owner._solo_handoff.call(
                self._scoped(lambda: target.produce_many_sync(batch)))
            return done
        handles: list[Any] = await self._many(messages, sync=True)
        return handles

    def _many(self, messages: Iterable[Mapping[str, Any]], sync: bool) -> Any:
        """``waterdrop.Producer._produce_many`` with the dispatch on the loop and the wait
        awaited: the handles (async), or a coroutine of them (sync). The sync producer's
        ``Batch`` does the rest; what cannot be enqueued without waiting goes to a thread."""
        owner = self._aio
        producer = owner._sync
        batch = messages if type(messages) is list else list(messages)
        variant = self._sync_variant()
        token = CURRENT_VARIANT.set(self._variant) if self._variant is not None else None
        try:
            many = producer._batch(batch, variant, sync)
            dispatched: list[Any] = []
            rest: list[Any] = many.messages
            handles: list[Any] | None = None
            error: BaseException | None = None
            if not self._must_hand_off():
                try:
                    handles = many.dispatch(producer._client, many.messages, dispatched)
                except _WouldBlock:
                    rest = many.messages[len(dispatched):]
                except _FLOW_ERRORS as flow_error:
                    error = flow_error
        finally:
            if token is not None:
                CURRENT_VARIANT.reset(token)

        def in_thread() -> list[Any]:
            more: list[Any] = []
            try:
                return many.dispatch(producer._get_client(), rest, more)
            except BaseException as failure:
                failure.dispatched = more  # type: ignore[attr-defined]
                if not sync and isinstance(failure, _FLOW_ERRORS):
                    # nobody awaits this call: report it as the sync producer would have
                    many.failed(dispatched + more, failure)
                raise

        if not sync:
            if error is not None:
                raise many.failed(dispatched, error)
            if handles is None:
                handles = dispatched + self._handoff_many(owner._handoff, rest, in_thread)
            many.sent(handles)
            many.produced(handles)
            return handles
        return self._many_sync(many, dispatched, handles, error, in_thread)

    async def _many_sync(
        self, many: Batch, dispatched: list[Any], handles: list[Any] | None,
        error: BaseException | None, in_thread: Callable[[], list[Any]],
    ) -> list[Any]:
        wait_ms = many.variant.max_wait_timeout
        if error is None and handles is None:
            try:
                handles = dispatched + await self._aio._handoff.call(self._scoped(in_thread))
            except _FLOW_ERRORS as flow_error:
                error = flow_error
                dispatched = dispatched + list(getattr(flow_error, "dispatched", ()))
        if error is None:
            assert handles is not None
            dispatched = handles
            many.sent(handles)
            try:
                await _aio.wait_all(handles, wait_ms)
                for handle in handles:
                    if handle.error is not None:
                        raise handle.error
            except _FLOW_ERRORS as flow_error:
                error = flow_error
        if error is not None:
            if dispatched:
                try:
                    await _aio.wait_all(dispatched, wait_ms)
                except WaitTimeoutError:
                    pass
            raise many.failed(dispatched, error)
        assert handles is not None
        many.produced(handles)
        return handles

    # --- tombstones ------------------------------------------------------------------------------

    @overload
    async def tombstone_sync(self, message: Tombstone, /) -> DeliveryReport: ...
    @overload
    async def tombstone_sync(
        self, *, topic: str, key: str | bytes, partition: int, timestamp: Timestamp = ...,
        headers: Headers | None = ..., label: Any = ...,
    ) -> DeliveryReport: ...
    async def tombstone_sync(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Tombstone | None = None, /, **fields: Any
    ) -> DeliveryReport:
        """Delete ``key`` on a compacted topic (a null payload to an explicit partition)."""
        return await self.produce_sync(SyncProducer._tombstone(message, fields))

    @overload
    def tombstone_async(self, message: Tombstone, /) -> DeliveryHandle: ...
    @overload
    def tombstone_async(
        self, *, topic: str, key: str | bytes, partition: int, timestamp: Timestamp = ...,
        headers: Headers | None = ..., label: Any = ...,
    ) -> DeliveryHandle: ...
    def tombstone_async(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Tombstone | None = None, /, **fields: Any
    ) -> DeliveryHandle:
        return self.produce_async(SyncProducer._tombstone(message, fields, "tombstone_async"))

    async def tombstone_many_sync(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        return await self.produce_many_sync(SyncProducer._tombstones(messages))

    def tombstone_many_async(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        return self.produce_many_async(SyncProducer._tombstones(messages))

    # --- buffering -------------------------------------------------------------------------------

    @overload
    def buffer(self, message: Message, /) -> tuple[Message, ...]: ...
    @overload
    def buffer(
        self, *, topic: str, payload: Payload, key: Key = ..., partition: int = ...,
        partition_key: Key = ..., timestamp: Timestamp = ..., headers: Headers | None = ...,
        label: Any = ...,
    ) -> tuple[Message, ...]: ...
    def buffer(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Message | None = None, /, **fields: Any
    ) -> tuple[Message, ...]:
        """Keep a message in the internal buffer (sent by ``flush_sync`` / ``flush_async``)."""
        return self._target().buffer(one_message("buffer", message, fields))

    def buffer_many(self, messages: Iterable[Message]) -> list[Message]:
        return self._target().buffer_many(messages)

    async def flush_sync(self) -> list[DeliveryHandle]:
        """Send the buffer and wait for every message (in a thread); return the handles."""
        await self._aio._handoff.idle()
        return await self._aio._to_thread(self._target().flush_sync)

    async def flush_async(self) -> list[DeliveryHandle]:
        """Send the buffer without waiting for deliveries (in a thread); return the handles,
        each awaitable."""
        await self._aio._handoff.idle()
        return await self._aio._to_thread(self._target().flush_async)


# ----------------------------------------------------------------------------------------------
# The producer
# ----------------------------------------------------------------------------------------------


class Producer(_Dispatch):
    """``waterdrop.Producer`` for asyncio: the same settings, awaitable waits.

    ``Producer(**settings)``, ``Producer(configure)`` or ``Producer()`` then ``setup(...)``.
    ``executor`` (optional) runs the blocking calls (flush, close, transaction commands...);
    the loop's default executor otherwise.
    """

    def __init__(
        self,
        configure: Callable[[Config], object] | None = None,
        /,
        *,
        executor: Executor | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self._aio = self
        self._variant = None
        self._executor = executor
        frame = sys._getframe(1)
        self._sync = _LoopSafeProducer(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        self._transactional = False
        self._handoff = _Handoff("waterdrop-aio-handoff")
        self._solo_handoff = _Handoff("waterdrop-aio-transactions")
        self._tx_lock: asyncio.Lock | None = None
        self._tx_task: asyncio.Task[Any] | None = None
        self._tx_thread: ThreadPoolExecutor | None = None
        if configure is not None or settings:
            self.setup(configure, **settings)

    def setup(
        self, configure: Callable[[Config], object] | None = None, /,
        **settings: Unpack[Settings],
    ) -> Producer:
        """Configure once (``waterdrop.Producer.setup``)."""
        self._sync.setup(configure, **settings)
        self._transactional = self._sync.transactional
        return self

    # --- what the sync producer has --------------------------------------------------------------

    @property
    def sync(self) -> SyncProducer:
        """The wrapped ``waterdrop.Producer`` (for code that runs in threads)."""
        return self._sync

    id = Forwarded[str | None]("_sync")
    config = Forwarded[Any]("_sync")
    monitor = Forwarded[Monitor]("_sync")
    tags = Forwarded[Any]("_sync")
    status = Forwarded[Status]("_sync")
    middleware = Forwarded[Any]("_sync")
    messages = Forwarded[tuple[Message, ...]]("_sync")
    transactional = Forwarded[bool]("_sync")
    idempotent = Forwarded[bool]("_sync")

    @property
    def in_transaction(self) -> bool:
        """True inside this task's ``async with producer.transaction():``."""
        return self._tx_task is not None and self._tx_task is _current_task()

    queue_size = Forwarded[int]("_sync")
    queue_length = queue_size

    def purge(self) -> None:
        """Drop the buffer and everything queued in librdkafka (those handles fail)."""
        self._sync.purge()

    def disconnectable(self) -> bool:
        return self._sync.disconnectable()

    def oauthbearer_set_token(self, *args: Any, **kwargs: Any) -> None:
        self._sync.oauthbearer_set_token(*args, **kwargs)

    def oauthbearer_set_token_failure(self, reason: str) -> None:
        self._sync.oauthbearer_set_token_failure(reason)

    # --- blocking calls, in a thread -------------------------------------------------------------

    def _to_thread(self, fn: Callable[..., _R], *args: Any) -> asyncio.Future[_R]:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return loop.run_in_executor(self._executor, call)

    async def connect(self) -> Producer:
        """Build the client now, in a thread (the first dispatch does it otherwise)."""
        sync = self._sync
        await self._to_thread(lambda: sync.client)
        return self

    async def partition_count(self, topic: str) -> int:
        """Partitions of ``topic`` (a metadata request, in a thread; cached 30 s)."""
        return await self._to_thread(self._sync.partition_count, topic)

    async def ping(self, max_wait_timeout: int = 10_000) -> int:
        """Wait until a broker answers (``waterdrop.Producer.ping``), in a thread: the loop
        runs meanwhile. ClusterUnreachableError when none answers within the timeout."""
        return await self._to_thread(self._sync.ping, max_wait_timeout)

    async def disconnect(self) -> bool:
        """``waterdrop.Producer.disconnect``, in a thread."""
        await self._handoff.idle()
        return await self._to_thread(self._sync.disconnect)

    async def close(self, force: bool = False) -> None:
        """Deliver what is buffered and queued (up to max_wait_timeout), then release the
        client; in a thread. Every pending handle resolves, and its awaiters wake."""
        if self.in_transaction:
            raise ProducerTransactionalCloseAttemptError(self._sync.id)
        await self._handoff.idle()
        await self._solo_handoff.idle()
        await self._to_thread(self._sync.close, force)
        tx_thread, self._tx_thread = self._tx_thread, None
        if tx_thread is not None:
            tx_thread.shutdown(wait=False)

    async def __aenter__(self) -> Producer:
        if self._sync.status.active:
            await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def variant(
        self, topic_config: dict[str, Any] | None = None, max_wait_timeout: int | None = None
    ) -> Variant:
        """This producer with other per-topic settings (``waterdrop.Producer.variant``)."""
        return Variant(self, self._sync.variant(topic_config, max_wait_timeout))

    with_ = variant

    # --- transactions ----------------------------------------------------------------------------

    def transaction(self) -> Transaction[Producer]:
        """``async with producer.transaction():`` — commit on exit, abort on an exception
        (``waterdrop.AbortTransaction`` aborts quietly). Transactions of one producer run one
        at a time; begin, commit and abort run in a thread."""
        if not self._sync.transactional:
            self._sync.transaction()  # raises ProducerNotTransactionalError
        return Transaction(self, None, self)

    async def transaction_mark_as_consumed(
        self, consumer: Any, message: Any, offset_metadata: str | None = None
    ) -> None:
        """Commit ``message``'s offset (+1) for ``consumer``'s group in this task's
        transaction (``waterdrop.Producer.transaction_mark_as_consumed``)."""
        from waterdrop.producer import transactions

        producer = self._sync
        if not self.in_transaction:
            raise TransactionRequiredError(producer.id, "transaction_mark_as_consumed()")
        command = transactions.store_offset(producer, consumer, message, offset_metadata)
        start = time.monotonic()
        await self._in_tx_thread(command)
        transactions.marked_as_consumed(producer, message, offset_metadata, start)

    def _in_tx_thread(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Transaction commands run on one thread: it holds the producer's transaction lock
        from begin to commit or abort (a lock that thread must also release)."""
        if self._tx_thread is None:
            self._tx_thread = ThreadPoolExecutor(1, thread_name_prefix="waterdrop-aio-tx")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._tx_thread, functools.partial(fn, *args))

    def __repr__(self) -> str:
        return "<waterdrop.aio.Producer of " + repr(self._sync)[1:]


class Variant(_Dispatch):
    """A variant of an ``aio.Producer`` (``producer.variant(...)``): the same methods with its
    own ``topic_config`` and ``max_wait_timeout``."""

    def __init__(self, producer: Producer, variant: SyncVariant) -> None:
        self._aio = producer
        self._variant = variant

    @property
    def producer(self) -> Producer:
        return self._aio

    topic_config = Forwarded[dict[str, Any]]("_variant")
    max_wait_timeout = Forwarded[int]("_variant")

    async def ping(self, max_wait_timeout: int = 10_000) -> int:
        """The producer's ``ping`` (the cluster is the same for every variant)."""
        return await self._aio.ping(max_wait_timeout)

    def transaction(self) -> Transaction[Variant]:
        if not self._aio._sync.transactional:
            self._aio._sync.transaction()  # raises ProducerNotTransactionalError
        return Transaction(self._aio, self._variant, self)

    async def transaction_mark_as_consumed(
        self, consumer: Any, message: Any, offset_metadata: str | None = None
    ) -> None:
        """The producer's ``transaction_mark_as_consumed``, waiting up to this variant's
        ``max_wait_timeout`` for the broker."""
        token = CURRENT_VARIANT.set(self._variant)
        try:
            await self._aio.transaction_mark_as_consumed(consumer, message, offset_metadata)
        finally:
            CURRENT_VARIANT.reset(token)

    def __repr__(self) -> str:
        return "<waterdrop.aio.Variant " + repr(self._variant)[len("<waterdrop.Variant "):]


_T = TypeVar("_T", bound="_Dispatch")


class Transaction(Generic[_T]):
    """``async with producer.transaction():`` (see ``Producer.transaction``).

    One transaction per outermost block of a task; a nested block joins it. Inside it this
    task's dispatches go straight to librdkafka (they are part of the transaction); other
    tasks' dispatches on a transactional producer each run in their own transaction, in a
    thread, after this one.
    """

    def __init__(self, producer: Producer, variant: SyncVariant | None, result: _T) -> None:
        self._producer = producer
        self._variant = variant
        self._result = result
        self._inner: Any = None
        self._nested = False
        self._token: Any = None
        self._begun = False
        self._loop_thread = 0

    async def __aenter__(self) -> _T:
        aio = self._producer
        task = _current_task()
        result = self._result
        if aio._tx_task is not None and aio._tx_task is task:
            self._nested = True
            return result
        if aio._tx_lock is None:
            aio._tx_lock = asyncio.Lock()
        lock = aio._tx_lock
        await lock.acquire()
        self._inner = aio._sync.transaction()
        self._loop_thread = threading.get_ident()
        try:
            await aio._handoff.idle()
            await aio._in_tx_thread(self._begin)
        except BaseException as error:
            # cancelled (or failed) on the way in: once the begin has run on the transaction
            # thread, end what it began there, then let the next transaction in
            ended = aio._in_tx_thread(self._end_if_begun, error)
            ended.add_done_callback(lambda _: lock.release())
            raise
        aio._tx_task = task
        if self._variant is not None:
            self._token = CURRENT_VARIANT.set(self._variant)
        return result

    def _begin(self) -> None:
        """On the transaction thread: take the producer's lock, begin; then hand ownership
        to the loop's thread, where this task's dispatches run."""
        self._inner.__enter__()
        self._producer._sync._hand_transaction_to(self._loop_thread)
        self._begun = True

    def _end_if_begun(self, error: BaseException) -> None:
        if self._begun:
            self._begun = False
            self._inner.__exit__(type(error), error, error.__traceback__)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._nested:
            return False
        aio = self._producer
        if self._token is not None:
            CURRENT_VARIANT.reset(self._token)
            self._token = None
        try:
            await aio._handoff.idle()  # what this task handed to a thread is part of it
        except BaseException as error:  # cancelled meanwhile: abort with that
            if exc is None:
                exc_type, exc, tb = type(error), error, error.__traceback__
        self._begun = False
        future = aio._in_tx_thread(self._inner.__exit__, exc_type, exc, tb)
        lock = aio._tx_lock

        def release(_: Any) -> None:
            aio._tx_task = None
            if lock is not None:
                lock.release()

        # the commit or abort finishes even if this task is cancelled while it runs; the next
        # transaction starts only after it
        future.add_done_callback(release)
        return bool(await asyncio.shield(future))

    def __repr__(self) -> str:
        return f"<waterdrop.aio.Transaction of {self._producer.id!r}>"


_ = _producer_module  # imported for its side effects (fork and exit hooks)
