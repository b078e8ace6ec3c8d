"""The Producer: WaterDrop's lifecycle and dispatch semantics over the Cython client."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Unpack, overload

from waterdrop import config as _config
from waterdrop import _core
from waterdrop._core import DeliveryHandle, DeliveryReport, ProducerBase
from waterdrop.contracts import config as _config_contract
from waterdrop.contracts import variant as _variant_contract
from waterdrop.contracts import wording
from waterdrop.contracts.wording import TOMBSTONE
from waterdrop.errors import (
    ClusterUnreachableError,
    KafkaError,
    MessageInvalidError,
    ProduceError,
    ProduceManyError,
    ProducerAlreadyConfiguredError,
    ProducerClosedError,
    ProducerNotConfiguredError,
    ProducerUsedInParentProcessError,
    StatusInvalidError,
    WaitTimeoutError,
)
from waterdrop.instrumentation import events as ev
from waterdrop.instrumentation.monitor import Monitor
from waterdrop.instrumentation.payloads import produced_async, produced_sync
from waterdrop.producer._internal import IDEMPOTENT, Batch, ReloadPolicy, one_message
from waterdrop.producer.status import Status
from waterdrop.producer.variant import CURRENT_VARIANT, Variant
from waterdrop.types import Headers, Key, Message, Payload, Timestamp, Tombstone

__all__ = ["Producer", "Status", "Tags", "Variant"]

_FLOW_ERRORS = (KafkaError, WaitTimeoutError)
_CLOSED_STATES = (Status.CLOSING, Status.CLOSED)
_LIVE: weakref.WeakSet[Producer] = weakref.WeakSet()

# The pid that built each client: a forked child sees another one and never touches the
# parent's librdkafka handle (its threads do not exist in the child).
_PID = [os.getpid()]


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

    def __repr__(self) -> str:
        return f"<Tags {self._tags!r}>"


class Producer(ProducerBase):
    """A Kafka producer with WaterDrop's semantics.

    ``Producer()`` then ``setup(...)``, or ``Producer(**settings)``, or
    ``Producer(configure)`` where ``configure(config)`` sets attributes on the config.
    """

    def __init__(
        self, configure: Callable[[_config.Config], object] | None = None, /,
        **settings: Unpack[_config.Settings],
    ) -> None:
        self.id: str | None = None
        self.config: _config.Config | None = None
        # config.monitor once configured. None before setup(), which its type does not say:
        # typed Monitor so that listeners and decorators are checked (an unconfigured
        # producer refuses every other use anyway).
        self.monitor: Monitor = None  # type: ignore[assignment]
        self.tags = Tags()
        self._status = Status.INITIAL
        self._client: Any = None
        self._client_pid = 0
        self._max_payload = _config.DEFAULT_MAX_PAYLOAD_SIZE
        self._middleware: Any = None
        self._middleware_steps: list[Any] = []
        self._default_variant: Variant | None = None
        self._messages: list[Any] = []
        self._buffer_lock = threading.Lock()
        self._connect_lock = threading.RLock()
        self._close_lock = threading.RLock()
        self._transaction_lock = threading.RLock()
        self._transaction_owner: int | None = None
        self._transaction_first_handle: Any = None
        self._transaction_fatal_attempts = 0
        self._transactional = False
        frame = sys._getframe(1)
        self._created_at = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        from waterdrop.instrumentation.global_monitor import monitor as class_monitor

        class_monitor.instrument(ev.PRODUCER_CREATED, producer=self, producer_id=None)
        if configure is not None or settings:
            self.setup(configure, **settings)

    # --- configuration ---------------------------------------------------------------------------

    def setup(
        self, configure: Callable[[_config.Config], object] | None = None, /,
        **settings: Unpack[_config.Settings],
    ) -> Producer:
        """Configure once; ProducerAlreadyConfiguredError on a second call.

        ``configure(config)`` sets attributes on a ``Config``; the keyword settings (typed by
        ``waterdrop.config.Settings``) are set after it. Both are checked together.
        """
        if self._status is not Status.INITIAL:
            raise ProducerAlreadyConfiguredError(self.id)
        config = _config.Config()
        if configure is not None:
            if not callable(configure):
                raise TypeError("setup() takes a configure(config) callable or keyword settings")
            configure(config)
        for name, value in settings.items():
            if name == "oauth":
                if isinstance(value, Mapping):
                    for key, val in value.items():
                        setattr(config.oauth, key, val)
                else:
                    config.oauth = value  # refused by the contract below
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
        self._middleware_steps = getattr(config.middleware, "steps", [config.middleware])
        self._max_payload = int(config.max_payload_size)
        self._default_variant = Variant(self, default=True)
        self._transactional = "transactional.id" in config.kafka
        if config.idle_disconnect_timeout:
            from waterdrop.instrumentation.idle_disconnector import IdleDisconnectorListener

            self.monitor.subscribe(
                IdleDisconnectorListener(self, disconnect_timeout=config.idle_disconnect_timeout)
            )
        self._status = Status.CONFIGURED
        _LIVE.add(self)
        from waterdrop.instrumentation.global_monitor import monitor as class_monitor

        class_monitor.instrument(
            ev.PRODUCER_CONFIGURED, producer=self, producer_id=self.id, config=config
        )
        return self

    @property
    def status(self) -> Status:
        """The lifecycle state: ``INITIAL``, ``CONFIGURED``, ``CONNECTED``, ... ``CLOSED``."""
        return self._status

    @property
    def middleware(self) -> Any:
        """The middleware chain: ``append(step)``, ``prepend(step)``; message in, message out."""
        return self._middleware

    @property
    def messages(self) -> tuple[Message, ...]:
        """The internal buffer (a read-only snapshot)."""
        return tuple(self._messages)

    @property
    def transactional(self) -> bool:
        """Whether the ``kafka`` settings have a ``transactional.id``."""
        return bool(self.config and "transactional.id" in self.config.kafka)

    @property
    def idempotent(self) -> bool:
        """Whether the producer is idempotent (``enable.idempotence``, or transactional)."""
        if self.transactional:
            return True
        value = self.config.kafka.get("enable.idempotence", False) if self.config else False
        return value is True or str(value).lower() == "true"

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside this producer's ``transaction()`` block."""
        return self._transaction_owner == threading.get_ident()

    @property
    def current_variant(self) -> Variant | None:
        """The variant active in this thread or asyncio task (the default one outside)."""
        variant = CURRENT_VARIANT.get()
        if variant is not None and variant.producer is self:
            return variant
        return self._default_variant

    def variant(
        self, topic_config: dict[str, Any] | None = None, max_wait_timeout: int | None = None
    ) -> Variant:
        """This producer with other per-topic settings (acks, compression, timeouts...).

        Shares the client, its connections and the buffer. VariantInvalidError for settings
        that cannot be set per topic.
        """
        self._ensure_active()
        assert self.config is not None
        wait = self.config.max_wait_timeout if max_wait_timeout is None else max_wait_timeout
        _variant_contract.validate(
            topic_config if topic_config is not None else {},
            wait,
            idempotent=self.idempotent,
            transactional=self.transactional,
        )
        return Variant(self, topic_config, wait)

    with_ = variant

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
        """Partitions of ``topic`` (cached 30 s; -1 if unknown); builds the client if needed."""
        return self._get_client().partition_count(topic)

    def ping(self, max_wait_timeout: int = 10_000) -> int:
        """Wait until a broker answers a metadata request; the number of brokers it names.

        A startup check: it builds the client if needed (so settings librdkafka only judges
        together fail here too) and raises ClusterUnreachableError, naming the bootstrap
        servers and librdkafka's last cause ("Connection refused"), when no broker answers
        within ``max_wait_timeout`` ms. A refused connection is retried until then: a broker
        that is still starting counts once it answers. The test clients answer 0 at once.
        """
        if not isinstance(max_wait_timeout, int) or isinstance(max_wait_timeout, bool):
            raise TypeError(
                f"max_wait_timeout must be an int (milliseconds), not {max_wait_timeout!r}")
        if max_wait_timeout < 0:
            raise ValueError(f"max_wait_timeout must be >= 0 ms, not {max_wait_timeout}")
        kafka = self.config.kafka if self.config is not None else {}
        servers = str(kafka.get("bootstrap.servers") or kafka.get("metadata.broker.list") or "")
        try:
            # a transactional client is built with init_transactions, which waits for the
            # cluster too: within ping's timeout, not max_wait_timeout
            client = self._get_client() if self._client is not None else self._connect(
                init_timeout_ms=max_wait_timeout if self._transactional else None)
        except KafkaError as error:
            if not self._transactional or error.fatal:
                raise
            raise ClusterUnreachableError(
                servers, max_wait_timeout, _init_failure_cause(error)) from None
        ping = getattr(client, "ping", None)
        if ping is None:
            raise NotImplementedError(
                f"{type(client).__name__} (client_class) has no ping(timeout_ms)")
        brokers = ping(max_wait_timeout)
        if brokers >= 0:
            return int(brokers)
        raise ClusterUnreachableError(servers, max_wait_timeout, _unreachable_cause(client))

    # --- the client ------------------------------------------------------------------------------

    def _ensure_active(self) -> None:
        status = self._status
        if status.active:
            return
        if status is Status.INITIAL:
            raise ProducerNotConfiguredError(self.id)
        if status in _CLOSED_STATES:
            raise ProducerClosedError(self.id)
        raise StatusInvalidError(self.id, status.value)

    def _get_client(self) -> Any:
        client = self._client
        if client is not None and self._client_pid == _PID[0]:
            return client
        return self._connect()

    def _connect(self, init_timeout_ms: int | None = None) -> Any:
        """The client for this process, built first if need be. ``init_timeout_ms``: bound a
        transactional client's init_transactions below max_wait_timeout (ping's timeout)."""
        with self._connect_lock:
            status = self._status
            if status is Status.INITIAL:
                raise ProducerNotConfiguredError(self.id)
            if status in _CLOSED_STATES and not self._closing_here():
                raise ProducerClosedError(self.id)
            if self._client is not None:
                if self._client_pid == _PID[0]:
                    return self._client
                # built before fork(): forget it without touching it
                client, self._client = self._client, None
                if hasattr(client, "abandon"):
                    client.abandon()
                self._status = Status.CONFIGURED
                raise ProducerUsedInParentProcessError(os.getpid(), self.id, self._client_pid)
            assert self.config is not None
            if init_timeout_ms is not None and self.config.client_class is _default_client_class():
                client = self.config.client_class(self, init_timeout_ms=init_timeout_ms)
            else:
                client = self.config.client_class(self)
            if type(client) is _core.Client and type(self.monitor) is Monitor:
                # the core then skips the per-batch delivery callback while nobody listens
                client.delivery_monitor = self.monitor
            self._client = client
            self._client_pid = _PID[0]
            if self._status is not Status.CLOSING:
                self._status = Status.CONNECTED
            self.monitor.instrument(ev.PRODUCER_CONNECTED, producer_id=self.id)
            return client

    def _closing_here(self) -> bool:
        """True on the thread that runs close(): its final buffer flush may still dispatch."""
        return self._status is Status.CLOSING and self._closer == threading.get_ident()

    _closer: int | None = None
    _interrupted_close = False

    # --- dispatch --------------------------------------------------------------------------------

    def _produce_async_in_transaction(self, message: Any) -> Any:
        """A transactional producer's dispatch outside a block: its own transaction."""
        self._check_messages([message])
        with self.transaction():
            return self.produce_async(message)

    def _check_messages(self, messages: Iterable[Any], batch: bool = False) -> None:
        """Refuse an invalid message before anything is done for it (a transaction opened, a
        thread handed the dispatch), as WaterDrop validates first. With middleware, validation
        runs after the middleware, at dispatch. ``batch``: the messages of a batch method (the
        error names the invalid one's index)."""
        if self._middleware_steps:
            return
        for index, message in enumerate(messages):
            errors = _core.check_message(message, self._max_payload)
            if errors:
                raise MessageInvalidError(errors, index if batch else None)

    # produce_async and produce_sync are ProducerBase's, in the core; these are their general
    # paths (hooks the base declares): middleware, transactions, mappings other than dict.
    def _produce_async_slow(self, message: Mapping[str, Any]) -> DeliveryHandle:
        if self._transactional and self._transaction_owner != threading.get_ident():
            return self._produce_async_in_transaction(message)
        variant = self.current_variant
        if variant is None:
            raise ProducerNotConfiguredError(self.id)
        start = time.monotonic()
        message, handle = self._enqueue(message, variant, "message.produce_async")
        if self.monitor.listening(ev.MESSAGE_PRODUCED_ASYNC):
            self.monitor.instrument(
                ev.MESSAGE_PRODUCED_ASYNC, **produced_async(self.id, message, handle, start))
        return handle

    def _produce_sync_slow(self, message: Mapping[str, Any]) -> DeliveryReport:
        variant = self.current_variant
        if variant is None:
            raise ProducerNotConfiguredError(self.id)
        start = time.monotonic()
        if self._transactional and self._transaction_owner != threading.get_ident():
            self._check_messages([message])
            with self.transaction():
                message, handle = self._enqueue(message, variant, "message.produce_sync")
        else:
            message, handle = self._enqueue(message, variant, "message.produce_sync")
        try:
            report = handle.wait(variant.max_wait_timeout, True)
        except _FLOW_ERRORS as error:
            raise self._produce_error(message, error, "message.produce_sync") from error
        if self.monitor.listening(ev.MESSAGE_PRODUCED_SYNC):
            self.monitor.instrument(
                ev.MESSAGE_PRODUCED_SYNC, **produced_sync(self.id, message, report, start))
        return report

    def _enqueue(self, message: Any, variant: Variant, error_type: str) -> tuple[Any, Any]:
        """Middleware, then one produce with the retry policies; (message, handle)."""
        client = self._get_client()
        if self._middleware:
            message = self._middleware.run(dict(message))
        try:
            handle = client.produce(message, self._max_payload, variant.conf_key,
                                    variant.max_wait_timeout)
        except (KafkaError, ProducerClosedError) as error:
            handle = self._dispatch_retrying(message, variant, error, error_type)
        if self._transactional and self._transaction_first_handle is None:
            self._transaction_first_handle = handle
        return message, handle

    def _dispatch_retrying(
        self, message: Any, variant: Variant, error: BaseException, error_type: str
    ) -> Any:
        """The slow path of a single dispatch: WaterDrop's queue-full wait, idempotent reload,
        and a transparent retry when a concurrent disconnect closed the client under us."""
        deadline: float | None = None
        attempts = 0
        while True:
            if isinstance(error, ProducerClosedError):
                if self._status in _CLOSED_STATES or self._status is Status.INITIAL:
                    raise error
            elif isinstance(error, KafkaError):
                if error.code == "queue_full" and self.config.wait_on_queue_full:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.config.wait_timeout_on_queue_full / 1000.0
                    if now >= deadline:
                        raise self._produce_error(message, error, error_type) from error
                    self._queue_full_wait(message, error, error_type)
                elif self._idempotent_reloadable(error, attempts + 1):
                    attempts += 1
                    self._reload_after_fatal(error, attempts, IDEMPOTENT)
                else:
                    raise self._produce_error(message, error, error_type) from error
            else:
                raise error
            client = self._get_client()
            try:
                return client.produce(message, self._max_payload, variant.conf_key,
                                      variant.max_wait_timeout)
            except (KafkaError, ProducerClosedError) as retry_error:
                error = retry_error

    def produce_many_async(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """Validate every message, enqueue them all; return their handles."""
        return self._produce_many(messages, False)

    def produce_many_sync(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """Send every message and wait for all of them; return their (final) handles."""
        return self._produce_many(messages, True)

    def _produce_many(self, messages: Iterable[Mapping[str, Any]], sync: bool) -> list[Any]:
        batch = messages if type(messages) is list else list(messages)
        variant = self.current_variant
        if variant is None:
            raise ProducerNotConfiguredError(self.id)
        client = self._get_client()
        many = self._batch(batch, variant, sync)
        dispatched: list[Any] = []
        try:
            if self._transactional and self._transaction_owner != threading.get_ident():
                self._check_messages(many.messages, batch=True)
                with self.transaction():
                    handles = many.dispatch(client, many.messages, dispatched)
            else:
                handles = many.dispatch(client, many.messages, dispatched)
            dispatched = handles
            many.sent(handles)
            if sync:
                for handle in handles:
                    handle.wait(variant.max_wait_timeout, True)
        except _FLOW_ERRORS as error:
            if sync:
                for handle in dispatched:
                    try:
                        handle.wait(variant.max_wait_timeout, False)
                    except WaitTimeoutError:
                        pass
            raise many.failed(dispatched, error) from error
        many.produced(handles)
        return handles

    def _batch(self, messages: list[Any], variant: Variant, sync: bool) -> Batch:
        """One ``produce_many_*`` call (middleware run over ``messages``): its dispatch and the
        policy around it, for this producer's wait or the asyncio producer's."""
        return Batch(self, messages, variant, sync)

    def _dispatch_many(
        self, client: Any, batch: list[Any], variant: Variant, method: str, dispatched: list[Any]
    ) -> list[Any]:
        """Enqueue ``batch``; on queue_full wait and continue with what was not enqueued."""
        remaining = batch
        deadline: float | None = None
        attempts = 0
        while True:
            try:
                handles = client.produce_many(
                    remaining, self._max_payload, variant.conf_key, variant.max_wait_timeout
                )
            except ProducerClosedError:
                if self._status in _CLOSED_STATES:
                    raise
                client = self._get_client()
                continue
            except KafkaError as error:
                dispatched.extend(getattr(error, "dispatched", ()))
                remaining = remaining[getattr(error, "index", 0):]
                if error.code == "queue_full" and self.config.wait_on_queue_full:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.config.wait_timeout_on_queue_full / 1000.0
                    if now >= deadline:
                        raise
                    self._queue_full_wait(remaining[0], error, f"message.{method}")
                    continue
                if self._idempotent_reloadable(error, attempts + 1):
                    attempts += 1
                    self._reload_after_fatal(error, attempts, IDEMPOTENT)
                    client = self._get_client()
                    continue
                raise
            if not dispatched:
                return handles
            dispatched.extend(handles)
            return dispatched

    def _queue_full_wait(self, message: Any, error: KafkaError, error_type: str) -> None:
        if self.config.instrument_on_wait_queue_full and self.monitor.listening(ev.ERROR_OCCURRED):
            self.monitor.instrument(
                ev.ERROR_OCCURRED,
                producer_id=self.id,
                message=message,
                error=ProduceError(repr(error), cause=error),
                type=error_type,
                retry=True,  # beyond WaterDrop's keys: this one is retried, not final
            )
        time.sleep(self.config.wait_backoff_on_queue_full / 1000.0)

    def _produce_error(self, message: Any, error: BaseException, error_type: str) -> ProduceError:
        wrapped = ProduceError(self._failure_text(error), cause=error)
        self.monitor.instrument(
            ev.ERROR_OCCURRED, producer_id=self.id, message=message, error=wrapped, type=error_type
        )
        return wrapped

    def _failure_text(self, error: BaseException) -> str:
        """A ProduceError's text: the cause as WaterDrop shows it (its repr), and for a message
        that timed out while librdkafka reached no broker, that fact, the servers and its last
        connection error (else the user sees only "Message timed out", minutes later)."""
        text = repr(error)
        if getattr(error, "code", None) != "msg_timed_out":
            return text
        errors = getattr(self._client, "recent_errors", ())
        if not errors or getattr(errors[-1], "code", None) not in _UNREACHABLE_CODES:
            return text
        kafka = self.config.kafka if self.config is not None else {}
        variant = self.current_variant
        return text + wording.TIMED_OUT_UNREACHABLE.format(
            servers=kafka.get("bootstrap.servers") or kafka.get("metadata.broker.list") or "?",
            cause=_unreachable_cause(self._client),
            timeout=_timeout_text({**kafka, **(variant.topic_config if variant else {})}),
        )

    # --- idempotent fatal-error recovery ----------------------------------------------------------

    def _idempotent_reloadable(self, error: KafkaError, attempt: int) -> bool:
        return bool(
            error.fatal
            and self.idempotent
            and not self.transactional
            and not self._closing_here()
            and IDEMPOTENT.allows(self.config, error, attempt)
        )

    def _reload_after_fatal(
        self, error: KafkaError, attempt: int, policy: ReloadPolicy = IDEMPOTENT
    ) -> None:
        """Rebuild the client after a fatal error, then back off (WaterDrop's ``reload!``).

        The one implementation for both policies (``IDEMPOTENT`` from a dispatch,
        ``TRANSACTION`` after a transaction ended on a librdkafka error): the caller decided
        that ``attempt`` is allowed. ``producer.reload`` / ``producer.reloaded`` (with
        ``buffer.purged``: the buffer is dropped, as WaterDrop's) around it; what the old
        client still queues is flushed or dropped as the policy says, its handles report it.
        """
        if policy.reported_as is not None:
            self.monitor.instrument(
                ev.ERROR_OCCURRED,
                producer_id=self.id,
                error=error,
                type=policy.reported_as,
                attempt=attempt,
            )
        with self._connect_lock:
            client = self._client
            if not policy.only_fatal_client or (
                client is not None and client.fatal_error() is not None
            ):
                self.monitor.instrument(
                    ev.PRODUCER_RELOAD, producer_id=self.id, error=error, attempt=attempt,
                    caller=self,
                )
                start = time.monotonic()
                self._client = None
                self._drop_buffer()
                if client is not None:
                    wait = self.current_variant.max_wait_timeout if policy.flushes else 0
                    client.close(wait, True)
                if self._status is Status.CONNECTED:
                    self._status = Status.CONFIGURED
                self.monitor.instrument(
                    ev.PRODUCER_RELOADED, producer_id=self.id, attempt=attempt,
                    time=(time.monotonic() - start) * 1000.0,
                )
        time.sleep(getattr(self.config, policy.backoff) / 1000.0)

    # --- tombstones ------------------------------------------------------------------------------

    @staticmethod
    def _tombstone(
        message: Tombstone | None, fields: dict[str, Any], method: str = "tombstone_sync"
    ) -> Message:
        given = one_message(method, message, fields)
        if not hasattr(given, "keys"):
            raise MessageInvalidError(wording.not_a_message(given, ("key", "partition")))
        data = dict(given)
        errors: dict[str, str] = {}
        key = data.get("key")
        if "key" not in data:
            errors["key"] = TOMBSTONE["missing"]
        elif not isinstance(key, (str, bytes)) or not key:
            errors["key"] = wording.key_reason(key)
        partition = data.get("partition")
        if "partition" not in data:
            errors["partition"] = TOMBSTONE["partition_missing"]
        elif type(partition) is not int or partition < 0:
            errors["partition"] = wording.partition_reason(partition, 0)
        if errors:
            raise MessageInvalidError(errors)
        data["payload"] = None
        return data  # type: ignore[return-value]  # checked above

    @classmethod
    def _tombstones(cls, messages: Iterable[Tombstone]) -> list[Message]:
        """``_tombstone`` of each message of a batch; the error names the invalid one's index."""
        batch = []
        for index, message in enumerate(messages):
            try:
                batch.append(cls._tombstone(message, {}))
            except MessageInvalidError as error:
                raise MessageInvalidError(error.errors, index) from None
        return batch

    @overload
    def tombstone_sync(self, message: Tombstone, /) -> DeliveryReport: ...
    @overload
    def tombstone_sync(
        self, *, topic: str, key: str | bytes, partition: int, timestamp: Timestamp = ...,
        headers: Headers | None = ..., label: Any = ...,
    ) -> DeliveryReport: ...
    def tombstone_sync(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Tombstone | None = None, /, **fields: Any
    ) -> DeliveryReport:
        """Delete ``key`` on a compacted topic: a null payload to an explicit partition."""
        return self.produce_sync(self._tombstone(message, fields))

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
        """Like ``tombstone_sync``, without waiting: returns the delivery handle."""
        return self.produce_async(self._tombstone(message, fields, "tombstone_async"))

    def tombstone_many_sync(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        """Tombstones for many keys (each with ``key`` and ``partition``); waits for every one."""
        return self.produce_many_sync(self._tombstones(messages))

    def tombstone_many_async(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        """Tombstones for many keys without waiting: returns their delivery handles."""
        return self.produce_many_async(self._tombstones(messages))

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
        """Keep a message in the internal buffer; middleware and validation run at flush."""
        one = one_message("buffer", message, fields)
        self._add_to_buffer([one], ev.MESSAGE_BUFFERED, message=one)
        return self.messages

    def buffer_many(self, messages: Iterable[Message]) -> list[Message]:
        """Append messages to the internal buffer (validated when flushed); returns them."""
        batch = list(messages)
        self._add_to_buffer(batch, ev.MESSAGES_BUFFERED, messages=batch)
        return batch

    def _add_to_buffer(self, batch: list[Any], event: str, **payload: Any) -> None:
        self._ensure_active()
        start = time.monotonic()
        with self._buffer_lock:
            self._messages.extend(batch)
        if self.monitor.listening(event):
            self.monitor.instrument(
                event, producer_id=self.id, **payload, buffer=self.messages,
                time=(time.monotonic() - start) * 1000.0,
            )

    def flush_sync(self) -> list[DeliveryHandle]:
        """Send the buffer and wait for every message; return the handles."""
        return self._flush(True)

    def flush_async(self) -> list[DeliveryHandle]:
        """Send the buffer without waiting; return the handles."""
        return self._flush(False)

    def _flush(self, sync: bool) -> list[Any]:
        self._ensure_active() if not self._closing_here() else None
        start = time.monotonic()
        with self._buffer_lock:
            batch, self._messages = self._messages, []
        try:
            handles = self._produce_many(batch, sync) if batch else []
        except MessageInvalidError:
            self._requeue(batch)
            raise
        except ProduceManyError as error:
            self._requeue(batch if self.transactional else batch[len(error.dispatched):])
            raise
        except (ProducerClosedError, ProducerNotConfiguredError):
            self._requeue(batch)   # nothing was dispatched
            raise
        # Anything else (a signal while waiting, say) came after the batch was handed to
        # librdkafka: putting it back would send it twice; its handles report its fate.
        event = ev.BUFFER_FLUSHED_SYNC if sync else ev.BUFFER_FLUSHED_ASYNC
        if self.monitor.listening(event):
            self.monitor.instrument(
                event, producer_id=self.id, messages=batch,
                time=(time.monotonic() - start) * 1000.0,
            )
        return handles

    def _requeue(self, unsent: list[Any]) -> None:
        """Put what was not sent back at the front of the buffer, in order."""
        with self._buffer_lock:
            self._messages[:0] = unsent

    def _drop_buffer(self) -> None:
        """Clear the internal buffer (a reload drops what was buffered, as WaterDrop)."""
        start = time.monotonic()
        with self._buffer_lock:
            self._messages.clear()
        self._buffer_purged(start)

    def _buffer_purged(self, start: float) -> None:
        """``buffer.purged``, for a reload's drop and for purge(): ``start`` is when it began."""
        if self.monitor is not None and self.monitor.listening(ev.BUFFER_PURGED):
            self.monitor.instrument(
                ev.BUFFER_PURGED, producer_id=self.id, time=(time.monotonic() - start) * 1000.0
            )

    def purge(self) -> None:
        """Drop the buffer and everything queued in librdkafka: those handles fail with
        purge_queue / purge_inflight. Data loss by design."""
        start = time.monotonic()
        with self._buffer_lock:
            self._messages.clear()
        client = self._client
        if client is not None and self._client_pid == _PID[0]:
            try:
                client.purge()
            except ProducerClosedError:
                pass
        self._buffer_purged(start)

    # --- disconnect and close --------------------------------------------------------------------

    def disconnectable(self) -> bool:
        """Best effort: connected, nothing buffered, no transaction running."""
        return (
            self._client is not None
            and self._status is Status.CONNECTED
            and not self._messages
            and self._transaction_owner is None
        )

    def disconnect(self) -> bool:
        """Close the connections now (delivering what is queued); reconnect on next use.

        Returns False (and does nothing) when not disconnectable.
        """
        if not self.disconnectable():
            return False
        with self._transaction_lock, self._connect_lock:
            if not self.disconnectable():
                return False
            client = self._client
            if self._client_pid != _PID[0]:
                return False
            self._status = Status.DISCONNECTING
            self.monitor.instrument(ev.PRODUCER_DISCONNECTING, producer_id=self.id)
            start = time.monotonic()
            self._client = None
            client.close(self.current_variant.max_wait_timeout, False)
            self._status = Status.DISCONNECTED
            if self.monitor.listening(ev.PRODUCER_DISCONNECTED):
                self.monitor.instrument(
                    ev.PRODUCER_DISCONNECTED,
                    producer_id=self.id,
                    time=(time.monotonic() - start) * 1000.0,
                )
            return True

    def close(self, force: bool = False) -> None:
        """Deliver what is buffered and queued (up to max_wait_timeout), release the client.

        ``force=True`` purges what is still undelivered after the wait: those handles resolve
        with purge_queue / purge_inflight errors. Closing an unconfigured or closed producer
        does nothing.
        """
        client = self._client
        if (
            client is not None
            and getattr(client, "poller_thread", None) is threading.current_thread()
        ):
            # from a listener on the poller thread: that thread cannot wait for itself
            threading.Thread(target=self.close, args=(force,), daemon=False).start()
            return
        if self.in_transaction:
            from waterdrop.errors import ProducerTransactionalCloseAttemptError

            raise ProducerTransactionalCloseAttemptError(self.id)
        with self._transaction_lock, self._close_lock:
            if not self._status.active:
                return
            start = time.monotonic()
            self._status = Status.CLOSING
            self._closer = threading.get_ident()
            self.monitor.instrument(ev.PRODUCER_CLOSING, producer_id=self.id)
            try:
                if self._messages:
                    try:
                        self._flush(True)
                    except Exception as error:  # noqa: BLE001 - reported, the close goes on
                        self.monitor.instrument(
                            ev.ERROR_OCCURRED, producer_id=self.id, error=error,
                            type="buffer.flush_on_close",
                        )
                client = self._client
                self._client = None
                if client is not None:
                    if self._client_pid == _PID[0]:
                        try:
                            client.close(self.current_variant.max_wait_timeout, force)
                        except BaseException:
                            # interrupted while delivering (Ctrl-C, a signal handler that
                            # raises): the producer stays open with everything it holds, so
                            # a later close() - or the exit hook - still delivers it
                            self._client = client
                            self._status = Status.CONNECTED
                            self._interrupted_close = True
                            raise
                    elif hasattr(client, "abandon"):
                        client.abandon()
            finally:
                self._closer = None
                if self._interrupted_close:
                    self._interrupted_close = False
                else:
                    self._status = Status.CLOSED
                    _LIVE.discard(self)
            if self.monitor.listening(ev.PRODUCER_CLOSED):
                self.monitor.instrument(
                    ev.PRODUCER_CLOSED,
                    producer_id=self.id,
                    time=(time.monotonic() - start) * 1000.0,
                )

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # A producer dropped while connected: deliver what it holds rather than lose it.
        try:
            if self._client is None or self._client_pid != _PID[0] or not self._status.active:
                return
            warnings.warn(
                f"waterdrop producer {self.id!r} created at {self._created_at} was never "
                "closed; closing it now (call close() or use it as a context manager)",
                ResourceWarning,
                stacklevel=2,
            )
            self.close()
        except Exception:  # noqa: BLE001 - a finalizer must not raise
            pass

    def __repr__(self) -> str:
        # never blocks: reads plain attributes only
        in_transaction = " in_transaction=true" if self._transaction_owner is not None else ""
        return (
            f"<waterdrop.Producer id={self.id!r} status={self._status.value} "
            f"buffer_size={len(self._messages)} connected={self._client is not None}"
            f"{in_transaction}>"
        )

    # --- OAUTHBEARER -----------------------------------------------------------------------------

    def oauthbearer_set_token(
        self,
        token: str,
        lifetime_ms: int,
        principal_name: str,
        extensions: dict[str, str] | None = None,
    ) -> None:
        """Give librdkafka a fresh token, typically from an oauthbearer.token_refresh listener."""
        self._get_client().oauthbearer_set_token(token, lifetime_ms, principal_name, extensions)

    def oauthbearer_set_token_failure(self, reason: str) -> None:
        """Report that no token could be obtained; librdkafka asks again later."""
        self._get_client().oauthbearer_set_token_failure(reason)

    # --- transactions (see waterdrop.producer.transactions) --------------------------------------

    def transaction(self) -> AbstractContextManager[Producer]:
        """``with producer.transaction():`` — see waterdrop.producer.transactions."""
        from waterdrop.producer.transactions import transaction

        return transaction(self)

    def transaction_mark_as_consumed(
        self, consumer: Any, message: Any, offset_metadata: str | None = None
    ) -> None:
        """Commit ``message``'s offset (+1) for ``consumer``'s group in this transaction.

        ``consumer``: a ``confluent_kafka.Consumer`` (its group metadata is used) or a group
        id. ``message``: a ``confluent_kafka.Message``, or ``(topic, partition, offset)``.
        """
        from waterdrop.producer.transactions import mark_as_consumed

        mark_as_consumed(self, consumer, message, offset_metadata)

    def _claim_transaction(self) -> bool:
        """Make the calling thread the owner of this producer's transaction, for a block.

        False when it owns it already (a nested block: nothing to do). Otherwise waits for
        another thread's transaction to end, refuses a closed or unconfigured producer (but not
        the final flush of close() on its own thread) and returns True; the caller then begins
        the transaction and ends with ``_release_transaction()``, whatever happens.
        """
        me = threading.get_ident()
        if self._transaction_owner == me:
            return False
        self._transaction_lock.acquire()
        try:
            if not self._closing_here():
                self._ensure_active()
        except BaseException:
            self._transaction_lock.release()
            raise
        self._transaction_owner = me
        self._transaction_first_handle = None
        return True

    def _release_transaction(self) -> None:
        """The transaction block is over (committed, aborted or never begun): let the next in."""
        self._transaction_first_handle = None
        self._transaction_owner = None
        self._transaction_lock.release()

    def _hand_transaction_to(self, thread: int) -> None:
        """Let ``thread`` dispatch as the owner of the transaction the caller claimed (the
        asyncio producer: begun on its transaction thread, used from the loop's)."""
        self._transaction_owner = thread


def _init_failure_cause(error: KafkaError) -> str:
    """Why a transactional client's init_transactions found no broker: librdkafka's last
    error-level log line, noted on the error by the client (else the error itself)."""
    from waterdrop.clients import _LAST_ERROR_NOTE

    for note in reversed(getattr(error, "__notes__", ())):
        if note.startswith(_LAST_ERROR_NOTE):
            return _without_thread(note[len(_LAST_ERROR_NOTE):])
    return str(error)


def _without_thread(line: str) -> str:
    """A librdkafka log line without its "[thrd:...]: " prefix (it says nothing here)."""
    if line.startswith("[thrd:") and "]: " in line:
        return line.split("]: ", 1)[1]
    return line


#: librdkafka's errors that mean it reaches no broker (the last one decides).
_UNREACHABLE_CODES = frozenset({"all_brokers_down", "transport", "resolve"})


def _timeout_text(kafka: Mapping[str, Any]) -> str:
    """The message timeout in force, as a reader wants it: "message.timeout.ms (150,000 ms)"."""
    for name in ("message.timeout.ms", "delivery.timeout.ms"):
        value = kafka.get(name)
        if value is not None:
            try:
                return f"{name} ({int(str(value)):,} ms)"
            except ValueError:
                return f"{name} ({value} ms)"
    return "message.timeout.ms"


def _unreachable_cause(client: Any) -> str | None:
    """librdkafka's last word on why no broker answered: its last error-level log line (the
    detail: "Connect to ipv4#127.0.0.1:1 failed: Connection refused"), else its last error
    other than the summary all_brokers_down, else that summary; None if it said nothing."""
    logs = getattr(client, "recent_error_logs", ())
    if logs:
        return _without_thread(str(logs[-1]))
    errors = list(getattr(client, "recent_errors", ()))
    for error in reversed(errors):
        if getattr(error, "code", None) != "all_brokers_down":
            return str(error)
    return str(errors[-1]) if errors else None


def _default_client_class() -> Any:
    from waterdrop.clients import Rdkafka

    return Rdkafka


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()
    # multiprocessing children leave through os._exit(), which skips atexit; its own
    # finalizers still run, so producers used in the child are closed (and delivered) there.
    if "multiprocessing" in sys.modules:
        from multiprocessing import util

        util.Finalize(None, _close_all_at_exit, exitpriority=0)


if hasattr(os, "register_at_fork"):  # POSIX only: Windows has no fork, so no child to reset
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_all_at_exit() -> None:
    """Deliver what live producers still hold before the interpreter goes away."""
    for producer in list(_LIVE):
        try:
            if producer._client_pid in (0, _PID[0]):
                producer.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: best effort
            pass


atexit.register(_close_all_at_exit)
