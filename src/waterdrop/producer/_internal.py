"""What the code around a Producer may use of it: one small, named internal interface.

``waterdrop.producer.transactions`` (the transaction flow), ``waterdrop.aio`` (the asyncio
producer that wraps a sync one) and variants use a Producer through the names below and no
other private attribute of it. ``ProducerInternals`` lists them for the type checker; the
Producer itself documents each one.

Also here: ``Batch``, the policy of one ``produce_many_*`` call that the sync and the asyncio
producers share; ``ReloadPolicy``, the data that tells WaterDrop's two client reloads after a
fatal librdkafka error apart (``Producer._reload_after_fatal`` is the one implementation); and
``Forwarded``, a read-only attribute that reads the same attribute of a wrapped object;
``one_message``, the one message of a single-message method.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from waterdrop.contracts.wording import mapping_and_fields
from waterdrop.errors import ProduceManyError
from waterdrop.instrumentation import events as ev

if TYPE_CHECKING:
    from waterdrop.errors import KafkaError, ProduceError
    from waterdrop.producer import Producer
    from waterdrop.producer.status import Status
    from waterdrop.producer.variant import Variant
    from waterdrop.types import Message, Tombstone

T = TypeVar("T")
#: the message type of a single-message method: the produce/buffer one, or the tombstone one
M = TypeVar("M", "Message", "Tombstone")


class ProducerInternals(Protocol):
    """The internal interface of ``waterdrop.Producer`` (public names plus these).

    - client: ``_client`` (the client if built, else None; never builds one), ``_get_client()``
      (built on first use), ``_ensure_active()`` (raises as a dispatch on a closed or
      unconfigured producer would);
    - transaction: ``_claim_transaction()`` / ``_release_transaction()`` around a block,
      ``_hand_transaction_to(thread)``, ``_transaction_first_handle``,
      ``_transaction_fatal_attempts``;
    - dispatch (the asyncio producer's, around its own waits): ``_check_messages(messages, batch)``,
      ``_enqueue(message, variant, error_type)``, ``_produce_error(message, error,
      error_type)``, ``_batch(messages, variant, sync)`` (a ``Batch``);
    - recovery: ``_reload_after_fatal(error, attempt, policy)``; with ``_queue_full_wait``, the
      two waits a subclass may refuse to run where they must not block (an event loop).
    """

    id: str | None
    config: Any
    monitor: Any

    @property
    def status(self) -> Status: ...

    @property
    def current_variant(self) -> Variant | None: ...

    # the client
    _client: Any

    def _get_client(self) -> Any: ...

    def _ensure_active(self) -> None: ...

    # the transaction
    @property
    def transactional(self) -> bool: ...

    @property
    def in_transaction(self) -> bool: ...

    _transaction_first_handle: Any
    _transaction_fatal_attempts: int

    def _claim_transaction(self) -> bool: ...

    def _release_transaction(self) -> None: ...

    def _hand_transaction_to(self, thread: int) -> None: ...

    # dispatch
    def _check_messages(self, messages: Iterable[Any], batch: bool = False) -> None: ...

    def _enqueue(self, message: Any, variant: Variant, error_type: str) -> tuple[Any, Any]: ...

    def _produce_error(
        self, message: Any, error: BaseException, error_type: str
    ) -> ProduceError: ...

    def _failure_text(self, error: BaseException) -> str: ...

    def _batch(self, messages: list[Any], variant: Variant, sync: bool) -> Batch: ...

    # recovery
    def _queue_full_wait(self, message: Any, error: KafkaError, error_type: str) -> None: ...

    def _reload_after_fatal(
        self, error: KafkaError, attempt: int, policy: ReloadPolicy
    ) -> None: ...


@dataclass(frozen=True)
class ReloadPolicy:
    """One of WaterDrop's two reloads (``reload!``) after a fatal librdkafka error.

    The fields name the settings that drive it and what differs in the one implementation
    (``Producer._reload_after_fatal``): which ``error.occurred`` it reports first, whether it
    rebuilds only a client that librdkafka holds in its fatal state, whether what the old client
    still queues is flushed (up to ``max_wait_timeout``) or dropped at once.
    """

    enabled: str
    max_attempts: str
    backoff: str
    reported_as: str | None
    only_fatal_client: bool
    flushes: bool

    def allows(self, config: Any, error: KafkaError, attempt: int) -> bool:
        """Whether the settings allow ``attempt`` (1-based) for ``error``."""
        return bool(
            getattr(config, self.enabled)
            and error.code not in config.non_reloadable_errors
            and attempt <= getattr(config, self.max_attempts)
        )


#: An idempotent producer's dispatch hit a fatal error: the dispatch reports it, reloads a client
#: that is really fatal (dropping what it queues) and retries; attempts count per dispatch.
IDEMPOTENT = ReloadPolicy(
    enabled="reload_on_idempotent_fatal_error",
    max_attempts="max_attempts_on_idempotent_fatal_error",
    backoff="wait_backoff_on_idempotent_fatal_error",
    reported_as="librdkafka.idempotent_fatal_error",
    only_fatal_client=True,
    flushes=False,
)

#: A librdkafka error ended a transaction (the transaction command reported it): the next
#: transaction starts on a fresh client; attempts count until a transaction commits.
TRANSACTION = ReloadPolicy(
    enabled="reload_on_transaction_fatal_error",
    max_attempts="max_attempts_on_transaction_fatal_error",
    backoff="wait_backoff_on_transaction_fatal_error",
    reported_as=None,
    only_fatal_client=False,
    flushes=True,
)


class Batch:
    """One ``produce_many_*`` call: the policy that the sync producer and the asyncio one
    (``waterdrop.aio``) share, each with its own way of waiting for the deliveries.

    Built by ``Producer._batch`` (which runs the middleware over the batch); ``dispatch`` enqueues
    (all of ``messages`` or what is left of them, with the queue-full wait and the idempotent
    reload), ``sent`` once every message is enqueued, then ``produced`` or ``failed``.
    """

    __slots__ = ("_producer", "messages", "variant", "method", "_start")

    def __init__(
        self, producer: Producer, messages: list[Any], variant: Variant, sync: bool
    ) -> None:
        self._producer = producer
        self.variant = variant
        self.method = "produce_many_sync" if sync else "produce_many_async"
        middleware = producer._middleware
        if middleware:
            messages = middleware.run_many([dict(m) for m in messages])
        self.messages: list[Any] = messages
        self._start = time.monotonic()

    def dispatch(self, client: Any, messages: list[Any], dispatched: list[Any]) -> list[Any]:
        """Enqueue ``messages`` through ``client``; the handles of ``dispatched`` (those of an
        earlier part of the batch, extended as they are enqueued) followed by theirs."""
        return self._producer._dispatch_many(
            client, messages, self.variant, self.method, dispatched
        )

    def sent(self, handles: list[Any]) -> None:
        """Every message is enqueued: a transaction remembers its first handle."""
        producer = self._producer
        if producer._transactional and handles and producer._transaction_first_handle is None:
            producer._transaction_first_handle = handles[0]

    def failed(self, dispatched: list[Any], error: BaseException) -> ProduceManyError:
        """The batch failed with ``error`` after ``dispatched``: reported, the error to raise.

        As WaterDrop's produce_many_sync, a transactional producer's event lists nothing as
        dispatched (nothing is, in an aborted transaction); the error still holds the handles.
        produce_many_async's event keeps them, as WaterDrop's does.
        """
        producer = self._producer
        wrapped = ProduceManyError(dispatched, producer._failure_text(error), cause=error)
        reported = dispatched
        if producer._transactional and self.method == "produce_many_sync":
            reported = []
        producer.monitor.instrument(
            ev.ERROR_OCCURRED,
            producer_id=producer.id,
            messages=self.messages,
            dispatched=reported,
            error=wrapped,
            type=f"messages.{self.method}",
        )
        return wrapped

    def produced(self, handles: list[Any]) -> None:
        """The batch is enqueued (``produce_many_async``) or delivered (``_sync``)."""
        producer = self._producer
        sync = self.method == "produce_many_sync"
        event = ev.MESSAGES_PRODUCED_SYNC if sync else ev.MESSAGES_PRODUCED_ASYNC
        if producer.monitor.listening(event):
            producer.monitor.instrument(
                event,
                producer_id=producer.id,
                messages=self.messages,
                handles=handles,
                time=(time.monotonic() - self._start) * 1000.0,
            )


def one_message(method: str, message: M | None, fields: dict[str, Any]) -> M:
    """The message a single-message method (``method``) was given: the mapping, or its fields
    as keyword arguments. Both raise TypeError, before anything is done: nothing is silently
    dropped or merged (``produce_async``/``produce_sync`` check the same in the core)."""
    if message is None:
        return fields  # type: ignore[return-value]  # the keyword overload's, typed there
    if fields:
        raise TypeError(mapping_and_fields(method, list(fields)))
    return message


class Forwarded(Generic[T]):
    """A read-only attribute that reads the attribute of the same name on ``owner.<via>``.

    ``id = Forwarded[str]("producer")`` in a class body: ``obj.id`` is ``obj.producer.id``.
    """

    def __init__(self, via: str, doc: str | None = None) -> None:
        self._via = via
        self._name = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        if self.__doc__ is None:
            self.__doc__ = f"``{name}`` of the wrapped ``{self._via.lstrip('_')}``."

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Forwarded[T]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self._via), self._name)

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self._name} is read-only")
