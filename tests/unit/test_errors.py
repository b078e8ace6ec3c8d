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
