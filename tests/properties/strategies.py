"""Hypothesis strategies for hostile input: random types, sizes, unicode with lone surrogates,
huge and empty values, wrong nesting.

Each strategy draws mostly plausible values (so the accepted path is exercised hard, and
delivered messages are checked byte for byte) and regularly something that must be refused.
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import types
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

#: librdkafka's default message.max.bytes; max_payload_size's default (1,000,012) is above it.
MESSAGE_MAX_BYTES = 1_000_000
MAX_PAYLOAD = 1_000_012

# Text that includes lone surrogates (not encodable as UTF-8), NULs, astral characters...
any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
utf8_text = st.text(st.characters(codec="utf-8"), max_size=40)
surrogate_text = st.tuples(utf8_text, st.sampled_from(["\ud800", "\udfff", "\udc80"]), utf8_text).map(
    "".join
)
some_text = st.one_of(utf8_text, utf8_text, any_text, surrogate_text)

#: Values of types nothing in a message accepts as such (the "random types").
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.complex_numbers(),
    st.just(object()),
    st.just(Ellipsis),
    st.just(print),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.sets(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(dt.date(2020, 1, 1)),
    st.just(dt.timedelta(seconds=1)),
    st.just(bytearray(b"ba")),
)


class StrSub(str):
    pass


class BytesSub(bytes):
    pass


def _huge(size: int) -> bytes:
    return b"\xa5" * size


# Payload sizes around every limit: empty, tiny, just under librdkafka's message.max.bytes,
# max_payload_size and one more byte than it.
huge_sizes = st.sampled_from(
    [0, 1, 4096, MESSAGE_MAX_BYTES - 200, MESSAGE_MAX_BYTES + 1, MAX_PAYLOAD, MAX_PAYLOAD + 1]
)


def _released_view() -> memoryview:
    view = memoryview(b"released")
    view.release()
    return view


payloads = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200),
    some_text,
    st.none(),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.binary(min_size=4, max_size=64).map(lambda b: memoryview(b)[::2]),       # strided
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8).map(
        lambda xs: memoryview(array.array("i", xs))),                            # not bytes
    huge_sizes.map(_huge),
    huge_sizes.map(lambda n: "é" * (n // 2)),
    st.builds(_released_view),
    st.binary(max_size=20).map(BytesSub),
    utf8_text.map(StrSub),
    junk,
)

keys = st.one_of(
    st.binary(max_size=40), some_text, st.none(), st.just(b""), st.just(""),
    st.binary(max_size=10).map(bytearray), utf8_text.map(StrSub), junk,
)

TOPIC_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."


def invalid_topics() -> st.SearchStrategy[Any]:
    """Topics the contract must refuse (the valid one is supplied by the test)."""
    return st.one_of(
        st.just(""),
        some_text.filter(lambda s: any(c not in TOPIC_CHARS for c in s)),
        st.binary(min_size=1, max_size=20),
        utf8_text.map(lambda s: s + " "),
        junk,
    )


partitions = st.one_of(
    st.just(0), st.just(-1), st.just(0), st.just(1),        # 1: beyond a 1-partition topic
    st.integers(min_value=-(2**40), max_value=2**40),
    st.just(2**31 - 1), st.just(2**31), st.just(-2),
    st.just(True), st.just(0.0), st.just("0"), junk,
)

timestamps = st.one_of(
    st.integers(min_value=0, max_value=4_102_444_800_000),   # up to 2100
    st.integers(min_value=-(2**70), max_value=2**70),
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1)),
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1),
                 timezones=st.timezones()),
    st.datetimes(max_value=dt.datetime(1969, 12, 31)),       # before the epoch
    st.just(True), st.floats(), junk,
)

header_values = st.one_of(
    st.binary(max_size=30), some_text,
    st.lists(st.one_of(st.binary(max_size=10), some_text), max_size=4),
    st.tuples(st.binary(max_size=5), utf8_text),
    st.lists(st.lists(st.binary(max_size=3), max_size=2), min_size=1, max_size=2),  # too deep
    st.dictionaries(utf8_text, st.binary(max_size=3), max_size=2),                  # wrong nesting
    st.binary(max_size=5).map(bytearray),
    junk,
)

header_names = st.one_of(utf8_text, utf8_text, some_text, st.binary(max_size=10), st.integers(), st.none())

headers = st.one_of(
    st.dictionaries(header_names, header_values, max_size=6),
    st.dictionaries(utf8_text, st.one_of(st.binary(max_size=30), utf8_text,
                                         st.lists(st.binary(max_size=8), max_size=3)),
                    max_size=6),
    st.lists(st.tuples(utf8_text, st.binary(max_size=8)), max_size=3),              # KIP-82 list
    st.none(),
    junk,
)

labels = st.one_of(st.none(), st.integers(), some_text, st.just(object()), junk)

unknown_field_names = st.one_of(
    st.sampled_from(["value", "Topic", "topic ", "payloads", "headers_", "offset", "acks"]),
    some_text.filter(lambda s: s not in
                     {"topic", "payload", "key", "partition", "partition_key", "timestamp",
                      "headers", "label"}),
    st.integers(),
)

FIELDS = ("payload", "key", "partition", "partition_key", "timestamp", "headers", "label")

#: Hostile: anything, refused or not.
FIELD_STRATEGIES = {
    "payload": payloads,
    "key": keys,
    "partition": partitions,
    "partition_key": keys,
    "timestamp": timestamps,
    "headers": headers,
    "label": labels,
}

#: Plausible: what a careful caller sends (still every size, every encodable character).
nonempty = st.one_of(st.binary(min_size=1, max_size=40), utf8_text.filter(bool))
VALID_STRATEGIES = {
    "payload": st.integers(0, 19).flatmap(
        lambda n: huge_sizes.map(_huge) if n == 0 else st.one_of(
            st.binary(max_size=300), utf8_text, st.none(),
            st.binary(max_size=64).map(bytearray), st.binary(max_size=64).map(memoryview))),
    "key": st.one_of(nonempty, st.none()),
    "partition": st.sampled_from([0, -1]),
    "partition_key": st.one_of(nonempty, st.none()),
    "timestamp": st.one_of(
        st.integers(min_value=1, max_value=2**62),
        st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1)),
        st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1),
                     timezones=st.timezones()),
    ),
    "headers": st.dictionaries(
        utf8_text,
        st.one_of(st.binary(max_size=40), utf8_text,
                  st.lists(st.one_of(st.binary(max_size=10), utf8_text), max_size=4)),
        max_size=6,
    ),
    "label": labels,
}


class FrozenMapping(Mapping):
    """A read-only Mapping that is not a dict."""

    def __init__(self, data: dict) -> None:
        self._data = dict(data)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@st.composite
def message_dicts(draw: Any, topic: str, hostile: bool | None = None) -> dict[Any, Any]:
    """A message as a dict. Plausible (every field from its valid strategy) about half of
    the time; otherwise one to three fields are hostile, the topic may be wrong or missing,
    the payload missing, or a key too many."""
    if hostile is None:
        hostile = draw(st.booleans())
    bad = set(draw(st.lists(st.sampled_from(FIELDS + ("topic",)), min_size=1, max_size=3))
              ) if hostile else set()
    message: dict[Any, Any] = {}
    if "topic" not in bad:
        message["topic"] = topic
    elif draw(st.booleans()):
        message["topic"] = draw(invalid_topics())
    for name in FIELDS:
        if name == "payload":
            present = "payload" not in bad or draw(st.integers(0, 4)) > 0
        else:
            present = draw(st.booleans())
        if present:
            strategy = FIELD_STRATEGIES[name] if name in bad else VALID_STRATEGIES[name]
            message[name] = draw(strategy)
    if hostile and draw(st.integers(0, 9)) == 0:
        message[draw(unknown_field_names)] = draw(junk)
    return message


@st.composite
def containers(draw: Any, topic: str, hostile: bool | None = None) -> Any:
    """What is passed as "the message": a dict, another Mapping, or the wrong thing."""
    body = draw(message_dicts(topic, hostile))
    if hostile is False:
        return body
    kind = draw(st.integers(0, 19))
    if kind < 15:
        return body
    if kind == 15:
        return collections.OrderedDict(body)
    if kind == 16:
        return types.MappingProxyType(body)
    if kind == 17:
        return FrozenMapping(body)
    if kind == 18:
        return list(body.items())                                   # wrong nesting
    return draw(st.one_of(st.just([body]), st.just((body,)), junk))  # wrong nesting / type


# --- headers, heavily ---------------------------------------------------------------------------

big_header_values = st.sampled_from([0, 1, 40_000]).map(lambda n: b"\x00" * n)
_plausible_headers = st.one_of(
    VALID_STRATEGIES["headers"],
    st.dictionaries(utf8_text, st.lists(st.binary(max_size=20), min_size=2, max_size=6),
                    max_size=4),                                   # KIP-82 repeated names
    st.dictionaries(utf8_text, st.one_of(st.binary(max_size=5), big_header_values), max_size=30),
)
_hostile_headers = st.one_of(
    st.dictionaries(header_names, st.one_of(header_values, big_header_values), max_size=30),
    st.dictionaries(some_text, st.lists(st.one_of(st.binary(max_size=5), some_text, junk),
                                        max_size=5), max_size=8),
    st.dictionaries(utf8_text, st.dictionaries(utf8_text, st.binary(max_size=3), max_size=2),
                    min_size=1, max_size=3),
    st.dictionaries(utf8_text, header_values, max_size=8).map(collections.OrderedDict),
    st.lists(st.tuples(utf8_text, st.binary(max_size=8)), max_size=4),
    st.lists(st.dictionaries(utf8_text, st.binary(max_size=3), max_size=2), max_size=2),
    st.tuples(utf8_text, st.binary(max_size=4)),
    st.binary(max_size=10), utf8_text, junk,
)
#: Plausible six times in ten (delivered and compared), hostile otherwise.
hostile_headers = st.integers(0, 9).flatmap(
    lambda n: _plausible_headers if n < 6 else _hostile_headers)


# --- producer settings --------------------------------------------------------------------------

positive_ms = st.integers(min_value=10_000, max_value=600_000)
#: librdkafka properties with values it accepts (none that stop delivery: acks=0 leaves
#: offsets unknown, short timeouts make failures legitimate, protocols need brokers that speak
#: them: those are for the other suites).
KAFKA_VALID = {
    "linger.ms": st.one_of(st.integers(0, 50), st.floats(0, 50), st.integers(0, 50).map(str)),
    "batch.num.messages": st.integers(1, 10_000),
    "batch.size": st.integers(1_000, 2_000_000),
    "compression.codec": st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd"]),
    "compression.type": st.sampled_from(["none", "gzip", "lz4", "zstd"]),
    "enable.idempotence": st.one_of(st.booleans(), st.sampled_from(["true", "false"])),
    "acks": st.sampled_from(["all", "1", "-1", -1, 1]),
    "retries": st.integers(0, 100),
    "retry.backoff.ms": st.integers(1, 1_000),
    "socket.timeout.ms": st.integers(1_000, 60_000),
    "message.timeout.ms": positive_ms,
    "queue.buffering.max.messages": st.integers(100, 1_000_000),
    "queue.buffering.max.kbytes": st.integers(2_048, 2_097_151),
    "client.id": st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
    "statistics.interval.ms": st.sampled_from([0, 1_000, 60_000]),
    "partitioner": st.sampled_from(["random", "consistent", "consistent_random", "murmur2",
                                    "murmur2_random", "fnv1a", "fnv1a_random"]),
    "socket.nagle.disable": st.booleans(),
    "max.in.flight": st.integers(1, 5),
    "topic.metadata.refresh.interval.ms": st.integers(1_000, 600_000),
    "sticky.partitioning.linger.ms": st.integers(0, 100),
    "log.connection.close": st.booleans(),
}
def _not_numeric(text: str) -> bool:
    t = text.strip().lower()
    return not (t.lstrip("+-").replace(".", "", 1).isdigit() or t in ("true", "false", "all"))


#: Values no property should take, or that only junk would: never a number librdkafka
#: could accept (a 500 s linger, acks=0 or a 1 ms timeout are legitimate settings whose
#: effects are not refusals; the value tests above cover those).
kafka_junk_values = st.one_of(
    some_text.filter(_not_numeric),
    st.integers(max_value=-2), st.integers(min_value=2**31, max_value=2**70),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -1.5, 1e300]),
    st.binary(max_size=5), st.none(), st.lists(st.integers(), max_size=2),
    st.dictionaries(utf8_text, st.integers(), max_size=2),
)
kafka_junk_keys = st.one_of(
    st.sampled_from(["no.such.property", "linger", "Linger.ms", "", " linger.ms",
                     "sasl.passwort", "batch.num.messages "]),
    some_text, st.integers(), st.binary(max_size=5), st.none(), st.tuples(st.integers()),
)

ROOT_VALID = {
    "id": st.text(min_size=1, max_size=20),
    "max_payload_size": st.integers(1_000, 10_000_000),
    "max_wait_timeout": positive_ms,
    "wait_on_queue_full": st.booleans(),
    "wait_backoff_on_queue_full": st.integers(0, 100),
    "wait_timeout_on_queue_full": st.integers(0, 10_000),
    "instrument_on_wait_queue_full": st.booleans(),
    "reload_on_idempotent_fatal_error": st.booleans(),
    "max_attempts_on_idempotent_fatal_error": st.integers(1, 10),
    "wait_backoff_on_idempotent_fatal_error": st.integers(0, 10_000),
    "idle_disconnect_timeout": st.one_of(st.just(0), st.integers(30_000, 600_000)),
    "non_reloadable_errors": st.lists(st.sampled_from(["fenced", "msg_timed_out"]), max_size=2),
}
ROOT_NAMES = list(ROOT_VALID) + [
    "logger", "monitor", "client_class", "deliver", "kafka", "middleware",
    "statistics_decorator", "oauth", "max_attempts_on_transaction_command",
]
root_junk_names = st.one_of(
    st.sampled_from(["max_payload", "Max_wait_timeout", "kafka_config", "deliver_", "client"]),
    st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12),
)


@st.composite
def producer_settings(draw: Any, bootstrap: str) -> tuple[dict[str, Any], bool]:
    """(settings, hostile). The kafka dict always carries the mock cluster's address."""
    hostile = draw(st.booleans())
    kafka: dict[Any, Any] = {"bootstrap.servers": bootstrap}
    for name in draw(st.lists(st.sampled_from(sorted(KAFKA_VALID)), max_size=6, unique=True)):
        kafka[name] = draw(KAFKA_VALID[name])
    settings: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(ROOT_VALID)), max_size=5, unique=True)):
        settings[name] = draw(ROOT_VALID[name])
    if hostile:
        for _ in range(draw(st.integers(1, 3))):
            where = draw(st.integers(0, 4))
            if where == 0:     # a real property, a value it cannot take
                kafka[draw(st.sampled_from(sorted(KAFKA_VALID)))] = draw(kafka_junk_values)
            elif where == 1:   # a property that does not exist, or a key that is no str
                kafka[draw(kafka_junk_keys)] = draw(st.one_of(kafka_junk_values, utf8_text))
            elif where == 2:   # a real root setting, a value of a random type
                settings[draw(st.sampled_from(ROOT_NAMES))] = draw(junk)
            elif where == 3:   # a root setting that does not exist
                settings[draw(root_junk_names)] = draw(junk)
            else:              # the kafka settings themselves of the wrong shape
                settings["kafka"] = draw(st.one_of(
                    st.just({}), st.just([("bootstrap.servers", bootstrap)]),
                    st.just(bootstrap), junk,
                ))
    settings.setdefault("kafka", kafka)
    return settings, hostile


