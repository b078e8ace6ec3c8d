"""The wording of every contract error: the one table of error texts, in Python's words.

Only the texts live here, not the contracts: the message contract runs in the Cython core
(``waterdrop._core.check_message``), the config, variant and transactional-offset contracts in
``waterdrop.contracts.config`` / ``.variant`` and ``waterdrop.producer.transactions``. They all
read their reasons from here, so a reason reads the same whichever layer reports it. The core
decides *whether* a field is valid on its fast path; only once it is not does it call the
functions below, which say *why*, naming the value's type or the limit it broke.

A reason follows its field path: ``{"payload": "is 1,048,600 bytes, above max_payload_size
1,000,012"}`` reads "payload is 1,048,600 bytes, ...".
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

MISSING = "must be present"

#: Kafka's own limit on a topic name's length (characters, all ASCII).
TOPIC_MAX_LENGTH = 249
#: The characters Kafka (and WaterDrop's contract) allows in a topic name.
TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
TOPIC_CHARS_TEXT = "ASCII letters, digits, '.', '_' and '-'"

#: The message fields, in the order the docs list them.
MESSAGE_FIELDS = ("topic", "payload", "key", "partition", "partition_key", "timestamp",
                  "headers", "label")

PAYLOAD_TYPES = "bytes, bytearray, memoryview, str or None"
HEADER_VALUE_TYPES = "str, bytes or a list of those"
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def got(value: Any) -> str:
    """``value``'s type as a reason ends with it: ``"int"``, ``"None"``, ``"True"``."""
    if value is None or type(value) is bool:
        return repr(value)
    return type(value).__name__


def number(value: int) -> str:
    """An integer as a reason shows it: with thousands separators."""
    return f"{value:,}"


