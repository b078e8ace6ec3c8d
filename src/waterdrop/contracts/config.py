"""The configuration contract: settings checked before a client is ever built."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from waterdrop.contracts.wording import CONFIG, bad
from waterdrop.errors import ConfigurationInvalidError

_BOOLS = (
    "deliver",
    "wait_on_queue_full",
    "instrument_on_wait_queue_full",
    "reload_on_transaction_fatal_error",
    "reload_on_idempotent_fatal_error",
)
_NON_NEGATIVE = (
    "wait_backoff_on_queue_full",
    "wait_timeout_on_queue_full",
    "wait_backoff_on_transaction_command",
    "wait_backoff_on_idempotent_fatal_error",
    "wait_backoff_on_transaction_fatal_error",
    "wait_timeout_on_transaction_abort",
)
_AT_LEAST_ONE = (
    "max_payload_size",
    "max_attempts_on_transaction_command",
    "max_attempts_on_idempotent_fatal_error",
    "max_attempts_on_transaction_fatal_error",
)


_MAX_MS = 2**62  # far beyond any real timeout, and still a C long long once converted


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < _MAX_MS


def _is_number(value: Any) -> bool:
    """A finite real number (no bool, NaN or infinity) small enough for librdkafka's ints."""
    return (
        isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < _MAX_MS
    )


_INVALID = object()  # what Config.as_dict reports for an oauth setting that is not a namespace


def c_string(text: str) -> bool:
    """librdkafka takes settings as NUL-terminated UTF-8: no NUL, no lone surrogate."""
    if "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(data: dict[str, Any], given_kafka: Any = None) -> None:
    """Raise ConfigurationInvalidError with every broken rule, keyed by setting path.

    ``given_kafka`` is the ``kafka`` dict as the user gave it, before the defaults were merged.
    """
    errors: dict[str, str] = {}

    if not isinstance(data.get("id"), str) or not data["id"]:
        errors["id"] = bad(CONFIG["id_format"], data.get("id"))
    for name in ("logger", "monitor", "client_class"):
        if data.get(name) is None:
            errors[name] = CONFIG[f"{name}_format"]
    if data.get("client_class") is not None and not callable(data["client_class"]):
        errors["client_class"] = bad(CONFIG["client_class_callable"], data["client_class"])
    middleware = data.get("middleware")
    if middleware is not None and not (
        callable(getattr(middleware, "run", None)) and callable(getattr(middleware, "run_many", None))
    ):
        errors["middleware"] = bad(CONFIG["middleware_format"], middleware)
    if data.get("oauth") is _INVALID:
        errors["oauth"] = CONFIG["oauth_format"]
    from waterdrop.instrumentation.monitor import Monitor

    if data.get("monitor") is not None and not isinstance(data["monitor"], Monitor):
        errors["monitor"] = bad(CONFIG["monitor_class"], data["monitor"])
    for name in _BOOLS:
        if not isinstance(data.get(name), bool):
            errors[name] = bad(CONFIG[f"{name}_format"], data.get(name))
    for name in _NON_NEGATIVE:
        value = data.get(name)
        if not _is_number(value) or value < 0:
            errors[name] = bad(CONFIG[f"{name}_format"], value)
    for name in _AT_LEAST_ONE:
        value = data.get(name)
        if not _is_int(value) or value < 1:
            errors[name] = bad(CONFIG[f"{name}_format"], value)
    value = data.get("max_wait_timeout")
    if not _is_number(value) or value < 0:
        errors["max_wait_timeout"] = bad(CONFIG["max_wait_timeout_format"], value)
    value = data.get("idle_disconnect_timeout")
    if not _is_int(value) or not (value == 0 or value >= 30_000):
        errors["idle_disconnect_timeout"] = bad(CONFIG["idle_disconnect_timeout_format"], value)
    value = data.get("non_reloadable_errors")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        errors["non_reloadable_errors"] = bad(CONFIG["non_reloadable_errors_format"], value)
    value = data.get("statistics_decorator")
    if value is not None and not callable(value):
        errors["statistics_decorator"] = bad(CONFIG["statistics_decorator_format"], value)
    oauth = data.get("oauth")
    listener = oauth.get("token_provider_listener") if isinstance(oauth, dict) else None
    if listener is not False and listener is not None and not callable(
        getattr(listener, "on_oauthbearer_token_refresh", None)
    ):
        errors["oauth.token_provider_listener"] = bad(
            CONFIG["oauth.token_provider_listener_format"], listener
        )

    kafka = data.get("kafka")
    if given_kafka is not None and isinstance(given_kafka, dict) and not given_kafka:
        errors["kafka"] = CONFIG["kafka_format"]
    elif not isinstance(kafka, dict) or not kafka:
        errors["kafka"] = CONFIG["kafka_format"]
    else:
        for key, val in kafka.items():
            if not isinstance(key, str) or not c_string(key):
                errors[f"kafka.{key!s}"] = CONFIG["kafka_key_must_be_a_symbol"]
            elif not isinstance(val, (str, int, float, bool)) or not c_string(str(val)):
                errors[f"kafka.{key}"] = bad(CONFIG["kafka_value_format"], val)

    if errors:
        raise ConfigurationInvalidError(errors)
