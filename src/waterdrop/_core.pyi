"""Type stubs for the Cython core (waterdrop/_core.pyx)."""

from collections.abc import Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Any, final, overload

from waterdrop.config import DEFAULT_MAX_PAYLOAD_SIZE as DEFAULT_MAX_PAYLOAD_SIZE
from waterdrop.config import DEFAULT_MAX_WAIT_TIMEOUT as DEFAULT_MAX_WAIT_TIMEOUT
from waterdrop.errors import KafkaError
from waterdrop.types import Headers, Key, Message, Payload, Timestamp

ERROR_NAMES: dict[int, str]
ERROR_CODES: dict[str, int]

def librdkafka_version() -> str:
    """The version of the linked librdkafka, e.g. ``"2.14.2"``."""
def librdkafka_features() -> tuple[str, ...]:
    """The features the linked librdkafka was built with (``builtin.features``), e.g. ``"zstd"``."""
def kafka_error(
    code: int,
    message: str | None = ...,
    fatal: bool = ...,
    retryable: bool = ...,
    abortable: bool = ...,
) -> KafkaError: ...
def check_message(message: Any, max_payload_size: int = ...) -> dict[str, str]: ...
def conf_value(value: Any) -> str: ...
def check_conf(settings: dict[str, Any], topic: bool = ...) -> dict[str, tuple[bool, str]]: ...
def conf_properties_doc() -> str: ...
def resolved_handle(
    topic: str,
    partition: int = ...,
    offset: int = ...,
    label: Any = ...,
    error: KafkaError | None = ...,
    max_wait_ms: int = ...,
) -> DeliveryHandle: ...
def pending_handle(topic: str, label: Any = ..., max_wait_ms: int = ...) -> DeliveryHandle: ...
def _handle_freelist_size() -> tuple[int, int]: ...

class DeliveryReport:
    """The broker's verdict on one message: where it was written, or why it was not.

    ``produce_sync`` returns one; ``DeliveryHandle.wait()`` returns one.
    """

    topic_name: str
    """The topic the message was produced to."""
    label: Any
    """The message's ``label`` (never sent to Kafka), or ``None``."""
    def __init__(
        self,
        topic_name: str,
        partition: int = ...,
        offset: int = ...,
        label: Any = ...,
        error: KafkaError | None = ...,
        latency_ms: float = ...,
    ) -> None: ...
    @property
    def topic(self) -> str:
        """Alias of ``topic_name``."""
    @property
    def partition(self) -> int:
        """The partition the message was written to (-1 if it failed before one was chosen)."""
    @property
    def offset(self) -> int:
        """The message's offset in its partition (-1 if it was not written)."""
    @property
    def error(self) -> KafkaError | None:
        """``None`` when delivered, else the ``KafkaError`` (``.code`` like ``"msg_timed_out"``)."""
    @property
    def latency_ms(self) -> float:
        """librdkafka's produce-to-acknowledgement latency, in milliseconds."""

@final
class DeliveryHandle(DeliveryReport):
    """A message on its way, returned by ``produce_async`` (and the ``*_many_*`` methods).

    ``wait()`` blocks until the verdict (without holding the GIL); ``await handle`` does the
    same from asyncio without blocking a thread.
    """

    @property
    def pending(self) -> bool:
        """``True`` until the message is delivered or has failed."""
    def report(self) -> DeliveryReport | None:
        """The report if the verdict is in, else ``None`` (never blocks)."""
    def wait(
        self, max_wait_timeout: int | None = ..., raise_response_error: bool = ...
    ) -> DeliveryReport:
        """Wait for the verdict and return the report.

        Args:
            max_wait_timeout: at most this many milliseconds (default: the producer's
                ``max_wait_timeout``); raises ``WaitTimeoutError`` if the message is still on
                its way then (it may still be delivered later).
            raise_response_error: raise the ``KafkaError`` of a failed delivery (the default);
                with ``False``, return the report with ``report.error`` set instead.
        """
    def add_done_callback(self, callback: Callable[[DeliveryHandle], Any]) -> None:
        """Call ``callback(handle)`` once the verdict is in (at once if it already is).

        It runs on the producer's delivery thread: keep it short.
        """
    def _resolve(
        self, partition: int = ..., offset: int = ..., error: KafkaError | None = ...
    ) -> None: ...
    def __await__(self) -> Generator[Any, None, DeliveryReport]:
        """``await handle``: the report, as ``wait()``, without blocking a thread."""

