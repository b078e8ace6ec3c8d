"""Transactions: WaterDrop's flow (begin, block, commit; abort on any exception) and recovery.

Every librdkafka transaction command goes through ``_command``: retryable errors are retried
with a linear backoff, abortable ones abort, fatal ones (and any librdkafka error that caused an
abort) may reload the client so that the next transaction starts on a fresh one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from waterdrop.errors import (
    AbortTransaction,
    KafkaError,
    ProducerNotTransactionalError,
    TransactionalOffsetInvalidError,
    TransactionRequiredError,
    WaitTimeoutError,
)
from waterdrop.producer.status import Status


def transaction(producer: Any) -> Transaction:
    if not producer.transactional:
        raise ProducerNotTransactionalError(f"{producer.id} is not transactional")
    return Transaction(producer)


class Transaction:
    """``with producer.transaction():`` — one Kafka transaction per outermost block.

    Leaving the block normally (``return`` included) commits; any exception aborts and
    propagates, except ``waterdrop.AbortTransaction``, which aborts quietly. Nested blocks are
    part of the outer transaction. Transactions of one producer are serialised across threads.
    """

    __slots__ = ("_producer", "_nested", "_start")

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._nested = False
        self._start = 0.0

    def __enter__(self) -> Any:
        producer = self._producer
        me = threading.get_ident()
        if producer._transaction_owner == me:
            self._nested = True
            return producer
        producer._transaction_lock.acquire()
        try:
            if not producer._closing_here():
                producer._ensure_active()
            producer._transaction_owner = me
            producer._transaction_first_handle = None
            self._start = time.monotonic()
            client = producer._get_client()
            _command(producer, "begin", client.begin_transaction, "transaction.started")
        except BaseException:
            producer._transaction_owner = None
            producer._transaction_lock.release()
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
                        "transaction.committed",
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
            producer._transaction_first_handle = None
            producer._transaction_owner = None
            producer._transaction_lock.release()


def _finished(producer: Any, start: float) -> None:
    if producer.monitor.listening("transaction.finished"):
        producer.monitor.instrument(
            "transaction.finished",
            producer_id=producer.id,
            time=(time.monotonic() - start) * 1000.0,
        )


def _is_kafka_error(error: BaseException | None) -> bool:
    return isinstance(error, KafkaError) or isinstance(getattr(error, "__cause__", None), KafkaError)


def _abort(producer: Any, error: BaseException) -> None:
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
            producer, "abort", lambda: client.abort_transaction(-1), "transaction.aborted",
            allow_abortable=False,
        )
    except BaseException as abort_error:
        reload_if_needed(producer, abort_error)
        raise abort_error from error
    reload_if_needed(producer, error)


def _command(
    producer: Any, action: str, fn: Any, event: str, allow_abortable: bool = True
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
                "error.occurred",
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
                    "transaction.aborted", allow_abortable=False,
                )
            raise
        if event and producer.monitor.listening(event):
            producer.monitor.instrument(
                event, producer_id=producer.id, time=(time.monotonic() - start) * 1000.0
            )
        return result


def reload_if_needed(producer: Any, error: BaseException) -> None:
    """After a librdkafka error in a transaction: rebuild the client (WaterDrop's reload!)."""
    config = producer.config
    cause = error if isinstance(error, KafkaError) else getattr(error, "__cause__", None)
    if not isinstance(cause, KafkaError):
        return
    if not config.reload_on_transaction_fatal_error:
        return
    if cause.code in config.non_reloadable_errors:
        return
    if producer._transaction_fatal_attempts >= config.max_attempts_on_transaction_fatal_error:
        return
    if producer._status is Status.CONFIGURED or producer._client is None:
        return
    producer._transaction_fatal_attempts += 1
    attempt = producer._transaction_fatal_attempts
    with producer._connect_lock:
        producer.monitor.instrument(
            "producer.reload", producer_id=producer.id, error=cause, attempt=attempt,
            caller=producer,
        )
        start = time.monotonic()
        client = producer._client
        producer._client = None
        producer._drop_buffer()
        if client is not None:
            client.close(producer.current_variant.max_wait_timeout, True)
        if producer._status is Status.CONNECTED:
            producer._status = Status.CONFIGURED
        producer.monitor.instrument(
            "producer.reloaded", producer_id=producer.id, attempt=attempt,
            time=(time.monotonic() - start) * 1000.0,
        )
    time.sleep(config.wait_backoff_on_transaction_fatal_error / 1000.0)


def mark_as_consumed(
    producer: Any, consumer: Any, message: Any, offset_metadata: str | None = None
) -> None:
    """Commit ``message``'s offset + 1 for ``consumer``'s group inside the transaction."""
    if not producer.in_transaction:
        raise TransactionRequiredError(f"{producer.id}: transaction_mark_as_consumed needs a transaction")
    group, topic, partition, offset = _offset_arguments(consumer, message)
    if offset_metadata is not None and not isinstance(offset_metadata, str):
        raise TransactionalOffsetInvalidError({"offset_metadata": "must be string or nil"})
    start = time.monotonic()
    client = producer._get_client()
    timeout = int(producer.current_variant.max_wait_timeout)
    _command(
        producer,
        "store_offset",
        lambda: client.send_offsets_to_transaction(
            [(topic, partition, offset + 1, offset_metadata)], group, timeout
        ),
        "",
    )
    if producer.monitor.listening("transaction.marked_as_consumed"):
        producer.monitor.instrument(
            "transaction.marked_as_consumed",
            producer_id=producer.id,
            message=message,
            offset_metadata=offset_metadata,
            time=(time.monotonic() - start) * 1000.0,
        )


def _offset_arguments(consumer: Any, message: Any) -> tuple[Any, str, int, int]:
    from waterdrop.contracts.messages import TRANSACTIONAL_OFFSET as WORDING

    errors: dict[str, str] = {}
    group: Any = None
    if isinstance(consumer, str) and consumer:
        group = consumer
    elif callable(getattr(consumer, "consumer_group_metadata", None)):
        group = consumer.consumer_group_metadata()
        if not isinstance(group, (bytes, bytearray, str)):
            errors["consumer"] = WORDING["consumer_format"]
    else:
        errors["consumer"] = WORDING["consumer_format"]
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
