"""Producer settings: WaterDrop's names, defaults and units (times in ms)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from waterdrop.instrumentation import Monitor
    from waterdrop.middleware import Middleware

@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, unit and meaning (the configuration reference is built
    from these records, so the documentation cannot drift from the code)."""

    name: str
    default: Any
    #: "ms", "bytes", "attempts", "codes" ... ; "" for settings that are not quantities
    unit: str
    meaning: str
    #: how the default reads in the documentation when it is resolved at setup (``None``)
    shown_default: str = ""


#: librdkafka settings WaterDrop injects when the user did not set them.
KAFKA_SETTINGS: tuple[Setting, ...] = (
    Setting("client.id", "waterdrop", "", "the client id librdkafka sends to the brokers"),
    Setting(
        "statistics.interval.ms", 5_000, "ms",
        "how often librdkafka emits statistics; forced to 0 when the client is built and "
        "nobody listens to `statistics.emitted`",
    ),
    Setting(
        "message.timeout.ms", 150_000, "ms",
        "how long librdkafka tries to deliver a message; below `max_wait_timeout`, so a "
        "synchronous wait always ends with a real verdict rather than a wait timeout",
    ),
    Setting(
        "transaction.timeout.ms", 165_000, "ms",
        "how long a transaction may stay open before the broker aborts it; must be at least "
        "`message.timeout.ms`",
    ),
    Setting("socket.nagle.disable", True, "", "send small requests at once (lower latency)"),
)

#: Root settings (the ``Producer(...)`` / ``setup(...)`` keywords).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "id", None, "",
        "the producer's id in events and logs (not librdkafka's `client.id`)",
        '`"waterdrop-"` and 12 random hex digits',
    ),
    Setting(
        "logger", None, "", "the `logging.Logger` librdkafka's log lines go to",
        '`logging.getLogger("waterdrop")`',
    ),
    Setting(
        "monitor", None, "",
        "the producer's event bus (`waterdrop.instrumentation.Monitor`)", "a new `Monitor`",
    ),
    Setting(
        "max_payload_size", 1_000_012, "bytes",
        "the largest payload a message may have (a `str` counts its UTF-8 bytes); larger "
        "messages are refused with `MessageInvalidError` before anything is sent",
    ),
    Setting(
        "max_wait_timeout", 180_000, "ms",
        "how long `produce_sync`, `produce_many_sync`, `flush_sync`, `DeliveryHandle.wait()` "
        "and `close()` wait at most",
    ),
    Setting(
        "wait_on_queue_full", True, "",
        "on librdkafka's `queue_full`, back off and retry instead of raising at once",
    ),
    Setting(
        "wait_backoff_on_queue_full", 100, "ms",
        "the pause between two attempts after `queue_full`",
    ),
    Setting(
        "wait_timeout_on_queue_full", 10_000, "ms",
        "how long a dispatch keeps retrying after `queue_full` before it raises",
    ),
    Setting(
        "instrument_on_wait_queue_full", True, "",
        "emit `error.occurred` for every `queue_full` that is retried",
    ),
    Setting(
        "wait_backoff_on_transaction_command", 500, "ms",
        "the pause before retrying a retryable transaction command, multiplied by the "
        "attempt number",
    ),
    Setting(
        "max_attempts_on_transaction_command", 5, "attempts",
        "how many times a retryable transaction command (begin, commit, abort, sending "
        "offsets) is attempted",
    ),
    Setting(
        "reload_on_transaction_fatal_error", True, "",
        "rebuild the client after a fatal (or other librdkafka) error aborted a transaction",
    ),
    Setting(
        "reload_on_idempotent_fatal_error", False, "",
        "rebuild the client after a fatal error on an idempotent, non-transactional producer",
    ),
    Setting(
        "wait_backoff_on_idempotent_fatal_error", 5_000, "ms",
        "the pause after rebuilding an idempotent producer's client",
    ),
    Setting(
        "max_attempts_on_idempotent_fatal_error", 5, "attempts",
        "how many times in a row an idempotent producer's client is rebuilt",
    ),
    Setting(
        "wait_backoff_on_transaction_fatal_error", 1_000, "ms",
        "the pause after rebuilding a transactional producer's client",
    ),
    Setting(
        "max_attempts_on_transaction_fatal_error", 10, "attempts",
        "how many reloads in a row a transactional producer may do (reset by a successful "
        "commit)",
    ),
    Setting(
        "wait_timeout_on_transaction_abort", 0, "ms",
        "before aborting because of an exception or `AbortTransaction`, wait up to this long "
        "for the transaction's first message to be acknowledged (0: off); works around "
        "librdkafka#4849",
    ),
    Setting(
        "non_reloadable_errors", ("fenced",), "error codes",
        "`KafkaError.code` values that never trigger a reload (transactional or idempotent)",
        '`["fenced"]`',
    ),
    Setting(
        "idle_disconnect_timeout", 0, "ms",
        "disconnect a producer that sent nothing for this long (0: never; otherwise at least "
        "30 000); it reconnects on its next dispatch",
    ),
    Setting(
        "statistics_decorator", None, "",
        "turns librdkafka's cumulative statistics into deltas and freeze durations before "
        "`statistics.emitted`", "a new `StatisticsDecorator`",
    ),
    Setting(
        "deliver", True, "",
        "`False` swaps in the `Dummy` client: messages are validated but never sent",
    ),
    Setting(
        "client_class", None, "",
        "the client factory; `waterdrop.clients.Dummy` and `Buffered` are for tests",
        "`waterdrop.clients.Rdkafka`",
    ),
    Setting(
        "kafka", None, "",
        "librdkafka properties: a non-empty `dict` with `str` keys and `str`, `int`, `float` "
        "or `bool` values; WaterDrop's librdkafka defaults are merged under it",
        "required",
    ),
    Setting(
        "middleware", None, "",
        "the chain of callables run on every message before it is validated",
        "an empty `Middleware`",
    ),
)


