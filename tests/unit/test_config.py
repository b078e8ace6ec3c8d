"""Producer settings: WaterDrop's names, defaults and units; librdkafka defaults merged under
the user's own values."""

from __future__ import annotations

import re

import pytest

from waterdrop import ConfigurationInvalidError, Producer
from waterdrop import config as wd_config

BOOTSTRAP = {"bootstrap.servers": "127.0.0.1:1"}

ROOT_DEFAULTS = {
    "max_payload_size": 1_000_012,
    "max_wait_timeout": 180_000,
    "wait_on_queue_full": True,
    "wait_backoff_on_queue_full": 100,
    "wait_timeout_on_queue_full": 10_000,
    "instrument_on_wait_queue_full": True,
    "wait_backoff_on_transaction_command": 500,
    "max_attempts_on_transaction_command": 5,
    "reload_on_transaction_fatal_error": True,
    "reload_on_idempotent_fatal_error": False,
    "wait_backoff_on_idempotent_fatal_error": 5_000,
    "max_attempts_on_idempotent_fatal_error": 5,
    "wait_backoff_on_transaction_fatal_error": 1_000,
    "max_attempts_on_transaction_fatal_error": 10,
    "wait_timeout_on_transaction_abort": 0,
    "idle_disconnect_timeout": 0,
    "deliver": True,
}


@pytest.fixture
def producer():
    producer = Producer(kafka=dict(BOOTSTRAP))
    yield producer
    producer.close()


@pytest.mark.parametrize("name, default", sorted(ROOT_DEFAULTS.items()))
def test_root_setting_defaults(producer, name, default):
    assert getattr(producer.config, name) == default


def test_non_reloadable_errors_default_is_fenced(producer):
    assert list(producer.config.non_reloadable_errors) == ["fenced"]


def test_id_defaults_to_waterdrop_and_12_hex(producer):
    assert re.fullmatch(r"waterdrop-[0-9a-f]{12}", producer.id)
    assert producer.config.id == producer.id


def test_ids_are_unique_per_producer():
    first, second = Producer(kafka=dict(BOOTSTRAP)), Producer(kafka=dict(BOOTSTRAP))
    assert first.id != second.id


def test_explicit_id_is_kept():
    assert Producer(kafka=dict(BOOTSTRAP), id="orders").id == "orders"


def test_default_client_is_rdkafka(producer):
    from waterdrop.clients import Rdkafka

    assert producer.config.client_class is Rdkafka


def test_kafka_defaults_are_merged_under_the_users_settings(producer):
    kafka = producer.config.kafka
    assert kafka["bootstrap.servers"] == "127.0.0.1:1"
    assert kafka["client.id"] == "waterdrop"
    assert kafka["message.timeout.ms"] == 150_000
    assert kafka["transaction.timeout.ms"] == 165_000
    assert kafka["socket.nagle.disable"] is True
    assert kafka["statistics.interval.ms"] == 5_000


def test_message_timeout_is_below_max_wait_timeout(producer):
    # WaterDrop's design rule: a sync wait always ends with a real delivery verdict.
    assert producer.config.kafka["message.timeout.ms"] < producer.config.max_wait_timeout


def test_user_kafka_values_win_over_defaults():
    user = {
        "bootstrap.servers": "127.0.0.1:1",
        "client.id": "mine",
        "message.timeout.ms": 5_000,
        "socket.nagle.disable": False,
    }
    producer = Producer(kafka=dict(user))
    kafka = producer.config.kafka
    assert kafka["client.id"] == "mine"
    assert kafka["message.timeout.ms"] == 5_000
    assert kafka["socket.nagle.disable"] is False
    assert kafka["transaction.timeout.ms"] == 165_000  # untouched defaults stay


def test_users_kafka_dict_is_not_mutated():
    user = dict(BOOTSTRAP)
    Producer(kafka=user)
    assert user == BOOTSTRAP


def test_module_level_kafka_defaults_table():
    assert wd_config.KAFKA_DEFAULTS == {
        "client.id": "waterdrop",
        "statistics.interval.ms": 5_000,
        "message.timeout.ms": 150_000,
        "transaction.timeout.ms": 165_000,
        "socket.nagle.disable": True,
    }


def test_settings_given_to_setup_are_applied():
    producer = Producer()
    producer.setup(kafka=dict(BOOTSTRAP), id="orders", max_wait_timeout=60_000, max_payload_size=10)
    assert producer.config.max_wait_timeout == 60_000
    assert producer.config.max_payload_size == 10
    assert producer.id == "orders"


def test_configure_function_sets_attributes():
    def configure(config):
        config.kafka = dict(BOOTSTRAP)
        config.max_wait_timeout = 30_000

    producer = Producer(configure)
    assert producer.config.max_wait_timeout == 30_000
    assert producer.config.kafka["bootstrap.servers"] == "127.0.0.1:1"


def test_configure_function_cannot_invent_settings():
    def configure(config):
        config.kafka = dict(BOOTSTRAP)
        config.max_wait_time = 1  # typo of max_wait_timeout

    with pytest.raises(ConfigurationInvalidError) as info:
        Producer(configure)
    assert info.value.errors == {
        "max_wait_time": "is not a known setting; did you mean 'max_wait_timeout'?"
    }