class Client:
    name: str
    max_wait_ms: int
    on_error: Callable[[KafkaError], Any] | None
    on_log: Callable[[int, str, str], Any] | None
    on_stats: Callable[[str], Any] | None
    on_deliveries: Callable[[list[DeliveryHandle]], Any] | None
    delivery_monitor: Any
    on_callback_error: Callable[[str, BaseException], Any] | None
    def __init__(
        self,
        config: dict[str, str],
        max_wait_ms: int = ...,
        name: str = ...,
        statistics: bool = ...,
        oauth: bool = ...,
        start: bool = ...,
    ) -> None: ...
    def start(self) -> None: ...
    on_oauth_refresh: Callable[[str], Any] | None
    def oauthbearer_set_token(
        self, token: str, lifetime_ms: int, principal_name: str,
        extensions: dict[str, str] | None = ...,
    ) -> None: ...
    def oauthbearer_set_token_failure(self, reason: str) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def rdkafka_name(self) -> str | None: ...
    @property
    def queue_length(self) -> int: ...
    @property
    def handles_in_flight(self) -> int: ...
    @property
    def poller_thread(self) -> Any: ...
    def refresh_partition_counts(self, counts: dict[str, int]) -> None: ...
    def partition_count(self, topic: str, timeout_ms: int = ..., fresh: bool = ...) -> int: ...
    def ping(self, timeout_ms: int) -> int: ...
    @property
    def recent_errors(self) -> tuple[KafkaError, ...]: ...
    @property
    def recent_error_logs(self) -> tuple[str, ...]: ...
    def produce(
        self,
        message: Mapping[str, Any],
        max_payload_size: int = ...,
        conf_key: Any = ...,
        max_wait_ms: int = ...,
    ) -> DeliveryHandle: ...
    def produce_many(
        self,
        messages: list[Any],
        max_payload_size: int = ...,
        conf_key: Any = ...,
        max_wait_ms: int = ...,
    ) -> list[DeliveryHandle]: ...
    def flush(self, timeout_ms: int) -> bool: ...
    def purge(self, in_flight: bool = ...) -> None: ...
    def fatal_error(self) -> KafkaError | None: ...
    def trigger_test_fatal_error(self, code: int, reason: str) -> int: ...
    def init_transactions(self, timeout_ms: int) -> None: ...
    def begin_transaction(self) -> None: ...
    def commit_transaction(self, timeout_ms: int = ...) -> None: ...
    def abort_transaction(self, timeout_ms: int = ...) -> None: ...
    def send_offsets_to_transaction(
        self, offsets: list[tuple[str, int, int, str | None]], group: Any, timeout_ms: int
    ) -> None: ...
    def close(self, timeout_ms: int = ..., force: bool = ...) -> bool: ...
    def abandon(self) -> None: ...

class MockCluster:
    """librdkafka's in-process Kafka cluster: the real protocol on 127.0.0.1, fault injection.

    A context manager; any Kafka client on the host can connect to ``bootstrap_servers``
    while it lives. Topics are created on first use, or with ``create_topic``. Brokers are
    numbered from 1.
    """

    bootstrap_servers: str
    """The ``bootstrap.servers`` string of the cluster's brokers."""
    brokers: int
    """How many brokers the cluster has."""
    def __init__(self, brokers: int = ...) -> None:
        """Start a cluster of ``brokers`` brokers (3 by default)."""
    def create_topic(self, topic: str, partitions: int = ..., replication_factor: int = ...) -> None:
        """Create ``topic`` with ``partitions`` partitions and ``replication_factor`` replicas."""
    def broker_down(self, broker_id: int) -> None:
        """Make broker ``broker_id`` unreachable (its connections are closed)."""
    def broker_up(self, broker_id: int) -> None:
        """Bring broker ``broker_id`` back."""
    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response of ``broker_id`` (-1: all brokers) by ``rtt_ms``."""
    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Move the leadership of ``topic``'s ``partition`` to broker ``broker_id``."""
    def push_request_errors(self, api_key: int, errors: list[int | str]) -> None:
        """Fail the next requests of ``api_key`` (0 = Produce) with ``errors``, in order.

        An error is a librdkafka error name (``"not_leader_for_partition"``) or its code.
        """
    def clear_request_errors(self, api_key: int) -> None:
        """Forget the errors pushed for ``api_key`` that were not used yet."""
    def abandon(self) -> None:
        """Forget the native cluster without touching it (in a forked child)."""
    def close(self) -> None:
        """Stop the cluster (also done when the ``with`` block ends)."""
    def __enter__(self) -> MockCluster: ...
    def __exit__(self, *exc: object) -> None: ...

