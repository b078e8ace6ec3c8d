"""Producer settings: WaterDrop's names, defaults and units (times in ms)."""

from __future__ import annotations

import logging
import secrets
from types import SimpleNamespace
from typing import Any

#: librdkafka settings WaterDrop injects when the user did not set them.
KAFKA_DEFAULTS: dict[str, Any] = {
    "client.id": "waterdrop",
    # forced to 0 when the client is built and nobody listens to statistics.emitted
    "statistics.interval.ms": 5_000,
    # below max_wait_timeout, so a sync wait always ends with a real verdict
    "message.timeout.ms": 150_000,
    "transaction.timeout.ms": 165_000,
    "socket.nagle.disable": True,
}

#: Root settings and their defaults. ``None`` means "resolved at setup" (id, logger, ...).
DEFAULTS: dict[str, Any] = {
    "id": None,
    "logger": None,
    "monitor": None,
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
    "non_reloadable_errors": ("fenced",),
    "idle_disconnect_timeout": 0,
    "statistics_decorator": None,
    "deliver": True,
    "client_class": None,
    "kafka": None,
    "middleware": None,
}


class Config:
    """The settings object handed to a ``configure(config)`` function."""

    def __init__(self) -> None:
        for name, default in DEFAULTS.items():
            setattr(self, name, list(default) if isinstance(default, tuple) else default)
        self.kafka = {}
        self.oauth = SimpleNamespace(token_provider_listener=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in DEFAULTS and name != "oauth":
            from waterdrop.contracts.messages import CONFIG
            from waterdrop.errors import ConfigurationInvalidError

            raise ConfigurationInvalidError({name: CONFIG["unknown_setting"]})
        object.__setattr__(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in DEFAULTS}
        if hasattr(self.oauth, "token_provider_listener"):
            data["oauth"] = {"token_provider_listener": self.oauth.token_provider_listener}
        else:
            from waterdrop.contracts.config import _INVALID

            data["oauth"] = _INVALID
        return data

    def __repr__(self) -> str:
        kafka = {k: ("[FILTERED]" if _secret(k) else v) for k, v in (self.kafka or {}).items()}
        return f"<waterdrop.Config id={self.id!r} kafka={kafka!r}>"


def _secret(name: object) -> bool:
    """librdkafka settings whose values must never be printed (passwords, keys, secrets)."""
    text = str(name).lower()
    return any(word in text for word in ("password", "secret", "sasl.oauthbearer.config",
                                         "ssl.key.pem", "ssl_key", "token", "passphrase",
                                         "private.key"))


def resolve(config: Config) -> None:
    """Fill the lazily defaulted settings and merge KAFKA_DEFAULTS under ``kafka``."""
    from waterdrop.instrumentation import Monitor
    from waterdrop.middleware import Middleware

    if config.id is None:
        config.id = f"waterdrop-{secrets.token_hex(6)}"
    if config.logger is None:
        config.logger = logging.getLogger("waterdrop")
    if config.monitor is None:
        config.monitor = Monitor()
    if config.middleware is None:
        config.middleware = Middleware()
    if config.statistics_decorator is None:
        from waterdrop.instrumentation.statistics import StatisticsDecorator

        config.statistics_decorator = StatisticsDecorator()
    if config.client_class is None:
        from waterdrop.clients import Rdkafka

        config.client_class = Rdkafka
    if isinstance(config.kafka, dict):
        merged = dict(KAFKA_DEFAULTS)
        merged.update(config.kafka)
        config.kafka = merged
