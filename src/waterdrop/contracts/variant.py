"""The variant contract: what ``producer.variant(...)`` may change per topic."""

from __future__ import annotations

import difflib
from typing import Any

from waterdrop.contracts.config import _is_number, c_string, librdkafka_errors
from waterdrop.contracts.wording import DID_YOU_MEAN, VARIANT, bad
from waterdrop.errors import VariantInvalidError

#: librdkafka settings a variant may set: the per-topic ones WaterDrop allows.
TOPIC_CONFIG_KEYS = frozenset(
    (
        "acks",
        "compression.codec",
        "compression.level",
        "compression.type",
        "delivery.timeout.ms",
        "message.timeout.ms",
        "partitioner",
        "request.required.acks",
        "request.timeout.ms",
    )
)


def validate(
    topic_config: Any, max_wait_timeout: Any, *, idempotent: bool, transactional: bool
) -> None:
    errors: dict[str, str] = {}
    if not _is_number(max_wait_timeout) or max_wait_timeout < 0:
        errors["max_wait_timeout"] = bad(VARIANT["max_wait_timeout_format"], max_wait_timeout)
    if not isinstance(topic_config, dict):
        errors["topic_config"] = bad(VARIANT["topic_config_format"], topic_config)
    else:
        for key, value in topic_config.items():
            if not isinstance(key, str) or not c_string(key):
                errors[f"topic_config.{key!s}"] = VARIANT["kafka_key_must_be_a_symbol"]
            elif key not in TOPIC_CONFIG_KEYS:
                errors[f"topic_config.{key}"] = VARIANT["kafka_key_not_per_topic"].format(
                    keys=", ".join(sorted(TOPIC_CONFIG_KEYS))
                ) + _nearest(key)
            elif "acks" in key and (idempotent or transactional):
                errors[f"topic_config.{key}"] = VARIANT["kafka_key_acks_not_changeable"]
            elif not isinstance(value, (str, int, float, bool)) or not c_string(str(value)):
                errors[f"topic_config.{key}"] = bad(VARIANT["topic_config_value_format"], value)
        # librdkafka's own verdict on the values, through a topic configuration thrown away:
        # a bad value fails here, not at the variant's first produce
        shaped = {k: v for k, v in topic_config.items() if f"topic_config.{k!s}" not in errors}
        errors.update(librdkafka_errors(shaped, "topic_config", topic=True))
    if errors:
        raise VariantInvalidError(errors)


def _nearest(key: str) -> str:
    """A hint for a misspelt per-topic key: the allowed key spelt most like it."""
    matches = difflib.get_close_matches(key.lower(), sorted(TOPIC_CONFIG_KEYS), n=1, cutoff=0.75)
    return DID_YOU_MEAN.format(names=" or ".join(map(repr, matches))) if matches else ""
