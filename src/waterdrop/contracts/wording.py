"""The wording of every contract error, in WaterDrop's words: the one table of error texts.

Only the texts live here, not the contracts: the message contract runs in the Cython core
(``waterdrop._core.check_message``), the config, variant and transactional-offset contracts in
``waterdrop.contracts.config`` / ``.variant`` and ``waterdrop.producer.transactions``. They all
read their reasons from this table, so a reason reads the same whichever layer reports it.
"""

from __future__ import annotations

MISSING = "must be present"

MESSAGE: dict[str, str] = {
    "missing": MISSING,
    "topic_format": "does not match the topic allowed format",
    "payload_format": "must be string or nil",
    "key_format": "must be a non-empty string",
    "partition_format": "must be an integer greater or equal to -1",
    "partition_key_format": "must be a non-empty string",
    "timestamp_format": "must be either time or integer",
    "headers_format": "must be a hash",
    "headers_invalid_key_type": "all headers keys need to be of type String",
    "headers_invalid_value_type": "all headers values need to be strings or arrays of strings",
    "payload_max_size": "is more than `max_payload_size` config value",
    # Python-only: WaterDrop lets rdkafka reject unknown keys later; we refuse them up front.
    "unknown_key": "is not a known message key",
}

#: Python-only: a single-message method given a mapping and keyword fields too raises TypeError
#: (nothing silently dropped or merged); ``mapping_and_fields`` fills it in.
MAPPING_AND_FIELDS = (
    "{method}() takes a message mapping or its fields as keyword arguments, not both: got a "
    "mapping and {fields}; put every field in the mapping"
)


def mapping_and_fields(method: str, names: list[str]) -> str:
    """``MAPPING_AND_FIELDS`` for ``method`` given a mapping and the keyword fields ``names``."""
    given = ", ".join(f"{name}=" for name in sorted(names))
    return MAPPING_AND_FIELDS.format(method=method, fields=given)


#: Python-only: the kafka settings are checked by librdkafka itself at setup (and a
#: variant's topic_config when it is made); ``librdkafka_refused`` fills these in.
LIBRDKAFKA_REFUSED = "librdkafka refuses {key}={value}: {reason}"
DID_YOU_MEAN = "; did you mean {names}?"
#: Python-only: a producer that connects needs to know where (the test clients do not).
BOOTSTRAP_SERVERS_MISSING = (
    "must be set to the brokers to connect to, e.g. {'bootstrap.servers': 'localhost:9092'} "
    "(only the Dummy and Buffered test clients run without it)"
)


def librdkafka_refused(key: str, value: str, reason: str, suggestions: list[str]) -> str:
    """``LIBRDKAFKA_REFUSED``, plus ``DID_YOU_MEAN`` when there are properties to suggest."""
    text = LIBRDKAFKA_REFUSED.format(key=key, value=value, reason=reason.strip())
    if suggestions:
        text += DID_YOU_MEAN.format(names=" or ".join(repr(name) for name in suggestions))
    return text


TOMBSTONE: dict[str, str] = {
    "missing": MISSING,
    "key_format": "must be a non-empty string",
    "partition_format": "must be an integer greater or equal to 0",
}

CONFIG: dict[str, str] = {
    "missing": MISSING,
    "id_format": "must be a non-empty string",
    "logger_format": "must be present",
    "monitor_format": "must be present",
    "monitor_class": "must be a waterdrop.instrumentation.Monitor (or a subclass)",
    "client_class_format": "must be present",
    "client_class_callable": "must be a class or callable that builds a client from the producer",
    "middleware_format": "must respond to run and run_many (waterdrop.middleware.Middleware)",
    "oauth_format": "must be a mapping with token_provider_listener",
    "deliver_format": "must be boolean",
    "max_payload_size_format": "must be an integer that is equal or bigger than 1",
    "max_wait_timeout_format": "must be an integer that is equal or bigger than 0",
    "kafka_format": "must be a non-empty dict with str keys",
    "kafka_key_must_be_a_symbol": "All keys under the kafka settings scope need to be strings",
    "kafka_value_format": "must be a string, integer, float or boolean",
    "wait_on_queue_full_format": "must be boolean",
    "wait_backoff_on_queue_full_format": "must be a numeric that is equal or bigger to 0",
    "wait_timeout_on_queue_full_format": "must be a numeric that is equal or bigger to 0",
    "instrument_on_wait_queue_full_format": "must be boolean",
    "wait_backoff_on_transaction_command_format": "must be a numeric that is equal or bigger to 0",
    "max_attempts_on_transaction_command_format": "must be an integer that is equal or bigger than 1",
    "reload_on_transaction_fatal_error_format": "must be boolean",
    "reload_on_idempotent_fatal_error_format": "must be boolean",
    "wait_backoff_on_idempotent_fatal_error_format": "must be a numeric that is equal or bigger to 0",
    "max_attempts_on_idempotent_fatal_error_format": "must be an integer that is equal or bigger than 1",
    "wait_backoff_on_transaction_fatal_error_format": "must be a numeric that is equal or bigger to 0",
    "max_attempts_on_transaction_fatal_error_format": "must be an integer that is equal or bigger than 1",
    "wait_timeout_on_transaction_abort_format": "must be a numeric that is equal or bigger to 0",
    "non_reloadable_errors_format": "must be a list of error codes",
    "idle_disconnect_timeout_format": "must be an integer that is equal to 0 or bigger than 30 000",
    "statistics_decorator_format": "must be callable",
    "oauth.token_provider_listener_format": "must be false or respond to #on_oauthbearer_token_refresh",
    "unknown_setting": "is not a known setting",
}

VARIANT: dict[str, str] = {
    "missing": MISSING,
    "default_format": "must be boolean",
    "max_wait_timeout_format": "must be an integer that is equal or bigger than 0",
    "topic_config_format": "must be a dict with str keys",
    "kafka_key_must_be_a_symbol": "All keys under the kafka settings scope need to be strings",
    "kafka_key_not_per_topic": "This config option cannot be set on a per topic basis",
    "kafka_key_acks_not_changeable": (
        "Acks value cannot be redefined for a transactional or idempotent producer"
    ),
}

TRANSACTIONAL_OFFSET: dict[str, str] = {
    "missing": MISSING,
    "consumer_format": "must be a consumer with group metadata or a group id string",
    "message_format": "must have topic, partition and offset",
    "offset_metadata_format": "must be string or nil",
}
