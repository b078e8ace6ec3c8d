"""The one exception hierarchy of waterdrop.

The Cython core raises these classes and never defines its own, so a caller can catch
``waterdrop.errors.Error`` and know it holds everything this library raises on purpose.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Error",
    "ConfigurationInvalidError",
    "VariantInvalidError",
    "ProducerNotConfiguredError",
    "ProducerAlreadyConfiguredError",
    "ProducerUsedInParentProcessError",
    "ProducerClosedError",
    "ProducerTransactionalCloseAttemptError",
    "MessageInvalidError",
    "TransactionalOffsetInvalidError",
    "ProducerNotTransactionalError",
    "StatusInvalidError",
    "ProduceError",
    "ProduceManyError",
    "TransactionRequiredError",
    "AbortTransaction",
    "StatisticsNotEnabledError",
    "WaitTimeoutError",
    "ClusterUnreachableError",
    "KafkaError",
    "ConnectionPoolTimeoutError",
    "ConnectionPoolClosedError",
]


class Error(Exception):
    """Base of every error waterdrop raises on purpose."""


class _ContractError(Error):
    """A contract failed: ``.errors`` maps a field path to WaterDrop's reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(self.errors)


class ConfigurationInvalidError(_ContractError):
    """The producer settings broke the configuration contract."""


class VariantInvalidError(_ContractError):
    """``variant(...)`` was given settings a variant may not change."""


class MessageInvalidError(_ContractError):
    """A message broke the message (or tombstone) contract; nothing was sent.

    ``.index``: in a batch method (``produce_many_*``, ``tombstone_many_*``, a flush), the
    position of the first invalid message in the batch, also named by the text; None for a
    single-message method.
    """

    def __init__(self, errors: dict[str, str], index: int | None = None) -> None:
        super().__init__(errors)
        self.index = index

    def __str__(self) -> str:
        if self.index is None:
            return super().__str__()
        return f"message {self.index} of the batch is invalid: {self.errors}"


class TransactionalOffsetInvalidError(_ContractError):
    """``transaction_mark_as_consumed`` got arguments it cannot use."""


def _producer(producer_id: Any) -> str:
    """How a lifecycle error names its producer: ``producer 'orders'``."""
    return "the producer" if producer_id is None else f"producer {producer_id!r}"


class _LifecycleError(Error):
    """A lifecycle error: built from its facts (``.producer_id`` and the like, kept as the
    exception's args so it pickles), its text says what happened and what to do next."""

    def __init__(self, producer_id: str | None = None, *args: Any) -> None:
        super().__init__(producer_id, *args)
        self.producer_id = producer_id

    def __str__(self) -> str:
        return self._text()

    def _text(self) -> str:
        raise NotImplementedError


class ProducerNotConfiguredError(_LifecycleError):
    """The producer was used before ``setup``."""

    def _text(self) -> str:
        return (
            "the producer is not configured: call producer.setup(kafka={'bootstrap.servers': "
            "...}) before using it, or build it configured with Producer(kafka={...})"
        )


class ProducerAlreadyConfiguredError(_LifecycleError):
    """``setup`` was called twice."""

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)} is already configured: setup() runs once per "
            "producer. For other settings build another Producer; for other per-topic "
            "settings (acks, compression, timeouts) use producer.variant(...)"
        )


class ProducerUsedInParentProcessError(_LifecycleError):
    """A client built before ``fork()`` was used in the child.

    ``.pid``: the child's pid; ``.parent_pid``: the process that built the client;
    ``.producer_id``. The child's next call builds a client of its own.
    """

    def __init__(
        self, pid: int, producer_id: str | None = None, parent_pid: int | None = None
    ) -> None:
        Error.__init__(self, pid, producer_id, parent_pid)
        self.pid = pid
        self.producer_id = producer_id
        self.parent_pid = parent_pid

    def _text(self) -> str:
        built = "" if self.parent_pid is None else f" in process {self.parent_pid}"
        return (
            f"{_producer(self.producer_id)} was used before a fork: its client was built"
            f"{built} and cannot be used in this child process (pid {self.pid}), so this call "
            "sent nothing. The next call here builds a new client for this process. To avoid "
            "this, make one producer per process: create it (or first use it) after the fork, "
            "e.g. in a multiprocessing initializer or your server's post-fork hook"
        )


class ProducerClosedError(_LifecycleError):
    """The producer is closing or closed."""

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)} was closed (close() was called), so it takes no "
            "more messages: build a new Producer to send more"
        )


class ProducerTransactionalCloseAttemptError(_LifecycleError):
    """``close()`` was called inside the caller's own transaction."""

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)}: close() was called inside its own transaction, "
            "which would leave the transaction open; leave the transaction's block first "
            "(`with producer.transaction():`, `async with` on waterdrop.aio: it commits or "
            "aborts), then close the producer"
        )


class ProducerNotTransactionalError(_LifecycleError):
    """``transaction()`` on a producer without ``transactional.id``."""

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)} is not transactional: set a 'transactional.id' "
            "in its kafka settings to use transactions"
        )


class StatusInvalidError(_LifecycleError):
    """The producer reached a lifecycle state that should be impossible."""

    def _text(self) -> str:
        status = self.args[1] if len(self.args) > 1 else "unknown"
        return (
            f"{_producer(self.producer_id)} is in a status that should not happen here "
            f"({status}); this is a bug in waterdrop, please report it"
        )


