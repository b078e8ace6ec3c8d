"""Transactions: WaterDrop's flow (begin, block, commit; abort on any exception) and recovery.

Every librdkafka transaction command goes through ``_command``: retryable errors are retried
with a linear backoff, abortable ones abort, fatal ones (and any librdkafka error that caused an
abort) may reload the client so that the next transaction starts on a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from waterdrop.errors import (
    AbortTransaction,
    KafkaError,
    ProducerNotTransactionalError,
    TransactionalOffsetInvalidError,
    TransactionRequiredError,
    WaitTimeoutError,
)
from waterdrop.instrumentation import events as ev
from waterdrop.producer._internal import TRANSACTION, ProducerInternals
from waterdrop.producer.status import Status


def transaction(producer: ProducerInternals) -> Transaction:
    if not producer.transactional:
        raise ProducerNotTransactionalError(producer.id)
    return Transaction(producer)


class Transaction:
    """``with producer.transaction():`` — one Kafka transaction per outermost block.

    Leaving the block normally (``return`` included) commits; any exception aborts and
    propagates, except ``waterdrop.AbortTransaction``, which aborts quietly. Nested blocks are
    part of the outer transaction. Transactions of one producer are serialised across threads.
    """

    __slots__ = ("_producer", "_nested", "_start")

    def __init__(self, producer: ProducerInternals) -> None:
        self._producer = producer
        self._nested = False
        self._start = 0.0

    def __enter__(self) -> Any:
        producer = self._producer
        if not producer._claim_transaction():
            self._nested = True
            return producer
        try:
            self._start = time.monotonic()
            client = producer._get_client()
            _command(producer, "begin", client.begin_transaction, ev.TRANSACTION_STARTED)
        except BaseException:
            producer._release_transaction()
            raise
        return producer

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._nested:
            return False
        producer = self._producer
        try:
            if exc is None:
                try:
                    client = producer._get_client()
                    _command(
                        producer,
                        "commit",
                        lambda: client.commit_transaction(-1),
                        ev.TRANSACTION_COMMITTED,
                    )
                    producer._transaction_fatal_attempts = 0
                except BaseException as error:  # noqa: BLE001 - aborts, then re-raises
                    _abort(producer, error)
                    raise
                _finished(producer, self._start)
                return False
            _abort(producer, exc)
            if isinstance(exc, AbortTransaction):
                _finished(producer, self._start)
                return True
            return False
        finally:
            producer._release_transaction()


def _finished(producer: ProducerInternals, start: float) -> None:
    if producer.monitor.listening(ev.TRANSACTION_FINISHED):
        producer.monitor.instrument(
            ev.TRANSACTION_FINISHED,
            producer_id=producer.id,
            time=(time.monotonic() - start) * 1000.0,
        )


def _is_kafka_error(error: BaseException | None) -> bool:
    return isinstance(error, KafkaError) or isinstance(getattr(error, "__cause__", None), KafkaError)


def _abort(producer: ProducerInternals, error: BaseException) -> None:
    """Abort the current transaction because of ``error``; reload the client if needed."""
    config = producer.config
    try:
        first = producer._transaction_first_handle
        if first is not None and config.wait_timeout_on_transaction_abort and not _is_kafka_error(
            error
        ):
            # librdkafka#4849: one acknowledged delivery before EndTxn avoids a fatal state
            try:
                first.wait(config.wait_timeout_on_transaction_abort, False)
            except (WaitTimeoutError, KafkaError):
                pass
        client = producer._get_client()
        _command(
            producer, "abort", lambda: client.abort_transaction(-1), ev.TRANSACTION_ABORTED,
            allow_abortable=False,
        )
    except BaseException as abort_error:
        reload_if_needed(producer, abort_error)
        raise abort_error from error
    reload_if_needed(producer, error)


def _command(
    producer: ProducerInternals,
    action: str,
    fn: Callable[[], Any],
    event: str,
    allow_abortable: bool = True,
) -> Any:
    """Run one transaction command with WaterDrop's error handling."""
    config = producer.config
    attempt = 0
    while True:
        attempt += 1
        start = time.monotonic()
        try:
            result = fn()
        except KafkaError as error:
            retry = error.retryable and attempt < config.max_attempts_on_transaction_command
            producer.monitor.instrument(
                ev.ERROR_OCCURRED,
                producer_id=producer.id,
                caller=producer,
                error=error,
                type=f"transaction.{action}",
                retry=retry,
                attempt=attempt,
            )
            if error.fatal:
                reload_if_needed(producer, error)
                raise
            if retry:
                time.sleep(config.wait_backoff_on_transaction_command * attempt / 1000.0)
                continue
            if error.abortable and allow_abortable:
                client = producer._get_client()
                _command(
                    producer, "abort", lambda: client.abort_transaction(-1),
                    ev.TRANSACTION_ABORTED, allow_abortable=False,
                )
            raise
        if event and producer.monitor.listening(event):
            producer.monitor.instrument(
                event, producer_id=producer.id, time=(time.monotonic() - start) * 1000.0
            )
        return result


