"""Every public name of waterdrop, used the way an application would, under ``mypy --strict``.

Checked by tests/typing/test_typing.py (mypy on this file against the *installed* package,
then each ``reveal_type(...)  # R: <type>`` compared with what mypy reveals; ``builtins.``
prefixes are ignored, as mypy versions differ in printing them). Nothing here runs
at import: the bodies are functions that are never called, so importing this module is
harmless.

A public name is one listed in the ``__all__`` of a public module (no leading underscore);
the test fails when one (or the same object under another public module) is not imported
and used here, so a new public name needs a line here too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, reveal_type

import waterdrop
import waterdrop.connection_pool
from waterdrop import (
    AbortTransaction,
    ClusterUnreachableError,
    ConfigurationInvalidError,
    ConnectionPool,
    DeliveryHandle,
    DeliveryReport,
    Error,
    KafkaError,
    Message,
    MessageInvalidError,
    ProduceError,
    ProduceManyError,
    Producer,
    ProducerClosedError,
    Status,
    Tombstone,
    WaitTimeoutError,
    __version__,
    clients,
    errors,
    instrumentation,
    librdkafka_features,
    librdkafka_version,
    monitor,
    testing,
)
from waterdrop.aio import Producer as AsyncProducer
from waterdrop.aio import Transaction as AsyncTransaction
from waterdrop.aio import Variant as AsyncVariant
from waterdrop.aio import wait, wait_all
from waterdrop.clients import Buffered, Dummy, Rdkafka
from waterdrop.connection_pool import (
    active,
    close,
    pool,
    reload,
    setup,
    shutdown,
    stats,
    transaction,
    with_producer,
)
from waterdrop.errors import (
    ConnectionPoolClosedError,
    ConnectionPoolTimeoutError,
    ProducerAlreadyConfiguredError,
    ProducerNotConfiguredError,
    ProducerNotTransactionalError,
    ProducerTransactionalCloseAttemptError,
    ProducerUsedInParentProcessError,
    StatisticsNotEnabledError,
    StatusInvalidError,
    TransactionalOffsetInvalidError,
    TransactionRequiredError,
    VariantInvalidError,
)
from waterdrop.instrumentation import (
    CLASS_EVENTS,
    EVENTS,
    Event,
    EventNotRegisteredError,
    LoggerListener,
    Monitor,
    StatisticsDecorator,
)
from waterdrop.instrumentation.opentelemetry import OpenTelemetryListener
from waterdrop.instrumentation.prometheus import PrometheusListener
from waterdrop.producer import Tags, Variant
from waterdrop.producer import Producer as ProducerFromPackage
from waterdrop.producer import Status as StatusFromPackage
from waterdrop.testing import MockCluster
from waterdrop.types import HeaderValue, Headers, Key, Payload, Timestamp
from waterdrop.types import Message as MessageFromTypes
from waterdrop.types import Tombstone as TombstoneFromTypes


def versions() -> None:
    reveal_type(__version__)  # R: str
    reveal_type(waterdrop.__version__)  # R: str
    reveal_type(librdkafka_version())  # R: str
    reveal_type(librdkafka_features())  # R: tuple[str, ...]


def produce(cluster: MockCluster) -> None:
    reveal_type(cluster.bootstrap_servers)  # R: str
    cluster.create_topic("orders", partitions=3)
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    reveal_type(Producer().setup(kafka={"bootstrap.servers": cluster.bootstrap_servers}))  # R: waterdrop.producer.Producer
    handle = producer.produce_async(topic="orders", payload=b"{}", key="k")
    reveal_type(handle)  # R: waterdrop._core.DeliveryHandle
    reveal_type(handle.pending)  # R: bool
    report = handle.wait()
    reveal_type(report)  # R: waterdrop._core.DeliveryReport
    reveal_type(report.topic)  # R: str
    reveal_type(report.partition)  # R: int
    reveal_type(report.offset)  # R: int
    reveal_type(report.error)  # R: waterdrop.errors.KafkaError | None
    reveal_type(report.label)  # R: Any
    reveal_type(handle.report())  # R: waterdrop._core.DeliveryReport | None
    producer.produce_sync({"topic": "orders", "payload": b"{}"})
    producer.produce_many_sync([{"topic": "orders", "payload": b"1"}])
    message: Message = {"topic": "orders", "payload": b"{}", "headers": {"trace": ["a", b"b"]}}
    reveal_type(message["topic"])  # R: str
    reveal_type(producer.produce_sync(message))  # R: waterdrop._core.DeliveryReport
    reveal_type(producer.tombstone_sync(topic="orders", key=b"k", partition=2))  # R: waterdrop._core.DeliveryReport
    gone: Tombstone = {"topic": "orders", "key": "k", "partition": 2}
    gone["label"] = "deleted"
    reveal_type(producer.tombstone_async(gone))  # R: waterdrop._core.DeliveryHandle
    reveal_type(producer.tombstone_many_sync([gone, {"topic": "orders", "key": b"j", "partition": 0, "payload": None}]))  # R: list[waterdrop._core.DeliveryHandle]
    also_gone: TombstoneFromTypes = gone
    del also_gone
    built: Message = {"topic": "orders", "payload": None}
    built["key"] = "k"
    built["partition"] = 1
    buffered: tuple[Message, ...] = producer.buffer(message)
    buffered = producer.messages
    reveal_type(producer.flush_sync())  # R: list[waterdrop._core.DeliveryHandle]
    also: MessageFromTypes = message
    payload: Payload = None
    key: Key = "k"
    when: Timestamp = 1_700_000_000_000
    value: HeaderValue = [b"x", "y"]
    headers: Headers = {"h": value}
    producer.produce_async(topic="orders", payload=payload, key=key, timestamp=when, headers=headers)
    del also, buffered
    reveal_type(producer.produce_many_async([{"topic": "orders", "payload": b"2"}]))  # R: list[waterdrop._core.DeliveryHandle]
    reveal_type(producer.partition_count("orders"))  # R: int
    try:
        reveal_type(producer.ping(max_wait_timeout=10_000))  # R: int
    except ClusterUnreachableError as unreachable:
        reveal_type(unreachable.cause)  # R: str | None
        reveal_type(unreachable.bootstrap_servers)  # R: str
    reveal_type(producer.queue_size)  # R: int
    reveal_type(producer.status)  # R: waterdrop.producer.status.Status
    reveal_type(producer.status.active)  # R: bool
    reveal_type(producer.transactional)  # R: bool
    reveal_type(producer.variant(topic_config={"acks": 1}))  # R: waterdrop.producer.variant.Variant
    gzip = producer.variant(topic_config={"compression.type": "gzip"})
    reveal_type(gzip.produce_sync(topic="orders", payload=b"{}"))  # R: waterdrop._core.DeliveryReport
    reveal_type(gzip.produce_async({"topic": "orders", "payload": b"{}"}))  # R: waterdrop._core.DeliveryHandle
    reveal_type(gzip.produce_many_sync([{"topic": "orders", "payload": b"1"}]))  # R: list[waterdrop._core.DeliveryHandle]
    reveal_type(gzip.tombstone_async(topic="orders", key="k", partition=0))  # R: waterdrop._core.DeliveryHandle
    buffered = gzip.buffer(topic="orders", payload="text")
    reveal_type(gzip.flush_async())  # R: list[waterdrop._core.DeliveryHandle]
    with gzip.transaction() as in_tx:
        reveal_type(in_tx)  # R: waterdrop.producer.Producer
    reveal_type(producer.current_variant)  # R: waterdrop.producer.variant.Variant | None
    producer.tags.add("env", "test")
    reveal_type(producer.tags)  # R: waterdrop.producer.Tags
    reveal_type(producer.disconnect())  # R: bool
    producer.close()
    assert Status.CLOSED is StatusFromPackage.CLOSED
    assert ProducerFromPackage is Producer
    tags: Tags = producer.tags
    variant: Variant = producer.variant()
    del tags, variant
    with MockCluster(brokers=1) as other:
        reveal_type(other)  # R: waterdrop._core.MockCluster


def reports() -> None:
    report = DeliveryReport("orders", partition=0, offset=1)
    reveal_type(report.latency_ms)  # R: float
    handles: list[DeliveryHandle] = []
    del handles


def use_clients() -> None:
    producer = Producer(kafka={"bootstrap.servers": "unused:9092"}, client_class=Buffered)
    producer.produce_sync(topic="orders", payload=b"{}")
    buffered = Buffered(producer)
    reveal_type(buffered.messages_for("orders"))  # R: list[dict[str, Any]]
    reveal_type(Dummy(producer).flush())  # R: bool
    client_classes: list[type[Any]] = [Rdkafka, Dummy, Buffered, clients.Dummy]
    del client_classes


def handle_errors(producer: Producer) -> None:
    try:
        producer.produce_sync(topic="orders", payload=b"{}")
    except MessageInvalidError as exc:
        reveal_type(exc)  # R: waterdrop.errors.MessageInvalidError
    except KafkaError as exc:
        reveal_type(exc.code)  # R: str
        reveal_type(exc.fatal)  # R: bool
        reveal_type(exc.retryable)  # R: bool
    except ProduceManyError as exc:
        reveal_type(exc)  # R: waterdrop.errors.ProduceManyError
    except ProduceError as exc:
        reveal_type(exc.cause)  # R: BaseException | None
    except (ProducerClosedError, WaitTimeoutError, ConfigurationInvalidError) as exc:
        reveal_type(exc)  # R: waterdrop.errors.ProducerClosedError | waterdrop.errors.WaitTimeoutError | waterdrop.errors.ConfigurationInvalidError
    except Error as exc:
        reveal_type(exc)  # R: waterdrop.errors.Error
    all_errors: tuple[type[Exception], ...] = (
        AbortTransaction,
        errors.Error,
        VariantInvalidError,
        ProducerNotConfiguredError,
        ProducerAlreadyConfiguredError,
        ProducerUsedInParentProcessError,
        ProducerTransactionalCloseAttemptError,
        TransactionalOffsetInvalidError,
        ProducerNotTransactionalError,
        StatusInvalidError,
        TransactionRequiredError,
        StatisticsNotEnabledError,
        ConnectionPoolTimeoutError,
        ConnectionPoolClosedError,
        EventNotRegisteredError,
    )
    del all_errors


def transactions(producer: Producer) -> None:
    with producer.transaction() as in_tx:
        reveal_type(in_tx)  # R: waterdrop.producer.Producer
    with producer.transaction():
        producer.produce_async(topic="orders", payload=b"{}")
        raise AbortTransaction()


def instrument(producer: Producer) -> None:
    def on_delivered(event: Event) -> None:
        reveal_type(event["producer_id"])  # R: Any

    producer.monitor.subscribe("message.acknowledged", on_delivered)
    reveal_type(producer.monitor)  # R: waterdrop.instrumentation.monitor.Monitor

    @producer.monitor.subscribe("error.occurred")
    def on_error(event: Event) -> None:
        del event

    reveal_type(on_error)  # R: def (event: waterdrop.instrumentation.monitor.Event)
    reveal_type(producer.variant().monitor)  # R: waterdrop.instrumentation.monitor.Monitor
    reveal_type(Monitor().subscribe(LoggerListener()))  # R: waterdrop.instrumentation.logger_listener.LoggerListener
    monitor.subscribe("producer.created", on_delivered)
    own = Monitor()
    reveal_type(own.available_events)  # R: tuple[str, ...]
    reveal_type(own.listening("message.produced_async"))  # R: bool
    own.subscribe(LoggerListener(logging.getLogger("waterdrop")))
    decorate = StatisticsDecorator()
    reveal_type(decorate({"txmsgs": 1}))  # R: dict[str, Any]
    names: list[str] = [*EVENTS, *CLASS_EVENTS]
    del names
    own.subscribe(OpenTelemetryListener())
    own.subscribe(PrometheusListener(namespace="app"))
    assert instrumentation.Monitor is Monitor


def pools() -> None:
    def configure(config: Any) -> None:
        config.kafka = {"bootstrap.servers": "unused:9092"}

    own = ConnectionPool(size=2, timeout=1_000, configure=configure)
    reveal_type(own.size)  # R: int
    reveal_type(own.stats())  # R: dict[str, int]
    with own.producer() as producer:
        reveal_type(producer)  # R: waterdrop.producer.Producer
    own.shutdown()
    reveal_type(setup(size=1, configure=configure))  # R: waterdrop.connection_pool.ConnectionPool
    reveal_type(pool())  # R: waterdrop.connection_pool.ConnectionPool | None
    reveal_type(active())  # R: bool
    reveal_type(stats())  # R: dict[str, int] | None
    with with_producer() as lent:
        reveal_type(lent)  # R: waterdrop.producer.Producer
    with transaction() as in_tx:
        reveal_type(in_tx)  # R: waterdrop.producer.Producer
    reload()
    shutdown()
    close()
    assert waterdrop.connection_pool.pool is pool


async def with_asyncio(cluster: MockCluster) -> None:
    producer = AsyncProducer(kafka={"bootstrap.servers": cluster.bootstrap_servers})
    reveal_type(producer.sync)  # R: waterdrop.producer.Producer
    handle = producer.produce_async(topic="orders", payload=b"{}")
    await wait(handle)
    await wait_all([handle])
    reveal_type(await producer.produce_sync(topic="orders", payload=b"{}"))  # R: waterdrop._core.DeliveryReport
    reveal_type(producer.produce_async({"topic": "orders", "payload": b"{}"}))  # R: waterdrop._core.DeliveryHandle
    reveal_type(await handle)  # R: waterdrop._core.DeliveryReport
    reveal_type(await wait(handle))  # R: waterdrop._core.DeliveryReport
    reveal_type(await producer.produce_many_sync([{"topic": "orders", "payload": b"1"}]))  # R: list[waterdrop._core.DeliveryHandle]
    reveal_type(await producer.tombstone_sync(topic="orders", key="k", partition=0))  # R: waterdrop._core.DeliveryReport
    reveal_type(await producer.flush_sync())  # R: list[waterdrop._core.DeliveryHandle]
    reveal_type(await producer.partition_count("orders"))  # R: int
    reveal_type(await producer.ping())  # R: int
    reveal_type(await producer.variant().ping(max_wait_timeout=1_000))  # R: int
    variant = producer.variant(topic_config={"acks": 1})
    reveal_type(variant)  # R: waterdrop.aio.Variant
    reveal_type(await variant.produce_sync(topic="orders", payload=b"{}"))  # R: waterdrop._core.DeliveryReport
    async_variant: AsyncVariant = variant
    tx: AsyncTransaction[AsyncProducer] = producer.transaction()
    async with producer.transaction() as in_tx:
        reveal_type(in_tx)  # R: waterdrop.aio.Producer
    async with variant.transaction() as variant_in_tx:
        reveal_type(variant_in_tx)  # R: waterdrop.aio.Variant
    del async_variant, tx
    await producer.close()
    await asyncio.sleep(0)


def use_testing() -> None:
    assert testing.MockCluster is MockCluster
