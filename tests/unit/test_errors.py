"""waterdrop.errors: one hierarchy, and KafkaError built at the librdkafka chokepoint."""

from __future__ import annotations

import pickle

import pytest

import waterdrop
from waterdrop import _core, errors

API_ERROR_NAMES = [
    "ConfigurationInvalidError",
    "VariantInvalidError",
    "ProducerNotConfiguredError",
    "ProducerAlreadyConfiguredError",
    "ProducerUsedInParentProcessError",
    "ProducerClosedError",
    "ProducerTransactionalCloseAttemptError",
    "MessageInvalidError",
    "TransactionalOffsetInvalidError",
    "ProducerNotTransactionalError",
    "ProduceError",
    "ProduceManyError",
    "TransactionRequiredError",
    "AbortTransaction",
    "StatisticsNotEnabledError",
    "WaitTimeoutError",
    "ClusterUnreachableError",
    "KafkaError",
]


@pytest.mark.parametrize("name", API_ERROR_NAMES)
def test_every_api_error_is_under_the_one_base(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.Error)
    assert issubclass(cls, Exception)


def test_common_errors_are_importable_from_the_package():
    for name in (
        "Error",
        "ConfigurationInvalidError",
        "MessageInvalidError",
        "ProduceError",
        "ProduceManyError",
        "ProducerClosedError",
        "WaitTimeoutError",
        "KafkaError",
        "AbortTransaction",
        "ClusterUnreachableError",
    ):
        assert getattr(waterdrop, name) is getattr(errors, name)


def test_produce_many_error_is_a_produce_error_with_dispatched():
    cause = _core.kafka_error(-184)
    error = errors.ProduceManyError(["h1"], "boom", cause=cause)
    assert isinstance(error, errors.ProduceError)
    assert error.dispatched == ["h1"]
    assert error.__cause__ is cause


def test_contract_errors_expose_errors_dict():
    error = errors.MessageInvalidError({"topic": "must be present"})
    assert error.errors == {"topic": "must be present"}
    assert "topic" in str(error)


class TestKafkaErrorChokepoint:
    def test_msg_timed_out(self):
        error = _core.kafka_error(-192)
        assert isinstance(error, errors.KafkaError)
        assert isinstance(error, waterdrop.KafkaError)
        assert error.code == "msg_timed_out"
        assert error.rdkafka_response == -192
        assert error.fatal is False

    def test_flags_and_broker_message_are_carried(self):
        error = _core.kafka_error(-192, "broker said no", True, True, True)
        assert error.fatal is True
        assert error.retryable is True
        assert error.abortable is True
        assert error.broker_message == "broker said no"
        assert "msg_timed_out" in str(error)
        assert "broker said no" in str(error)

    def test_broker_side_code(self):
        error = _core.kafka_error(10)
        assert error.code == "msg_size_too_large"
        assert error.rdkafka_response == 10

    @pytest.mark.parametrize(
        "name, code",
        [
            ("queue_full", -184),
            ("msg_timed_out", -192),
            ("purge_queue", -152),
            ("purge_inflight", -151),
            ("fatal", -150),
            ("transport", -195),
            ("all_brokers_down", -187),
            ("unknown_topic_or_part", 3),
            ("not_leader_for_partition", 6),
            ("msg_size_too_large", 10),
            ("topic_authorization_failed", 29),
        ],
    )
    def test_error_codes_table_uses_librdkafka_names(self, name, code):
        assert _core.ERROR_CODES[name] == code
        assert _core.ERROR_NAMES[code] == name
        assert _core.kafka_error(code).code == name

    def test_names_are_lower_case_without_leading_underscore(self):
        assert _core.ERROR_NAMES, "the table is loaded from librdkafka at import"
        for name in _core.ERROR_CODES:
            assert name == name.lower()
            assert not name.startswith("_")

    def test_pickle_round_trip(self):
        error = _core.kafka_error(-184, "full", False, True, False)
        copy = pickle.loads(pickle.dumps(error))
        assert isinstance(copy, errors.KafkaError)
        assert (copy.code, copy.rdkafka_response, copy.retryable, copy.broker_message) == (
            "queue_full",
            -184,
            True,
            "full",
        )

    def test_equality_by_code(self):
        assert _core.kafka_error(-184) == _core.kafka_error(-184, "other text")
        assert _core.kafka_error(-184) != _core.kafka_error(-192)


