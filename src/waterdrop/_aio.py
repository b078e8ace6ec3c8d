"""Awaiting DeliveryHandles from asyncio without blocking a thread.

``await handle`` (``DeliveryHandle.__await__``) lands here. Each awaited handle gets one
``asyncio.Future`` on the running loop and, once, the loop's *waker* (``_set_waker``): the
poller thread hands the waker all of a drained delivery batch's handles in one ``push_many``
call (with the GIL), which appends them to the loop's ready queue and schedules **one**
``loop.call_soon_threadsafe(drain)``: the loop is woken once per delivery batch, not once per
message, and settles every future of the batch in one callback. A handle whose waker slot is
taken (another loop's) gets the waker's ``push`` as a done-callback instead, which schedules the
same way. A handle that is resolved already needs neither: it is awaited through a coroutine
that returns at once.

Thread-safety: only the ready queue and the ``scheduled`` flag cross threads (the poller, and
any thread that resolves a batch while it waits for its own delivery), and only together,
under the waker's lock (one acquisition per batch, never per message): a pusher adds its
handles and schedules a drain unless one is scheduled; the drain takes what is ready and
clears the flag in one step, so a handle pushed afterwards schedules the next drain (a lost
wake-up cannot happen, with or without the GIL). Everything else (the map from handle to
futures) is only touched on the loop's thread.

Why not librdkafka's queue IO event (``rd_kafka_queue_io_event_enable`` + ``loop.add_reader``,
the loop serving delivery reports itself)? Measured side by side (bench/RESULTS.md): the same
p50 for one awaited produce, a shorter p99 tail, but about 30 % fewer deliveries per second
with many in flight, since serving reports then takes the loop's own thread instead of running
beside it on the poller's. The per-batch wake-up is kept.

Cancellation: a cancelled awaiter cancels its own future only. The handle keeps its callback,
its message keeps going, the monitor still hears of its fate from the poller, and the handle can
be awaited again (a fresh future replaces the cancelled one). A settled future is never set
twice: the drain skips futures that are already done.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from waterdrop.errors import WaitTimeoutError

if TYPE_CHECKING:  # the core imports this module: no import of it at run time
    from waterdrop._core import DeliveryHandle, DeliveryReport

__all__ = ["await_handle", "wait", "wait_all"]

_get_running_loop = asyncio.get_running_loop


class _Group:
    """One future for many handles: settled when the last of them resolves."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[Any], remaining: int) -> None:
        self.future = future
        self.remaining = remaining

    def done(self) -> bool:
        return self.future.done()


def _settle(entry: Any, handle: Any) -> None:
    """Settle what waits on ``handle`` (a Future, a _Group, or a list of those)."""
    kind = type(entry)
    if kind is list:
        for item in entry:
            _settle(item, handle)
        return
    if kind is _Group:
        entry.remaining -= 1
        if entry.remaining == 0 and not entry.future.done():
            entry.future.set_result(None)
        return
    if entry.done():  # cancelled (or timed out) while the delivery was on its way
        return
    error = handle.error
    if error is None:
        entry.set_result(handle)
    else:
        entry.set_exception(error)


