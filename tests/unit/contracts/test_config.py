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
    assert _errors_of(max_wait_time=10) == {
        "max_wait_time": "is not a known setting; did you mean 'max_wait_timeout'?"
    }
    # a librdkafka property given as a keyword: where it goes instead
    assert _errors_of(linger_ms=5) == {
        "linger_ms": "is not a known setting; 'linger.ms' is a librdkafka property: pass it in "
        "kafka={...}"
    }
    assert _errors_of(colour="red") == {"colour": "is not a known setting"}


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


# --- librdkafka judges every kafka key and value at setup ------------------------------------


@pytest.mark.parametrize(
    ("key", "nearest"),
    [("lingerms", "linger.ms"), ("bootstrap.server", "bootstrap.servers"),
     ("Linger.ms", "linger.ms"), ("compresion.type", "compression.type")],
)
def test_a_misspelt_kafka_key_fails_at_setup_with_the_nearest_property(key, nearest):
    errors = _errors_of(kafka={**OK_KAFKA, key: 5})
    assert list(errors) == [f"kafka.{key}"]
    reason = errors[f"kafka.{key}"]
    assert f"{key}=5" in reason
    assert f'No such configuration property: "{key}"' in reason  # librdkafka's own words
    assert f'did you mean "{nearest}"?' in reason


def test_a_key_like_no_property_gets_no_suggestion():
    reason = _errors_of(kafka={**OK_KAFKA, "zzzz.qqqq": 1})["kafka.zzzz.qqqq"]
    assert "No such configuration property" in reason and "did you mean" not in reason


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("acks", "everyone", "Invalid value"),
        ("linger.ms", "soon", "Invalid value"),
        ("linger.ms", 10**9, "outside allowed range"),
        ("compression.codec", "zstdd", 'Invalid value "zstdd"'),
        ("enable.idempotence", "perhaps", "Expected bool value"),
    ],
)
def test_a_value_librdkafka_refuses_fails_at_setup_naming_key_value_and_reason(key, value, words):
    producer = Producer()
    with pytest.raises(ConfigurationInvalidError) as info:
        producer.setup(kafka={**OK_KAFKA, key: value})
    reason = info.value.errors[f"kafka.{key}"]
    assert f"{key}={value}" in reason and words in reason
    assert f"kafka.{key}" in str(info.value)
    assert producer.status is Status.INITIAL  # nothing half-configured


def test_values_of_every_accepted_type_pass_as_librdkafka_reads_them():
    producer = Producer(kafka={**OK_KAFKA, "linger.ms": 2.5, "enable.idempotence": True,
                               "batch.num.messages": 100, "compression.type": "lz4"})
    assert producer.status is Status.CONFIGURED
    producer.close()


def test_waterdrop_and_librdkafka_refusals_come_together():
    errors = _errors_of(kafka={**OK_KAFKA, "lingerms": 5, "acks": "everyone", 1: "x"},
                        max_payload_size=0)
    assert set(errors) == {"max_payload_size", "kafka.1", "kafka.lingerms", "kafka.acks"}


def test_a_secret_value_is_never_shown_in_a_refusal():
    errors = _errors_of(kafka={**OK_KAFKA, "sasl.pasword": "hunter2-secret"})
    text = str(errors)
    assert "hunter2-secret" not in text and "[FILTERED]" in text
    assert 'did you mean "sasl.password"?' in errors["kafka.sasl.pasword"]


def test_one_step_constructor_and_configure_function_are_checked_alike():
    def configure(config):
        config.kafka = {**OK_KAFKA, "lingerms": 5}

    for build in (lambda: Producer(configure), lambda: Producer(kafka={**OK_KAFKA, "lingerms": 5})):
        with pytest.raises(ConfigurationInvalidError) as info:
            build()
        assert list(info.value.errors) == ["kafka.lingerms"]


# --- bootstrap.servers is required (by the clients that connect) -----------------------------


@pytest.mark.parametrize("kafka", [{"linger.ms": 5}, {"bootstrap.servers": ""},
                                   {"bootstrap.servers": "  "}])
def test_bootstrap_servers_is_required(kafka):
    errors = _errors_of(kafka=kafka)
    assert list(errors) == ["kafka.bootstrap.servers"]
    assert "must be set" in errors["kafka.bootstrap.servers"]


def test_librdkafka_original_name_for_the_brokers_is_accepted():
    producer = Producer(kafka={"metadata.broker.list": "127.0.0.1:1"})
    assert producer.status is Status.CONFIGURED
    producer.close()


@pytest.mark.parametrize("settings", ["dummy", "buffered", "deliver_false"])
def test_the_test_clients_need_no_bootstrap_servers_but_their_settings_are_checked(settings):
    from waterdrop.clients import Buffered, Dummy

    extra = {"dummy": {"client_class": Dummy}, "buffered": {"client_class": Buffered},
             "deliver_false": {"deliver": False}}[settings]
    with Producer(kafka={"linger.ms": 5}, **extra) as producer:
        assert producer.produce_sync(topic="t", payload=b"x").error is None
    # what production would refuse, the test clients refuse too
    assert list(_errors_of(kafka={"lingerms": 5}, **extra)) == ["kafka.lingerms"]