def test_librdkafka_version_is_the_pin():
    assert waterdrop.librdkafka_version() == "2.14.2"


def test_cluster_unreachable_error_names_servers_timeout_and_cause_and_pickles():
    error = errors.ClusterUnreachableError("b1:9092,b2:9092", 10_000, "Connection refused")
    text = str(error)
    assert "b1:9092,b2:9092" in text and "10,000 ms" in text and "Connection refused" in text
    assert isinstance(error, ConnectionError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.bootstrap_servers, copy.max_wait_timeout, copy.cause, str(copy)) == (
        "b1:9092,b2:9092", 10_000, "Connection refused", text)


# --- lifecycle errors: what happened and what to do next (API.md), never just an id or a pid --


@pytest.fixture
def producer(cluster):
    from waterdrop import Producer

    p = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers}, id="orders")
    yield p
    p.close()


def test_not_configured_says_to_call_setup():
    from waterdrop import Producer

    with pytest.raises(errors.ProducerNotConfiguredError) as raised:
        Producer().produce_sync(topic="t", payload=b"x")
    text = str(raised.value)
    assert "not configured" in text and "setup(" in text
    assert text != "None"


def test_already_configured_names_the_producer_and_the_way_out(producer):
    with pytest.raises(errors.ProducerAlreadyConfiguredError) as raised:
        producer.setup(kafka={"bootstrap.servers": "127.0.0.1:1"})
    text = str(raised.value)
    assert "producer 'orders' is already configured" in text
    assert "another Producer" in text and "variant(" in text
    assert raised.value.producer_id == "orders"


@pytest.mark.parametrize("connected", [False, True])
def test_closed_names_the_producer_and_that_it_was_closed(producer, connected):
    if connected:
        producer.client  # noqa: B018  (the core's own refusal, not only the Python layer's)
    producer.close()
    with pytest.raises(errors.ProducerClosedError) as raised:
        producer.produce_sync(topic="t", payload=b"x")
    text = str(raised.value)
    assert "producer 'orders' was closed" in text and "new Producer" in text
    assert raised.value.producer_id == "orders"


def test_not_transactional_says_which_setting_makes_it_so(producer):
    with pytest.raises(errors.ProducerNotTransactionalError) as raised, producer.transaction():
        pass
    assert "producer 'orders' is not transactional" in str(raised.value)
    assert "transactional.id" in str(raised.value)


def test_transaction_required_says_where_to_call_it(producer):
    with pytest.raises(errors.TransactionRequiredError) as raised:
        producer.transaction_mark_as_consumed("group", ("t", 0, 1))
    text = str(raised.value)
    assert "transaction_mark_as_consumed() needs a transaction" in text
    assert "with producer.transaction():" in text


def test_wait_timeout_says_the_message_may_still_be_delivered():
    from waterdrop import Producer

    with Producer(kafka={"bootstrap.servers": "127.0.0.1:1"}) as nowhere:
        handle = nowhere.produce_async(topic="t", payload=b"x")
        with pytest.raises(errors.WaitTimeoutError) as raised:
            handle.wait(max_wait_timeout=50)
        nowhere.purge()
    text = str(raised.value)
    assert "within 50 ms" in text and "may yet be delivered" in text
    assert raised.value.timeout_ms == 50


def test_used_in_parent_process_says_fork_and_one_producer_per_process():
    error = errors.ProducerUsedInParentProcessError(4321, "orders", 1234)
    text = str(error)
    assert "producer 'orders' was used before a fork" in text
    assert "process 1234" in text and "pid 4321" in text
    assert "one producer per process" in text
    assert (error.pid, error.parent_pid, error.producer_id) == (4321, 1234, "orders")


@pytest.mark.parametrize(
    "error",
    [
        errors.ProducerNotConfiguredError(),
        errors.ProducerAlreadyConfiguredError("orders"),
        errors.ProducerClosedError("orders"),
        errors.ProducerTransactionalCloseAttemptError("orders"),
        errors.ProducerNotTransactionalError("orders"),
        errors.ProducerUsedInParentProcessError(4321, "orders", 1234),
        errors.TransactionRequiredError("orders", "transaction_mark_as_consumed()"),
        errors.StatisticsNotEnabledError(),
        errors.WaitTimeoutError(50),
        errors.ConnectionPoolClosedError("the connection pool <pool> is shut down: no producer can be lent"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_lifecycle_errors_pickle_with_their_text_and_facts(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert len(str(error)) > 40  # a sentence, not an id
