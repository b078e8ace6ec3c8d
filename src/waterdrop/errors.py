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


class ProducerNotConfiguredError(Error):
    """The producer was used before ``setup``."""


class ProducerAlreadyConfiguredError(Error):
    """``setup`` was called twice."""


class ProducerUsedInParentProcessError(Error):
    """A client built before ``fork()`` was used in the child (message: the child's pid)."""


class ProducerClosedError(Error):
    """The producer is closing or closed."""


class ProducerTransactionalCloseAttemptError(Error):
    """``close()`` was called inside the caller's own transaction."""


class ProducerNotTransactionalError(Error):
    """``transaction()`` on a producer without ``transactional.id``."""


class StatusInvalidError(Error):
    """The producer reached a lifecycle state that should be impossible."""


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


class TransactionRequiredError(Error):
    """The operation is only allowed inside a transaction."""


class AbortTransaction(Error):
    """Raise inside ``with producer.transaction():`` to abort it quietly."""


class StatisticsNotEnabledError(Error):
    """``statistics.emitted`` was subscribed after the client was built without statistics."""


class WaitTimeoutError(Error):
    """A delivery handle was still pending when the wait timed out; it may yet be delivered."""


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
