"""A pool of producers (WaterDrop's ``ConnectionPool``), and one process-wide pool.

Most applications need no pool: a producer is thread-safe, and variants cover per-topic
settings. A pool helps when producers must not be shared, above all transactional ones
(a transaction holds its producer for its whole duration)::

    def configure(config, index):           # index: 1..size, for a unique transactional.id
        config.kafka = {
            "bootstrap.servers": "localhost:9092",
            "transactional.id": f"my-app-{index}",
        }

    pool = waterdrop.ConnectionPool(size=5, timeout=5_000, configure=configure)

    with pool.producer() as producer:
        producer.produce_async(topic="events", payload=b"data")

    with pool.transaction() as producer:    # checkout + producer.transaction()
        producer.produce_async(topic="events", payload=b"data")

    pool.shutdown()

The process-wide pool, for code that should not pass a pool around::

    from waterdrop import connection_pool

    waterdrop.ConnectionPool.setup(size=10, configure=configure)   # or connection_pool.setup
    with connection_pool.with_producer() as producer:
        producer.produce_sync(topic="events", payload=b"data")
    connection_pool.shutdown()

Events on ``waterdrop.monitor``: ``connection_pool.created`` and ``connection_pool.setup``
(``pool``, ``size``, ``timeout``), ``connection_pool.shutdown`` (``pool``, exactly once per
shutdown), ``connection_pool.reloaded`` (``pool``, from any ``reload()``) and
``connection_pool.reload`` (``pool``, only from the process-wide ``reload()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from waterdrop.errors import ConnectionPoolClosedError, ConnectionPoolTimeoutError
from waterdrop.instrumentation import events as ev
from waterdrop.instrumentation.global_monitor import monitor as _class_monitor
from waterdrop.producer import Producer

__all__ = [
    "ConnectionPool",
    "active",
    "close",
    "pool",
    "reload",
    "setup",
    "shutdown",
    "stats",
    "transaction",
    "with_producer",
]

_NO_GLOBAL_POOL = "No global connection pool configured. Call setup first."

#: Every pool alive in this process, reset in a forked child.
_POOLS: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


def _takes_index(configure: Callable[..., Any]) -> bool:
    """True when ``configure`` accepts ``(config, index)``, False for ``(config)``."""
    try:
        signature = inspect.signature(configure)
    except (TypeError, ValueError):
        return False
    positional = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    return positional >= 2


def _owner() -> tuple[int, int]:
    """Who holds a checkout: the thread, and the asyncio task inside it if any."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), id(task) if task is not None else 0


class _Slot:
    """One producer of the pool with its 1-based index and the generation that built it."""

    __slots__ = ("producer", "index", "generation", "owner", "depth")

    def __init__(self, producer: Producer, index: int, generation: int) -> None:
        self.producer = producer
        self.index = index
        self.generation = generation
        self.owner: tuple[int, int] | None = None
        self.depth = 0


