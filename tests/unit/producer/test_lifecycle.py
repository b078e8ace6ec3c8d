"""Producer construction forms and the status lifecycle
INITIAL -> CONFIGURED -> CONNECTED (lazily, on first use) -> CLOSED."""

from __future__ import annotations

import pytest

import waterdrop
from waterdrop import ConfigurationInvalidError, Producer, ProducerClosedError, Status
from waterdrop.errors import ProducerAlreadyConfiguredError, ProducerNotConfiguredError
from waterdrop.testing import MockCluster

from tests.helpers import close_within

TOPIC = "lifecycle"


@pytest.fixture(scope="module")
def cluster():
    with MockCluster(brokers=1) as mc:
        mc.create_topic(TOPIC, partitions=1)
        yield mc


@pytest.fixture
def kafka(cluster):
    return {"bootstrap.servers": cluster.bootstrap_servers}


def test_status_enum_has_waterdrops_states():
    assert [s.name for s in Status] == [
        "INITIAL",
        "CONFIGURED",
        "CONNECTED",
        "DISCONNECTING",
        "DISCONNECTED",
        "CLOSING",
        "CLOSED",
    ]
    assert waterdrop.Status is Status


# --- construction forms ----------------------------------------------------------------------


def test_bare_producer_then_setup_with_settings(kafka):
    producer = Producer()
    assert producer.status is Status.INITIAL
    assert producer.setup(kafka=kafka, id="orders", max_wait_timeout=60_000) is producer
    assert producer.status is Status.CONFIGURED
    assert producer.id == "orders"
    assert producer.config.max_wait_timeout == 60_000
    producer.close()


def test_settings_in_the_constructor(kafka):
    producer = Producer(kafka=kafka)
    assert producer.status is Status.CONFIGURED
    assert producer.config.kafka["bootstrap.servers"] == kafka["bootstrap.servers"]
    producer.close()


def test_configure_function_in_the_constructor(kafka):
    seen = []

    def configure(config):
        seen.append(config)
        config.kafka = dict(kafka)
        config.id = "from-block"

    producer = Producer(configure)
    assert len(seen) == 1
    assert producer.status is Status.CONFIGURED
    assert producer.id == "from-block"
    assert producer.config.kafka["bootstrap.servers"] == kafka["bootstrap.servers"]
    producer.close()


def test_configure_function_given_to_setup(kafka):
    def configure(config):
        config.kafka = dict(kafka)
        config.max_payload_size = 123

    producer = Producer()
    producer.setup(configure)
    assert producer.status is Status.CONFIGURED
    assert producer.config.max_payload_size == 123
    producer.close()


def test_setup_twice_raises(kafka):
    producer = Producer(kafka=kafka)
    with pytest.raises(ProducerAlreadyConfiguredError):
        producer.setup(kafka=kafka)
    with pytest.raises(ProducerAlreadyConfiguredError):
        producer.setup(lambda config: None)
    assert producer.status is Status.CONFIGURED
    producer.close()


def test_setup_after_close_raises(kafka):
    producer = Producer(kafka=kafka)
    producer.close()
    with pytest.raises(ProducerAlreadyConfiguredError):
        producer.setup(kafka=kafka)


# --- lifecycle -------------------------------------------------------------------------------


def test_connected_only_after_first_produce(kafka):
    producer = Producer(kafka=kafka)
    assert producer.status is Status.CONFIGURED
    assert producer.queue_size == 0  # reading a property does not connect
    assert producer.status is Status.CONFIGURED
    report = producer.produce_sync(topic=TOPIC, payload=b"x")
    assert report.error is None
    assert producer.status is Status.CONNECTED
    producer.close()
    assert producer.status is Status.CLOSED


def test_close_of_a_configured_but_unused_producer(kafka):
    producer = Producer(kafka=kafka)
    producer.close()
    assert producer.status is Status.CLOSED


def test_close_delivers_what_is_in_flight(kafka):
    producer = Producer(kafka=kafka)
    handles = [producer.produce_async(topic=TOPIC, payload=f"m{i}") for i in range(100)]
    producer.close()
    assert all(not h.pending for h in handles)
    assert all(h.wait().error is None for h in handles)


def test_close_on_unconfigured_producer_is_a_noop():
    producer = Producer()
    producer.close()
    assert producer.status is Status.INITIAL
    producer.close(force=True)
    assert producer.status is Status.INITIAL


def test_close_twice_is_a_noop(kafka):
    producer = Producer(kafka=kafka)
    producer.produce_sync(topic=TOPIC, payload=b"x")
    producer.close()
    producer.close()
    producer.close(force=True)
    assert producer.status is Status.CLOSED


def test_context_manager_closes(kafka):
    with Producer(kafka=kafka) as producer:
        assert producer.produce_sync(topic=TOPIC, payload=b"x").error is None
        assert producer.status is Status.CONNECTED
    assert producer.status is Status.CLOSED
    with pytest.raises(ProducerClosedError):
        producer.produce_async(topic=TOPIC, payload=b"x")


