"""Variants: the same producer (client, connections, buffer) with other per-topic settings."""

from __future__ import annotations

from typing import Any

from waterdrop import _core
from waterdrop._core import CURRENT_VARIANT
from waterdrop.producer._internal import Forwarded

_DELEGATED = (
    "produce_sync",
    "produce_async",
    "produce_many_sync",
    "produce_many_async",
    "tombstone_sync",
    "tombstone_async",
    "tombstone_many_sync",
    "tombstone_many_async",
    "buffer",
    "buffer_many",
    "flush_sync",
    "flush_async",
)


class Variant:
    """A view of a producer with its own ``topic_config`` and ``max_wait_timeout``.

    Every dispatch made through it runs with it as the producer's ``current_variant``, which
    middleware can read; librdkafka gets one topic handle per (topic, topic_config).
    """

    __slots__ = ("producer", "topic_config", "max_wait_timeout", "default", "conf_key")

    def __init__(
        self,
        producer: Any,
        topic_config: dict[str, Any] | None = None,
        max_wait_timeout: int | None = None,
        default: bool = False,
    ) -> None:
        self.producer = producer
        self.topic_config = dict(topic_config or {})
        self.max_wait_timeout = (
            int(producer.config.max_wait_timeout) if max_wait_timeout is None else max_wait_timeout
        )
        self.default = default
        # hashable key of the per-topic settings; None shares the default topic handles
        self.conf_key = (
            tuple(sorted((k, _core.conf_value(v)) for k, v in self.topic_config.items()))
            if self.topic_config and not default
            else None
        )

    def transaction(self) -> Any:
        return _Scoped(self, self.producer.transaction())

    # The rest is the producer's. Explicit (not __getattr__): a class with __getattr__ makes
    # every attribute read slower, and conf_key / max_wait_timeout are read per message.
    def partition_count(self, topic: str) -> int:
        return self.producer.partition_count(topic)  # type: ignore[no-any-return]

    def ping(self, max_wait_timeout: int = 10_000) -> int:
        """The producer's ``ping`` (one cluster for every variant): the number of brokers."""
        return self.producer.ping(max_wait_timeout)  # type: ignore[no-any-return]

    def close(self, force: bool = False) -> None:
        self.producer.close(force)

    def purge(self) -> None:
        self.producer.purge()

    id = Forwarded[Any]("producer")
    monitor = Forwarded[Any]("producer")
    config = Forwarded[Any]("producer")
    status = Forwarded[Any]("producer")
    messages = Forwarded[Any]("producer")

    def __repr__(self) -> str:
        return (
            f"<waterdrop.Variant of {self.producer.id!r} topic_config={self.topic_config!r} "
            f"max_wait_timeout={self.max_wait_timeout}>"
        )


def _delegate(name: str) -> Any:
    def method(self: Variant, *args: Any, **kwargs: Any) -> Any:
        token = CURRENT_VARIANT.set(self)
        try:
            return getattr(self.producer, name)(*args, **kwargs)
        finally:
            CURRENT_VARIANT.reset(token)

    method.__name__ = name
    method.__qualname__ = f"Variant.{name}"
    method.__doc__ = f"``producer.{name}`` with this variant's settings."
    return method


for _name in _DELEGATED:
    setattr(Variant, _name, _delegate(_name))


class _Scoped:
    """A context manager that keeps a variant current for the duration of another one."""

    def __init__(self, variant: Variant, inner: Any) -> None:
        self._variant = variant
        self._inner = inner
        self._token: Any = None

    def __enter__(self) -> Any:
        self._token = CURRENT_VARIANT.set(self._variant)
        try:
            return self._inner.__enter__()
        except BaseException:
            CURRENT_VARIANT.reset(self._token)
            raise

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._inner.__exit__(*exc)
        finally:
            CURRENT_VARIANT.reset(self._token)