# --- variants -----------------------------------------------------------------------------------

TOPIC_CONFIG_VALID = {
    "compression.codec": st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd", "inherit"]),
    "compression.type": st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd"]),
    "compression.level": st.integers(-1, 9),
    "message.timeout.ms": st.one_of(st.just(0), positive_ms),
    "delivery.timeout.ms": positive_ms,
    "request.timeout.ms": st.integers(5_000, 60_000),
    "partitioner": st.sampled_from(["random", "consistent", "consistent_random", "murmur2",
                                    "murmur2_random", "fnv1a", "fnv1a_random"]),
    "acks": st.sampled_from(["all", "1", "-1", -1, 1]),
    "request.required.acks": st.sampled_from(["all", "1", -1, 1]),
}
variant_junk_keys = st.one_of(
    st.sampled_from(["linger.ms", "bootstrap.servers", "enable.idempotence", "batch.size",
                     "transactional.id", "compression", "acks ", "no.such.property"]),
    some_text, st.integers(), st.binary(max_size=4), st.none(),
)


@st.composite
def variant_settings(draw: Any) -> tuple[Any, Any]:
    """(topic_config, max_wait_timeout): plausible half of the time."""
    config: dict[Any, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(TOPIC_CONFIG_VALID)), max_size=4,
                              unique=True)):
        config[name] = draw(TOPIC_CONFIG_VALID[name])
    wait: Any = draw(st.one_of(st.none(), positive_ms))
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            where = draw(st.integers(0, 3))
            if where == 0:
                config[draw(st.sampled_from(sorted(TOPIC_CONFIG_VALID)))] = draw(kafka_junk_values)
            elif where == 1:
                config[draw(variant_junk_keys)] = draw(st.one_of(kafka_junk_values, utf8_text))
            elif where == 2:
                # wrong types, negatives, NaN, infinities, beyond 64 bits (never a small
                # positive number: a sync wait that short may time out while the message is
                # still delivered, which is a legitimate report, not a refusal)
                wait = draw(st.one_of(
                    junk.filter(lambda v: not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and 0 <= v < 10_000)),
                    st.integers(max_value=-1), st.floats(max_value=-0.001),
                    st.sampled_from([float("nan"), float("inf"), 2**63, 10**30, 9.3e18])))
            else:
                wrong = draw(st.one_of(junk.filter(lambda v: v is not None),
                                       st.lists(st.tuples(utf8_text, utf8_text), max_size=2)))
                return wrong, wait
    return config, wait