class _LoopWaker:
    """The per-loop rendezvous between the poller thread and one event loop."""

    __slots__ = ("_loop", "_lock", "_ready", "_scheduled", "waiting", "push", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weak: pending handles hold ``push`` (and so the waker) until they resolve; they must
        # not keep a loop alive that its owner has dropped
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()  # _ready and _scheduled, together
        self._ready: deque[Any] = deque()
        self._scheduled = False
        #: handle -> Future | _Group | list of those; only touched on the loop's thread
        self.waiting: dict[Any, Any] = {}
        self.push = self._push  # one bound method shared by every handle (no allocation each)

    def _push(self, handle: Any) -> None:
        """Runs where the handle resolves (the poller thread), for a handle the core could not
        group with its batch (``add_done_callback``)."""
        with self._lock:
            self._ready.append(handle)
            if self._scheduled:
                return
            self._scheduled = True
        self._wake()

    def push_many(self, handles: list[Any]) -> None:
        """Runs where a batch resolves, with every handle of it awaited on this loop (the core
        groups them: ``DeliveryHandle._set_waker``)."""
        with self._lock:
            self._ready.extend(handles)
            if self._scheduled:
                return
            self._scheduled = True
        self._wake()

    def _wake(self) -> None:
        """One drain on the loop for what is ready now and what is added until it runs (the
        caller set ``_scheduled``)."""
        loop = self._loop()
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody can be waiting on it any more
            pass

    def _drain(self) -> None:
        """On the loop: settle every future whose handle resolved since the last drain."""
        with self._lock:
            ready = self._ready
            self._ready = deque()
            self._scheduled = False
        pop = self.waiting.pop
        for handle in ready:
            entry = pop(handle, None)
            if entry is not None:
                _settle(entry, handle)


_wakers: weakref.WeakKeyDictionary[Any, _LoopWaker] = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()
_tls = threading.local()


def _waker_of(loop: asyncio.AbstractEventLoop) -> _LoopWaker:
    # A thread runs one loop at a time: remember the last one per thread (weakly).
    try:
        ref, waker = _tls.current
        if ref() is loop:
            return waker  # type: ignore[no-any-return]
    except AttributeError:
        pass
    with _wakers_lock:
        waker = _wakers.get(loop)
        if waker is None:
            waker = _wakers[loop] = _LoopWaker(loop)
    _tls.current = (waker._loop, waker)
    return waker


def _register(handle: Any, entry: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Make the loop's drain settle ``entry`` once ``handle`` resolves (it was pending)."""
    waker = _waker_of(loop)
    waiting = waker.waiting
    prior = waiting.get(handle)
    if prior is None:
        # the entry is in place before the callback: a handle that resolves in between runs
        # the callback right here, and the drain it schedules finds the entry
        waiting[handle] = entry
        if not handle._set_waker(waker):
            handle.add_done_callback(waker.push)
    elif type(prior) is list:
        prior[:] = [item for item in prior if not item.done()]
        prior.append(entry)
    elif prior.done():  # a cancelled awaiter's future: drop it (the callback is still set)
        waiting[handle] = entry
    else:
        waiting[handle] = [prior, entry]


async def _ready(handle: Any) -> Any:
    return handle


async def _failed(error: BaseException) -> Any:
    raise error


def await_handle(handle: Any) -> Any:
    """What ``DeliveryHandle.__await__`` awaits: a future on the running loop that resolves
    with ``handle``'s report (or its error); no thread per wait.

    A handle resolved already needs no future (nor a loop): a coroutine that returns (or
    raises) at once is three times cheaper.
    """
    if not handle.pending:
        error = handle.error
        return _ready(handle) if error is None else _failed(error)
    loop = _get_running_loop()
    future = loop.create_future()
    _register(handle, future, loop)
    return future


def _expire(future: asyncio.Future[Any], timeout_ms: int) -> None:
    if not future.done():
        future.set_exception(
            WaitTimeoutError(timeout_ms)
        )


async def wait(
    handle: DeliveryHandle, max_wait_timeout: int | None = None, raise_response_error: bool = True
) -> DeliveryReport:
    """``handle.wait()`` for asyncio: the report, without blocking the loop.

    ``max_wait_timeout`` in ms (None: no limit but the message's own delivery timeout);
    WaitTimeoutError while still pending. A delivery error is raised unless
    ``raise_response_error`` is False, in which case it is in ``report.error``.
    """
    if handle.pending:
        loop = _get_running_loop()
        future = loop.create_future()
        _register(handle, future, loop)
        timer = (
            loop.call_later(max_wait_timeout / 1000.0, _expire, future, max_wait_timeout)
            if max_wait_timeout is not None
            else None
        )
        try:
            await future
        except Exception as error:
            # the delivery's own error (a timeout or anything else is not the report's)
            if raise_response_error or error is not handle.error:
                raise
        finally:
            if timer is not None:
                timer.cancel()
        return handle
    if raise_response_error and handle.error is not None:
        raise handle.error
    return handle


async def wait_all(handles: Iterable[DeliveryHandle], max_wait_timeout: int | None = None) -> None:
    """Until every handle is resolved (delivered or failed); one future for the lot.

    WaitTimeoutError if some are still pending after ``max_wait_timeout`` ms. Raises no
    delivery error: look at each handle's ``error``.
    """
    pending = [handle for handle in handles if handle.pending]
    if not pending:
        return
    loop = _get_running_loop()
    group = _Group(loop.create_future(), len(pending))
    for handle in pending:
        _register(handle, group, loop)
    timer = (
        loop.call_later(max_wait_timeout / 1000.0, _expire, group.future, max_wait_timeout)
        if max_wait_timeout is not None
        else None
    )
    try:
        await group.future
    finally:
        if timer is not None:
            timer.cancel()
