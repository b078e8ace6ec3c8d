"""The configuration contract: invalid settings raise ConfigurationInvalidError at setup, with
``.errors`` keyed by the setting's path."""

from __future__ import annotations

import pytest

from waterdrop import ConfigurationInvalidError, Producer
from waterdrop.errors import Error, ProducerAlreadyConfiguredError
from waterdrop.producer import Status

OK_KAFKA = {"bootstrap.servers": "127.0.0.1:1"}
KAFKA = "must be a non-empty dict of librdkafka properties with str keys"


def _errors_of(**settings):
    settings.setdefault("kafka", dict(OK_KAFKA))
    with pytest.raises(ConfigurationInvalidError) as info:
        Producer(**settings)
    return info.value.errors


def test_empty_kafka_dict_is_rejected():
    assert _errors_of(kafka={}) == {"kafka": KAFKA}


def test_kafka_must_be_a_dict():
    errors = _errors_of(kafka=[("bootstrap.servers", "x")])
    assert errors == {"kafka": KAFKA}


def test_non_str_kafka_key_is_reported_under_its_path():
    errors = _errors_of(kafka={"bootstrap.servers": "x", 1: "y"})
    assert errors == {
        "kafka.1": "must be a str key (librdkafka property names are str, without NUL characters)"
    }


def test_kafka_value_of_unsupported_type():
    errors = _errors_of(kafka={"bootstrap.servers": "x", "linger.ms": [5]})
    assert errors == {
        "kafka.linger.ms": "must be a str, int, float or bool (without NUL characters), got list"
    }


@pytest.mark.parametrize("value, shown", [("", "''"), (1, "1"), (b"orders", "bytes")])
def test_id_must_be_a_non_empty_string(value, shown):
    assert _errors_of(id=value) == {"id": f"must be a non-empty str, got {shown}"}


@pytest.mark.parametrize("value, shown", [(-1, "-1"), ("1000", "'1000'"), (None, "None")])
def test_max_wait_timeout_must_be_non_negative_number(value, shown):
    assert _errors_of(max_wait_timeout=value) == {
        "max_wait_timeout": f"must be a number >= 0 (milliseconds), got {shown}"
    }


def test_max_wait_timeout_zero_is_allowed():
    Producer(kafka=dict(OK_KAFKA), max_wait_timeout=0)


@pytest.mark.parametrize(
    "value, shown", [(0, "0"), (-1, "-1"), (1.5, "1.5"), ("10", "'10'"), (True, "True")]
)
def test_max_payload_size_must_be_integer_at_least_one(value, shown):
    assert _errors_of(max_payload_size=value) == {
        "max_payload_size": f"must be an int >= 1 (bytes), got {shown}"
    }


def test_max_payload_size_one_is_allowed():
    Producer(kafka=dict(OK_KAFKA), max_payload_size=1)


@pytest.mark.parametrize("name", ["deliver", "wait_on_queue_full", "reload_on_idempotent_fatal_error"])
def test_boolean_settings(name):
    assert _errors_of(**{name: "yes"}) == {name: "must be True or False, got 'yes'"}


@pytest.mark.parametrize("value", [1, 29_999, -1])
def test_idle_disconnect_timeout_is_zero_or_at_least_30s(value):
    assert _errors_of(idle_disconnect_timeout=value) == {
        "idle_disconnect_timeout": (
            f"must be 0 (off) or an int >= 30,000 (milliseconds), got {value:,}"
        )
    }


def test_idle_disconnect_timeout_30s_is_allowed():
    Producer(kafka=dict(OK_KAFKA), idle_disconnect_timeout=30_000)


def test_unknown_setting_name():
    assert _errors_of(max_wait_time=10) == {"max_wait_time": "is not a known setting"}


def test_several_broken_settings_are_all_reported():
    errors = _errors_of(id="", max_wait_timeout=-1, max_payload_size=0)
    assert set(errors) == {"id", "max_wait_timeout", "max_payload_size"}


def test_invalid_setup_leaves_the_producer_unconfigured():
    producer = Producer()
    with pytest.raises(ConfigurationInvalidError):
        producer.setup(kafka=dict(OK_KAFKA), max_payload_size=0)
    assert producer.status is Status.INITIAL
    producer.setup(kafka=dict(OK_KAFKA))  # a corrected setup is still possible
    assert producer.status is Status.CONFIGURED


def test_configuration_invalid_error_is_a_waterdrop_error():
    with pytest.raises(Error):
        Producer(kafka=dict(OK_KAFKA), id="")


def test_setup_twice_raises_already_configured():
    producer = Producer(kafka=dict(OK_KAFKA))
    with pytest.raises(ProducerAlreadyConfiguredError):
        producer.setup(kafka=dict(OK_KAFKA))