def test_context_manager_closes_on_exception(kafka):
    with pytest.raises(RuntimeError, match="boom"):
        with Producer(kafka=kafka) as producer:
            producer.produce_async(topic=TOPIC, payload=b"x")
            raise RuntimeError("boom")
    assert producer.status is Status.CLOSED


DISPATCHES = [
    ("produce_async", lambda p: p.produce_async(topic=TOPIC, payload=b"x")),
    ("produce_sync", lambda p: p.produce_sync(topic=TOPIC, payload=b"x")),
    ("produce_many_async", lambda p: p.produce_many_async([{"topic": TOPIC, "payload": b"x"}])),
    ("produce_many_sync", lambda p: p.produce_many_sync([{"topic": TOPIC, "payload": b"x"}])),
    ("tombstone_sync", lambda p: p.tombstone_sync(topic=TOPIC, key="k", partition=0)),
]


@pytest.mark.parametrize("dispatch", [d[1] for d in DISPATCHES], ids=[d[0] for d in DISPATCHES])
def test_dispatch_before_setup_raises_not_configured(dispatch):
    producer = Producer()
    with pytest.raises(ProducerNotConfiguredError):
        dispatch(producer)
    assert producer.status is Status.INITIAL


@pytest.mark.parametrize("dispatch", [d[1] for d in DISPATCHES], ids=[d[0] for d in DISPATCHES])
def test_dispatch_after_close_raises_closed(kafka, dispatch):
    producer = Producer(kafka=kafka)
    producer.produce_sync(topic=TOPIC, payload=b"x")
    producer.close()
    with pytest.raises(ProducerClosedError):
        dispatch(producer)
    assert producer.status is Status.CLOSED


@pytest.mark.parametrize("dispatch", [d[1] for d in DISPATCHES], ids=[d[0] for d in DISPATCHES])
def test_dispatch_after_close_of_unused_producer_raises_closed(kafka, dispatch):
    producer = Producer(kafka=kafka)
    producer.close()
    with pytest.raises(ProducerClosedError):
        dispatch(producer)


def test_unknown_librdkafka_property_fails_at_setup_with_the_nearest_name():
    producer = Producer()
    with pytest.raises(ConfigurationInvalidError) as info:
        producer.setup(kafka={"bootstrap.servers": "x", "lingerms": 5})
    assert list(info.value.errors) == ["kafka.lingerms"]
    reason = info.value.errors["kafka.lingerms"]
    assert "lingerms=5" in reason and "No such configuration property" in reason
    assert 'did you mean "linger.ms"?' in reason
    assert producer.status is Status.INITIAL  # nothing half-configured: a fixed setup works
    producer.setup(kafka={"bootstrap.servers": "x", "linger.ms": 5})
    assert producer.status is Status.CONFIGURED
    producer.close()


def test_invalid_librdkafka_value_fails_at_setup_with_librdkafka_reason():
    with pytest.raises(ConfigurationInvalidError) as info:
        Producer(kafka={"bootstrap.servers": "x", "linger.ms": "soon", "acks": "everyone"})
    errors = info.value.errors
    assert set(errors) == {"kafka.linger.ms", "kafka.acks"}
    assert "linger.ms=soon" in errors["kafka.linger.ms"]
    assert "acks=everyone" in errors["kafka.acks"]
    assert "Invalid value" in errors["kafka.acks"]  # librdkafka's own words


def test_settings_librdkafka_only_judges_together_fail_on_first_use():
    # each value is valid alone; librdkafka refuses the pair when the client is built
    producer = Producer(kafka={"bootstrap.servers": "x", "enable.idempotence": True, "acks": 0})
    assert producer.status is Status.CONFIGURED
    with pytest.raises(ConfigurationInvalidError) as info:
        producer.produce_async(topic=TOPIC, payload=b"x")
    assert "acks" in str(info.value)
    # still refused on the next try, never half-built
    with pytest.raises(ConfigurationInvalidError):
        producer.produce_sync(topic=TOPIC, payload=b"x")
    assert producer.status is Status.CONFIGURED
    producer.close()
    assert producer.status is Status.CLOSED


def test_queue_size_counts_messages_in_librdkafka():
    # Nothing answers on port 1, so what is produced stays queued until close(force=True).
    producer = Producer(
        kafka={"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 60_000},
        max_wait_timeout=0,
    )
    handles = [producer.produce_async(topic=TOPIC, payload=b"x") for _ in range(5)]
    # rd_kafka_outq_len also counts events the poller has not served yet (as in WaterDrop)
    assert producer.queue_size >= 5
    close_within(producer, force=True)
    assert producer.queue_size == 0
    assert {h.wait(raise_response_error=False).error.code for h in handles} <= {
        "purge_queue",
        "purge_inflight",
    }
