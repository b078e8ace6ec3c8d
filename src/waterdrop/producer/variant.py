"""Variants: the same producer (client, connections, buffer) with other per-topic settings."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, overload

from waterdrop import _core
from waterdrop._core import CURRENT_VARIANT, DeliveryHandle, DeliveryReport
from waterdrop.instrumentation.monitor import Monitor
from waterdrop.producer._internal import Forwarded
from waterdrop.producer.status import Status
from waterdrop.types import Headers, Key, Message, Payload, Timestamp, Tombstone

if TYPE_CHECKING:
    from waterdrop.producer import Producer


class Variant:
    """A view of a producer with its own ``topic_config`` and ``max_wait_timeout``.

    Every dispatch made through it runs with it as the producer's ``current_variant``, which
    middleware can read; librdkafka gets one topic handle per (topic, topic_config).
    """

    __slots__ = ("producer", "topic_config", "max_wait_timeout", "default", "conf_key")

    def __init__(
        self,
        producer: Producer,
        topic_config: dict[str, Any] | None = None,
        max_wait_timeout: int | None = None,
        default: bool = False,
    ) -> None:
        self.producer = producer
        self.topic_config = dict(topic_config or {})
        self.max_wait_timeout = (
            int(producer.config.max_wait_timeout)  # type: ignore[union-attr]  # a configured one
            if max_wait_timeout is None
            else max_wait_timeout
        )
        self.default = default
        # hashable key of the per-topic settings; None shares the default topic handles
        self.conf_key = (
            tuple(sorted((k, _core.conf_value(v)) for k, v in self.topic_config.items()))
            if self.topic_config and not default
            else None
        )

    # --- dispatch: the producer's method with this variant current ---------------------------
    # Each one sets CURRENT_VARIANT around the producer's own method (all the policy is
    # there). Written out, not generated, so type checkers see them; the body is the same
    # one call for each, which is no slower than a generated forwarder.

    @overload
    def produce_sync(self, message: Message, /) -> DeliveryReport: ...
    @overload
    def produce_sync(
        self, *, topic: str, payload: Payload, key: Key = ..., partition: int = ...,
        partition_key: Key = ..., timestamp: Timestamp = ..., headers: Headers | None = ...,
        label: Any = ...,
    ) -> DeliveryReport: ...
    def produce_sync(  # type: ignore[misc]  # mypy's false positive, see waterdrop.types
        self, message: Message | None = None, /, **fields: Any
    ) -> DeliveryReport:
        """``producer.produce_sync`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.produce_sync(message, **fields)  # type: ignore[arg-type]
        finally:
            CURRENT_VARIANT.reset(token)

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
        """``producer.produce_async`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.produce_async(message, **fields)  # type: ignore[arg-type]
        finally:
            CURRENT_VARIANT.reset(token)

    def produce_many_sync(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """``producer.produce_many_sync`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.produce_many_sync(messages)
        finally:
            CURRENT_VARIANT.reset(token)

    def produce_many_async(self, messages: Iterable[Message]) -> list[DeliveryHandle]:
        """``producer.produce_many_async`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.produce_many_async(messages)
        finally:
            CURRENT_VARIANT.reset(token)

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
        """``producer.tombstone_sync`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.tombstone_sync(message, **fields)  # type: ignore[arg-type]
        finally:
            CURRENT_VARIANT.reset(token)

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
        """``producer.tombstone_async`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.tombstone_async(message, **fields)  # type: ignore[arg-type]
        finally:
            CURRENT_VARIANT.reset(token)

    def tombstone_many_sync(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        """``producer.tombstone_many_sync`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.tombstone_many_sync(messages)
        finally:
            CURRENT_VARIANT.reset(token)

    def tombstone_many_async(self, messages: Iterable[Tombstone]) -> list[DeliveryHandle]:
        """``producer.tombstone_many_async`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.tombstone_many_async(messages)
        finally:
            CURRENT_VARIANT.reset(token)

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
        """``producer.buffer`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.buffer(message, **fields)  # type: ignore[arg-type]
        finally:
            CURRENT_VARIANT.reset(token)

    def buffer_many(self, messages: Iterable[Message]) -> list[Message]:
        """``producer.buffer_many`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.buffer_many(messages)
        finally:
            CURRENT_VARIANT.reset(token)

    def flush_sync(self) -> list[DeliveryHandle]:
        """``producer.flush_sync`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.flush_sync()
        finally:
            CURRENT_VARIANT.reset(token)

    def flush_async(self) -> list[DeliveryHandle]:
        """``producer.flush_async`` with this variant's settings."""
        token = CURRENT_VARIANT.set(self)
        try:
            return self.producer.flush_async()
        finally:
            CURRENT_VARIANT.reset(token)

    def transaction(self) -> AbstractContextManager[Producer]:
        """``producer.transaction()`` with this variant current inside the block."""
        return _Scoped(self, self.producer.transaction())

    def transaction_mark_as_consumed(
        self, consumer: Any, message: Any, offset_metadata: str | None = None
    ) -> None:
        """``producer.transaction_mark_as_consumed``, waiting up to this variant's
        ``max_wait_timeout`` for the broker (as WaterDrop's variant does)."""
        token = CURRENT_VARIANT.set(self)
        try:
            self.producer.transaction_mark_as_consumed(consumer, message, offset_metadata)
        finally:
            CURRENT_VARIANT.reset(token)

    # The rest is the producer's. Explicit (not __getattr__): a class with __getattr__ makes
    # every attribute read slower, and conf_key / max_wait_timeout are read per message.
    def partition_count(self, topic: str) -> int:
        return self.producer.partition_count(topic)

    def ping(self, max_wait_timeout: int = 10_000) -> int:
        """The producer's ``ping`` (one cluster for every variant): the number of brokers."""
        return self.producer.ping(max_wait_timeout)

    def close(self, force: bool = False) -> None:
        self.producer.close(force)

    def purge(self) -> None:
        self.producer.purge()

    id = Forwarded[str | None]("producer")
    monitor = Forwarded[Monitor]("producer")
    config = Forwarded[Any]("producer")
    status = Forwarded[Status]("producer")
    messages = Forwarded[tuple[Message, ...]]("producer")

    def __repr__(self) -> str:
        return (
            f"<waterdrop.Variant of {self.producer.id!r} topic_config={self.topic_config!r} "
            f"max_wait_timeout={self.max_wait_timeout}>"
        )


class _Scoped(AbstractContextManager["Producer"]):
    """A context manager that keeps a variant current for the duration of another one."""

    def __init__(self, variant: Variant, inner: AbstractContextManager[Producer]) -> None:
        self._variant = variant
        self._inner = inner
        self._token: Any = None

    def __enter__(self) -> Producer:
        self._token = CURRENT_VARIANT.set(self._variant)
        try:
            return self._inner.__enter__()
        except BaseException:
            CURRENT_VARIANT.reset(self._token)
            raise

    def __exit__(self, *exc: Any) -> bool | None:
        try:
            return self._inner.__exit__(*exc)
        finally:
            CURRENT_VARIANT.reset(self._token)
