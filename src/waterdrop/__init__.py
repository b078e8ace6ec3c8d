"""waterdrop: a fast, safe Kafka producer for Python (WaterDrop's producer over librdkafka)."""

from waterdrop._version import __version__
from waterdrop import clients, errors, instrumentation, testing
from waterdrop._core import (
    DeliveryHandle,
    DeliveryReport,
    librdkafka_features,
    librdkafka_version,
)
from waterdrop.connection_pool import ConnectionPool
from waterdrop.errors import (
    AbortTransaction,
    ClusterUnreachableError,
    ConfigurationInvalidError,
    Error,
    KafkaError,
    MessageInvalidError,
    ProduceError,
    ProduceManyError,
    ProducerClosedError,
    WaitTimeoutError,
)
from waterdrop.instrumentation.global_monitor import monitor
from waterdrop.producer import Producer
from waterdrop.producer.status import Status
from waterdrop.producer.variant import Variant
from waterdrop.types import Message, Tombstone

__all__ = [
    "__version__",
    "AbortTransaction",
    "ClusterUnreachableError",
    "ConfigurationInvalidError",
    "ConnectionPool",
    "DeliveryHandle",
    "DeliveryReport",
    "Error",
    "KafkaError",
    "Message",
    "MessageInvalidError",
    "ProduceError",
    "ProduceManyError",
    "Producer",
    "ProducerClosedError",
    "Status",
    "Tombstone",
    "Variant",
    "WaitTimeoutError",
    "clients",
    "errors",
    "instrumentation",
    "testing",
    "librdkafka_features",
    "librdkafka_version",
    "monitor",
]