# The variant whose method runs in this thread / asyncio task (None: the producer's default).
CURRENT_VARIANT: ContextVar[Any]

@final
class ListenerChanges:
    """A Monitor's count of listener changes (every subscribe, unsubscribe and clear).

    Whoever caches ``monitor.listening(event)`` answers asks again once ``count`` moved.
    """

    @property
    def count(self) -> int: ...
    def bump(self) -> None:
        """Count one change (after the listener table has changed)."""

class ProducerBase:
    """The per-message dispatch of ``waterdrop.Producer`` (see producer/__init__.py).

    The subclass defines the hooks the base calls: ``id`` and the methods below that raise
    ``NotImplementedError`` here.
    """

    id: Any
    _client: Any
    _client_pid: int
    _max_payload: int
    _transactional: bool
    _transaction_owner: Any
    _transaction_first_handle: Any
    _middleware_steps: list[Any]
    _middleware: Any
    monitor: Any
    _default_variant: Any
    def _connect(self) -> Any:
        """Return the producer's client for this process, connecting it first if need be."""
    def _dispatch_retrying(self, message: Any, variant: Any, error: Any, error_type: Any) -> Any:
        """Retry the failed enqueue of ``message`` (``error``) under the producer's policies;
        return its handle or raise its ProduceError."""
    def _produce_error(self, message: Any, error: Any, error_type: Any) -> Any:
        """Report ``message``'s failure (``error``) and return the ProduceError to raise."""
    def _produce_async_slow(self, message: Any) -> Any:
        """produce_async of ``message`` with middleware, or of a mapping other than a dict."""
    def _produce_sync_slow(self, message: Any) -> Any:
        """produce_sync of ``message`` with middleware, in a transaction, or of a mapping other
        than a dict."""
    def _produce_async_in_transaction(self, message: Any) -> Any:
        """produce_async of ``message`` by a transactional producer outside a transaction
        block: in a transaction of its own."""
    @overload
    def produce_async(self, message: Message, /) -> DeliveryHandle: ...
    @overload
    def produce_async(
        self,
        *,
        topic: str,
        payload: Payload,
        key: Key = ...,
        partition: int = ...,
        partition_key: Key = ...,
        timestamp: Timestamp = ...,
        headers: Headers | None = ...,
        label: Any = ...,
    ) -> DeliveryHandle:
        """Send one message without waiting; return its ``DeliveryHandle`` at once.

        The message is a ``Message`` mapping or the same names as keywords (``topic``,
        ``payload``, ``key``, ``partition``, ``partition_key``, ``timestamp``, ``headers``,
        ``label``), not both: a mapping with keyword fields too raises ``TypeError``. It is
        validated first: ``MessageInvalidError`` means nothing was sent. A failure to enqueue
        raises ``ProduceError``; a delivery failure reaches the handle.
        """
    @overload
    def produce_sync(self, message: Message, /) -> DeliveryReport: ...
    @overload
    def produce_sync(
        self,
        *,
        topic: str,
        payload: Payload,
        key: Key = ...,
        partition: int = ...,
        partition_key: Key = ...,
        timestamp: Timestamp = ...,
        headers: Headers | None = ...,
        label: Any = ...,
    ) -> DeliveryReport:
        """Send one message and wait for its delivery report.

        The same message forms as ``produce_async``. Returns the ``DeliveryReport`` once
        the broker acknowledged it; a delivery failure raises ``ProduceError``.
        """
