"""The configuration contract: settings checked before a client is ever built."""

from __future__ import annotations

import difflib
import functools
import math
from numbers import Real
from typing import Any

from waterdrop.contracts.wording import (
    BOOTSTRAP_SERVERS_MISSING,
    CONFIG,
    bad,
    librdkafka_refused,
)
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

        # librdkafka's own verdict on every key and value that has the right shape, once
        # per setup, on a configuration thrown away: a misspelt key or a bad value fails
        # here, not at the first produce
        shaped = {k: v for k, v in kafka.items() if f"kafka.{k!s}" not in errors}
        errors.update(librdkafka_errors(shaped, "kafka"))
        if _connects(data) and not _has_bootstrap_servers(kafka):
            errors["kafka.bootstrap.servers"] = BOOTSTRAP_SERVERS_MISSING

    if errors:
        raise ConfigurationInvalidError(errors)


def _connects(data: dict[str, Any]) -> bool:
    """Whether the producer's client talks to brokers: all but the in-process test clients
    (Dummy, Buffered and their subclasses; ``deliver=False`` picks Dummy)."""
    from waterdrop.clients import Dummy, Rdkafka

    client_class = data.get("client_class")
    if isinstance(client_class, type) and issubclass(client_class, Dummy):
        return False
    return not (data.get("deliver") is False and client_class is Rdkafka)


def _has_bootstrap_servers(kafka: dict[str, Any]) -> bool:
    # metadata.broker.list is librdkafka's original name; bootstrap.servers its alias
    return any(
        isinstance(kafka.get(name), str) and kafka[name].strip()
        for name in ("bootstrap.servers", "metadata.broker.list")
    )


def librdkafka_errors(
    settings: dict[str, Any], prefix: str, *, topic: bool = False
) -> dict[str, str]:
    """librdkafka's own verdict on each setting, as contract errors keyed ``prefix.key``.

    Each setting is set on a librdkafka configuration that is then thrown away (``topic``:
    a topic configuration): the reason names the key, the value and librdkafka's words, and
    for a key librdkafka does not know, the nearest property names. Secret values are never
    shown.
    """
    from waterdrop import _core
    from waterdrop.config import _secret

    errors: dict[str, str] = {}
    for key, (unknown, reason) in _core.check_conf(settings, topic).items():
        value = settings[key]
        shown = _core.conf_value(value)   # as librdkafka was given it (True is "true")
        suggestions = nearest_properties(key, topic=topic) if unknown else []
        # a misspelt secret ("sasl.pasword") is a secret too: judged by what it resembles
        if _secret(key) or any(_secret(name) for name in suggestions):
            if shown:
                reason = reason.replace(shown, "[FILTERED]")
            shown = "[FILTERED]"
        errors[f"{prefix}.{key}"] = librdkafka_refused(key, shown, reason, suggestions)
    return errors


def nearest_properties(name: str, *, topic: bool = False) -> list[str]:
    """The librdkafka producer property spelt most like ``name`` (none if nothing is close)."""
    names = _producer_properties(topic)
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:          # only the case is wrong
        return [by_lower[name.lower()]]
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.75)
    return [by_lower[m] for m in matches]


@functools.lru_cache(maxsize=2)
def _producer_properties(topic: bool) -> tuple[str, ...]:
    """Property names a producer may set, from librdkafka's own table of them (the global
    and topic sections for a client's settings; the topic section alone for ``topic``)."""
    from waterdrop import _core

    names: list[str] = []
    section = ""
    for line in _core.conf_properties_doc().splitlines():
        if line.startswith("## "):
            section = "topic" if "Topic" in line else "global"
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 3 or not cells[0] or cells[0] == "Property" or cells[0][0] == "-":
            continue
        if cells[1] in ("P", "*") and (section == "topic" or not topic):
            names.append(cells[0])
    return tuple(dict.fromkeys(names))
