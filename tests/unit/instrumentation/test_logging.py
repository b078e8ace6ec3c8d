"""LoggerListener's lines and levels (inventory §4.5), and librdkafka's own log lines routed
to the ``logger`` setting from a Python thread waterdrop owns."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from tests.unit.instrumentation.conftest import DEADLINE_S
from tests.unit.instrumentation.test_errors import closed_port
from waterdrop import AbortTransaction, Producer
from waterdrop.instrumentation import Event, LoggerListener

LOGGER = "tests.waterdrop.listener"
TOOK = r" took \d+(\.\d+)? ms"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    def lines(level: int | None = None) -> list[str]:
        return [
            r.getMessage() for r in caplog.records
            if r.name == LOGGER and (level is None or r.levelno == level)
        ]

    return lines


@pytest.fixture
def dummy():
    """A producer on the Dummy client (nothing leaves the process) with a LoggerListener."""
    producer = Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, deliver=False, id="dummy-1")
    producer.monitor.subscribe(LoggerListener(logging.getLogger(LOGGER)))
    yield producer
    producer.close()


def only(lines: list[str], pattern: str) -> str:
    matching = [line for line in lines if re.fullmatch(pattern, line)]
    assert len(matching) == 1, (pattern, lines)
    return matching[0]


def test_message_produced_async(dummy, logs):
    dummy.produce_async(topic="orders", payload=b"x")
    only(logs(logging.INFO),
         r"\[dummy-1\] Message to 'orders' topic was delegated to a dispatch queue" + TOOK)
    (debug,) = logs(logging.DEBUG)
    assert debug.startswith("[dummy-1] {") and "'orders'" in debug


def test_message_produced_sync(dummy, logs):
    dummy.produce_sync(topic="orders", payload=b"x")
    only(logs(logging.INFO), r"\[dummy-1\] Sync producing of a message to 'orders' topic" + TOOK)


def test_messages_produced_async(dummy, logs):
    dummy.produce_many_async([
        {"topic": "a", "payload": b"1"}, {"topic": "b", "payload": b"2"},
        {"topic": "a", "payload": b"3"},
    ])
    only(logs(logging.INFO),
         r"\[dummy-1\] 3 messages to 2 topics were delegated to a dispatch queue" + TOOK)
    (debug,) = logs(logging.DEBUG)
    assert debug.startswith("[dummy-1] [")


def test_messages_produced_sync(dummy, logs):
    dummy.produce_many_sync([{"topic": "a", "payload": b"1"}, {"topic": "a", "payload": b"2"}])
    only(logs(logging.INFO), r"\[dummy-1\] Sync producing of 2 messages to 1 topics" + TOOK)


def test_message_buffered(dummy, logs):
    dummy.buffer(topic="orders", payload=b"x")
    only(logs(logging.INFO), r"\[dummy-1\] Buffering of a message to 'orders' topic" + TOOK)
    dummy.purge()


def test_messages_buffered(dummy, logs):
    dummy.buffer_many([{"topic": "a", "payload": b"1"}, {"topic": "a", "payload": b"2"}])
    only(logs(logging.INFO), r"\[dummy-1\] Buffering of 2 messages" + TOOK)
    dummy.purge()


@pytest.mark.parametrize("sync, word", [(True, "Sync"), (False, "Async")])
def test_buffer_flushed(dummy, logs, sync, word):
    dummy.buffer_many([{"topic": "a", "payload": b"1"}, {"topic": "a", "payload": b"2"}])
    dummy.flush_sync() if sync else dummy.flush_async()
    only(logs(logging.INFO), rf"\[dummy-1\] {word} flushing of 2 messages from the buffer" + TOOK)


def test_buffer_purged(dummy, logs):
    dummy.purge()
    only(logs(logging.INFO), r"\[dummy-1\] Successfully purging buffer" + TOOK)


def test_producer_closing_and_closed(dummy, logs):
    dummy.produce_sync(topic="a", payload=b"x")
    dummy.close()
    info = logs(logging.INFO)
    only(info, r"\[dummy-1\] Closing producer")
    only(info, r"\[dummy-1\] Closing producer" + TOOK)


def test_producer_disconnecting_and_disconnected(logs, cluster, topic):
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}, id="disc-1")
    producer.monitor.subscribe(LoggerListener(logging.getLogger(LOGGER)))
    try:
        producer.produce_sync(topic=topic, payload=b"x")
        assert producer.disconnect()
    finally:
        producer.close()
    info = logs(logging.INFO)
    only(info, r"\[disc-1\] Disconnecting producer")
    only(info, r"\[disc-1\] Disconnected producer" + TOOK)


def test_error_occurred(logs):
    producer = Producer(
        kafka={"bootstrap.servers": f"127.0.0.1:{closed_port()}", "message.timeout.ms": 500},
        id="err-1", max_wait_timeout=5_000,
    )
    producer.monitor.subscribe(LoggerListener(logging.getLogger(LOGGER)))
    try:
        with pytest.raises(Exception):
            producer.produce_sync(topic="nowhere", payload=b"x")
    finally:
        producer.close(force=True)
    errors = logs(logging.ERROR)
    assert any(re.fullmatch(r"\[err-1\] Error occurred: .+ - message\.produce_sync", e)
               for e in errors), errors
    assert any(e.endswith(" - librdkafka.dispatch_error") for e in errors), errors


def test_transaction_lines(logs, cluster, topic):
    producer = Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": f"log-{topic}"},
        id="tx-1",
    )
    producer.monitor.subscribe(LoggerListener(logging.getLogger(LOGGER)))
    try:
        with producer.transaction():
            producer.produce_async(topic=topic, payload=b"x")
        with producer.transaction():
            producer.produce_async(topic=topic, payload=b"y")
            raise AbortTransaction()
    finally:
        producer.close()
    info = logs(logging.INFO)
    assert len([i for i in info if re.fullmatch(r"\[tx-1\] Starting transaction" + TOOK, i)]) == 2
    only(info, r"\[tx-1\] Committing transaction" + TOOK)
    only(info, r"\[tx-1\] Aborting transaction" + TOOK)
    assert len([i for i in info if re.fullmatch(r"\[tx-1\] Processing transaction" + TOOK, i)]) == 2


def test_lines_for_events_hard_to_provoke(logs):
    listener = LoggerListener(logging.getLogger(LOGGER))
    listener.on_producer_reloaded(Event("producer.reloaded",
                                        {"producer_id": "r-1", "attempt": 1, "time": 1.234}))
    listener.on_transaction_marked_as_consumed(Event(
        "transaction.marked_as_consumed",
        {"producer_id": "r-1", "message": ("orders", 3, 41), "offset_metadata": None,
         "time": 0.5},
    ))
    info = logs(logging.INFO)
    assert info == [
        "[r-1] Producer successfully reloaded took 1.23 ms",
        "[r-1] Marking message with offset 41 on orders-3 as consumed in a transaction took 0.5 ms",
    ]


def test_log_messages_false_hides_the_payloads(logs):
    producer = Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}, deliver=False, id="quiet")
    producer.monitor.subscribe(LoggerListener(logging.getLogger(LOGGER), log_messages=False))
    try:
        producer.produce_sync(topic="a", payload=b"secret")
        producer.produce_many_async([{"topic": "a", "payload": b"secret"}])
    finally:
        producer.close()
    assert logs(logging.DEBUG) == []
    assert not any("secret" in line for line in logs())
    assert len(logs(logging.INFO)) >= 2


def test_no_handlers_for_the_events_waterdrop_does_not_log():
    listener = LoggerListener(logging.getLogger(LOGGER))
    for name in ("message_acknowledged", "message_purged", "producer_connected",
                 "producer_reload", "statistics_emitted", "oauthbearer_token_refresh"):
        assert not hasattr(listener, f"on_{name}"), name


def test_subscribing_the_listener_keeps_statistics_off(dummy):
    """LoggerListener has no statistics handler, so it does not turn statistics on."""
    assert "statistics.emitted" not in dummy.monitor.listeners


def test_default_logger_is_waterdrops():
    assert LoggerListener().logger is logging.getLogger("waterdrop")


# --- librdkafka's own log lines -------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self, pattern: str) -> None:
        super().__init__(level=logging.DEBUG)
        self.pattern = re.compile(pattern)
        self.records: list[logging.LogRecord] = []
        self.matched = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.pattern.search(record.getMessage()):
            self.matched.set()


@pytest.fixture
def capture_logger():
    logger = logging.getLogger("tests.waterdrop.rdkafka")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handlers: list[logging.Handler] = []

    def attach(pattern: str) -> _Capture:
        handler = _Capture(pattern)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield logger, attach
    for handler in handlers:
        logger.removeHandler(handler)


def test_librdkafka_log_lines_go_to_the_logger_setting(capture_logger):
    logger, attach = capture_logger
    capture = attach(r"\[rdkafka FAIL\]")
    producer = Producer(
        kafka={"bootstrap.servers": f"127.0.0.1:{closed_port()}", "message.timeout.ms": 500},
        logger=logger, max_wait_timeout=5_000,
    )
    try:
        producer.produce_async(topic="nowhere", payload=b"x")
        assert capture.matched.wait(DEADLINE_S), [r.getMessage() for r in capture.records]
    finally:
        producer.close(force=True)
    fails = [r for r in capture.records if "[rdkafka FAIL]" in r.getMessage()]
    assert fails
    for record in fails:
        assert record.levelno == logging.ERROR
        assert "Connection refused" in record.getMessage() or "Connect to" in record.getMessage()
        # served by the client's poller thread, never called from a librdkafka thread
        assert record.threadName.startswith("waterdrop-poller"), record.threadName


def test_librdkafka_debug_contexts_log_at_debug_level(capture_logger, cluster, topic):
    logger, attach = capture_logger
    capture = attach(r"\[rdkafka ")
    producer = Producer(
        kafka={"bootstrap.servers": cluster.bootstrap_servers, "debug": "msg"}, logger=logger,
    )
    try:
        producer.produce_sync(topic=topic, payload=b"x")
        assert capture.matched.wait(DEADLINE_S)
    finally:
        producer.close()
    levels = {r.levelno for r in capture.records if r.getMessage().startswith("[rdkafka ")}
    assert logging.DEBUG in levels
    assert all(not r.threadName.startswith("Dummy") for r in capture.records)


def test_librdkafka_lines_do_not_need_a_logger_listener(capture_logger):
    """The logger setting receives librdkafka's lines by itself (as WaterDrop's config.logger);
    the LoggerListener is only for WaterDrop's own event lines."""
    logger, attach = capture_logger
    capture = attach(r"\[rdkafka ")
    producer = Producer(
        kafka={"bootstrap.servers": f"127.0.0.1:{closed_port()}", "message.timeout.ms": 500},
        logger=logger, max_wait_timeout=5_000,
    )
    try:
        assert producer.monitor.listeners == {}
        producer.produce_async(topic="nowhere", payload=b"x")
        assert capture.matched.wait(DEADLINE_S)
    finally:
        producer.close(force=True)
