"""Every event name, once: the producer, the core and the listeners import them from here.

A typo in a string literal subscribes to nothing and fails only at runtime; a typo in a
constant's name fails at import.
"""

from __future__ import annotations

PRODUCER_CONNECTED = "producer.connected"
PRODUCER_CLOSING = "producer.closing"
PRODUCER_CLOSED = "producer.closed"
PRODUCER_RELOAD = "producer.reload"
PRODUCER_RELOADED = "producer.reloaded"
PRODUCER_DISCONNECTING = "producer.disconnecting"
PRODUCER_DISCONNECTED = "producer.disconnected"
MESSAGE_PRODUCED_ASYNC = "message.produced_async"
MESSAGE_PRODUCED_SYNC = "message.produced_sync"
MESSAGE_ACKNOWLEDGED = "message.acknowledged"
MESSAGE_PURGED = "message.purged"
MESSAGE_BUFFERED = "message.buffered"
MESSAGES_PRODUCED_ASYNC = "messages.produced_async"
MESSAGES_PRODUCED_SYNC = "messages.produced_sync"
MESSAGES_BUFFERED = "messages.buffered"
OAUTHBEARER_TOKEN_REFRESH = "oauthbearer.token_refresh"
TRANSACTION_STARTED = "transaction.started"
TRANSACTION_COMMITTED = "transaction.committed"
TRANSACTION_ABORTED = "transaction.aborted"
TRANSACTION_MARKED_AS_CONSUMED = "transaction.marked_as_consumed"
TRANSACTION_FINISHED = "transaction.finished"
BUFFER_FLUSHED_ASYNC = "buffer.flushed_async"
BUFFER_FLUSHED_SYNC = "buffer.flushed_sync"
BUFFER_PURGED = "buffer.purged"
STATISTICS_EMITTED = "statistics.emitted"
ERROR_OCCURRED = "error.occurred"

PRODUCER_CREATED = "producer.created"
PRODUCER_CONFIGURED = "producer.configured"
CONNECTION_POOL_CREATED = "connection_pool.created"
CONNECTION_POOL_SETUP = "connection_pool.setup"
CONNECTION_POOL_SHUTDOWN = "connection_pool.shutdown"
CONNECTION_POOL_RELOAD = "connection_pool.reload"
CONNECTION_POOL_RELOADED = "connection_pool.reloaded"

#: Every per-producer event, by WaterDrop's names (a producer's Monitor accepts these).
EVENTS: tuple[str, ...] = (
    PRODUCER_CONNECTED,
    PRODUCER_CLOSING,
    PRODUCER_CLOSED,
    PRODUCER_RELOAD,
    PRODUCER_RELOADED,
    PRODUCER_DISCONNECTING,
    PRODUCER_DISCONNECTED,
    MESSAGE_PRODUCED_ASYNC,
    MESSAGE_PRODUCED_SYNC,
    MESSAGE_ACKNOWLEDGED,
    MESSAGE_PURGED,
    MESSAGE_BUFFERED,
    MESSAGES_PRODUCED_ASYNC,
    MESSAGES_PRODUCED_SYNC,
    MESSAGES_BUFFERED,
    OAUTHBEARER_TOKEN_REFRESH,
    TRANSACTION_STARTED,
    TRANSACTION_COMMITTED,
    TRANSACTION_ABORTED,
    TRANSACTION_MARKED_AS_CONSUMED,
    TRANSACTION_FINISHED,
    BUFFER_FLUSHED_ASYNC,
    BUFFER_FLUSHED_SYNC,
    BUFFER_PURGED,
    STATISTICS_EMITTED,
    ERROR_OCCURRED,
)

#: Process-wide events on ``waterdrop.monitor``.
CLASS_EVENTS: tuple[str, ...] = (
    PRODUCER_CREATED,
    PRODUCER_CONFIGURED,
    CONNECTION_POOL_CREATED,
    CONNECTION_POOL_SETUP,
    CONNECTION_POOL_SHUTDOWN,
    CONNECTION_POOL_RELOAD,
    CONNECTION_POOL_RELOADED,
)