def reload_if_needed(producer: ProducerInternals, error: BaseException) -> None:
    """After a librdkafka error in a transaction: rebuild the client (WaterDrop's reload!),
    within ``max_attempts_on_transaction_fatal_error`` until a transaction commits."""
    cause = error if isinstance(error, KafkaError) else getattr(error, "__cause__", None)
    if not isinstance(cause, KafkaError):
        return
    attempt = producer._transaction_fatal_attempts + 1
    if not TRANSACTION.allows(producer.config, cause, attempt):
        return
    if producer.status is Status.CONFIGURED or producer._client is None:
        return
    producer._transaction_fatal_attempts = attempt
    producer._reload_after_fatal(cause, attempt, TRANSACTION)


def mark_as_consumed(
    producer: ProducerInternals, consumer: Any, message: Any, offset_metadata: str | None = None
) -> None:
    """Commit ``message``'s offset + 1 for ``consumer``'s group inside the transaction."""
    if not producer.in_transaction:
        raise TransactionRequiredError(producer.id, "transaction_mark_as_consumed()")
    command = store_offset(producer, consumer, message, offset_metadata)
    start = time.monotonic()
    command()
    marked_as_consumed(producer, message, offset_metadata, start)


def store_offset(
    producer: ProducerInternals, consumer: Any, message: Any, offset_metadata: str | None
) -> Callable[[], None]:
    """Check the arguments of ``transaction_mark_as_consumed`` (TransactionalOffsetInvalidError)
    and return the transaction command that stores the offset: the caller runs it on the thread
    that runs its transaction's commands."""
    group, topic, partition, offset = _offset_arguments(consumer, message)
    if offset_metadata is not None and not isinstance(offset_metadata, str):
        from waterdrop.contracts.wording import TRANSACTIONAL_OFFSET, bad

        reason = bad(TRANSACTIONAL_OFFSET["offset_metadata_format"], offset_metadata)
        raise TransactionalOffsetInvalidError({"offset_metadata": reason})
    client = producer._get_client()
    variant = producer.current_variant
    assert variant is not None  # a transaction runs: the producer is configured
    timeout = int(variant.max_wait_timeout)

    def command() -> None:
        _command(
            producer,
            "store_offset",
            lambda: client.send_offsets_to_transaction(
                [(topic, partition, offset + 1, offset_metadata)], group, timeout
            ),
            "",
        )

    return command


def marked_as_consumed(
    producer: ProducerInternals, message: Any, offset_metadata: str | None, start: float
) -> None:
    """``transaction.marked_as_consumed``, once the offset is stored."""
    if producer.monitor.listening(ev.TRANSACTION_MARKED_AS_CONSUMED):
        producer.monitor.instrument(
            ev.TRANSACTION_MARKED_AS_CONSUMED,
            producer_id=producer.id,
            message=message,
            offset_metadata=offset_metadata,
            time=(time.monotonic() - start) * 1000.0,
        )


def _offset_arguments(consumer: Any, message: Any) -> tuple[Any, str, int, int]:
    from waterdrop.contracts.wording import TRANSACTIONAL_OFFSET as WORDING
    from waterdrop.contracts.wording import bad

    errors: dict[str, str] = {}
    group: Any = None
    if isinstance(consumer, str) and consumer:
        group = consumer
    elif callable(getattr(consumer, "consumer_group_metadata", None)):
        group = consumer.consumer_group_metadata()
        if not isinstance(group, (bytes, bytearray, str)):
            errors["consumer"] = bad(WORDING["consumer_group_metadata_format"], group)
    else:
        errors["consumer"] = bad(WORDING["consumer_format"], consumer)
    topic = partition = offset = None
    if isinstance(message, dict):
        topic, partition, offset = message.get("topic"), message.get("partition"), message.get("offset")
    elif isinstance(message, tuple) and len(message) == 3:
        topic, partition, offset = message
    else:
        try:
            topic, partition, offset = _attr(message, "topic"), _attr(message, "partition"), _attr(
                message, "offset"
            )
        except AttributeError:
            pass
    if not (
        isinstance(topic, str) and topic
        and type(partition) is int and partition >= 0
        and type(offset) is int and offset >= 0
    ):
        errors["message"] = WORDING["message_format"]
    if errors:
        raise TransactionalOffsetInvalidError(errors)
    return group, topic, partition, offset  # type: ignore[return-value]


def _attr(obj: Any, name: str) -> Any:
    value = getattr(obj, name)
    return value() if callable(value) else value
