"""The Producer: WaterDrop's lifecycle and dispatch semantics over the Cython client."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from waterdrop import _core
from waterdrop import config as _config
from waterdrop.contracts import config as _config_contract
from waterdrop.contracts.messages import TOMBSTONE
from waterdrop.errors import (
    KafkaError,
    MessageInvalidError,
    ProduceError,
    ProduceManyError,
    ProducerAlreadyConfiguredError,
    ProducerClosedError,
    ProducerNotConfiguredError,
    ProducerUsedInParentProcessError,
    WaitTimeoutError,
)
from waterdrop.producer.status import Status

__all__ = ["Producer", "Status", "Tags"]

_FLOW_ERRORS = (KafkaError, WaitTimeoutError)
_LIVE: "weakref.WeakSet[Producer]" = weakref.WeakSet()


class Tags:
    """Free-form tags for instrumentation (``tags.add("name", value)``)."""

    def __init__(self) -> None:
        self._tags: dict[str, Any] = {}

    def add(self, name: str, value: Any) -> None:
        self._tags[name] = value

    def delete(self, name: str) -> None:
        self._tags.pop(name, None)

    def clear(self) -> None:
        self._tags.clear()

    def to_list(self) -> list[Any]:
        return list(dict.fromkeys(self._tags.values()))

    def __iter__(self) -> Any:
        return iter(self.to_list())


class Producer:
    """A Kafka producer with WaterDrop's semantics.

    ``Producer()`` then ``setup(...)``, or ``Producer(**settings)``, or
    ``Producer(configure)`` where ``configure(config)`` sets attributes on the config.
    """

    def __init__(self, configure: Callable[[Any], Any] | None = None, /, **settings: Any) -> None:
        self.id: str | None = None
        self.config: _config.Config | None = None
        self.monitor: Any = None
        self.tags = Tags()
        self._status = Status.INITIAL
        self._client: Any = None
        self._client_pid = 0
        self._max_payload = 1_000_012
        self._max_wait = 180_000
        self._middleware: Any = None
        self._messages: list[dict[str, Any]] = []
        self._buffer_lock = threading.Lock()
        self._connect_lock = threading.RLock()
        self._close_lock = threading.RLock()
        from waterdrop.instrumentation.global_monitor import monitor as class_monitor

        class_monitor.instrument("producer.created", producer=self, producer_id=None)
        if configure is not None or settings:
            self.setup(configure, **settings)

    # --- configuration ---------------------------------------------------------------------------

    def setup(self, configure: Callable[[Any], Any] | None = None, /, **settings: Any) -> Producer:
        """Configure once; ProducerAlreadyConfiguredError on a second call."""
        if self._status is not Status.INITIAL:
            raise ProducerAlreadyConfiguredError(self.id)
        config = _config.Config()
        if configure is not None:
            if not callable(configure):
                raise TypeError("setup() takes a configure(config) callable or keyword settings")
            configure(config)
        for name, value in settings.items():
            if name == "oauth" and isinstance(value, Mapping):
                for key, val in value.items():
                    setattr(config.oauth, key, val)
                continue
            setattr(config, name, value)
        given_kafka = config.kafka
        _config.resolve(config)
        # The user's own dict must be non-empty: WaterDrop's defaults merged under an empty
        # one would build a client with no bootstrap.servers that never connects.
        _config_contract.validate(config.as_dict(), given_kafka=given_kafka)
        if config.deliver is False and config.client_class is _default_client_class():
            from waterdrop.clients import Dummy

            config.client_class = Dummy
        self.config = config
        self.id = config.id
        self.monitor = config.monitor
        self._middleware = config.middleware
        self._max_payload = int(config.max_payload_size)
        self._max_wait = int(config.max_wait_timeout)
        self._status = Status.CONFIGURED
        _LIVE.add(self)
        from waterdrop.instrumentation.global_monitor import monitor as class_monitor

        class_monitor.instrument(
            "producer.configured", producer=self, producer_id=self.id, config=config
        )
        return self

    @property
    def status(self) -> Status:
        return self._status

    @property
    def middleware(self) -> Any:
        return self._middleware

    @property
    def messages(self) -> tuple[dict[str, Any], ...]:
        """The internal buffer (read-only view)."""
        return tuple(self._messages)

    @property
    def transactional(self) -> bool:
        return bool(self.config and "transactional.id" in self.config.kafka)

    @property
    def idempotent(self) -> bool:
        if self.transactional:
            return True
        value = self.config.kafka.get("enable.idempotence", False) if self.config else False
        return value is True or str(value).lower() == "true"

    @property
    def in_transaction(self) -> bool:
        return False

    @property
    def queue_size(self) -> int:
        """Messages queued or in flight in librdkafka (not the internal buffer)."""
        client = self._client
        if client is None or self._status is not Status.CONNECTED:
            return 0
        return client.queue_length

    queue_length = queue_size

    @property
    def client(self) -> Any:
        """The client (built on first use): ``Buffered`` keeps ``.messages`` here."""
        return self._get_client()

    def partition_count(self, topic: str) -> int:
        """Partitions of ``topic`` (cached 30 s); builds the client if needed."""
        return self._get_client().partition_count(topic)

    # --- the client ------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        client = self._client
        if client is not None and self._client_pid == _PID[0]:
            return client
        return self._connect()

    def _connect(self) -> Any:
        with self._connect_lock:
            status = self._status
            if status is Status.INITIAL:
                raise ProducerNotConfiguredError(self.id)
            if status is Status.CLOSING or status is Status.CLOSED:
                raise ProducerClosedError(self.id)
            if self._client is not None:
                if self._client_pid == _PID[0]:
                    return self._client
                # built before fork(): never touch it here
                self._client = None
                raise ProducerUsedInParentProcessError(os.getpid())
            assert self.config is not None
            client = self.config.client_class(self)
            self._client = client
            self._client_pid = _PID[0]
            self._status = Status.CONNECTED
            self.monitor.instrument("producer.connected", producer_id=self.id)
            return client

    # --- dispatch --------------------------------------------------------------------------------

    def produce_async(self, message: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """Enqueue one message; return its DeliveryHandle without waiting."""
        if message is None:
            message = fields
        client = self._client
        if client is None or self._client_pid != _PID[0]:
            client = self._connect()
        if self._middleware:
            message = self._middleware.run(dict(message))
        monitor = self.monitor
        start = time.monotonic() if monitor.listening("message.produced_async") else 0.0
        try:
            handle = client.produce(message, self._max_payload, None, self._max_wait)
        except KafkaError as error:
            if error.code == "queue_full" and self.config.wait_on_queue_full:
                handle = self._produce_when_queue_full(
                    client, message, error, "message.produce_async"
                )
            else:
                raise self._produce_error(message, error, "message.produce_async") from error
        if start:
            monitor.instrument(
                "message.produced_async",
                producer_id=self.id,
                message=message,
                time=(time.monotonic() - start) * 1000.0,
            )
        return handle

    def produce_sync(self, message: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """Send one message and wait for the broker's acknowledgement; return the report."""
        if message is None:
            message = fields
        client = self._get_client()
        if self._middleware:
            message = self._middleware.run(dict(message))
        monitor = self.monitor
        start = time.monotonic()
        try:
            try:
                handle = client.produce(message, self._max_payload, None, self._max_wait)
            except KafkaError as error:
                if error.code != "queue_full" or not self.config.wait_on_queue_full:
                    raise
                handle = self._produce_when_queue_full(
                    client, message, error, "message.produce_sync"
                )
            report = handle.wait(self._max_wait, True)
        except _FLOW_ERRORS as error:
            raise self._produce_error(message, error, "message.produce_sync") from error
        if monitor.listening("message.produced_sync"):
            monitor.instrument(
                "message.produced_sync",
                producer_id=self.id,
                message=message,
                time=(time.monotonic() - start) * 1000.0,
            )
        return report

    def produce_many_async(self, messages: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Validate every message, enqueue them all; return their handles."""
        return self._produce_many(messages, "produce_many_async")

    def produce_many_sync(self, messages: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Send every message and wait for all of them; return their (final) handles."""
        return self._produce_many(messages, "produce_many_sync")

    def _produce_many(self, messages: Iterable[Mapping[str, Any]], method: str) -> list[Any]:
        sync = method == "produce_many_sync"
        batch = messages if type(messages) is list else list(messages)
        client = self._get_client()
        if self._middleware:
            batch = self._middleware.run_many([dict(m) for m in batch])
        start = time.monotonic()
        dispatched: list[Any] = []
        try:
            handles = self._dispatch_many(client, batch, method, dispatched)
            if sync:
                for handle in handles:
                    handle.wait(self._max_wait, True)
        except _FLOW_ERRORS as error:
            if sync:
                for handle in dispatched:
                    try:
                        handle.wait(self._max_wait, False)
                    except WaitTimeoutError:
                        pass
            wrapped = ProduceManyError(dispatched, repr(error), cause=error)
            self.monitor.instrument(
                "error.occurred",
                producer_id=self.id,
                messages=batch,
                dispatched=dispatched,
                error=wrapped,
                type=f"messages.{method}",
            )
            raise wrapped from error
        event = "messages.produced_sync" if sync else "messages.produced_async"
        if self.monitor.listening(event):
            self.monitor.instrument(
                event,
                producer_id=self.id,
                messages=batch,
                time=(time.monotonic() - start) * 1000.0,
            )
        return handles

    def _dispatch_many(
        self, client: Any, batch: list[Any], method: str, dispatched: list[Any]
    ) -> list[Any]:
        """Enqueue ``batch``; on queue_full wait and continue with what was not enqueued."""
        remaining = batch
        deadline = None
        while True:
            try:
                handles = client.produce_many(remaining, self._max_payload, None, self._max_wait)
            except KafkaError as error:
                done = getattr(error, "dispatched", [])
                dispatched.extend(done)
                if error.code != "queue_full" or not self.config.wait_on_queue_full:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.config.wait_timeout_on_queue_full / 1000.0
                if now >= deadline:
                    raise
                self._queue_full_wait(remaining[len(done)], error, f"message.{method}")
                remaining = remaining[len(done):]
                continue
            if not dispatched:
                return handles
            dispatched.extend(handles)
            return dispatched

    def _produce_when_queue_full(
        self, client: Any, message: Any, error: KafkaError, error_type: str
    ) -> Any:
        """WaterDrop's queue-full policy: back off and retry until the wait budget is spent."""
        deadline = time.monotonic() + self.config.wait_timeout_on_queue_full / 1000.0
        while True:
            if time.monotonic() >= deadline:
                raise self._produce_error(message, error, error_type) from error
            self._queue_full_wait(message, error, error_type)
            try:
                return client.produce(message, self._max_payload, None, self._max_wait)
            except KafkaError as retry_error:
                if retry_error.code != "queue_full":
                    raise self._produce_error(message, retry_error, error_type) from retry_error
                error = retry_error

    def _queue_full_wait(self, message: Any, error: KafkaError, error_type: str) -> None:
        if self.config.instrument_on_wait_queue_full and self.monitor.listening("error.occurred"):
            self.monitor.instrument(
                "error.occurred",
                producer_id=self.id,
                message=message,
                error=ProduceError(repr(error), cause=error),
                type=error_type,
            )
        time.sleep(self.config.wait_backoff_on_queue_full / 1000.0)

    def _produce_error(self, message: Any, error: BaseException, error_type: str) -> ProduceError:
        wrapped = ProduceError(repr(error), cause=error)
        self.monitor.instrument(
            "error.occurred", producer_id=self.id, message=message, error=wrapped, type=error_type
        )
        return wrapped

    # --- tombstones ------------------------------------------------------------------------------

    @staticmethod
    def _tombstone(message: Mapping[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
        data = dict(message if message is not None else fields)
        errors: dict[str, str] = {}
        key = data.get("key")
        if "key" not in data:
            errors["key"] = TOMBSTONE["missing"]
        elif not isinstance(key, (str, bytes)) or not key:
            errors["key"] = TOMBSTONE["key_format"]
        partition = data.get("partition")
        if "partition" not in data:
            errors["partition"] = TOMBSTONE["missing"]
        elif type(partition) is not int or partition < 0:
            errors["partition"] = TOMBSTONE["partition_format"]
        if errors:
            raise MessageInvalidError(errors)
        data["payload"] = None
        return data

    def tombstone_sync(self, message: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """Delete ``key`` on a compacted topic: a null payload to an explicit partition."""
        return self.produce_sync(self._tombstone(message, fields))

    def tombstone_async(self, message: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        return self.produce_async(self._tombstone(message, fields))

    def tombstone_many_sync(self, messages: Iterable[Mapping[str, Any]]) -> list[Any]:
        return self.produce_many_sync([self._tombstone(m, {}) for m in messages])

    def tombstone_many_async(self, messages: Iterable[Mapping[str, Any]]) -> list[Any]:
        return self.produce_many_async([self._tombstone(m, {}) for m in messages])

    # --- shutdown --------------------------------------------------------------------------------

    def close(self, force: bool = False) -> None:
        """Deliver what is queued (up to max_wait_timeout), then release the client.

        ``force=True`` purges what is still undelivered after the wait: those handles resolve
        with purge_queue / purge_inflight errors. Closing an unconfigured or closed producer
        does nothing.
        """
        with self._close_lock:
            if not self._status.active:
                return
            start = time.monotonic()
            self._status = Status.CLOSING
            self.monitor.instrument("producer.closing", producer_id=self.id)
            client = self._client
            self._client = None
            if client is not None:
                if self._client_pid == _PID[0]:
                    client.close(self._max_wait, force)
                elif hasattr(client, "abandon"):
                    client.abandon()
            self._status = Status.CLOSED
            _LIVE.discard(self)
            if self.monitor.listening("producer.closed"):
                self.monitor.instrument(
                    "producer.closed",
                    producer_id=self.id,
                    time=(time.monotonic() - start) * 1000.0,
                )

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<waterdrop.Producer id={self.id!r} status={self._status.value} "
            f"buffer_size={len(self._messages)}>"
        )


def _default_client_class() -> Any:
    from waterdrop.clients import Rdkafka

    return Rdkafka


# The pid that built each client: a forked child sees a different one and never touches the
# parent's librdkafka handle (its threads do not exist in the child).
_PID = [os.getpid()]


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_all_at_exit() -> None:
    for producer in list(_LIVE):
        try:
            if producer._client_pid == _PID[0]:
                producer.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: best effort
            pass


import atexit  # noqa: E402

atexit.register(_close_all_at_exit)
