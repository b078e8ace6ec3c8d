"""LoggerListener: WaterDrop's log lines for producer events, on Python's logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any


def _says(text: str, messages: bool = False) -> Callable[[LoggerListener, Any], None]:
    """A handler that logs ``text`` at info level (with ``took N ms`` when the event is timed);
    with ``messages``, ``{count}`` in it is the number of the event's messages, which are
    logged at debug level."""

    def handler(self: LoggerListener, event: Any) -> None:
        if not messages:
            self._info(event, text)
            return
        batch = event["messages"]
        self._info(event, text.format(count=len(batch)))
        self._debug(event, batch)

    return handler


class LoggerListener:
    """Subscribe with ``producer.monitor.subscribe(LoggerListener(logger))``.

    Info lines read ``[<producer id>] <what happened>`` (``took N ms`` when timed); with
    ``log_messages=True`` the messages themselves are logged at debug level; errors at error
    level as ``[<producer id>] Error occurred: <error> - <type>``.
    """

    def __init__(self, logger: logging.Logger | None = None, log_messages: bool = True) -> None:
        self.logger = logger or logging.getLogger("waterdrop")
        self.log_messages = log_messages

    def _info(self, event: Any, text: str) -> None:
        took = event.payload.get("time")
        suffix = f" took {round(took, 2)} ms" if took is not None else ""
        self.logger.info("[%s] %s%s", event.payload.get("producer_id"), text, suffix)

    def _debug(self, event: Any, what: Any) -> None:
        if self.log_messages:
            self.logger.debug("[%s] %r", event.payload.get("producer_id"), what)

    def on_message_produced_async(self, event: Any) -> None:
        self._info(event, f"Message to '{event['message'].get('topic')}' topic was delegated "
                          "to a dispatch queue")
        self._debug(event, event["message"])

    def on_message_produced_sync(self, event: Any) -> None:
        self._info(event, f"Sync producing of a message to '{event['message'].get('topic')}' topic")
        self._debug(event, event["message"])

    def on_messages_produced_async(self, event: Any) -> None:
        messages = event["messages"]
        topics = sorted({str(m.get("topic")) for m in messages})
        self._info(event, f"{len(messages)} messages to {len(topics)} topics were delegated to "
                          "a dispatch queue")
        self._debug(event, messages)

    def on_messages_produced_sync(self, event: Any) -> None:
        messages = event["messages"]
        topics = {str(m.get("topic")) for m in messages}
        self._info(event, f"Sync producing of {len(messages)} messages to {len(topics)} topics")
        self._debug(event, messages)

    def on_message_buffered(self, event: Any) -> None:
        self._info(event, f"Buffering of a message to '{event['message'].get('topic')}' topic")
        self._debug(event, event["message"])

    on_messages_buffered = _says("Buffering of {count} messages", messages=True)
    on_buffer_flushed_async = _says(
        "Async flushing of {count} messages from the buffer", messages=True
    )
    on_buffer_flushed_sync = _says("Sync flushing of {count} messages from the buffer", messages=True)

    on_buffer_purged = _says("Successfully purging buffer")
    on_producer_closing = _says("Closing producer")
    on_producer_closed = _says("Closing producer")
    on_producer_disconnecting = _says("Disconnecting producer")
    on_producer_disconnected = _says("Disconnected producer")
    on_producer_reloaded = _says("Producer successfully reloaded")

    def on_error_occurred(self, event: Any) -> None:
        self.logger.error(
            "[%s] Error occurred: %s - %s",
            event.payload.get("producer_id"), event.payload.get("error"), event.payload.get("type"),
        )

    on_transaction_started = _says("Starting transaction")
    on_transaction_aborted = _says("Aborting transaction")
    on_transaction_committed = _says("Committing transaction")

    def on_transaction_marked_as_consumed(self, event: Any) -> None:
        message = event["message"]
        topic, partition, offset = _position(message)
        self._info(event, f"Marking message with offset {offset} on {topic}-{partition} as "
                          "consumed in a transaction")

    on_transaction_finished = _says("Processing transaction")


def _position(message: Any) -> tuple[Any, Any, Any]:
    if isinstance(message, tuple) and len(message) == 3:
        return message
    if isinstance(message, dict):
        return message.get("topic"), message.get("partition"), message.get("offset")
    values = []
    for name in ("topic", "partition", "offset"):
        value = getattr(message, name, None)
        values.append(value() if callable(value) else value)
    return values[0], values[1], values[2]
