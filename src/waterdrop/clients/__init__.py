"""Clients a producer can dispatch through: the real one and two for users' tests."""

from __future__ import annotations

import itertools
import json
import threading
import weakref
from collections import defaultdict
from typing import Any

from waterdrop import _core
from waterdrop.config import DEFAULT_MAX_PAYLOAD_SIZE
from waterdrop.errors import MessageInvalidError
from waterdrop.instrumentation import events as ev

__all__ = ["Rdkafka", "Dummy", "Buffered"]

_PURGE_CODES = ("purge_queue", "purge_inflight")
#: how a failed init_transactions notes librdkafka's last error-level log line
_LAST_ERROR_NOTE = "librdkafka's last error: "
_LOG_LEVELS = {0: 50, 1: 50, 2: 50, 3: 40, 4: 30, 5: 20, 6: 20, 7: 10}


class Rdkafka:
    """The default client: librdkafka through the Cython core.

    ``Rdkafka(producer)`` returns a ``waterdrop._core.Client`` wired to the producer's
    monitor and logger (the core object itself, so nothing sits between a produce call and C).
    """

    def __new__(cls, producer: Any, init_timeout_ms: int | None = None) -> Any:  # type: ignore[misc]
        """``init_timeout_ms``: how long a transactional client's init_transactions may wait
        for the cluster (``max_wait_timeout`` unless given: ``ping`` gives its own)."""
        config = producer.config
        monitor = producer.monitor
        statistics = monitor.listening(ev.STATISTICS_EMITTED)
        kafka = {k: _core.conf_value(v) for k, v in config.kafka.items()}
        if kafka.get("statistics.interval.ms") == "0":
            statistics = False
        if not statistics:
            kafka["statistics.interval.ms"] = "0"
            if hasattr(monitor, "freeze_statistics_listeners"):
                monitor.freeze_statistics_listeners(producer.id)
        listener = config.oauth.token_provider_listener
        if listener:
            monitor.subscribe(listener)
        oauth = monitor.listening(ev.OAUTHBEARER_TOKEN_REFRESH)
        client = _core.Client(
            kafka, int(config.max_wait_timeout), name=producer.id, statistics=statistics,
            oauth=oauth, start=False,
        )
        _wire(client, producer)
        client.start()
        if "transactional.id" in kafka:
            try:
                client.init_transactions(
                    int(config.max_wait_timeout) if init_timeout_ms is None else init_timeout_ms)
            except BaseException as error:
                client.close(0, True)
                logs = client.recent_error_logs
                if logs and hasattr(error, "add_note"):   # why it timed out, e.g. refused
                    error.add_note(f"{_LAST_ERROR_NOTE}{logs[-1]}")
                raise
        return client


def _wire(client: Any, producer: Any) -> None:
    """Route the client's events to the producer's monitor and logger.

    The callbacks hold the producer weakly: a producer dropped without close() can still be
    collected (and closed by its finalizer) although its poller thread keeps the client alive.
    """
    monitor = producer.monitor
    producer_id = producer.id
    logger = producer.config.logger
    owner = weakref.ref(producer)

    def on_error(error: Any) -> None:
        monitor.instrument(
            ev.ERROR_OCCURRED, caller=owner(), error=error, producer_id=producer_id,
            type="librdkafka.error",
        )

    def on_log(level: int, facility: str, message: str) -> None:
        logger.log(_LOG_LEVELS.get(level, 20), "[rdkafka %s] %s", facility, message)

    decorator = producer.config.statistics_decorator

    def on_stats(raw: str) -> None:
        statistics = json.loads(raw)
        _refresh_partition_counts(client, statistics)
        if monitor.listening(ev.STATISTICS_EMITTED):
            if decorator is not None:
                statistics = decorator(statistics)
            monitor.instrument(
                ev.STATISTICS_EMITTED, producer_id=producer_id, statistics=statistics
            )

    def on_deliveries(handles: list[Any]) -> None:
        acked = monitor.listening(ev.MESSAGE_ACKNOWLEDGED)
        failed = monitor.listening(ev.ERROR_OCCURRED)
        purged = monitor.listening(ev.MESSAGE_PURGED)
        if not (acked or failed or purged):
            return
        caller = owner()
        transactional = caller is not None and caller.transactional
        for report in handles:
            error = report.error
            try:
                if error is None:
                    if acked:
                        monitor.instrument(
                            ev.MESSAGE_ACKNOWLEDGED, caller=caller, producer_id=producer_id,
                            offset=report.offset, partition=report.partition,
                            topic=report.topic_name, delivery_report=report, label=report.label,
                        )
                    continue
                if transactional and error.code in _PURGE_CODES:
                    event = ev.MESSAGE_PURGED if purged else None
                else:
                    event = ev.ERROR_OCCURRED if failed else None
                if event is not None:
                    monitor.instrument(
                        event, caller=caller, error=error, producer_id=producer_id,
                        offset=report.offset, partition=report.partition,
                        topic=report.topic_name, delivery_report=report, label=report.label,
                        type="librdkafka.dispatch_error",
                    )
            except Exception as listener_error:  # noqa: BLE001 - one message's problem only
                on_callback_error("delivery", listener_error)

    def on_callback_error(kind: str, error: BaseException) -> None:
        monitor.instrument(
            ev.ERROR_OCCURRED, caller=owner(), error=error, producer_id=producer_id,
            type=f"callbacks.{kind}.error",
        )

    def on_oauth_refresh(_config: str) -> None:
        caller = owner()
        monitor.instrument(ev.OAUTHBEARER_TOKEN_REFRESH, bearer=caller, caller=caller)

    client.on_oauth_refresh = on_oauth_refresh
    client.on_error = on_error
    client.on_log = on_log
    client.on_stats = on_stats
    client.on_deliveries = on_deliveries
    client.on_callback_error = on_callback_error