class Settings(TypedDict, total=False):
    """The keyword settings of ``Producer(...)`` / ``setup(...)`` (the asyncio producer's too),
    for type checkers: one key per record of ``SETTINGS``, plus ``oauth``.

    ``Producer(**settings: Unpack[Settings])`` makes a misspelt setting a type error (mypy's
    ``call-arg``), as it is a ``ConfigurationInvalidError`` at run time. The types are what the
    configuration contract accepts; what a type cannot say (a positive number, a non-empty
    ``kafka`` ``dict``, librdkafka's verdict on each property) is still checked at setup.
    """

    id: str | None
    logger: logging.Logger | logging.LoggerAdapter[Any] | None
    monitor: Monitor | None
    max_payload_size: int
    #: an int, as every wait that takes it (``DeliveryHandle.wait``, a variant) types it
    max_wait_timeout: int
    wait_on_queue_full: bool
    wait_backoff_on_queue_full: float
    wait_timeout_on_queue_full: float
    instrument_on_wait_queue_full: bool
    wait_backoff_on_transaction_command: float
    max_attempts_on_transaction_command: int
    reload_on_transaction_fatal_error: bool
    reload_on_idempotent_fatal_error: bool
    wait_backoff_on_idempotent_fatal_error: float
    max_attempts_on_idempotent_fatal_error: int
    wait_backoff_on_transaction_fatal_error: float
    max_attempts_on_transaction_fatal_error: int
    wait_timeout_on_transaction_abort: float
    #: a list or tuple (a ``str`` is not a list of codes)
    non_reloadable_errors: list[str] | tuple[str, ...]
    idle_disconnect_timeout: int
    statistics_decorator: Callable[..., Any] | None
    deliver: bool
    client_class: Callable[..., Any] | None
    #: a ``dict`` at run time; a ``Mapping`` here so that a ``dict[str, str]`` fits
    kafka: Mapping[str, str | int | float | bool]
    middleware: Middleware | None
    #: ``{"token_provider_listener": listener}`` (see docs/instrumentation.md)
    oauth: Mapping[str, Any]


KAFKA_DEFAULTS: dict[str, Any] = {s.name: s.default for s in KAFKA_SETTINGS}

#: Root settings and their defaults. ``None`` means "resolved at setup" (id, logger, ...).
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}

#: The two defaults that signatures below the producer need (the core, the clients, the CLI):
#: read from the records above, never written again as numbers.
DEFAULT_MAX_PAYLOAD_SIZE: int = DEFAULTS["max_payload_size"]
DEFAULT_MAX_WAIT_TIMEOUT: int = DEFAULTS["max_wait_timeout"]


class Config:
    """The settings object handed to a ``configure(config)`` function."""

    def __init__(self) -> None:
        for name, default in DEFAULTS.items():
            setattr(self, name, list(default) if isinstance(default, tuple) else default)
        self.kafka = {}
        self.oauth = SimpleNamespace(token_provider_listener=False)

    if TYPE_CHECKING:
        # Every setting of SETTINGS is an attribute (set in __init__ from the records), declared
        # here for type checkers so that a misspelt one in configure(config) is an error
        # (attr-defined) before it runs, as Settings does for the keywords. The values are typed
        # as Settings types them; the ones resolved at setup (None until then) are Any.
        id: str | None
        logger: Any
        monitor: Any
        max_payload_size: int
        max_wait_timeout: int
        wait_on_queue_full: bool
        wait_backoff_on_queue_full: float
        wait_timeout_on_queue_full: float
        instrument_on_wait_queue_full: bool
        wait_backoff_on_transaction_command: float
        max_attempts_on_transaction_command: int
        reload_on_transaction_fatal_error: bool
        reload_on_idempotent_fatal_error: bool
        wait_backoff_on_idempotent_fatal_error: float
        max_attempts_on_idempotent_fatal_error: int
        wait_backoff_on_transaction_fatal_error: float
        max_attempts_on_transaction_fatal_error: int
        wait_timeout_on_transaction_abort: float
        non_reloadable_errors: list[str] | tuple[str, ...]
        idle_disconnect_timeout: int
        statistics_decorator: Any
        deliver: bool
        client_class: Any
        kafka: dict[str, Any]
        middleware: Any
        oauth: Any
    else:
        # Hidden from type checkers: a class with __setattr__ may be given any attribute.
        def __setattr__(self, name: str, value: Any) -> None:
            if name not in DEFAULTS and name != "oauth":
                from waterdrop.contracts.wording import CONFIG
                from waterdrop.errors import ConfigurationInvalidError

                raise ConfigurationInvalidError({name: _unknown_setting(name)})
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


def _unknown_setting(name: str) -> str:
    """Why ``name`` is refused: the nearest setting's name, or where a librdkafka property
    (``linger_ms``, ``bootstrap_servers``) goes instead."""
    import difflib

    from waterdrop.contracts.wording import CONFIG, DID_YOU_MEAN

    reason = CONFIG["unknown_setting"]
    close = difflib.get_close_matches(name, sorted(DEFAULTS), n=1, cutoff=0.75)
    if close:
        return reason + DID_YOU_MEAN.format(names=repr(close[0]))
    from waterdrop.contracts.config import nearest_properties

    dotted = name.replace("_", ".")
    if dotted in nearest_properties(dotted):
        return reason + f"; {dotted!r} is a librdkafka property: pass it in kafka={{...}}"
    return reason


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