class ConnectionPool:
    """Up to ``size`` producers, built lazily, each lent to one caller at a time.

    ``configure`` receives ``(config)`` or ``(config, index)`` (``index`` from 1 to ``size``,
    for a unique ``transactional.id``) and sets up each producer, like ``Producer(configure)``.
    ``timeout`` (ms) bounds how long ``producer()`` waits when all of them are lent out.
    A nested ``producer()`` in the same thread (or asyncio task) gets the producer already lent
    to it, so nesting never deadlocks.
    """

    def __init__(
        self,
        size: int = 5,
        timeout: int = 5_000,
        configure: Callable[..., Any] | None = None,
    ) -> None:
        if configure is None or not callable(configure):
            raise TypeError(
                "ConnectionPool needs configure=: a callable taking (config) or (config, index)"
            )
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be an int >= 1, got {size!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"timeout must be a number of ms >= 0, got {timeout!r}")
        self._size = size
        self._timeout = timeout
        self._configure = configure
        self._with_index = _takes_index(configure)
        self._init_state()
        _POOLS.add(self)
        _class_monitor.instrument(ev.CONNECTION_POOL_CREATED, pool=self, size=size, timeout=timeout)

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[_Slot] = []                     # LIFO: the warmest producer first
        self._slots: dict[int, _Slot] = {}               # index -> slot, idle or lent out
        self._lent: dict[tuple[int, int], _Slot] = {}    # owner -> the slot it holds
        self._reserved: set[int] = set()                 # indexes being built right now
        self._generation = 0
        self._shut_down = False

    # --- introspection ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The most producers this pool holds."""
        return self._size

    @property
    def timeout(self) -> int:
        """How long (ms) ``producer()`` waits for a free producer."""
        return self._timeout

    @property
    def available(self) -> int:
        """How many producers can be checked out right now without waiting."""
        with self._cond:
            if self._shut_down:
                return 0
            return self._size - len(self._slots) - len(self._reserved) + len(self._idle)

    @property
    def producers(self) -> list[Producer]:
        """The producers built so far (idle or lent out), in index order."""
        with self._cond:
            return [self._slots[i].producer for i in sorted(self._slots)]

    def stats(self) -> dict[str, int]:
        """``{"size": ..., "available": ...}``, as WaterDrop's ``stats``."""
        return {"size": self.size, "available": self.available}

    @property
    def shut_down(self) -> bool:
        return self._shut_down

    # --- checkout --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def producer(self) -> Iterator[Producer]:
        """``with pool.producer() as producer:`` lends one producer for the block.

        Waits up to ``timeout`` ms for one to come back when all are lent out, then raises
        ConnectionPoolTimeoutError (a TimeoutError). A pool that was shut down refuses with
        ConnectionPoolClosedError (a ProducerClosedError).
        """
        slot = self._checkout()
        try:
            yield slot.producer
        finally:
            self._checkin(slot)

    with_ = producer

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Producer]:
        """A producer for the block, inside ``producer.transaction()``."""
        with self.producer() as producer, producer.transaction():
            yield producer

    def _checkout(self) -> _Slot:
        owner = _owner()
        deadline: float | None = None
        with self._cond:
            while True:
                if self._shut_down:
                    raise ConnectionPoolClosedError(
                        f"the connection pool {self!r} is shut down: no producer can be lent; "
                        "build a new ConnectionPool to produce again"
                    )
                held = self._lent.get(owner)
                if held is not None:
                    held.depth += 1
                    return held
                if self._idle:
                    slot = self._idle.pop()
                    return self._lend(slot, owner)
                if len(self._slots) + len(self._reserved) < self._size:
                    index = self._free_index()
                    self._reserved.add(index)
                    generation = self._generation
                    break
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout / 1000.0
                remaining = deadline - now
                if remaining <= 0:
                    raise ConnectionPoolTimeoutError(
                        f"no producer came back to the connection pool within {self._timeout} "
                        f"ms (size {self._size}, all lent out)"
                    )
                self._cond.wait(remaining)
        # build outside the lock: configure is user code
        try:
            producer = self._build(index)
        except BaseException:
            with self._cond:
                self._reserved.discard(index)
                self._cond.notify()
            raise
        with self._cond:
            self._reserved.discard(index)
            slot = _Slot(producer, index, generation)
            self._slots[index] = slot
            return self._lend(slot, owner)

    def _lend(self, slot: _Slot, owner: tuple[int, int]) -> _Slot:
        slot.owner = owner
        slot.depth = 1
        self._lent[owner] = slot
        return slot

    def _free_index(self) -> int:
        index = 1
        while index in self._slots or index in self._reserved:
            index += 1
        return index

    def _build(self, index: int) -> Producer:
        configure = self._configure
        if self._with_index:
            return Producer(lambda config: configure(config, index))
        return Producer(lambda config: configure(config))

    def _checkin(self, slot: _Slot) -> None:
        retire = False
        with self._cond:
            slot.depth -= 1
            if slot.depth > 0:
                return
            if slot.owner is not None and self._lent.get(slot.owner) is slot:
                del self._lent[slot.owner]
            slot.owner = None
            if (
                self._shut_down
                or slot.generation != self._generation
                or not slot.producer.status.active
            ):
                # shut down or reloaded while lent out, or closed by its user: drop it
                if self._slots.get(slot.index) is slot:
                    del self._slots[slot.index]
                retire = True
            else:
                self._idle.append(slot)
            self._cond.notify()
        if retire:
            self._close(slot.producer, self._force_close)

    # --- shutdown and reload ---------------------------------------------------------------------

    _force_close = False

    @staticmethod
    def _close(producer: Producer, force: bool) -> None:
        if producer.status.active:
            producer.close(force=force)

    def _take_idle(self) -> list[_Slot]:
        """Remove the idle producers from the pool (caller holds the lock)."""
        idle, self._idle = self._idle, []
        for slot in idle:
            if self._slots.get(slot.index) is slot:
                del self._slots[slot.index]
        return idle

    def shutdown(self, force: bool = False) -> None:
        """Close every producer: the idle ones now, each lent one when it comes back.

        Graceful by default (``close()`` delivers what they hold); ``force=True`` uses
        ``close(force=True)``. The pool lends nothing afterwards. A second call does nothing.
        """
        with self._cond:
            if self._shut_down:
                return
            self._shut_down = True
            self._force_close = force
            idle = self._take_idle()
            self._cond.notify_all()
        _POOLS.discard(self)
        self._close_all(idle, force)
        _class_monitor.instrument(ev.CONNECTION_POOL_SHUTDOWN, pool=self)

    close = shutdown

    def reload(self) -> None:
        """Close every producer (gracefully) and build new ones on demand.

        Idle producers are closed now; one lent out is closed when it comes back, and the
        next checkout gets a new producer built with ``configure``.
        """
        with self._cond:
            if self._shut_down:
                raise ConnectionPoolClosedError(
                    f"the connection pool {self!r} is shut down: there is nothing to reload; "
                    "build a new ConnectionPool instead"
                )
            self._generation += 1
            idle = self._take_idle()
            self._cond.notify_all()
        self._close_all(idle, False)
        _class_monitor.instrument(ev.CONNECTION_POOL_RELOADED, pool=self)

    def _close_all(self, slots: list[_Slot], force: bool) -> None:
        first: BaseException | None = None
        for slot in slots:
            try:
                self._close(slot.producer, force)
            except Exception as error:  # noqa: BLE001 - close the others, then report
                if first is None:
                    first = error
        if first is not None:
            raise first

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        # no lock: a repr never blocks
        state = " shut_down" if self._shut_down else ""
        return (
            f"<waterdrop.ConnectionPool size={self._size} timeout={self._timeout} "
            f"built={len(self._slots)} idle={len(self._idle)}{state}>"
        )

    # --- the process-wide pool -------------------------------------------------------------------

    @classmethod
    def setup(
        cls,
        size: int = 5,
        timeout: int = 5_000,
        configure: Callable[..., Any] | None = None,
    ) -> ConnectionPool:
        """Create the process-wide pool (see ``waterdrop.connection_pool``) and return it.

        A pool set up before is shut down (gracefully) and replaced.
        """
        return setup(size=size, timeout=timeout, configure=configure, pool_class=cls)