def _short(value: Any, limit: int = 60) -> str:
    """``value``'s repr, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the reason
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: The rules' general statements, by WaterDrop's rule names (what the docs and a reason
#: without a value say); the functions below add what the value was.
MESSAGE: dict[str, str] = {
    "missing": MISSING,
    "topic_format": (
        f"must be a non-empty str of at most {TOPIC_MAX_LENGTH} characters, using only "
        f"{TOPIC_CHARS_TEXT}"
    ),
    "payload_format": f"must be {PAYLOAD_TYPES}",
    "key_format": "must be a non-empty str or bytes",
    "partition_format": "must be an int >= -1",
    "partition_key_format": "must be a non-empty str or bytes",
    "timestamp_format": "must be an int (milliseconds since the epoch) or a datetime.datetime",
    "headers_format": "must be a dict or None",
    "headers_invalid_key_type": "must have str keys",
    "headers_invalid_value_type": f"must have values that are {HEADER_VALUE_TYPES}",
    "payload_max_size": "is above max_payload_size",
    # Python-only: WaterDrop lets rdkafka reject unknown keys later; we refuse them up front.
    "unknown_key": "is not a message field (the fields are " + ", ".join(MESSAGE_FIELDS) + ")",
}


def not_a_message(message: Any, fields: tuple[str, ...] = ("topic", "payload")) -> dict[str, str]:
    """The errors of a message that is not a mapping: its required ``fields`` are missing, and
    the reason says what was given instead."""
    reason = f"{MISSING}: a message is a dict of its fields, got {got(message)}"
    return {name: reason for name in fields}


def topic_reason(topic: Any) -> str:
    """Why ``topic`` is not a valid topic name (types exactly as the core checks them)."""
    if type(topic) is not str:
        return f"must be a str, got {got(topic)}"
    if not topic:
        return "must not be empty"
    if len(topic) > TOPIC_MAX_LENGTH:
        return (f"is {number(len(topic))} characters long, above Kafka's limit of "
                f"{TOPIC_MAX_LENGTH}")
    bad = next(c for c in topic if c not in TOPIC_CHARS)
    return f"{_short(topic)} has the character {bad!r}: a topic name uses only {TOPIC_CHARS_TEXT}"


def payload_reason(payload: Any) -> str:
    """Why ``payload`` is not a payload (its type, or a str that is not UTF-8)."""
    if type(payload) is str:
        return "must be encodable as UTF-8 (it holds a lone surrogate)"
    if type(payload) is memoryview:
        try:
            contiguous = payload.c_contiguous
        except ValueError:
            return "is a released memoryview"
        if not contiguous:
            return ("is a memoryview that is not C-contiguous (use bytes(view) or a "
                    "contiguous view)")
    return f"must be {PAYLOAD_TYPES}, got {got(payload)}"


def payload_size_reason(size: int, limit: int) -> str:
    """A payload of ``size`` bytes above ``max_payload_size`` ``limit``."""
    return f"is {number(size)} bytes, above max_payload_size {number(limit)}"


def key_reason(value: Any) -> str:
    """Why a ``key`` or ``partition_key`` is not a non-empty str or bytes."""
    if type(value) is str or type(value) is bytes:
        if not value:
            return f"must not be empty (got an empty {type(value).__name__})"
        return "must be encodable as UTF-8 (it holds a lone surrogate)"
    return f"must be a non-empty str or bytes, got {got(value)}"


def partition_reason(value: Any, minimum: int = -1) -> str:
    """Why ``partition`` is not an int from ``minimum`` to INT32_MAX."""
    if type(value) is not int:
        return f"must be an int >= {minimum}, got {got(value)}"
    if value < minimum:
        return f"is {number(value)}, below {minimum}"
    return f"is {number(value)}, above the largest partition number {number(INT32_MAX)}"


def timestamp_reason(value: Any) -> str:
    """Why ``timestamp`` is not milliseconds since the epoch or a datetime from it on."""
    if type(value) is int:
        if value < 0:
            return f"is {number(value)}, before the epoch (must be >= 0)"
        return f"is {number(value)}, above {number(INT64_MAX)}"
    if isinstance(value, _dt.datetime):
        return f"is {value.isoformat()}, before the epoch (1970-01-01 UTC)"
    return (f"must be an int (milliseconds since the epoch) or a datetime.datetime, "
            f"got {got(value)}")


def headers_reason(headers: Any) -> str:
    """Why ``headers`` is not a dict of str to str, bytes or a list of those, naming the
    first offending key or value."""
    if type(headers) is not dict:
        return f"must be a dict or None, got {got(headers)}"
    for name, value in headers.items():
        if type(name) is not str:
            return f"keys must be str, got {got(name)} ({_short(name)})"
    for name, value in headers.items():
        items = value if type(value) in (list, tuple) else (value,)
        for item in items:
            if type(item) is not str and type(item) is not bytes:
                inside = " in a list" if items is value else ""
                return (f"values must be {HEADER_VALUE_TYPES}: {_short(name)} has "
                        f"{got(item)}{inside}")
    for name, value in headers.items():
        texts = [name] + [
            item for item in (value if type(value) in (list, tuple) else (value,))
            if type(item) is str
        ]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return (f"{_short(name)} holds a str that is not encodable as UTF-8 "
                        "(a lone surrogate)")
    return MESSAGE["headers_format"]


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
#: Python-only: appended to a ProduceError for a message that timed out while librdkafka
#: reached no broker (its last error says so), so that the text says why.
TIMED_OUT_UNREACHABLE = (
    ": not delivered within {timeout} because no Kafka broker at {servers} could be reached "
    "(librdkafka's last error: {cause}). Check that the brokers are running and reachable "
    "from this host, and that bootstrap.servers names them; producer.ping() at startup "
    "reports this within seconds"
)
#: Python-only: a producer that connects needs to know where (the test clients do not).
BOOTSTRAP_SERVERS_MISSING = (
    "must be set to the brokers to connect to, e.g. {'bootstrap.servers': 'localhost:9092'} "
    "(only the Dummy and Buffered test clients run without it)"
)


def librdkafka_refused(key: str, value: str, reason: str, suggestions: list[str]) -> str:
    """``LIBRDKAFKA_REFUSED``, plus ``DID_YOU_MEAN`` when there are properties to suggest."""
    text = LIBRDKAFKA_REFUSED.format(key=key, value=value, reason=reason.strip())
    if suggestions:
        # double quotes, as librdkafka's own reason quotes names: a text with both kinds of
        # quote would print with backslashes inside the error's dict
        text += DID_YOU_MEAN.format(names=" or ".join(f'"{name}"' for name in suggestions))
    return text


TOMBSTONE: dict[str, str] = {
    "missing": MISSING + " (a tombstone names the key it deletes)",
    "partition_missing": MISSING + " (a tombstone names its partition: the key's partition)",
    "key_format": "must be a non-empty str or bytes",
    "partition_format": "must be an int >= 0",
}


def shown(value: Any) -> str:
    """A setting's bad value as a reason shows it: a number or a str itself, anything else
    its type."""
    if type(value) is int:
        return number(value)
    if type(value) in (float, str):
        return _short(value)
    return got(value)


def bad(reason: str, value: Any) -> str:
    """``reason`` followed by what the value was: ``"must be an int >= 1, got 0"``."""
    return f"{reason}, got {shown(value)}"


CONFIG: dict[str, str] = {
    "missing": MISSING,
    "id_format": "must be a non-empty str",
    "logger_format": "must be a logging.Logger (or an object with its methods), not None",
    "monitor_format": "must be a waterdrop.instrumentation.Monitor, not None",
    "monitor_class": "must be a waterdrop.instrumentation.Monitor (or a subclass)",
    "client_class_format": "must be a client class (such as waterdrop.clients.Dummy), not None",
    "client_class_callable": "must be a class or callable that builds a client from the producer",
    "middleware_format": "must have run and run_many methods (waterdrop.middleware.Middleware)",
    "oauth_format": "must be a dict such as {'token_provider_listener': listener}",
    "deliver_format": "must be True or False",
    "max_payload_size_format": "must be an int >= 1 (bytes)",
    "max_wait_timeout_format": "must be a number >= 0 (milliseconds)",
    "kafka_format": "must be a non-empty dict of librdkafka properties with str keys",
    "kafka_key_must_be_a_symbol": (
        "must be a str key (librdkafka property names are str, without NUL characters)"
    ),
    "kafka_value_format": "must be a str, int, float or bool (without NUL characters)",
    "wait_on_queue_full_format": "must be True or False",
    "wait_backoff_on_queue_full_format": "must be a number >= 0 (milliseconds)",
    "wait_timeout_on_queue_full_format": "must be a number >= 0 (milliseconds)",
    "instrument_on_wait_queue_full_format": "must be True or False",
    "wait_backoff_on_transaction_command_format": "must be a number >= 0 (milliseconds)",
    "max_attempts_on_transaction_command_format": "must be an int >= 1",
    "reload_on_transaction_fatal_error_format": "must be True or False",
    "reload_on_idempotent_fatal_error_format": "must be True or False",
    "wait_backoff_on_idempotent_fatal_error_format": "must be a number >= 0 (milliseconds)",
    "max_attempts_on_idempotent_fatal_error_format": "must be an int >= 1",
    "wait_backoff_on_transaction_fatal_error_format": "must be a number >= 0 (milliseconds)",
    "max_attempts_on_transaction_fatal_error_format": "must be an int >= 1",
    "wait_timeout_on_transaction_abort_format": "must be a number >= 0 (milliseconds)",
    "non_reloadable_errors_format": "must be a list of librdkafka error names (str)",
    "idle_disconnect_timeout_format": "must be 0 (off) or an int >= 30,000 (milliseconds)",
    "statistics_decorator_format": "must be callable or None",
    "oauth.token_provider_listener_format": (
        "must be False, None or an object with an on_oauthbearer_token_refresh(event) method"
    ),
    "unknown_setting": "is not a known setting",
}

VARIANT: dict[str, str] = {
    "missing": MISSING,
    "default_format": "must be True or False",
    "max_wait_timeout_format": "must be a number >= 0 (milliseconds)",
    "topic_config_format": "must be a dict of per-topic librdkafka properties with str keys",
    "topic_config_value_format": "must be a str, int, float or bool (without NUL characters)",
    "kafka_key_must_be_a_symbol": (
        "must be a str key (librdkafka property names are str, without NUL characters)"
    ),
    "kafka_key_not_per_topic": "is not a per-topic setting; a variant may set only {keys}",
    "kafka_key_acks_not_changeable": (
        "cannot be changed on a transactional or idempotent producer (it needs acks all)"
    ),
}

TRANSACTIONAL_OFFSET: dict[str, str] = {
    "missing": MISSING,
    "consumer_format": (
        "must be a consumer with consumer_group_metadata() or a non-empty group id str"
    ),
    "message_format": (
        "must have a topic (non-empty str), a partition (int >= 0) and an offset (int >= 0): "
        "a consumed message, a dict or a (topic, partition, offset) tuple"
    ),
    "consumer_group_metadata_format": (
        "has a consumer_group_metadata() that must return bytes or str"
    ),
    "offset_metadata_format": "must be a str or None",
}