class ProduceError(Error):
    """A dispatch failed inline or while waiting; ``__cause__`` is the original error."""

    def __init__(self, message: str = "", *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class ProduceManyError(ProduceError):
    """A batch dispatch failed; ``.dispatched`` holds the handles that were enqueued."""

    def __init__(
        self,
        dispatched: list[Any],
        message: str = "",
        *,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.dispatched = dispatched


class TransactionRequiredError(_LifecycleError):
    """The operation is only allowed inside a transaction; ``.operation`` names it."""

    def __init__(self, producer_id: str | None = None, operation: str = "this call") -> None:
        super().__init__(producer_id, operation)
        self.operation = operation

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)}: {self.operation} needs a transaction; call it "
            "inside `with producer.transaction():` (`async with` on waterdrop.aio)"
        )


class AbortTransaction(Error):
    """Raise inside ``with producer.transaction():`` to abort it quietly."""


class StatisticsNotEnabledError(_LifecycleError):
    """``statistics.emitted`` was subscribed after the client was built without statistics."""

    def _text(self) -> str:
        return (
            f"{_producer(self.producer_id)} was connected without statistics (nothing "
            "listened to statistics.emitted when its client was built, or kafka "
            "'statistics.interval.ms' is 0), so statistics.emitted can no longer be "
            "subscribed: subscribe before the producer's first use"
        )


class WaitTimeoutError(Error):
    """A delivery handle was still pending when the wait timed out; it may yet be delivered.

    ``.timeout_ms``: how long the wait was.
    """

    def __init__(self, timeout_ms: Any = None) -> None:
        super().__init__(timeout_ms)
        self.timeout_ms = timeout_ms

    def __str__(self) -> str:
        if not isinstance(self.timeout_ms, (int, float)):
            return str(self.timeout_ms)
        return (
            f"no delivery report within {self.timeout_ms:,} ms: the message is still pending "
            "and may yet be delivered (librdkafka retries until message.timeout.ms); wait on "
            "the handle again, or raise max_wait_timeout"
        )


class ClusterUnreachableError(Error, ConnectionError):
    """``ping()`` found no broker that answered within its ``max_wait_timeout``.

    ``.bootstrap_servers``: where the producer looked; ``.cause``: librdkafka's last word on
    why (its last error-level log line or error, e.g. "Connect to ... failed: Connection
    refused"), None when it said nothing (a silent address: a firewall, a wrong host).
    """

    def __init__(
        self,
        bootstrap_servers: str = "",
        max_wait_timeout: int = 0,
        cause: str | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.max_wait_timeout = max_wait_timeout
        self.cause = cause
        why = cause or "librdkafka reported no error (nothing answered at that address)"
        super().__init__(
            f"no Kafka broker at {bootstrap_servers or '(no bootstrap.servers)'} answered "
            f"within {max_wait_timeout:,} ms: {why}. Check that the brokers are running and "
            "reachable from this host, and that bootstrap.servers names them."
        )

    def __reduce__(self) -> Any:
        return (type(self), (self.bootstrap_servers, self.max_wait_timeout, self.cause))


class ConnectionPoolTimeoutError(Error, TimeoutError):
    """No producer came back to the pool within its ``timeout``."""


class ConnectionPoolClosedError(ProducerClosedError):
    """A checkout from a pool that was shut down."""

    def __init__(self, message: str = "") -> None:
        Error.__init__(self, message)
        self.producer_id = None

    def _text(self) -> str:
        return str(self.args[0]) if self.args else ""


class KafkaError(Error):
    """An error reported by librdkafka, inline or in a delivery report.

    ``code`` is librdkafka's error name in lower case without leading underscores
    (``"msg_timed_out"``), ``rdkafka_response`` the integer code.
    """

    def __init__(
        self,
        rdkafka_response: int,
        code: str,
        description: str = "",
        *,
        fatal: bool = False,
        retryable: bool = False,
        abortable: bool = False,
        broker_message: str | None = None,
    ) -> None:
        self.rdkafka_response = rdkafka_response
        self.code = code
        self.description = description
        self.fatal = fatal
        self.retryable = retryable
        self.abortable = abortable
        self.broker_message = broker_message
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.description} ({self.code})" if self.description else self.code
        if self.broker_message:
            text = f"{text}: {self.broker_message}"
        return text

    def __repr__(self) -> str:
        return f"<KafkaError {self.code} ({self.rdkafka_response}): {self.description}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self.rdkafka_response == other.rdkafka_response
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.rdkafka_response)

    def __reduce__(self) -> Any:
        return (
            _rebuild_kafka_error,
            (
                self.rdkafka_response,
                self.code,
                self.description,
                self.fatal,
                self.retryable,
                self.abortable,
                self.broker_message,
            ),
        )


def _rebuild_kafka_error(
    response: int,
    code: str,
    description: str,
    fatal: bool,
    retryable: bool,
    abortable: bool,
    broker_message: str | None,
) -> KafkaError:
    return KafkaError(
        response,
        code,
        description,
        fatal=fatal,
        retryable=retryable,
        abortable=abortable,
        broker_message=broker_message,
    )