# --- module-level helpers over the process-wide pool ----------------------------------------------

_GLOBAL_LOCK = threading.Lock()
_GLOBAL: list[ConnectionPool | None] = [None]


def setup(
    size: int = 5,
    timeout: int = 5_000,
    configure: Callable[..., Any] | None = None,
    *,
    pool_class: type[ConnectionPool] = ConnectionPool,
) -> ConnectionPool:
    """Create the process-wide pool; emits ``connection_pool.setup``."""
    new = pool_class(size=size, timeout=timeout, configure=configure)
    with _GLOBAL_LOCK:
        old, _GLOBAL[0] = _GLOBAL[0], new
    if old is not None and old is not new:
        old.shutdown()
    _class_monitor.instrument(ev.CONNECTION_POOL_SETUP, pool=new, size=size, timeout=timeout)
    return new


def pool() -> ConnectionPool | None:
    """The process-wide pool, or None before ``setup`` (WaterDrop's ``WaterDrop.pool``)."""
    return _GLOBAL[0]


def active() -> bool:
    """True while a process-wide pool is set up."""
    return _GLOBAL[0] is not None


def _required() -> ConnectionPool:
    current = _GLOBAL[0]
    if current is None:
        raise RuntimeError(_NO_GLOBAL_POOL)
    return current


@contextlib.contextmanager
def with_producer() -> Iterator[Producer]:
    """``with with_producer() as producer:``: a producer from the process-wide pool.

    RuntimeError when no pool was set up (WaterDrop's ``WaterDrop.with``).
    """
    with _required().producer() as producer:
        yield producer


@contextlib.contextmanager
def transaction() -> Iterator[Producer]:
    """A producer from the process-wide pool, inside its ``transaction()``."""
    with _required().transaction() as producer:
        yield producer


def stats() -> dict[str, int] | None:
    """The process-wide pool's ``stats()``, or None without one."""
    current = _GLOBAL[0]
    return None if current is None else current.stats()


def shutdown(force: bool = False) -> None:
    """Shut the process-wide pool down and forget it (no-op without one).

    ``connection_pool.shutdown`` is emitted once, by the pool itself.
    """
    with _GLOBAL_LOCK:
        current, _GLOBAL[0] = _GLOBAL[0], None
    if current is not None:
        current.shutdown(force=force)


close = shutdown


def reload() -> None:
    """Reload the process-wide pool (no-op without one); emits ``connection_pool.reloaded``
    from the pool, then ``connection_pool.reload``."""
    current = _GLOBAL[0]
    if current is None:
        return
    current.reload()
    _class_monitor.instrument(ev.CONNECTION_POOL_RELOAD, pool=current)


# --- fork ----------------------------------------------------------------------------------------


def _after_fork_in_child() -> None:
    """A child starts with empty pools: the parent's producers (and any lock a parent thread
    held at fork time) are forgotten, never closed; new producers are built on demand."""
    global _GLOBAL_LOCK
    _GLOBAL_LOCK = threading.Lock()
    for each in list(_POOLS):
        shut_down = each._shut_down
        each._init_state()
        each._shut_down = shut_down


if hasattr(os, "register_at_fork"):  # POSIX only: Windows has no fork, so no child to reset
    os.register_at_fork(after_in_child=_after_fork_in_child)