def _refresh_partition_counts(client: Any, statistics: dict[str, Any]) -> None:
    """Statistics carry every topic's partitions: keep the partition-count cache fresh."""
    refresh = getattr(client, "refresh_partition_counts", None)
    if refresh is None:
        return
    counts = {}
    for name, topic in (statistics.get("topics") or {}).items():
        partitions = [p for p in (topic.get("partitions") or {}) if p != "-1"]
        if partitions:
            counts[name] = len(partitions)
    if counts:
        refresh(counts)


class Dummy:
    """Validates and acknowledges locally; nothing leaves the process.

    Offsets count up from 0 per (topic, partition); the partition is 0 unless given.
    """

    def __init__(self, producer: Any) -> None:
        self._max_wait = int(producer.config.max_wait_timeout)
        self._offsets: dict[tuple[str, int], itertools.count[int]] = defaultdict(itertools.count)
        self._lock = threading.Lock()

    def _ack(self, message: dict[str, Any], max_wait_ms: int) -> Any:
        partition = message.get("partition", 0)
        partition = 0 if partition in (None, -1) else partition
        with self._lock:
            offset = next(self._offsets[(message["topic"], partition)])
        return _core.resolved_handle(
            message["topic"], partition, offset, message.get("label"), None,
            max_wait_ms if max_wait_ms >= 0 else self._max_wait,
        )

    @staticmethod
    def _validated(
        message: Any, max_payload_size: int, index: int | None = None
    ) -> dict[str, Any]:
        errors = _core.check_message(message, max_payload_size)  # a non-mapping's too
        if errors:
            raise MessageInvalidError(errors, index)
        return dict(message)

    def produce(self, message: Any, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE, conf_key: Any = None,
                max_wait_ms: int = -1) -> Any:
        message = self._validated(message, max_payload_size)
        return self._ack(message, max_wait_ms)

    def produce_many(self, messages: list[Any], max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
                     conf_key: Any = None, max_wait_ms: int = -1) -> list[Any]:
        batch = [self._validated(m, max_payload_size, i) for i, m in enumerate(messages)]
        return [self._ack(m, max_wait_ms) for m in batch]

    def flush(self, timeout_ms: int = 0) -> bool:
        return True

    def purge(self, in_flight: bool = True) -> None:
        return None

    def close(self, timeout_ms: int = -1, force: bool = False) -> bool:
        return True

    def partition_count(self, topic: str) -> int:
        return -1

    def ping(self, timeout_ms: int = 0) -> int:
        """No cluster behind this client: answers at once, with no brokers."""
        return 0

    @property
    def queue_length(self) -> int:
        return 0

    # transactions: accepted, nothing to coordinate
    def init_transactions(self, timeout_ms: int = -1) -> None:
        return None

    def begin_transaction(self) -> None:
        return None

    def commit_transaction(self, timeout_ms: int = -1) -> None:
        return None

    def abort_transaction(self, timeout_ms: int = -1) -> None:
        return None

    def send_offsets_to_transaction(self, offsets: Any, group: Any, timeout_ms: int) -> None:
        return None

    def fatal_error(self) -> None:
        return None


class Buffered(Dummy):
    """A Dummy that keeps every produced message, for asserting on in users' tests."""

    def __init__(self, producer: Any) -> None:
        super().__init__(producer)
        self.messages: list[dict[str, Any]] = []
        self._transaction: list[dict[str, Any]] | None = None

    def _ack(self, message: dict[str, Any], max_wait_ms: int) -> Any:
        with self._lock:
            if self._transaction is not None:
                self._transaction.append(message)
            else:
                self.messages.append(message)
        return super()._ack(message, max_wait_ms)

    def begin_transaction(self) -> None:
        with self._lock:
            self._transaction = []

    def commit_transaction(self, timeout_ms: int = -1) -> None:
        """Messages produced in the transaction become visible in ``messages`` now."""
        with self._lock:
            self.messages.extend(self._transaction or ())
            self._transaction = None

    def abort_transaction(self, timeout_ms: int = -1) -> None:
        """Messages produced in the transaction are dropped."""
        with self._lock:
            self._transaction = None

    def messages_for(self, topic: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["topic"] == topic]

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
